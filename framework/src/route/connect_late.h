/* connect_late.h - connect fallback for a nonblocking module connect
 * whose failure shows up later (EINPROGRESS, then POLLERR / SO_ERROR).
 *
 * A module socket whose route has "fallback" is marked pending before the
 * module's connect. While it is pending, readiness checks hide an error
 * (the app must keep seeing a connect in progress) and hand the socket to
 * fb_run() once no lock is held; that re-issues the connect on a new
 * kernel socket and moves the app fd, its dups and its epoll registrations
 * onto it. The app then sees writability when the kernel connect
 * completes, as for any nonblocking connect (doc/framework.md,
 * "Connect fallback"). */
#ifndef CONNECT_LATE_H
#define CONNECT_LATE_H

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>

#include "file.h"

enum fb_state {
    FB_NONE = 0,     /* no fallback configured, or the connect is settled */
    FB_PENDING,      /* module connect in progress; a failure moves to the kernel */
    FB_MOVED,        /* the app fd moved to a kernel socket */
};

/* Called on the new module socket nf before the module's connect: when
 * the route of dest has a fallback stack, remembers it, the destination and
 * kf's logged options, and marks nf pending. */
void fb_arm(struct file *nf, const struct file *kf, const struct sockaddr *dest, socklen_t len);
/* The module's connect returned: anything but EINPROGRESS settles it. */
void fb_connect_returned(struct file *nf, int r, int err);

/* The module could not reach a peer that does not speak its stack: the
 * errors a fallback (immediate or late) answers. */
static inline int fb_is_unreachable(int err)
{
    return err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH || err == ETIMEDOUT;
}

static inline int fb_is_pending(struct file *f)
{
    return __atomic_load_n(&f->fb_state, __ATOMIC_ACQUIRE) == FB_PENDING;
}

/* A readiness mask (poll/epoll bits) of pending f as the app may see it:
 * an error or hang-up is hidden and *due set (the caller then runs
 * fb_run() without holding a lock); writability without an error means the
 * module connected, which settles the socket. */
uint32_t fb_filter(struct file *f, uint32_t mask, int *due);

/* Decides and, for an unreachable peer, makes the fallback of pending f.
 * known_err: the module's SO_ERROR if the caller already read it, else -1.
 * Returns 1 when the app fds now hold a kernel socket; 0 when declined (the
 * module's error is reported as without fallback: registrations are
 * forced to report and SO_ERROR returns it once). */
int fb_run(struct file *f, int known_err);

/* getsockopt(SO_ERROR) on a module socket (MSOCK): the module's answer,
 * except that a pending socket's unreachable error runs the fallback and
 * answers 0 (still connecting), and a declined fallback's error is handed
 * out once. */
int fb_so_error(struct file *f, void *val, socklen_t *len);
/* connect() again on a module socket: a pending socket whose module
 * answers with an unreachable error falls back and answers EALREADY. */
int fb_connect_again(struct file *f, int r);

#endif
