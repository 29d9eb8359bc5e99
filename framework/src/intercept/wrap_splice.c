/* wrap_splice.c - splice() between a pipe and a socket the dispatcher
 * carries itself.
 *
 * The kernel's splice moves bytes between a pipe and the kernel socket
 * behind the number. On a connection the module carries (upgraded, an
 * anchored candidate before its first use, or in the long-lived policy's
 * TCP phase, whose bytes both ends count) those bytes would bypass the
 * module: the peer would see foreign bytes on its anchor and end the
 * connection with EPROTO, or the reader would wait for data that went to
 * the kernel. So such a splice is made of the interposed calls, through a
 * buffer on the stack, taking out of its source exactly what its
 * destination took:
 *   socket -> pipe: peek the socket, write the pipe, then read from the
 *     socket what the pipe took;
 *   pipe -> socket: tee the pipe into a private pipe (the source keeps its
 *     bytes), send them, then read from the source pipe what was sent.
 * Every other splice - files, pipes, kernel-route sockets - is the kernel's.
 * Blocking follows the kernel's rule: the socket's own O_NONBLOCK decides
 * for the socket, SPLICE_F_NONBLOCK (or the pipe's O_NONBLOCK) for the
 * pipe. Socket to pipe moves at most SPLICE_CHUNK bytes a call, pipe to
 * socket what the pipe holds up to len (splice may return less than asked;
 * callers loop). Two threads splicing out of one pipe at once may
 * interleave chunks (the kernel moves a call's bytes at once). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anchor.h"
#include "fd_table.h"
#include "file.h"
#include "fw.h"
#include "libc_api.h"

#define EXPORT __attribute__((visibility("default")))
#define SPLICE_CHUNK 16384         /* as m_sendfile's: app threads may have small stacks */

static int is_pipe(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* SPLICE_F_NONBLOCK on a blocking pipe: ready now, or EAGAIN (a pipe with
 * O_NONBLOCK says so itself). */
static int pipe_ready(int fd, short ev, unsigned int flags)
{
    if (!(flags & SPLICE_F_NONBLOCK) || (LIBC(fcntl)(fd, F_GETFL) & O_NONBLOCK))
        return 1;
    struct pollfd p = { .fd = fd, .events = ev };
    if (LIBC(poll)(&p, 1, 0) > 0)
        return 1;
    errno = EAGAIN;
    return 0;
}

static ssize_t socket_to_pipe(int sock, int pfd, size_t len, unsigned int flags)
{
    char buf[SPLICE_CHUNK];
    size_t want = len < sizeof buf ? len : sizeof buf;
    if (!pipe_ready(pfd, POLLOUT, flags))
        return -1;
    if ((flags & SPLICE_F_NONBLOCK) && !(LIBC(fcntl)(pfd, F_GETFL) & O_NONBLOCK))
        want = want < PIPE_BUF ? want : PIPE_BUF;   /* a ready pipe takes PIPE_BUF at once */
    ssize_t n = recv(sock, buf, want, MSG_PEEK);
    if (n <= 0)
        return n;
    ssize_t w = LIBC(write)(pfd, buf, (size_t)n);
    if (w <= 0)
        return w;
    ssize_t t = recv(sock, buf, (size_t)w, MSG_DONTWAIT);   /* what was peeked is there */
    if (t != w) {
        errno = EIO;
        return -1;
    }
    return w;
}

/* One chunk: tee'd into tp (the source keeps it), sent, then taken out
 * of the source as far as it was sent. */
static ssize_t pipe_chunk_to_socket(int pfd, int tp[2], int sock, size_t len, unsigned int nb)
{
    char buf[SPLICE_CHUNK];
    ssize_t n = tee(pfd, tp[1], len < sizeof buf ? len : sizeof buf, nb);
    if (n <= 0)
        return n;
    if (LIBC(read)(tp[0], buf, (size_t)n) != n) {
        errno = EIO;
        return -1;
    }
    ssize_t s = send(sock, buf, (size_t)n, MSG_NOSIGNAL);
    if (s > 0 && LIBC(read)(pfd, buf, (size_t)s) != s) {   /* tee'd: the bytes are there */
        errno = EIO;
        return -1;
    }
    return s;
}

/* As the kernel's: what the pipe holds, up to len, as far as the socket
 * takes it (all of it when the socket blocks); waits for the pipe only
 * before the first byte. */
static ssize_t pipe_to_socket(int pfd, int sock, size_t len, unsigned int flags)
{
    int tp[2];
    if (LIBC(pipe2)(tp, O_CLOEXEC | O_NONBLOCK))
        return -1;
    unsigned int nb = (flags & SPLICE_F_NONBLOCK) || (LIBC(fcntl)(pfd, F_GETFL) & O_NONBLOCK) ? SPLICE_F_NONBLOCK : 0;
    size_t done = 0;
    ssize_t r = 0;
    for (int i = 0; i < 4096 && done < len; i++) {
        size_t want = len - done;
        r = pipe_chunk_to_socket(pfd, tp, sock, want, done ? SPLICE_F_NONBLOCK : nb);
        if (r <= 0)
            break;
        done += (size_t)r;
        if ((size_t)r < (want < SPLICE_CHUNK ? want : SPLICE_CHUNK))
            break;                     /* the socket took part, or the pipe ran dry */
    }
    int err = errno;
    LIBC(close)(tp[0]);
    LIBC(close)(tp[1]);
    errno = err;
    return done ? (ssize_t)done : r;
}

EXPORT ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len, unsigned int flags)
{
    int from_sock = fd_bytes_interposed(fd_in), to_sock = fd_bytes_interposed(fd_out);
    if (!from_sock && !to_sock)
        return LIBC(splice)(fd_in, off_in, fd_out, off_out, len, flags);
    /* the kernel's checks, in its order: one end a pipe, no offset on
     * the pipe (ESPIPE), none on the socket (EINVAL: it has no pwrite) */
    int pipe_end = from_sock ? fd_out : fd_in;
    if (from_sock == to_sock || !is_pipe(pipe_end)) {
        errno = EINVAL;
        return -1;
    }
    if ((from_sock ? off_out : off_in) != NULL) {
        errno = ESPIPE;
        return -1;
    }
    if ((from_sock ? off_in : off_out) != NULL) {
        errno = EINVAL;
        return -1;
    }
    if (len == 0)
        return 0;
    return from_sock ? socket_to_pipe(fd_in, fd_out, len, flags) : pipe_to_socket(fd_in, fd_out, len, flags);
}
