/* sock_ops.h - what every socket kind's operation table shares
 * (sock_ops.c: the FOPS_SOCK table and helpers the kinds' tables use). */
#ifndef SOCK_OPS_H
#define SOCK_OPS_H

#include <sys/socket.h>

#include "file.h"

/* Counts an outgoing connection of fd (its stack now) when connect()
 * returned r = 0 or EINPROGRESS. Reads errno. */
void sock_count_connect(struct file *f, int fd, int r);
/* SO_ERROR of kernel socket kfd, or the error the dispatcher read from it
 * before (anchor_direct_late, a declined fallback), handed out once. */
int sock_so_error(struct file *f, int kfd, void *val, socklen_t *len);
/* F_GETFL/F_SETFL of a socket whose app fd's O_NONBLOCK is not the
 * socket's (a direct module socket's app fd shares the module's wait fd,
 * a multi-stack listener's is its epoll fd): the app's flag is f->nonblock. */
int sock_getfl_app(struct file *f, int fd);
int sock_setfl_app(struct file *f, int fd, long arg);
/* The app's O_NONBLOCK is only remembered (nothing of the app fd's). */
int sock_set_nonblock_app(struct file *f, int fd, int on);

#endif
