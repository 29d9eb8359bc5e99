/* anchor_direct.h - a framework client of a plain rsockets server.
 *
 * A server that runs rsockets without the framework listens on rdma_cm
 * only: the TCP connect of an anchored candidate to it is refused. The
 * connection is then made by the module directly (rdma_cm) and carried
 * beside the dead TCP socket, which stays the app fd (no fd moves): the
 * file is a module file like an anchored one (anchored, anchor_direct),
 * whose names, options and errors come from the module. */
#ifndef ANCHOR_DIRECT_H
#define ANCHOR_DIRECT_H

#include <sys/socket.h>

#include "file.h"

/* connect() of candidate kf at fd was refused (blocking): connects on the
 * module instead. 0 (connected, or EINPROGRESS for a nonblocking module
 * connect) with the module file published at fd; else -1 with errno
 * ECONNREFUSED (the TCP connect's answer). */
int anchor_direct_connect(int fd, struct file *kf, const struct sockaddr *addr, socklen_t len);

/* A nonblocking connect of candidate kf: keeps its destination for a
 * later retry (anchor_direct_late). */
void anchor_direct_note(struct file *kf, const struct sockaddr *addr, socklen_t len);

/* First use of active candidate kf (kf->lock held): 0 when its TCP
 * connect did not fail (anchor as usual); 1 when it was refused and the
 * module connect started (the module file is published at fd); 2 when it
 * failed otherwise: the error, read here, waits in fb_err for the app's
 * SO_ERROR, and the caller keeps kf on TCP. */
int anchor_direct_late(int fd, struct file *kf, int st);

/* sock_fallback() of anchored f (f->lock held): when the module gave up
 * because the nonblocking TCP connect it was waiting for was refused, the
 * module connects directly: returns that file (one reference, not in the
 * table). Else NULL, with *err the TCP connect's error when it failed
 * otherwise (read here: the kernel file that replaces f hands it out). */
struct file *anchor_direct_instead(struct file *f, int *err);

/* anchor(): an active candidate's destination goes with its module file. */
void anchor_direct_keep_dest(struct file *nf, const struct file *kf);

#endif
