/*
 * ref_io.h - data path of the reference peer: CQ processing, credits,
 * rsend/rrecv, control messages, keepalive and iomap publication, each as
 * §1.4-§1.10 of the reference describe librdmacm. Every blocking call
 * takes an absolute deadline (ref_now_ms() based) and fails with
 * ETIMEDOUT after it.
 */
#ifndef REF_IO_H
#define REF_IO_H

#include <stdint.h>
#include <sys/types.h>

#include "ref_conn.h"

int64_t ref_now_ms(void);

int ref_post_recv(struct ref_conn *c);
/* one round of CQ/CM processing; blocks (bounded) when nothing is ready */
int ref_progress(struct ref_conn *c, int64_t deadline);

ssize_t ref_send(struct ref_conn *c, const void *buf, size_t len, int64_t deadline);
/* >0 bytes, 0 end of stream, -1 error (errno set) */
ssize_t ref_recv(struct ref_conn *c, void *buf, size_t len, int64_t deadline);
int ref_recv_all(struct ref_conn *c, void *buf, size_t len, int64_t deadline);

int ref_shutdown(struct ref_conn *c, int how, int64_t deadline);
int ref_close(struct ref_conn *c, int64_t deadline);

int ref_keepalive(struct ref_conn *c, int64_t deadline);
/* write a 24-byte iomap entry into the peer's slot idx (IOMAP_SGL imm) */
int ref_iomap_publish(struct ref_conn *c, unsigned idx, uint64_t offset, struct ibv_mr *mr,
                      int64_t deadline);
/* plain writes into the peer's published mapping; bytes written (stops
 * at an unmapped offset) or -1 */
ssize_t ref_riowrite(struct ref_conn *c, const void *buf, size_t len, uint64_t offset, int64_t deadline);
int ref_wait_sends(struct ref_conn *c, int64_t deadline);

#endif
