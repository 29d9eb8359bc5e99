/* anchor_side.h - the rdma_cm listener beside an anchored TCP listener.
 *
 * A listener on a route that anchors is a kernel TCP listener (fork
 * workers, SO_REUSEPORT, EPOLLEXCLUSIVE work as on the kernel). A plain
 * rsockets client (librspreload, rstream) does not speak TCP first: it
 * connects over rdma_cm to the same address and port. So the listener
 * also listens there on the module (the side listener); accept() returns
 * its connections too, as direct module sockets; its wait fd is
 * registered wherever the app registers the kernel listener (epoll), and
 * poll/select wait on both. A wildcard listener's side listens on the
 * module's wildcard (rdma_cm: every RDMA address of the host) when a local
 * address routes to an anchoring stack (listen time: addresses added
 * later are not looked at).
 *
 * rdma_cm ids belong to one process and a port has one rdma_cm listener
 * (no SO_REUSEPORT in the RDMA port space), so the side lives in one
 * process: the one that waits on the listener (accept, epoll_ctl,
 * poll/select). listen() makes it; a process that forks before it ever
 * waited on the listener (a listen-then-fork master) gives it up at the
 * fork, and the first process that then waits on the listener (a worker,
 * or the parent itself) makes its own; the others retry at most once a
 * second and serve TCP meanwhile. */
#ifndef ANCHOR_SIDE_H
#define ANCHOR_SIDE_H

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "file.h"

/* listen() on candidate f (routed to an anchoring stack) succeeded. */
void anchor_side_listen(int fd, struct file *f, int backlog);

/* 1 when listener fd (file f) has a side listener this process may use;
 * makes this process's own when the side was given up at a fork or made
 * by another process (at most one try a second). */
int anchor_side_usable(int fd, const struct file *f);

/* 1 when f has a side this process already uses (never makes one: for
 * epoll_ctl DEL, which must not create a listener). Lock-free. */
int anchor_side_held(const struct file *f);

/* accept() on listener f with a usable side listener: a connection of
 * either, waiting for both when the listener blocks. */
int anchor_side_accept(int fd, struct file *f, struct sockaddr *addr, socklen_t *len, int flags);

/* epoll_ctl(epfd, op, fd of f, ev) succeeded: the same for the side's wait fd. */
void anchor_side_epoll_ctl(int epfd, int op, const struct file *f, const struct epoll_event *ev);

/* poll/select: the fd to wait on in place of the listener (readable when
 * either listener is), and the listener's revents now. */
int anchor_side_poll_fd(const struct file *f);
short anchor_side_revents(int fd, const struct file *f, short events);

/* fork() is about to run (no framework lock held): sides this process
 * made and never waited on are given up (closed) so that a child can make
 * its own. The registry lock is held across the fork itself (taken last,
 * released in parent and child). */
void anchor_side_fork_prepare(void);
void anchor_side_fork_lock(void);
void anchor_side_fork_unlock(void);

/* The file's last reference is gone. */
void anchor_side_release(struct file *f);

#endif
