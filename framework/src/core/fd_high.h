/* fd_high.h - where the dispatcher's own fds live.
 *
 * Event loops (wrk, nginx, redis) size tables by fd number and expect few
 * fds per connection, so the fds the dispatcher creates for itself (epoll
 * sets' wake eventfds, poll waiters' eventfds, a multi-stack listener's
 * private epoll fd, eventfd and kernel socket) are kept out of the app's
 * range: they are moved to the lowest free number at or above a base of
 * max(RLIMIT_NOFILE soft / 2, 256), capped at 65536 (the kernel's fd array
 * grows to the highest number used). When nothing is free up there (the
 * base is at or above the limit) the fd keeps its low number. */
#ifndef FD_HIGH_H
#define FD_HIGH_H

/* A close-on-exec duplicate of fd in the high range (or the lowest free
 * number if the high range is unavailable); -1/errno if none at all. */
int fd_dup_high(int fd);
/* Moves an fd the dispatcher just created (close-on-exec) into the high
 * range; returns the fd to use from now on (fd itself if it could not be
 * moved, and fd < 0 unchanged). */
int fd_move_high(int fd);
/* fd_move_high() when the calling thread is inside a module call (an fd
 * the module or its device library creates: wrap_modfd.c), else fd. */
int fd_module_high(int fd);

#endif
