/* anchor_side.h - the rdma_cm listener beside an anchored TCP listener.
 *
 * A listener on a route that anchors is a kernel TCP listener (fork
 * workers, SO_REUSEPORT, EPOLLEXCLUSIVE work as on the kernel). A plain
 * rsockets client (librspreload, rstream) does not speak TCP first: it
 * connects over rdma_cm to the same address and port. So the process that
 * listens also listens there on the module (the side listener); accept()
 * returns its connections too, as direct module sockets; its wait fd is
 * registered wherever the app registers the kernel listener (epoll), and
 * poll/select wait on both. The side listener belongs to the process that
 * made it: a fork child ignores it (its connections wait for the parent). */
#ifndef ANCHOR_SIDE_H
#define ANCHOR_SIDE_H

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "file.h"

/* listen() on candidate f (routed to an anchoring stack) succeeded. */
void anchor_side_listen(int fd, struct file *f, int backlog);

/* 1 when f has a side listener this process may use. Lock-free. */
int anchor_side_usable(const struct file *f);

/* accept() on listener f with a usable side listener: a connection of
 * either, waiting for both when the listener blocks. */
int anchor_side_accept(int fd, struct file *f, struct sockaddr *addr, socklen_t *len, int flags);

/* epoll_ctl(epfd, op, fd of f, ev) succeeded: the same for the side's wait fd. */
void anchor_side_epoll_ctl(int epfd, int op, const struct file *f, const struct epoll_event *ev);

/* poll/select: the fd to wait on in place of the listener (readable when
 * either listener is), and the listener's revents now. */
int anchor_side_poll_fd(const struct file *f);
short anchor_side_revents(int fd, const struct file *f, short events);

/* The file's last reference is gone. */
void anchor_side_release(struct file *f);

#endif
