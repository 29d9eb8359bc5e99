/* file_ops.h - what each kind of tracked fd does for the interposed calls.
 *
 * Every struct file points at the operation table of its kind (f->ops):
 * set by file_alloc() from the kind, and by the code that makes a module
 * socket TCP-anchored (anchor.c, anchor_direct.c) before the file is
 * published; fixed while the file is live. A kind's own table, next to
 * that kind's code, names only what the kind does differently; the other
 * slots are filled once, at load (file_ops.c), from its parent's
 * table and at last from the pass-through defaults (file_ops.c), the way
 * rdma-core's verbs_set_ops() fills a provider's missing verbs. So every
 * slot is set and the wrappers call through it without testing.
 *
 * Arguments: f is the file of app fd `fd` (the caller holds a reference);
 * the rest are the libc call's. Each op returns what that call returns
 * (-1 with errno on failure). When adding an op, give it a pass-through
 * default in file_ops.c. */
#ifndef FILE_OPS_H
#define FILE_OPS_H

#include <sys/socket.h>

struct epoll_event;
struct file;

struct file_ops {
    /* ---- the file's life (file.c) ---- */
    /* The last reference is gone: let go of what the file owns (its
     * module socket, listeners, epoll set); file_free() follows. */
    void (*release)(struct file *f);

    /* ---- socket calls (wrap_socket.c) ---- */
    int (*bind)(struct file *f, int fd, const struct sockaddr *addr, socklen_t len);
    int (*listen)(struct file *f, int fd, int backlog);
    int (*connect)(struct file *f, int fd, const struct sockaddr *addr, socklen_t len);
    /* accept4(); the caller counts the accepted connection */
    int (*accept)(struct file *f, int fd, struct sockaddr *addr, socklen_t *len, int flags);
    int (*shutdown)(struct file *f, int fd, int how);
    int (*getsockname)(struct file *f, int fd, struct sockaddr *addr, socklen_t *len);
    int (*getpeername)(struct file *f, int fd, struct sockaddr *addr, socklen_t *len);
    int (*getsockopt)(struct file *f, int fd, int level, int name, void *val, socklen_t *len);
    int (*setsockopt)(struct file *f, int fd, int level, int name, const void *val, socklen_t len);

    /* ---- fd calls (wrap_fd.c) ---- */
    /* close(fd) removed f from the table and is about to drop that
     * reference: 1 when the kernel fd must stay open (anchor_fd.c) */
    int (*closing)(struct file *f, int fd);
    /* dup2/dup3/close_range are about to make the kernel let go of fd */
    void (*replacing)(struct file *f, int fd);
    /* O_NONBLOCK as the app sets it (F_SETFL, FIONBIO); 0 or -1/errno */
    int (*set_nonblock)(struct file *f, int fd, int on);
    int (*getfl)(struct file *f, int fd);
    int (*setfl)(struct file *f, int fd, long arg);
    int (*fionbio)(struct file *f, int fd, void *arg);
    /* ioctl() other than FIONBIO, FIOCLEX and FIONCLEX */
    int (*ioctl)(struct file *f, int fd, unsigned long req, void *arg);

    /* ---- data calls (wrap_io.c) ---- */
    /* 1 when the file's data calls on the referenced path take their
     * module form (the module's send/recv/sendmsg/recvmsg, wrap_io.c
     * m_*), 0 when they are the app's own libc call on the app fd. Only
     * the choice is here, not the calls: the libc form must stay the
     * app's own call (write() stays write(): a seccomp filter may allow
     * nothing else), and the kernel socket's fast path runs before any
     * table is looked at. */
    int (*io_module)(const struct file *f);

    /* ---- epoll registrations (epoll_agg.c) ---- */
    /* epoll_ctl(epfd, op, fd, ev) of this file at fd (anchor_use done) */
    int (*ep_ctl)(struct file *f, int epfd, int op, int fd, struct epoll_event *ev);
};

/* The tables, one per kind of file; a parent's slots fill its children's
 * gaps (file_ops.c: g_parent). */
enum file_ops_id {
    FOPS_LIBC,              /* pass-through to libc on the app fd: every slot set */
    FOPS_SOCK,              /* what every socket kind shares (sock_ops.c) */
    FOPS_KSOCK,             /* FILE_KSOCK (ksock_ops.c) */
    FOPS_MSOCK,             /* FILE_MSOCK whose app fd is its wait fd (msock_ops.c) */
    FOPS_ANCHORED,          /* FILE_MSOCK beside its TCP socket (anchor_ops.c) */
    FOPS_ANCHORED_DIRECT,   /* ... whose TCP connect was refused (anchor_ops.c) */
    FOPS_EPOLL,             /* FILE_EPOLL (epoll_ops.c) */
    FOPS_MLISTEN,           /* FILE_MLISTEN (ml_ops.c) */
    FOPS_N
};

/* The declared (sparse) tables, each in its kind's file. */
extern const struct file_ops sock_file_ops, ksock_file_ops, msock_file_ops, anchored_file_ops,
    anchored_direct_file_ops, epoll_file_ops, mlisten_file_ops;

/* The filled table `id` (filled at the first call; never NULL). */
const struct file_ops *file_ops_get(enum file_ops_id id);
/* The filled table of a new file of enum file_kind `kind`. */
const struct file_ops *file_ops_of_kind(int kind);

#endif
