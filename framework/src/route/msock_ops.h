/* msock_ops.h - module socket operations that other kinds' tables share
 * (msock_ops.c). */
#ifndef MSOCK_OPS_H
#define MSOCK_OPS_H

#include <sys/socket.h>

#include "file.h"

/* The module answers for the socket's names and options (a direct module
 * socket, or an anchored one whose TCP connect was refused). */
int msock_getsockname(struct file *f, int fd, struct sockaddr *addr, socklen_t *len);
int msock_getpeername(struct file *f, int fd, struct sockaddr *addr, socklen_t *len);
int msock_getsockopt(struct file *f, int fd, int level, int name, void *val, socklen_t *len);
/* The stream's end is the module's (anchored too). */
int msock_shutdown(struct file *f, int fd, int how);
/* Leaves the epoll sets it is in and closes the module socket. */
void msock_release(struct file *f);
/* The module carries the data (anchored too). */
int msock_io_module(const struct file *f);

#endif
