/* migrate.h - what a socket is changes under the app's fd numbers: the
 * fd table (and, for direct module sockets, the kernel object behind each
 * number) moves from one file to another, and the app's epoll
 * registrations follow. The one home of these moves (routing decision,
 * late connect fallback, anchored fallback, direct instead of anchored). */
#ifndef MIGRATE_H
#define MIGRATE_H

#include "file.h"

/* Every fd number that holds `from` in the table, except `skip` (-1: none),
 * gets `to`. With src >= 0 each such number is first made a dup of src
 * (its own FD_CLOEXEC kept), so the kernel object behind it changes too; a
 * number whose dup3 fails keeps `from` (logged, naming `what`). Numbers
 * closed meanwhile are left alone. Returns the lowest number moved, or -1. */
int fd_migrate(struct file *from, struct file *to, int src, int skip, const char *what);

/* Puts src (or a dup of it) at fd number fd, keeping that number's
 * FD_CLOEXEC. 0 or -1/errno. */
int fd_migrate_one(int fd, int src);

/* The app's epoll registrations regs[0..n) of a socket that `to` now
 * carries are added again on the numbers that still hold `to` (the kernel
 * then reports the new object's real readiness; an ADD of a ready fd
 * reports it, EPOLLET included). */
void ev_reregister(struct file *to, const struct pre_reg *regs, int n);

#endif
