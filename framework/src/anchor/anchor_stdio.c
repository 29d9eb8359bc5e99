/* anchor_stdio.c - a TCP-anchored connection given to glibc's stdio.
 *
 * stdio reads and writes its descriptor with libc's internal calls, which
 * no preload can interpose: on an upgraded connection its bytes would go
 * to the anchor's TCP socket (the peer ends the connection with EPROTO)
 * and its reads would wait there for bytes that come over RDMA. So a
 * connection handed to fdopen() is carried on TCP from then on, with
 * kernel semantics: a candidate stays there (the peer's module is told),
 * an upgraded connection goes back to it as before a fork. Bytes RDMA
 * delivered that nobody read yet are served by the module to the
 * interposed reads only, so fdopen() for reading fails (EBUSY, one ERR
 * line) rather than let stdio read past them. */
#include <errno.h>

#include "anchor.h"
#include "anchor_fork.h"
#include "fd_table.h"

int anchor_note_stdio(int fd, int reads)
{
    struct file *f = fd_table_get(fd);
    if (f == NULL)
        return 0;
    if (anchor_pending(f)) {
        anchor_decline_pending(fd, "given to stdio (fdopen)");
        return 0;
    }
    if (file_is_anchored(f) && anchor_release_stdio(fd) && reads) {
        errno = EBUSY;
        return -1;
    }
    return 0;
}
