/* poll_agg.h - poll/select over kernel fds and module sockets. */
#ifndef POLL_AGG_H
#define POLL_AGG_H

#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <time.h>

/* 1 if any fd is a module socket (else the wrapper calls libc directly). */
int poll_needs_agg(const struct pollfd *fds, nfds_t n);
int select_needs_agg(int nfds, const fd_set *r, const fd_set *w, const fd_set *e);
int ev_poll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *sigmask);
int ev_select(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout,
              const sigset_t *sigmask);
void poll_fork_prepare(void);
void poll_fork_parent(void);
void poll_fork_child(void);

#endif
