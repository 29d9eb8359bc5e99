/*
 * rs_down.h - an upgraded anchored connection goes back to TCP before a
 * fork or exec (rs_anchor_down.c; protocol in doc/rsocket-framework.md).
 */
#ifndef RS_DOWN_H
#define RS_DOWN_H

#include "rs_sock.h"

#include <sys/uio.h>

/* Module op anchor_release (ABI 1.2): 0 on TCP with nothing left over, 1
 * on TCP with a leftover the module serves first, -1 not released. */
int rs_anchor_release(struct rsock *s, int timeout_ms);
/* rs_anchor_check, lock held, in-band bytes on the anchor: 1 when they
 * were (or begin) a DOWN/ACK message and were dealt with, 0 when they are
 * EOF or an error for the anchor check. */
int rs_down_inband(struct rsock *s);
/* The in-band bytes waiting on kfd begin a DOWN: the active end already
 * upgraded and released while this passive end still waits for its RDMA
 * connection; read once this end is upgraded too (not a FAIL). */
int rs_down_waiting(int kfd);

/* Calls in the DOWN phase (no socket lock, no RDMA: fork children too).
 * ENOPROTOOPT: the leftover is empty, the dispatcher carries the
 * connection on TCP for good. */
ssize_t rs_down_recvv(struct rsock *s, const struct iovec *iov, int iovcnt, int flags);
ssize_t rs_down_sendv(struct rsock *s, const struct iovec *iov, int iovcnt, int flags);
uint32_t rs_down_poll_events(struct rsock *s, uint64_t *gen);
int rs_down_ioctl(struct rsock *s, unsigned long req, void *arg);
int rs_down_kfd(struct rsock *s);
/* Lock held: the TCP socket moved from number `from` to `to`
 * (rs_anchor_move_kfd). */
void rs_down_moved_kfd(struct rsock *s, int from, int to);
void rs_down_free(struct rsock *s);

/* rs_anchor.c: the TCP socket of an anchored socket (-1: none). */
int rs_anchor_kfd(const struct rsock *s);
/* Module op anchor_kfd (ABI 1.5): the TCP socket is now at kfd. */
int rs_anchor_move_kfd(struct rsock *s, int kfd);

#endif
