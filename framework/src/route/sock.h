/* sock.h - socket files: creation, the routing decision and the move of an
 * app fd onto a module socket. */
#ifndef SOCK_H
#define SOCK_H

#include <sys/socket.h>

#include "file.h"

/* Tracks a new kernel AF_INET/6 socket at fd (undecided unless `decided`). */
int sock_track_kernel(int fd, int domain, int type, int protocol, int decided);
/* Tracks a new module socket whose wait fd is wfd at app fd `fd`. */
struct file *sock_new_module(int stack, int domain, int type, int protocol,
                             nstack_sock *s, int nonblock);

/* What to do on the module socket once it exists (bind, listen, connect,
 * or nothing); returns 0, or -1 with errno (EINPROGRESS still moves). */
typedef int (*sock_first_op)(struct file *nf, const void *arg);

/*
 * The routing decision for an undecided kernel socket `kf` at fd, keyed by
 * `key` (NULL: listen). If the kernel stack wins, marks kf decided and
 * returns 1 (the caller then does the call on the kernel socket). If a
 * module wins, creates the module socket, replays options, runs op, moves fd
 * onto it and returns 0 with op's result in *op_ret (errno set). Returns -1
 * with errno when the module socket could not be set up (fd unchanged).
 * The caller holds a reference to kf.
 */
int sock_decide(int fd, struct file *kf, const struct sockaddr *key, socklen_t keylen,
                sock_first_op op, const void *arg, int *op_ret);

/* The end of every routing decision that made module file nf for the
 * undecided kernel socket kf at fd: kf is decided, fd and every dup of it
 * now map to nf (an anchored nf keeps the kernel socket at those numbers;
 * otherwise the caller already moved fd and the dups are dup3'ed), and
 * kf's epoll registrations follow. Drops the table's reference to kf.
 * Caller holds kf->lock and a reference to kf. */
void sock_publish(int fd, struct file *kf, struct file *nf);

/* An anchored connection stays on TCP for good (the module reported
 * NSTACK_EV_FALLBACK or ENOPROTOOPT): its registrations of the module's
 * wait fd are replaced by registrations of the TCP fd with the app's
 * events and data, every fd number holding f now holds a kernel file, and
 * the module socket is closed once the last call on it returned. Safe to
 * call more than once and from any thread; the first call does it. */
void sock_fallback(struct file *f);
/* accept() on fd, which the table does not know: when it is a TCP
 * listener this image did not make (inherited across exec: dovecot's
 * login processes get theirs from the master; socket activation), it is
 * tracked from now on, as one made here, so that its connections are
 * routed (and anchored) too. The new file with a reference, or NULL. */
struct file *sock_adopt_listener(int fd);
/* close() of fd, which the table does not know: a later file at that
 * number is asked again. */
void sock_adopt_forget(int fd);

/* The kernel stack carries undecided kf (stack st); caller holds kf->lock. */
void sock_mark_kernel(struct file *kf, int st);
/* Every other fd number holding kf (dups made before a move) gets nf too. */
void sock_move_dups(int fd, struct file *kf, struct file *nf);
/* Replays kf's logged setsockopt calls on module socket nf. */
void sock_replay_opts(struct file *kf, struct file *nf);
/* accept() on listener socket s of stack st: tracks the new module socket
 * at a new app fd (flags: SOCK_NONBLOCK/SOCK_CLOEXEC) and counts it.
 * Returns the fd or -1/errno. */
int sock_accept_module(int st, const struct file *lf, nstack_sock *s,
                       struct sockaddr *addr, socklen_t *len, int flags);

/* Records a setsockopt made before the decision. */
void sock_log_opt(struct file *f, int level, int name, const void *val, socklen_t len);
/* 1 for INADDR_ANY / in6addr_any. */
int sock_addr_is_wild(const struct sockaddr *a, socklen_t len);

#define MCALL(f, op, ...) \
    ({ MOD_ENTER(); __typeof__((f)->mod->op((f)->sock, ##__VA_ARGS__)) _r = (f)->mod->op((f)->sock, ##__VA_ARGS__); \
       int _e = errno; MOD_LEAVE(); errno = _e; _r; })

/* The module's socket for undecided kf, tracked as a new file (not yet in
 * the table, kf's options replayed on it); *wfd: its wait fd. NULL/errno
 * when it cannot be made. */
struct file *open_module_socket(int fd, struct file *kf, int st, int *wfd);

/* The kernel socket kfd has SO_RCVTIMEO: a signal then always ends a
 * blocked accept or receive on it with EINTR (signal(7)). Keeps errno. */
int sock_rcv_timed(int kfd);

/* A decided file of `kind` (FILE_KSOCK, FILE_MLISTEN) with f's domain,
 * type, protocol and O_NONBLOCK, on `stack`, to replace f in the fd
 * table; or NULL/ENOMEM. */
struct file *sock_file_like(int kind, const struct file *f, int stack);

#endif
