/*
 * shadow.h - internals of the "shadow" test stack module.
 *
 * A shadow socket wraps a real kernel TCP socket (kfd) that only the module
 * sees. Its wait fd is a private epoll fd (wfd) holding kfd edge-triggered
 * for every event, so "wait fd readable" means "something happened on kfd".
 * poll_events() drains wfd (re-arm), then asks the kernel for the true
 * mask with a zero-timeout poll, and bumps gen when it drained an event.
 *
 * Internal fds never go through libc's socket entry points: every system
 * call is made with syscall(2) (see shadow_sys.h), because libc's socket(),
 * connect(), ... are interposed by libnStackAPI.so and would route our own
 * private sockets back into the dispatcher.
 */
#ifndef SHADOW_H
#define SHADOW_H

#include <stdatomic.h>
#include <stdint.h>

#include "nstack/nstack_module.h"

struct nstack_sock {
    int kfd;                    /* the real kernel TCP socket */
    int wfd;                    /* epoll fd containing kfd: the wait fd */
    void *cookie;               /* dispatcher's cookie (set_cookie) */
    _Atomic uint64_t gen;       /* grows on every drained event */
    int local_shifted;          /* local port is in the shadow port space */
    int peer_shifted;           /* peer port is in the shadow port space */
    /* Anchored (shadow_anchor.c): kfd is the dispatcher's (never closed
     * here); tfd is the agreement's deadline timer, in wfd. The fields
     * below are used by one thread at a time in the tests that drive them
     * (the module is a test device, not a thread-safe stack). */
    int anchor;
    int astate;                 /* SHADOW_AS_* */
    int hello_out, peer_hello;
    int nonblock;
    int tfd;
};

enum { SHADOW_AS_UPGRADING = 1, SHADOW_AS_UP, SHADOW_AS_FALLBACK };
enum { SHADOW_ANCHOR_ON = 0, SHADOW_ANCHOR_OFF, SHADOW_ANCHOR_DECLINE, SHADOW_ANCHOR_FALLBACK };
/* SHADOW_ANCHOR, read once at registration (shadow_anchor.c). */
extern int shadow_anchor_mode;
void shadow_anchor_config(void);
int shadow_anchor_hello(int kfd, int role);
int shadow_anchor(int kfd, int role, int flags, nstack_sock **out);
/* Advances the agreement without blocking. */
void shadow_anchor_step(nstack_sock *s);
/* Before a data call on an anchored socket: 0 once upgraded; -1 with
 * EAGAIN (nonblocking, still upgrading) or ENOPROTOOPT (stays on TCP). */
int shadow_anchor_gate(nstack_sock *s, int flags);
/* The readiness an anchored socket reports, from the kernel's mask of kfd. */
uint32_t shadow_anchor_events(nstack_sock *s, uint32_t mask);
/* FIONREAD without the peer's unread urgent byte. */
int shadow_anchor_inq(nstack_sock *s, int *avail);

/* SHADOW_PORT_OFFSET=N (test knob, read at init): the shadow gets a port
 * space of its own, as a real stack (RDMA CM) has - bound and connected
 * ports are moved by N on the private kernel socket and moved back in the
 * names it reports. A shadow client then reaches only shadow listeners,
 * and a wildcard kernel listener and a shadow listener can share a port
 * number. 0 (unset): ports are used as given. */
extern int shadow_port_offset;

/* The dispatcher's services, set once by register()/init(). */
extern const struct nstack_fw_api *shadow_fw;

/* Operations (shadow_ops.c), wired into the module table by shadow_module.c. */
int shadow_socket(int domain, int type, int protocol, nstack_sock **out);
void shadow_set_cookie(nstack_sock *s, void *cookie);
int shadow_bind(nstack_sock *s, const struct sockaddr *addr, socklen_t len);
int shadow_listen(nstack_sock *s, int backlog);
int shadow_accept(nstack_sock *s, struct sockaddr *addr, socklen_t *len, int flags,
                  nstack_sock **out);
int shadow_connect(nstack_sock *s, const struct sockaddr *addr, socklen_t len);
int shadow_shutdown(nstack_sock *s, int how);
int shadow_close(nstack_sock *s);
ssize_t shadow_send(nstack_sock *s, const void *buf, size_t len, int flags);
ssize_t shadow_recv(nstack_sock *s, void *buf, size_t len, int flags);
ssize_t shadow_sendmsg(nstack_sock *s, const struct msghdr *msg, int flags);
ssize_t shadow_recvmsg(nstack_sock *s, struct msghdr *msg, int flags);
int shadow_getsockname(nstack_sock *s, struct sockaddr *addr, socklen_t *len);
int shadow_getpeername(nstack_sock *s, struct sockaddr *addr, socklen_t *len);
int shadow_getsockopt(nstack_sock *s, int level, int name, void *val, socklen_t *len);
int shadow_setsockopt(nstack_sock *s, int level, int name, const void *val, socklen_t len);
int shadow_set_nonblock(nstack_sock *s, int on);
int shadow_ioctl(nstack_sock *s, unsigned long request, void *arg);
uint32_t shadow_poll_events(nstack_sock *s, uint64_t *gen);

/* Counters (shadow_stats.c): lock-free, relaxed atomics; reset in a fork child. */
void shadow_stats_reset(void);
void shadow_count_socket(void);
void shadow_count_sent(size_t n);
void shadow_count_received(size_t n);

#endif /* SHADOW_H */
