/* wrap_io.c - interposed data-path calls. Kernel sockets: libc plus a
 * counter add. Module sockets: the module's send/recv (one buffer) or
 * sendmsg/recvmsg (vectors, addresses). Nothing here allocates or locks. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/sendfile.h>

#include "anchor.h"
#include "anchor_urgent.h"
#include "anchor_ll.h"
#include "epoll_agg.h"
#include "fd_table.h"
#include "fw_log.h"
#include "file.h"
#include "fw.h"
#include "libc_api.h"
#include "conn_stats.h"
#include "sock.h"
#include "stats.h"
#include "timeutil.h"

#define EXPORT __attribute__((visibility("default")))

extern void __chk_fail(void) __attribute__((noreturn));

static inline void count_io(struct file *f, ssize_t r, enum nstat_counter c)
{
    if (r > 0) {
        stats_add(__atomic_load_n(&f->stack, __ATOMIC_RELAXED), c, (uint64_t)r);
        conn_stats_io(f, c == NSTAT_TX_BYTES, (uint64_t)r);
    }
}

/* The kernel-socket fast path: one table load, then the libc call and one
 * relaxed counter add - no reference count, no lock, no allocation. Files
 * are never unmapped and a decided kernel socket's kind and stack never
 * change while it is live, so reading them from a file being closed on
 * another thread is safe (at worst those bytes count to the stack that
 * socket had). Module and undecided sockets take the referenced path. */
/* What a vector send may move (the TCP phase's in-flight count): only
 * asked in that phase. Bad vectors count 0 (the kernel fails the call). */
static size_t iov_bytes(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; iov != NULL && i < n && i < IOV_MAX; i++)
        t += iov[i].iov_len;
    return t;
}

static size_t msg_bytes(const struct msghdr *msg)
{
    return msg == NULL || msg->msg_iovlen > IOV_MAX ? 0 : iov_bytes(msg->msg_iov, (int)msg->msg_iovlen);
}

/* The kernel fast path of a data call. txlen: what a send may move (only
 * evaluated for a send in the long-lived policy's TCP phase); for a read,
 * its flags (0 for read/readv), looked at only with SO_OOBINLINE after a
 * handshake that stayed on TCP (anchor_urgent.c). */
#define KERNEL_FAST_PATH(fd, ctr, txlen, call)                                   \
    do {                                                                         \
        struct file *kf_ = fd_table_get(fd);                                     \
        if (kf_ == NULL || t_in_module)                                          \
            return call;                                                         \
        int ll_;                                                                 \
        size_t txl_ = 0;                                                         \
        if (__atomic_load_n(&kf_->kind, __ATOMIC_RELAXED) == FILE_KSOCK &&        \
            __atomic_load_n(&kf_->decided, __ATOMIC_ACQUIRE) &&                   \
            !anchor_ll_gate(fd, kf_, ctr == NSTAT_TX_BYTES) &&                    \
            (!(ll_ = LL_PHASE(kf_)) ||                                           \
             (ctr == NSTAT_TX_BYTES && anchor_ll_enter_tx(kf_, txl_ = (txlen))))) { \
            int st_ = __atomic_load_n(&kf_->stack, __ATOMIC_RELAXED);             \
            if (!URGENT_INLINE_OK(fd, kf_, ctr, txlen))                          \
                return -1;                                                       \
            ssize_t r_ = call;                                                   \
            if (ll_)                                                             \
                anchor_ll_leave_tx(kf_, txl_, r_);   /* counts r_ */              \
            if (r_ > 0) {                                                        \
                stats_add(st_, ctr, (uint64_t)r_);                               \
                conn_stats_io(kf_, ctr == NSTAT_TX_BYTES, (uint64_t)r_);         \
                anchor_ll_count(fd, kf_, ll_ ? 0 : r_);                          \
            }                                                                    \
            return r_;                                                           \
        }                                                                        \
    } while (0)

/* A long-lived connection in its TCP phase (anchor_ll.c): its reads take
 * the referenced path (anchor_ll_recvmsg, through the module_call of the
 * wrapper: m_recv/m_recvmsg see the kernel file), its writes the fast
 * path inside anchor_ll_enter/leave. One load for every kernel socket. */
#define LL_PHASE(f) __builtin_expect(__atomic_load_n(&(f)->ll_limit, __ATOMIC_RELAXED) != 0, 0)
static __thread int t_ll_fd;

/* The referenced path of a kernel file while its switch runs: the switch
 * ends first (it holds the lock), then fd's file now. (The long-lived
 * policy's fields - ll_limit, ll_gate, ll_switching - are only ever set on
 * kernel files, anchor_ll.c: no kind test is needed before them.) */
static struct file *ll_settle(int fd, struct file *f)
{
    if (!__atomic_load_n(&f->ll_switching, __ATOMIC_SEQ_CST))
        return f;
    pthread_mutex_lock(&f->lock);
    pthread_mutex_unlock(&f->lock);
    struct file *n = file_get(fd);
    if (n == NULL)
        return f;
    file_put(f);
    return n;
}

/* A write on a kernel file in its TCP phase that takes the referenced
 * path runs inside anchor_ll_enter_tx/leave_tx too (*held): a switch never
 * starts while it is in the kernel, and one that runs is waited for (the
 * write then goes where fd is now). */
static struct file *ll_tx_begin(int fd, struct file *f, size_t len, int *held)
{
    *held = 0;
    for (int i = 0; i < 64; i++) {
        if (!LL_PHASE(f))
            return f;
        if (anchor_ll_enter_tx(f, len)) {
            *held = 1;
            return f;
        }
        f = ll_settle(fd, f);
    }
    return f;
}

/* A TCP-anchored candidate is anchored at its first data call in the
 * process that makes it (anchor_resolve never fails: on any problem the
 * connection stays on TCP and the call runs there). */
#define ANCHOR_RESOLVE(fd, f)                                                    \
    do {                                                                         \
        if (anchor_pending(f))                                                   \
            (f) = anchor_resolve((fd), (f));                                     \
    } while (0)

/* An anchored connection whose module said "stay on TCP" (ENOPROTOOPT:
 * nothing was read or written in-band): the fallback runs, and the call is
 * made again on the TCP socket, which the app fd is. Off the hot path:
 * only a failed module call looks. (`anchored` is only ever set on module
 * sockets.) */
static inline int anchor_declined(const struct file *f, ssize_t r)
{
    return __builtin_expect(r < 0, 0) && f->anchored && errno == ENOPROTOOPT;
}

/* The kernel file that now holds fd after a fallback (the caller's
 * reference moves to it; f itself when fd was closed meanwhile). */
static struct file *fall_back(int fd, struct file *f)
{
    sock_fallback(f);
    struct file *k = file_get(fd);
    if (k == NULL)
        return f;
    file_put(f);
    return k;
}

/* A read of a kernel file that stayed on TCP after a handshake, with
 * SO_OOBINLINE: a late urgent byte of the peer's module is taken out of
 * the stream first (anchor_urgent.c). False when the read must return -1. */
#define URGENT_INLINE_OK(fd, f, ctr, flags)                                      \
    (ctr != NSTAT_RX_BYTES ||                                                    \
     !__builtin_expect(__atomic_load_n(&(f)->urgent_inline, __ATOMIC_RELAXED), 0) || \
     FW_CONFINED() || anchor_inline_read_wait((fd), (f), (int)(flags) & MSG_DONTWAIT) == 0)

#define ANCHOR_RETRY(fd, f, r, libc_call)                                        \
    do {                                                                         \
        if (anchor_declined((f), (r))) {                                         \
            (f) = fall_back((fd), (f));                                          \
            (r) = (libc_call);                                                   \
        }                                                                        \
    } while (0)

/* One line per process when a direct module socket (not anchored) was
 * used in a fork child: its RDMA resources stayed with the parent. */
static void log_inherited(const struct file *f)
{
    static _Atomic int said;
    if (__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED) == 0)
        LOG_WAR("%s: a socket inherited across fork() is not usable in the child (EOWNERDEAD); "
                "TCP-anchored connections (the default; \"anchor\" not false in rd_config.json, "
                "NSTACK_ANCHOR not 0) survive fork", f->mod ? f->mod->name : "module");
}

/* Off the hot path: only a failed call looks at errno. */
static inline ssize_t note_inherited(struct file *f, ssize_t r)
{
    if (__builtin_expect(r < 0, 0) && errno == EOWNERDEAD) {
        int err = errno;
        log_inherited(f);
        errno = err;
    }
    return r;
}

/* ---- module helpers ---- */

/* Rare: only for sockets registered in an epoll set that is itself
 * watched; one relaxed load otherwise. */
static inline void recheck_nested(struct file *f)
{
    if (__builtin_expect(__atomic_load_n(&f->in_nested_set, __ATOMIC_RELAXED), 0)) {
        int err = errno;
        ev_recheck_nested(f);
        errno = err;
    }
}

static ssize_t m_send(struct file *f, const void *buf, size_t len, int flags)
{
    return note_inherited(f, MCALL(f, send, buf, len, flags));
}

/* A file without a module gets here only for a read in the long-lived
 * policy's TCP phase (DATA_CALL's llrx_): anchor_ll_recvmsg looks for the
 * peer's mark first. */
static inline int ll_read(const struct file *f)
{
    return __builtin_expect(f->mod == NULL, 0);
}

static ssize_t m_recv(struct file *f, void *buf, size_t len, int flags)
{
    if (ll_read(f)) {
        struct iovec v = { buf, len };
        struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
        return anchor_ll_recvmsg(t_ll_fd, f, &m, flags);
    }
    ssize_t r = note_inherited(f, MCALL(f, recv, buf, len, flags));
    recheck_nested(f);
    return r;
}

static ssize_t m_sendmsg(struct file *f, const struct msghdr *msg, int flags)
{
    return note_inherited(f, MCALL(f, sendmsg, msg, flags));
}

static ssize_t m_recvmsg(struct file *f, struct msghdr *msg, int flags)
{
    if (ll_read(f))
        return anchor_ll_recvmsg(t_ll_fd, f, msg, flags);
    ssize_t r = note_inherited(f, MCALL(f, recvmsg, msg, flags));
    recheck_nested(f);
    return r;
}

/* An unconnected datagram socket learns its stack from its first
 * destination. Returns the (possibly new) file to use, with a reference. */
static struct file *route_by_dest(int fd, struct file *f, const struct sockaddr *to, socklen_t tolen)
{
    if (to == NULL || f->kind != FILE_KSOCK || f->type != SOCK_DGRAM ||
        __atomic_load_n(&f->decided, __ATOMIC_ACQUIRE) || tolen < sizeof(sa_family_t) ||
        to->sa_family != f->domain)
        return f;
    int dummy;
    if (sock_decide(fd, f, to, tolen, NULL, NULL, &dummy) == 0) {
        struct file *nf = file_get(fd);
        if (nf != NULL) {
            file_put(f);
            return nf;
        }
    }
    return f;
}

/* The shape of every single-call data wrapper: the kernel fast path; else
 * the referenced path (a candidate is anchored first), where a module
 * socket runs `module_call` (which may use `f`) and anything else the libc
 * call; then the byte counter. Expands to the same code a hand-written
 * wrapper has, so the fast path costs nothing extra. */
/* A connection returned to TCP with bytes left over from RDMA (before a
 * fork: anchor_release() said 1) reads them from the module first, but
 * every send goes to the TCP socket (module ABI 1.2), which is the app fd:
 * with the application's own call, not the module's sendmsg, so that a
 * sandbox that allows the process write() and nothing else (OpenSSH's
 * seccomp filter in its preauth child, forked right after the banner
 * exchange upgraded the connection) still allows it. */
static inline int tx_on_tcp_(const struct file *f, int ctr)
{
    return ctr == NSTAT_TX_BYTES && __builtin_expect(f->downgraded, 0);
}

#define DATA_CALL(fd, ctr, txlen, libc_call, module_call)                    \
    do {                                                                         \
        struct file *f;                                                          \
        KERNEL_FAST_PATH(fd, ctr, txlen, libc_call);                             \
        if (t_in_module || (f = file_get(fd)) == NULL)                           \
            return libc_call;                                                    \
        ANCHOR_RESOLVE(fd, f);                                                   \
        f = ll_settle(fd, f);                                                    \
        if (!URGENT_INLINE_OK(fd, f, ctr, txlen))                                \
            return file_put_ret(f, -1);                                          \
        int held_ = 0;                                                           \
        size_t txl_ = ctr == NSTAT_TX_BYTES && LL_PHASE(f) ? (txlen) : 0;        \
        if (ctr == NSTAT_TX_BYTES)                                               \
            f = ll_tx_begin(fd, f, txl_, &held_);                                \
        int llrx_ = ctr == NSTAT_RX_BYTES && LL_PHASE(f);                        \
        if (llrx_)                                                               \
            t_ll_fd = fd;                                                        \
        ssize_t r = (f->ops->io_module(f) && !tx_on_tcp_(f, ctr)) || llrx_ ? (module_call) : (libc_call); \
        if (held_)                                                               \
            anchor_ll_leave_tx(f, txl_, r);    /* counts r */                    \
        ANCHOR_RETRY(fd, f, r, libc_call);                                       \
        count_io(f, r, ctr);                                                     \
        if (r > 0 && !llrx_)         /* a no-op but in the TCP phase */          \
            anchor_ll_count(fd, f, held_ ? 0 : r);   /* reads: anchor_ll_recvmsg counts */ \
        return file_put_ret(f, r);                                                    \
    } while (0)

/* A vector call on a module socket goes through its sendmsg/recvmsg. */
static ssize_t m_vector(struct file *f, const struct iovec *iov, int iovcnt, int rx)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX) {
        errno = EINVAL;
        return -1;
    }
    struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
    return rx ? m_recvmsg(f, &msg, 0) : m_sendmsg(f, &msg, 0);
}

/* ---- send side ---- */

EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    DATA_CALL(fd, NSTAT_TX_BYTES, len, LIBC(send)(fd, buf, len, flags), m_send(f, buf, len, flags));
}

EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
    DATA_CALL(fd, NSTAT_TX_BYTES, len, LIBC(write)(fd, buf, len), m_send(f, buf, len, 0));
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    DATA_CALL(fd, NSTAT_TX_BYTES, iov_bytes(iov, iovcnt), LIBC(writev)(fd, iov, iovcnt),
              m_vector(f, iov, iovcnt, 0));
}

/* sendto with an address on a module socket: sendmsg carries it. */
static ssize_t m_sendto(struct file *f, const void *buf, size_t len, int flags,
                        const struct sockaddr *to, socklen_t tolen)
{
    if (to == NULL)
        return m_send(f, buf, len, flags);
    struct iovec iov = { (void *)buf, len };
    struct msghdr msg = { .msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov, .msg_iovlen = 1 };
    return m_sendmsg(f, &msg, flags);
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
    struct file *f;
    KERNEL_FAST_PATH(fd, NSTAT_TX_BYTES, len, LIBC(sendto)(fd, buf, len, flags, to, tolen));
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(sendto)(fd, buf, len, flags, to, tolen);
    ANCHOR_RESOLVE(fd, f);
    f = route_by_dest(fd, f, to, tolen);
    int held;
    f = ll_tx_begin(fd, f, len, &held);
    ssize_t r = f->ops->io_module(f) ? m_sendto(f, buf, len, flags, to, tolen)
                                     : LIBC(sendto)(fd, buf, len, flags, to, tolen);
    if (held) {
        anchor_ll_leave_tx(f, len, r);
        anchor_ll_count(fd, f, 0);
    }
    ANCHOR_RETRY(fd, f, r, LIBC(sendto)(fd, buf, len, flags, to, tolen));
    count_io(f, r, NSTAT_TX_BYTES);
    return file_put_ret(f, r);
}

/* msghdr calls on a module socket: NULL is EFAULT, as the kernel says. */
static ssize_t m_msg(struct file *f, struct msghdr *msg, int flags, int rx)
{
    if (msg == NULL) {
        errno = EFAULT;
        return -1;
    }
    return rx ? m_recvmsg(f, msg, flags) : m_sendmsg(f, msg, flags);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    struct file *f;
    if (msg != NULL && msg->msg_controllen != 0 && msg->msg_control != NULL && anchor_note_passed(msg) < 0)
        return -1;
    KERNEL_FAST_PATH(fd, NSTAT_TX_BYTES, msg_bytes(msg), LIBC(sendmsg)(fd, msg, flags));
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(sendmsg)(fd, msg, flags);
    ANCHOR_RESOLVE(fd, f);
    if (msg != NULL)
        f = route_by_dest(fd, f, msg->msg_name, msg->msg_namelen);
    int held;
    size_t txl = LL_PHASE(f) ? msg_bytes(msg) : 0;
    f = ll_tx_begin(fd, f, txl, &held);
    ssize_t r = f->ops->io_module(f) ? m_msg(f, (struct msghdr *)msg, flags, 0) : LIBC(sendmsg)(fd, msg, flags);
    if (held) {
        anchor_ll_leave_tx(f, txl, r);
        anchor_ll_count(fd, f, 0);
    }
    ANCHOR_RETRY(fd, f, r, LIBC(sendmsg)(fd, msg, flags));
    count_io(f, r, NSTAT_TX_BYTES);
    return file_put_ret(f, r);
}

/* sendmmsg on the kernel socket; drops the caller's reference to f. */
static int kernel_sendmmsg(int fd, struct file *f, struct mmsghdr *vec, unsigned int vlen, int flags)
{
    int r = LIBC(sendmmsg)(fd, vec, vlen, flags);
    for (int i = 0; i < r; i++) {
        count_io(f, vec[i].msg_len, NSTAT_TX_BYTES);
        anchor_ll_count(fd, f, vec[i].msg_len);
    }
    return (int)file_put_ret(f, r);
}

EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
    struct file *f;
    for (unsigned int i = 0; vec != NULL && i < vlen; i++)
        if (vec[i].msg_hdr.msg_controllen != 0 && vec[i].msg_hdr.msg_control != NULL &&
            anchor_note_passed(&vec[i].msg_hdr) < 0)
            return -1;           /* EBUSY, before any message went (as a failed first one) */
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(sendmmsg)(fd, vec, vlen, flags);
    ANCHOR_RESOLVE(fd, f);
    if (!f->ops->io_module(f))
        return kernel_sendmmsg(fd, f, vec, vlen, flags);
    unsigned int i = 0;
    for (; i < vlen && i < UIO_MAXIOV; i++) {
        ssize_t r = m_sendmsg(f, &vec[i].msg_hdr, flags);
        if (r < 0)
            break;
        vec[i].msg_len = (unsigned int)r;
        count_io(f, r, NSTAT_TX_BYTES);
    }
    if (i == 0 && anchor_declined(f, -1))
        return kernel_sendmmsg(fd, fall_back(fd, f), vec, vlen, flags);
    return (int)file_put_ret(f, i > 0 ? (ssize_t)i : -1);
}

/* ---- receive side ---- */

EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    DATA_CALL(fd, NSTAT_RX_BYTES, flags, LIBC(recv)(fd, buf, len, flags), m_recv(f, buf, len, flags));
}

EXPORT ssize_t read(int fd, void *buf, size_t len)
{
    DATA_CALL(fd, NSTAT_RX_BYTES, 0, LIBC(read)(fd, buf, len), m_recv(f, buf, len, 0));
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    DATA_CALL(fd, NSTAT_RX_BYTES, 0, LIBC(readv)(fd, iov, iovcnt), m_vector(f, iov, iovcnt, 1));
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    DATA_CALL(fd, NSTAT_RX_BYTES, flags, LIBC(recvmsg)(fd, msg, flags), m_msg(f, msg, flags, 1));
}

/* recvfrom with an address on a module socket: recvmsg fills it. */
static ssize_t m_recvfrom(struct file *f, void *buf, size_t len, int flags,
                          struct sockaddr *from, socklen_t *fromlen)
{
    if (from == NULL || fromlen == NULL)
        return m_recv(f, buf, len, flags);
    struct iovec iov = { buf, len };
    struct msghdr msg = { .msg_name = from, .msg_namelen = *fromlen, .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t r = m_recvmsg(f, &msg, flags);
    if (r >= 0)
        *fromlen = msg.msg_namelen;
    return r;
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
    DATA_CALL(fd, NSTAT_RX_BYTES, flags, LIBC(recvfrom)(fd, buf, len, flags, from, fromlen),
              m_recvfrom(f, buf, len, flags, from, fromlen));
}

/* recvmmsg on a module socket, with the kernel's timeout rule: the time is
 * checked after each received message (so the first one may block past it),
 * the call returns what it has once it expired, and *tmo is updated to the
 * time left (0 when expired). With MSG_WAITFORONE only the first may block. */
static int m_recvmmsg(struct file *f, struct mmsghdr *vec, unsigned int vlen, int flags,
                      struct timespec *tmo)
{
    int64_t deadline = tmo ? deadline_of(tmo) : -1;
    int fl = flags & ~MSG_WAITFORONE;
    unsigned int i = 0;
    for (; i < vlen && i < UIO_MAXIOV; i++) {
        ssize_t r = m_recvmsg(f, &vec[i].msg_hdr, fl);
        if (r < 0)
            break;
        vec[i].msg_len = (unsigned int)r;
        count_io(f, r, NSTAT_RX_BYTES);
        if (flags & MSG_WAITFORONE)
            fl |= MSG_DONTWAIT;
        if (tmo != NULL && timespec_left(deadline, tmo) == 0) {
            i++;
            break;
        }
    }
    if (i > 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        errno = 0;
    return i > 0 ? (int)i : -1;
}

/* recvmmsg on the kernel socket; drops the caller's reference to f. */
static int kernel_recvmmsg(int fd, struct file *f, struct mmsghdr *vec, unsigned int vlen, int flags,
                           struct timespec *tmo)
{
    (void)anchor_ll_gate(fd, f, 0);
    int r = LIBC(recvmmsg)(fd, vec, vlen, flags, tmo);
    for (int i = 0; i < r; i++) {
        count_io(f, vec[i].msg_len, NSTAT_RX_BYTES);
        anchor_ll_count(fd, f, vec[i].msg_len);
    }
    return (int)file_put_ret(f, r);
}

EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *tmo)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(recvmmsg)(fd, vec, vlen, flags, tmo);
    ANCHOR_RESOLVE(fd, f);
    if (!f->ops->io_module(f))
        return kernel_recvmmsg(fd, f, vec, vlen, flags, tmo);
    if (tmo != NULL && (tmo->tv_sec < 0 || tmo->tv_nsec < 0 || tmo->tv_nsec >= 1000000000L)) {
        errno = EINVAL;
        return (int)file_put_ret(f, -1);
    }
    int r = m_recvmmsg(f, vec, vlen, flags, tmo);
    if (anchor_declined(f, r))
        return kernel_recvmmsg(fd, fall_back(fd, f), vec, vlen, flags, tmo);
    return (int)file_put_ret(f, r);
}

/* ---- sendfile ---- */

/* Copies from in_fd to a module socket through a stack buffer. */
static ssize_t m_sendfile(struct file *f, int in_fd, off_t *offset, size_t count)
{
    char buf[16384];
    size_t done = 0;
    while (done < count) {
        size_t want = count - done < sizeof(buf) ? count - done : sizeof(buf);
        ssize_t n = offset ? pread(in_fd, buf, want, *offset) : LIBC(read)(in_fd, buf, want);
        if (n <= 0) {
            if (n < 0 && done == 0)
                return -1;
            break;
        }
        ssize_t s = m_send(f, buf, (size_t)n, 0);
        if (s < 0) {
            /* As the kernel: the file offset moves only by what was sent,
             * and a call that sent nothing fails with the send's errno
             * (EAGAIN on a full nonblocking socket) - never 0, which every
             * caller reads as end of file. */
            int err = errno;
            if (!offset)
                lseek(in_fd, -(off_t)n, SEEK_CUR);   /* unread what was not sent */
            if (done == 0) {
                errno = err;
                return -1;
            }
            break;
        }
        if (!offset && s < n)
            lseek(in_fd, -(off_t)(n - s), SEEK_CUR);
        done += (size_t)s;
        if (offset)
            *offset += s;
        if (s < n)
            break;
    }
    return (ssize_t)done;
}

EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
    struct file *f;
    if (t_in_module || (f = file_get(out_fd)) == NULL)
        return LIBC(sendfile)(out_fd, in_fd, offset, count);
    ANCHOR_RESOLVE(out_fd, f);
    if (anchor_ll_gate(out_fd, f, 1)) {
        struct file *n = file_get(out_fd);   /* went to its module meanwhile */
        if (n != NULL) {
            file_put(f);
            f = n;
        }
    }
    int held;
    f = ll_tx_begin(out_fd, f, count, &held);
    ssize_t r = f->ops->io_module(f) ? m_sendfile(f, in_fd, offset, count)
                                     : LIBC(sendfile)(out_fd, in_fd, offset, count);
    if (held)
        anchor_ll_leave_tx(f, count, r);   /* counts r */
    ANCHOR_RETRY(out_fd, f, r, LIBC(sendfile)(out_fd, in_fd, offset, count));
    count_io(f, r, NSTAT_TX_BYTES);
    if (r > 0)
        anchor_ll_count(out_fd, f, held ? 0 : r);   /* the long-lived policy's TCP phase */
    return file_put_ret(f, r);
}

EXPORT ssize_t sendfile64(int out_fd, int in_fd, off64_t *offset, size_t count)
{
    return sendfile(out_fd, in_fd, (off_t *)offset, count);
}

/* ---- _FORTIFY_SOURCE variants ---- */

EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
    if (len > buflen)
        __chk_fail();
    return read(fd, buf, len);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
    if (len > buflen)
        __chk_fail();
    return recv(fd, buf, len, flags);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
                              struct sockaddr *from, socklen_t *fromlen)
{
    if (len > buflen)
        __chk_fail();
    return recvfrom(fd, buf, len, flags, from, fromlen);
}
