/*
 * nstack_module.h - the contract between libnStackAPI.so (the dispatcher)
 * and a protocol-stack module such as libdmm_rsocket.so.
 *
 * This header is public and versioned. A module is a shared library that
 * exports one function, <stack_name>_stack_register(), which hands the
 * dispatcher one `struct nstack_module` describing everything the module
 * can do (in the manner of an nginx module or an rdma-core provider: one
 * structure, an ops table, no other exported state).
 *
 * Compatibility rules
 *   - NSTACK_MODULE_ABI_MAJOR changes when an existing field changes meaning
 *     or position; the dispatcher refuses modules of another major.
 *   - NSTACK_MODULE_ABI_MINOR grows when fields are appended to the end of
 *     a structure; `struct_size` tells the dispatcher how much of the
 *     structure the module knows about, so older modules keep loading.
 *
 * Documented in doc/module-interface.md.
 */
#ifndef NSTACK_MODULE_H
#define NSTACK_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NSTACK_MODULE_ABI_MAJOR 1
#define NSTACK_MODULE_ABI_MINOR 6
#define NSTACK_MODULE_ABI_VERSION \
    ((uint32_t)(NSTACK_MODULE_ABI_MAJOR << 16 | NSTACK_MODULE_ABI_MINOR))

/* A module's socket. Opaque to the dispatcher; the module defines it. */
typedef struct nstack_sock nstack_sock;

/* ---- Capabilities: what a module can carry ------------------------------ */
#define NSTACK_CAP_INET    (1u << 0)   /* AF_INET */
#define NSTACK_CAP_INET6   (1u << 1)   /* AF_INET6 */
#define NSTACK_CAP_STREAM  (1u << 8)   /* SOCK_STREAM */
#define NSTACK_CAP_DGRAM   (1u << 9)   /* SOCK_DGRAM */

/* ---- Log levels (same names as DMM's NSTACK_LOG_ON values) ------------- */
enum nstack_log_level {
    NSTACK_LOG_DBG = 0,
    NSTACK_LOG_INF = 1,
    NSTACK_LOG_WAR = 2,
    NSTACK_LOG_ERR = 3,
    NSTACK_LOG_EMG = 4,
};

/*
 * Services the dispatcher offers a module. Valid from register() until the
 * process exits. All functions are thread-safe and async-signal-unsafe.
 */
struct nstack_fw_api {
    uint32_t abi_version;          /* NSTACK_MODULE_ABI_VERSION of the dispatcher */
    uint32_t struct_size;          /* sizeof(struct nstack_fw_api) of the dispatcher */

    /* Levelled logging; cheap to call when the level is disabled. */
    void (*log)(enum nstack_log_level level, const char *module,
                const char *fmt, ...) __attribute__((format(printf, 3, 4)));
    int (*log_enabled)(enum nstack_log_level level);

    /*
     * The socket's readiness may have changed outside the dispatcher's event
     * path (e.g. the module drained its completion queue inside send() or
     * recv() and so consumed the wake-up that an epoll_wait() in another
     * thread was sleeping on). `cookie` is the value the dispatcher passed to
     * set_cookie(). Cheap when nobody waits: the dispatcher only makes a
     * system call when a thread is blocked on a set containing the socket.
     * May be called from any thread, with module locks held.
     */
    void (*notify)(void *cookie);

    /* Directory of the module_config.json in use ("" when none). */
    const char *config_dir;

    /* ---- ABI 1.3 (present when NSTACK_FW_HAS(fw, publish_setting)) -----
     * publish_setting(): one of the module's tunables, its effective value
     * and its default (both as text), and where the value came from (e.g.
     * "environment RS_SQ_SIZE", "file /etc/rdma/rsocket/sqsize_default").
     * The dispatcher keeps those whose value differs from the default and
     * shows them in nstack-stat and the exit report (NSTACK_STATS=1), so a
     * user sees what was changed (include/nstack/nstack_stats.h,
     * settings[]). Slow path: call from init(). Once per key; a key
     * published again is ignored. Returns 0 (kept or equal to the
     * default), or -1 with errno EINVAL (a NULL or empty argument) or
     * ENOSPC (the table is full). */
    int (*publish_setting)(const char *module, const char *key, const char *value,
                           const char *dflt, const char *source);

    /* ---- ABI 1.4 (present when NSTACK_FW_HAS(fw, intr_restarts)) -------
     * A blocking call the module implements with a sleep of its own (a
     * poll() on its wait fd) must end, when a signal handler interrupts
     * that sleep, as the kernel's call would (signal(7)): restarted when
     * the handler of the signal has SA_RESTART, EINTR when it has not or
     * the call has a socket timeout (SO_RCVTIMEO/SO_SNDTIMEO). Only the
     * dispatcher can know which signal it was (it interposes the handler
     * installers; doc/module-interface.md, "Signals").
     * intr_mark(): this thread's mark; take it right before the sleep.
     * No system call, async-signal-safe, never fails.
     * intr_restarts(mark, timed): after the sleep failed with EINTR, 1 to
     * restart the call (every signal delivered to this thread since `mark`
     * has SA_RESTART and timed is 0), 0 to fail it with EINTR. timed: the
     * call has a socket timeout for its direction. A module without them
     * (an older dispatcher, or none) decides with nstack_intr_scan()
     * (include/nstack/nstack_sigrestart.h). */
    uint64_t (*intr_mark)(void);
    int (*intr_restarts)(uint64_t mark, int timed);
};

/* Whether the dispatcher's fw_api has `field` (fields are only appended). */
#define NSTACK_FW_HAS(fw, field) \
    ((fw)->struct_size >= offsetof(struct nstack_fw_api, field) + sizeof((fw)->field) && \
     (fw)->field != NULL)

/* Flags for nstack_module.socket() and accept() (SOCK_NONBLOCK/CLOEXEC). */

/*
 * One structure describes a module. All socket operations follow the POSIX
 * convention: on failure they return -1 and set errno (never a positive
 * errno). A NULL operation means "not supported": the dispatcher returns
 * EOPNOTSUPP to the application (for setsockopt/getsockopt: ENOPROTOOPT).
 *
 * Threading: the dispatcher may call any operation on different sockets
 * concurrently, and send-side and receive-side operations on the same
 * socket concurrently (one thread sending while another receives), as the
 * kernel allows. close() is called once, after every other call on the
 * socket has returned.
 *
 * Readiness ("epoll event hooks"): every module socket owns a pollable
 * kernel file descriptor, its *wait fd*. The application-visible fd of a
 * module socket is a dup() of the wait fd, so the kernel can wait on kernel
 * sockets and module sockets in one poll()/epoll_wait() with no helper
 * thread. The wait fd becoming readable (POLLIN) means "the module may have
 * work to do or readiness may have changed" - not that the socket is
 * readable. The dispatcher then calls poll_events(), which does that work
 * without blocking, re-arms the wait fd, and returns the socket's real
 * readiness. Contract of poll_events():
 *   1. never blocks;
 *   2. on return, any later change of readiness caused by the device or the
 *      peer makes the wait fd readable (the module re-armed before
 *      computing the mask, so no edge is lost between the two);
 *   3. returns the current mask: EPOLLIN (data, EOF, or a pending
 *      connection on a listener), EPOLLOUT (send space; a finished
 *      nonblocking connect), EPOLLRDHUP, EPOLLHUP, EPOLLERR;
 *   4. writes to *gen a counter that grows whenever a new event happens
 *      (data arrived, space freed, connection arrived, state changed); the
 *      dispatcher uses it for EPOLLET and EPOLLONESHOT semantics.
 */
struct nstack_module {
    uint32_t abi_version;          /* NSTACK_MODULE_ABI_VERSION */
    uint32_t struct_size;          /* sizeof(struct nstack_module) */
    const char *name;              /* stack_name, e.g. "rsocket" */
    uint32_t caps;                 /* NSTACK_CAP_* */

    /* ---- lifetime ------------------------------------------------------ */
    /* Called once before the first socket; 0 or -1/errno (module disabled). */
    int (*init)(const struct nstack_fw_api *fw);
    /* Called at process exit; may be NULL. */
    void (*fini)(void);

    /* ---- fork (all may be NULL) ----------------------------------------
     * Run by the dispatcher's fork() wrapper: fork_prepare in the parent
     * before the fork (take module locks), then fork_parent in the parent or
     * fork_child in the child (release/reset them). In the child the
     * module's existing sockets may be unusable (RDMA resources are not
     * inherited); their operations must then fail with a clear errno
     * (e.g. EOWNERDEAD or ENOTCONN), never hang or corrupt memory. */
    void (*fork_prepare)(void);
    void (*fork_parent)(void);
    void (*fork_child)(void);

    /* ---- sockets -------------------------------------------------------
     * socket(): type may carry SOCK_NONBLOCK/SOCK_CLOEXEC. On success stores
     * the socket in *out and returns its wait fd (>= 0), owned by the module
     * (closed by close()). */
    int (*socket)(int domain, int type, int protocol, nstack_sock **out);
    /* The dispatcher's cookie for fw->notify(); called right after socket()
     * and accept(). */
    void (*set_cookie)(nstack_sock *s, void *cookie);

    int (*bind)(nstack_sock *s, const struct sockaddr *addr, socklen_t len);
    int (*listen)(nstack_sock *s, int backlog);
    /* accept(): flags are accept4()'s. On success stores the new socket in
     * *out and returns its wait fd. */
    int (*accept)(nstack_sock *s, struct sockaddr *addr, socklen_t *len,
                  int flags, nstack_sock **out);
    /* connect(): a nonblocking socket returns -1/EINPROGRESS; completion is
     * reported as EPOLLOUT and the result read with SO_ERROR. */
    int (*connect)(nstack_sock *s, const struct sockaddr *addr, socklen_t len);
    int (*shutdown)(nstack_sock *s, int how);
    /* close(): release everything; a peer that is gone must not make this
     * hang (bounded by the module's linger timeout). */
    int (*close)(nstack_sock *s);

    /* Data path. The vector forms must honour every iovec. flags are the
     * MSG_* flags of the call (MSG_DONTWAIT, MSG_PEEK, MSG_WAITALL,
     * MSG_NOSIGNAL, ...). send/recv are the single-buffer fast path. */
    ssize_t (*send)(nstack_sock *s, const void *buf, size_t len, int flags);
    ssize_t (*recv)(nstack_sock *s, void *buf, size_t len, int flags);
    ssize_t (*sendmsg)(nstack_sock *s, const struct msghdr *msg, int flags);
    ssize_t (*recvmsg)(nstack_sock *s, struct msghdr *msg, int flags);

    int (*getsockname)(nstack_sock *s, struct sockaddr *addr, socklen_t *len);
    int (*getpeername)(nstack_sock *s, struct sockaddr *addr, socklen_t *len);
    int (*getsockopt)(nstack_sock *s, int level, int name, void *val,
                      socklen_t *len);
    int (*setsockopt)(nstack_sock *s, int level, int name, const void *val,
                      socklen_t len);
    /* O_NONBLOCK on/off (fcntl F_SETFL, ioctl FIONBIO). */
    int (*set_nonblock)(nstack_sock *s, int on);
    /* ioctl(); the dispatcher passes FIONREAD (and others it does not know)
     * here. */
    int (*ioctl)(nstack_sock *s, unsigned long request, void *arg);

    /* ---- readiness (see the contract above) --------------------------- */
    uint32_t (*poll_events)(nstack_sock *s, uint64_t *gen);

    /* ---- ABI 1.1: adopt(), retired --------------------------------------
     * The TCP-first fork support that called it (NSTACK_FORK_SUPPORT) was
     * retired: TCP-anchored connections (ABI 1.2, below) replace it. The
     * dispatcher never calls adopt() any more; the slot stays so the
     * structure's layout is unchanged. Modules leave it NULL. */
    int (*adopt)(int kfd, int role, int flags, nstack_sock **out);

    /* ---- ABI 1.2 (optional): TCP-anchored connections -------------------
     * (doc/fork.md, doc/rsocket-framework.md.) A stream socket routed to a
     * module that implements anchor() stays a kernel TCP socket for its
     * whole life: the app fd is that socket, across fork, exec, dup and
     * SCM_RIGHTS. The module carries the data beside it once both ends have
     * agreed over TCP, without a foreign byte ever reaching a peer that
     * does not run the framework.
     *
     * anchor_hello(): called by the dispatcher as soon as the TCP
     * connection is established in this process (accept() returned it, or
     * a blocking connect() succeeded): announces the framework to the peer
     * out of band (e.g. one TCP urgent byte, which a receiver that does not
     * ask for urgent data never sees in its stream). Never blocks, creates
     * no resources. 0 when sent, -1/errno when not (anchor() then gets no
     * NSTACK_ANCHOR_HELLO_SENT and sends it itself).
     *
     * anchor(): called at the connection's first use in the process that
     * uses it (a data call, an epoll_ctl/poll/select on it, SO_ERROR, ...),
     * never before; `kfd` is the connected (or still connecting) TCP socket,
     * owned by the dispatcher (the module may read and write it, add it to
     * its wait fd, but never closes it). role: NSTACK_ADOPT_ACTIVE or
     * NSTACK_ADOPT_PASSIVE; flags: NSTACK_ADOPT_NONBLOCK,
     * NSTACK_ANCHOR_HELLO_SENT. Never blocks. Stores a module socket in
     * *out and returns its wait fd, as socket() does; the socket is
     * "upgrading" until the handshake ends:
     *   - send/recv on it: nonblocking -1/EAGAIN while upgrading; blocking:
     *     wait (bounded) for the handshake, then carry the call;
     *   - poll_events(): advances the handshake; reports no readiness while
     *     upgrading (wait fd fires on progress), the socket's real
     *     readiness once upgraded, and NSTACK_EV_FALLBACK when the
     *     connection will stay on TCP;
     *   - NSTACK_EV_FALLBACK / errno ENOPROTOOPT from any call: the peer
     *     does not run the framework (or the upgrade was declined) and no
     *     byte was read from or written into the TCP stream in-band: the
     *     dispatcher closes the module socket and carries the connection on
     *     `kfd` for good (one function: sock_fallback). Before it does,
     *     it asks getsockopt(NSTACK_SOL_MODULE, NSTACK_SO_FALLBACK_ERRNO)
     *     for the reason (below) and shows it as the connection's.
     * Once upgraded, no application byte crosses the TCP connection; peer
     * death seen on it (FIN/RST) is reported as peer death of the module
     * socket.
     * Either may be NULL: anchor() NULL means the module has no anchored
     * mode (the dispatcher then gives its sockets direct module sockets). */
    int (*anchor_hello)(int kfd, int role);
    int (*anchor)(int kfd, int role, int flags, nstack_sock **out);

    /* anchor_release() (optional, ABI 1.2): return an upgraded anchored
     * connection to TCP, for good, so that a process without this one's
     * module resources (a fork child, an exec'd image) carries it with
     * kernel semantics. Called by the dispatcher's fork() and exec*()
     * wrappers in the process that forks/execs, before it does, for every
     * anchored connection it holds; waits at most timeout_ms for the
     * peer's module to agree. Returns:
     *    0  the connection is on TCP again and nothing is left over: the
     *       dispatcher falls back at once (sock_fallback);
     *    1  on TCP again, but bytes the peer's module sent before it
     *       agreed were not read yet: the module keeps them in memory
     *       shared with this process's future fork children and serves
     *       reads from it first (consumed once across the processes),
     *       sends go to kfd; once it is empty every call says ENOPROTOOPT
     *       and poll_events NSTACK_EV_FALLBACK (the usual fallback);
     *   -1  not released (errno): ETIMEDOUT, the peer did not answer (the
     *       module finishes the release here when it does; a fork child
     *       cannot use the connection), ENOTCONN/EALREADY/EOWNERDEAD
     *       (not upgraded, being released, another process's socket).
     * Its peer's module sees the release on kfd and follows on its own
     * (no call of its dispatcher is needed). timeout_ms 0 starts nothing:
     * it only asks whether the connection was released already (0 or 1;
     * the dispatcher's fallback uses it to tell a release from a peer
     * without the framework). */
    int (*anchor_release)(nstack_sock *s, int timeout_ms);

    /* ---- ABI 1.3 (optional): the long-lived policy ----------------------
     * (doc/rsocket-framework.md, "Long-lived policy".) A connection whose
     * route says "upgrade_after_bytes" starts as a plain kernel TCP socket
     * (the dispatcher's fast path) and moves to the module once both
     * directions together carried the agreed number of bytes, 2^(code-1).
     * anchor_policy(kfd, op, &code), never blocking:
     *   NSTACK_LL_SEND   (active, once connected): announce the policy
     *                    `*code` out of band; 0 sent, -1/errno not.
     *   NSTACK_LL_ANSWER (passive): the active's announcement, if any:
     *                    1 it was a long-lived one, answered, *code = the
     *                    agreed code (the larger of both); 2 the active
     *                    upgrades first (use anchor_hello/anchor); 0
     *                    nothing yet; -1 the peer does not run the
     *                    framework (in-band data or EOF first).
     *   NSTACK_LL_PEER   (active): the passive's answer: 1 with *code, 0
     *                    nothing yet, -1 none will come (in-band data, EOF).
     * Then anchor() with NSTACK_ANCHOR_LATE on the connection that crossed
     * the threshold, in either end: the module carries on TCP what still
     * belongs there (data calls pass through to kfd) and switches each
     * direction at a clean point of the stream. */
    int (*anchor_policy)(int kfd, int op, int *code);

    /* ---- ABI 1.5 (optional): a re-check without a wake-up ---------------
     * poll_recheck(): poll_events() for a socket whose wait fd the
     * dispatcher has not seen readable since its last poll_events() on
     * it: a level-triggered registration that was ready, looked at again
     * after the application's own calls, or a new or modified one. Same
     * contract as poll_events() except rule 2's draining: the module may
     * leave its wait fd's sources unasked (a source with work keeps the
     * wait fd readable, the dispatcher's next kernel wait sees it and
     * calls poll_events()), so a re-check can cost no system call. NULL:
     * the dispatcher calls poll_events() instead. */
    uint32_t (*poll_recheck)(nstack_sock *s, uint64_t *gen);

    /* ---- ABI 1.5 (optional, both or neither): wake-ups armed lazily ----
     * poll_lazy(s, gen, fired): poll_events() (fired) or poll_recheck(),
     * but the module may leave the device's wake-up for new data disarmed
     * (e.g. a completion queue whose event it took) and says so with
     * NSTACK_EV_UNARMED in the mask. The dispatcher then calls arm(s)
     * before any of its threads sleeps in the set, so that data arriving
     * while the application is busy costs no wake-up. Called only for a
     * socket with one registration, in one epoll set that is not watched
     * by another set or poll, while no thread waits in poll/select, and
     * (ABI 1.6) by poll/select for a socket in no epoll set, each of whose
     * threads arms before its own sleep; the module itself arms before
     * its own blocking waits and in every other pass. arm(s): re-arm; 1 when the look after arming found news (the
     * dispatcher then looks at the socket before sleeping), else 0. */
    uint32_t (*poll_lazy)(nstack_sock *s, uint64_t *gen, int fired);
    int (*arm)(nstack_sock *s);

    /* ---- ABI 1.5 (optional): kfd is the application's own number -------
     * A dispatcher that sees anchor_kfd() hands anchor() the application's
     * fd itself as kfd instead of a dup of it (one descriptor less per
     * connection). Before the application gives that file a second number
     * (dup, dup2, dup3, F_DUPFD), after which it may close the first, the
     * dispatcher makes its own dup and calls anchor_kfd(s, newkfd): from
     * then on the module uses newkfd wherever it used kfd (its wait fd's
     * registrations included). The old number stays open until the call
     * returns. 0 on success, -1/errno (the dispatcher then fails the
     * application's dup with that errno and keeps the old number). NULL:
     * the dispatcher dups kfd at anchor() as before ABI 1.5. */
    int (*anchor_kfd)(nstack_sock *s, int kfd);

    /* ---- ABI 1.6 (optional): busy polling before a sleep ----------------
     * busy_poll_ns(s): how long (ns) a poll/select/epoll wait that found
     * nothing ready may keep looking at s - poll_recheck(), or poll_lazy()
     * where allowed - before it sleeps in the kernel, as the kernel's
     * net.core.busy_poll does for a NIC's queue. Only worth it where such
     * a look costs no system call (a CQ polled in user space) and an
     * answer often comes within that time (request/reply): catching it
     * spares the sleep and the wake-up. 0: sleep at once (a socket whose
     * look is not cheap). The dispatcher stops spinning for a thread
     * whose spins keep finding nothing. NULL: never. */
    uint64_t (*busy_poll_ns)(nstack_sock *s);
};

/* getsockopt() level and option (ABI 1.3, optional): after an anchored
 * socket said it stays on TCP (NSTACK_EV_FALLBACK / ENOPROTOOPT), the int
 * errno behind it, for nstack-stat's reason: 0 the peer does not run the
 * framework (or declined), EREMOTEIO the peer's module failed to make its
 * side, anything else this module's failure (ENOMEM: memory registration
 * under RLIMIT_MEMLOCK, EMFILE, ENODEV, ...). A module without it fails
 * the call (ENOPROTOOPT) and the dispatcher assumes 0. */
#define NSTACK_SOL_MODULE         0x6e73       /* no kernel SOL_* uses it */
#define NSTACK_SO_FALLBACK_ERRNO  1
/* anchor_policy() ops (ABI 1.3). */
#define NSTACK_LL_SEND            1
#define NSTACK_LL_ANSWER          2
#define NSTACK_LL_PEER            3
/* anchor() flag (ABI 1.3): the long-lived policy's switch, after data
 * moved on TCP (the announcements were exchanged by anchor_policy). */
#define NSTACK_ANCHOR_LATE        (1 << 3)
/* with NSTACK_ANCHOR_LATE (active): the passive's answer was not seen yet;
 * the module passes the stream through until it comes (or in-band data
 * first: the connection stays on TCP). */
#define NSTACK_ANCHOR_LL_WAIT     (1 << 4)
/* with NSTACK_ANCHOR_LL_WAIT (ABI 1.3, optional; 0: not told): the
 * active's own policy code, whose limit it crossed. An answer naming a
 * larger code means the passive counts to a later point than this end's
 * switch would mark: the module keeps the connection on TCP instead. */
#define NSTACK_ANCHOR_LL_CODE(c)     (((c) & 63) << 8)
#define NSTACK_ANCHOR_LL_CODE_OF(fl) (((fl) >> 8) & 63)

/* poll_events() bit (ABI 1.2): an anchored socket stays on its TCP anchor. */
#define NSTACK_EV_FALLBACK        (1u << 24)   /* no epoll flag uses bit 24 */
/* poll_lazy() bit (ABI 1.5): the wake-up was left disarmed; call arm()
 * before sleeping on the socket. */
#define NSTACK_EV_UNARMED         (1u << 25)
/* anchor() flag (ABI 1.2): anchor_hello() already went out for this kfd. */
#define NSTACK_ANCHOR_HELLO_SENT  (1 << 2)
/* anchor_hello() role flag (optional, ABI 1.3): this end will never
 * anchor the connection - a candidate handed to another process in
 * SCM_RIGHTS before its first use here, which the receiver knows only as
 * a TCP socket. The module tells the peer's module at once that the
 * connection stays on TCP (rsocket: OFFER port 0 to an active that
 * committed, else an urgent "stay on TCP" byte), so that it does not wait
 * for a handshake that never comes; never blocks, creates nothing. With
 * NSTACK_ANCHOR_HELLO_SENT when this end's hello went out. A module that
 * does not know the flag fails with EINVAL (the peer then gives up on its
 * own deadlines, as before). */
#define NSTACK_ANCHOR_DECLINE     (1 << 8)
/* anchor_hello() flag alone (optional, ABI 1.5): kfd stays on TCP for
 * good and poll() reports urgent data on it. When that urgent byte is one
 * of the module's own handshake (a hello or "stay on TCP" of the peer's
 * module that arrived after this end gave up waiting), the module takes
 * it out of the socket - the application, which never asked for it, would
 * see POLLPRI (curl takes that for an error) - and returns 0; someone
 * else's urgent data is left alone: -1/EAGAIN. Never blocks, creates
 * nothing. A module that does not know the flag fails with EINVAL. */
#define NSTACK_ANCHOR_STALE       (1 << 9)

/* Roles of anchor_hello()/anchor() (named for ABI 1.1's adopt()), and
 * anchor() flags. */
#define NSTACK_ADOPT_ACTIVE       1
#define NSTACK_ADOPT_PASSIVE      2
#define NSTACK_ADOPT_NONBLOCK     (1 << 0)  /* the new socket is nonblocking */
#define NSTACK_ADOPT_WRITE_FIRST  (1 << 1)  /* retired with adopt(): never set; the bit stays reserved */

/*
 * The one symbol a module library exports, named <stack_name>_stack_register
 * (e.g. rsocket_stack_register). Returns 0 and stores a pointer to a
 * structure with static lifetime in *out, or -1 with errno set.
 */
typedef int (*nstack_stack_register_fn)(const struct nstack_fw_api *fw,
                                        const struct nstack_module **out);

#ifdef __cplusplus
}
#endif
#endif /* NSTACK_MODULE_H */
