/* anchor_urgent.h - late urgent bytes of a peer's module on connections
 * that stayed on TCP (anchor_urgent.c). */
#ifndef NSTACK_ANCHOR_URGENT_H
#define NSTACK_ANCHOR_URGENT_H

#include "file.h"

/* f at fd stays on TCP after the handshake of module stack1 - 1 began
 * (0: none): watched from now on (f->urgent_maybe), inline too when
 * SO_OOBINLINE is set. Caller holds f->lock or f is not published. */
void anchor_urgent_watch(struct file *f, int fd, int stack1);
/* setsockopt(SO_OOBINLINE, on) succeeded on f. */
void anchor_urgent_inline(struct file *f, int on);
/* poll() reports urgent data on such an fd: 1 when it was a late byte of
 * the peer's module, now taken out (the application never sees it). */
int anchor_stale_urgent(int fd, const struct file *f);
/* Before a read of such an fd with SO_OOBINLINE (f->urgent_inline): a
 * late byte at the head is taken out; a blocking read (neither dontwait
 * nor O_NONBLOCK) waits here for data (a blocking peek: SO_RCVTIMEO,
 * signals and errors as the read's), so that a byte arriving meanwhile is
 * taken too. 0 to go on with the read, -1 with errno to return. */
int anchor_inline_read_wait(int fd, const struct file *f, int dontwait);

#endif
