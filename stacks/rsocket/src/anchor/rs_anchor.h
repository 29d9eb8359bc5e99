/*
 * rs_anchor.h - TCP-anchored connections (nstack_module ABI 1.2:
 * anchor_hello, anchor). The connection is set up by kernel TCP; two
 * framework ends agree over it, out of band, to carry the data on an
 * rsocket beside it; the TCP connection stays open as the anchor (peer
 * death, fallback). Protocol, states and timeouts: doc/rsocket-framework.md.
 */
#ifndef RS_ANCHOR_H
#define RS_ANCHOR_H

#include "rs_sock.h"
#include "nstack/nstack_module.h"

#include <sys/socket.h>

/* Urgent bytes: one each, sent with MSG_OOB (a receiver that does not ask
 * for urgent data never sees them in its stream). */
#define RS_ANC_HELLO   0xA7    /* both ends: "this end runs the framework, v1" */
#define RS_ANC_KICK    0xA8    /* active: "I saw your hello: committed" */
/* either end, when it will never anchor the connection (a candidate
 * handed to another process before its first use: rs_anchor_hello with
 * NSTACK_ANCHOR_DECLINE): "stay on TCP, do not wait for me" */
#define RS_ANC_NOPE    0xAA
/* The long-lived policy (rs_anchor_late.c): the active's announcement and
 * the passive's answer are 0xC0 + code (policy 2^(code-1) bytes); MARK
 * ends the passive's TCP data, as KICK ends the active's. */
#define RS_ANC_MARK    0xA9
#define RS_ANC_LL_BASE 0xC0
#define RS_ANC_LL_MAX  47
static inline int rs_anc_ll_value(uint8_t v)
{
    return v > RS_ANC_LL_BASE && v <= RS_ANC_LL_BASE + RS_ANC_LL_MAX;
}

/* Every urgent byte this module sends (a late one is taken out, never left
 * to the application: NSTACK_ANCHOR_STALE). */
static inline int rs_anc_ours(uint8_t v)
{
    return v == RS_ANC_HELLO || v == RS_ANC_KICK || v == RS_ANC_NOPE || v == RS_ANC_MARK || rs_anc_ll_value(v);
}

/* In-band messages, 8 bytes: "NSAN", version, type, port (BE). Only ever
 * sent once the receiver is known to expect exactly this message. */
#define RS_ANC_MAGIC   "NSAN"
#define RS_ANC_VERSION 1
#define RS_ANC_OFFER   1       /* passive -> active: rconnect to this port */
#define RS_ANC_FAIL    2       /* active -> passive: RDMA failed, both stay on TCP */
#define RS_ANC_MSG_LEN 8

/* ---- rs_anchor_tcp.c: the TCP side (never blocks) ---------------------- */
int rs_anc_urgent_send(int kfd, uint8_t v);
/* 1 with *v: an urgent byte was read; 0: none (yet); -1: error (errno). */
int rs_anc_urgent_recv(int kfd, uint8_t *v);
/* The same where this end settles on TCP: the mark is passed too when
 * nothing follows it (a close would otherwise reset the connection). */
int rs_anc_urgent_take(int kfd, uint8_t *v);
/* The peer's urgent byte at the head of the stream: 1 with *v (read), 0
 * none there (or one read before: its hole), -1 announced, not arrived
 * (rs_anchor_policy.c). */
int rs_anc_mark_at_head(int kfd, uint8_t *v);
/* Whether an urgent byte waits to be read (not consumed). */
int rs_anc_urgent_peek(int kfd, uint8_t *v);
/* SO_OOBINLINE: a hello or KICK of ours (any: any byte of ours,
 * rs_anc_ours) inline at the mark was removed (1; *v, unless NULL, says
 * which). */
int rs_anc_inline_taken(int kfd, uint8_t *v, int any);
/* What the in-band stream holds: 1 data, 0 EOF, -1 nothing yet, -2 error. */
int rs_anc_inband(int kfd);
/* Skip the urgent bytes' place in the stream (see the .c for why). */
int rs_anc_skip_mark(int kfd);
int rs_anc_msg_send(int kfd, int type, uint16_t port);
/* One small message in-band, whole or not at all (never blocks: the
 * anchor's send buffer is empty when one is sent). */
int rs_anc_send_whole(int kfd, const void *msg, size_t len);
/* 1: the message was read (*port); 0: incomplete; -1: foreign bytes or
 * EOF (nothing read; errno ENOPROTOOPT or 0 for EOF); -2: error. */
int rs_anc_msg_recv(int kfd, int type, uint16_t *port);
/* Peer address of kfd, IPv4-mapped IPv6 turned into IPv4. */
int rs_anc_addr(int kfd, int peer, struct sockaddr_storage *ss, socklen_t *len);
void rs_anc_set_port(struct sockaddr_storage *ss, uint16_t port);
uint16_t rs_anc_get_port(const struct sockaddr_storage *ss);
/* The descriptors an RDMA connection needs are free (before committing). */
#define RS_ANC_FD_HEADROOM 12
int rs_anc_fd_headroom(int kfd);
/* Connection still being set up (nonblocking connect): 1, else 0. */
int rs_anc_tcp_connecting(int kfd);

/* Peers (address and port) that did not answer a hello: bounded table. */
void rs_anc_negcache_add(const struct sockaddr_storage *peer);
int rs_anc_negcache_hit(const struct sockaddr_storage *peer);
/* Peers that answered a hello: their next hello may come late. */
void rs_anc_poscache_add(const struct sockaddr_storage *peer);
int rs_anc_poscache_hit(const struct sockaddr_storage *peer);

/* ---- rs_anchor_lpool.c: idle anchor listeners kept for reuse ------------ */
/* A pooled listener on local's address, set to accept into s (*port), or
 * NULL. No socket lock held. */
struct rsock *rs_anc_lpool_take(const struct sockaddr_storage *local, struct rsock *s,
                                uint16_t *port);
/* A retired anchor listener: pooled when `used` (its one request was
 * accepted: a handshake that failed may still have a late request on its
 * way, which must not reach the next socket), else closed. No socket lock
 * held. */
void rs_anc_lpool_put(struct rsock *l, int used);
void rs_anc_lpool_fork_child(void);
/* ---- rs_anchor_pair.c: both ends in this process ------------------------ */
/* Registry entry and pr_fd mirror of one upgrading socket (in its anchor). */
struct rs_anc_link {
    struct rsock *s;
    struct rs_anc_link *next, *prev;     /* registry: pr_lock */
    int in_reg, paired, pr_in_wait;
    struct sockaddr_storage local, peer;
    socklen_t llen, plen;
    int mfd[4];                          /* mirrored fds: socket lock */
    uint32_t mev[4];
};
void rs_anc_pair_join(struct rsock *s, struct rs_anc_link *l, int kfd);
void rs_anc_pair_sync(struct rsock *s, struct rs_anc_link *l, const int fds[4], const uint32_t evs[4]);
void rs_anc_pair_leave(struct rsock *s, struct rs_anc_link *l);
void rs_anc_pair_close(struct rsock *s, struct rs_anc_link *l);
void rs_anc_pair_run(void);
/* fork child (atfork handler, registered at the first pair). */
void rs_anc_pair_fork_child(void);
static inline int rs_anc_paired(const struct rs_anc_link *l)
{
    return __atomic_load_n(&l->paired, __ATOMIC_RELAXED);
}

/* ---- rs_anchor.c: the module side -------------------------------------- */
/* Runs s's handshake as far as it goes, unless another thread holds s. */
void rs_anchor_drive(struct rsock *s);
/* Lock held: a paired socket's handshake fds into the pair fd. */
void rs_anchor_mirror(struct rsock *s);
int rs_anchor_hello(int kfd, int role);
int rs_anchor_open(int kfd, int role, int flags, nstack_sock **out);
/* ---- rs_anchor_late.c: the long-lived policy -------------------------- */
int rs_anchor_policy(int kfd, int op, int *code);
/* A data call while the switch passes TCP data through: 1 with *out when
 * it was carried on TCP, 0 when the gate takes it (upgrading or after). */
int rs_anchor_late_io(struct rsock *s, const struct iovec *iov, int n, int flags, int how, ssize_t *out);
/* The TCP socket while its in-band data is still the application's (the
 * late phases), else -1 (lock not needed: a hint for FIONREAD). */
int rs_anchor_late_kfd(struct rsock *s);
uint32_t rs_anchor_poll_events(struct rsock *s, uint64_t *gen);
/* Before a call on an anchored socket: 0 when it is upgraded (go on with
 * the engine), else -1: EAGAIN (upgrading, nonblocking), ENOPROTOOPT
 * (stays on TCP), or the handshake's error. Blocking calls wait, bounded. */
#define RS_GATE_WRITE 1   /* the call sends (a passive's send-first timer) */
#define RS_GATE_WAIT  2   /* wait even on a nonblocking socket (shutdown) */
int rs_anchor_gate(struct rsock *s, int flags, int how);
/* rs_anchor_early.c: a nonblocking send the gate refused (EAGAIN) on a
 * passive end while it upgrades: kept whole (at most 4 KiB, the first
 * only) and its length returned, else -1/EAGAIN. Lock not held. */
ssize_t rs_anchor_early_take(struct rsock *s, const struct iovec *iov, int n);
/* Lock held: the kept bytes in-band on TCP (the connection stays there). */
void rs_anchor_early_to_tcp(struct rsock *s, int kfd);
/* Before close (lock not held): a kept reply is not dropped - the
 * handshake ends first (at once when the peer has not committed). */
void rs_anchor_early_close(struct rsock *s);
static inline int rs_anchor_ready(const struct rsock *s);
/* A connection request to an anchored socket's listener comes from the
 * TCP peer (socket lock held). */
int rs_anchor_request_ok(struct rsock *s, const struct sockaddr *from);
/* Liveness of an upgraded socket's anchor (socket lock held). */
void rs_anchor_check(struct rsock *s);
/* From rs_free: the handshake's own resources. */
void rs_anchor_free(struct rsock *s);
/* After a fallback: the errno that kept the connection on TCP (module ABI
 * 1.3 NSTACK_SO_FALLBACK_ERRNO), 0 when the peer runs no framework. */
int rs_anchor_fallback_err(struct rsock *s);

/* Phase value meaning "upgraded" (read without the lock on the data path). */
#define RS_ANC_PHASE_UPGRADED 100
static inline int rs_anchor_ready(const struct rsock *s)
{
    return s->anc == NULL ||
           __atomic_load_n(&s->anc_phase, __ATOMIC_ACQUIRE) == RS_ANC_PHASE_UPGRADED;
}

#endif
