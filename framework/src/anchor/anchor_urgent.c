/* anchor_urgent.c - late urgent bytes on connections that stayed on TCP.
 *
 * The handshake's bytes are TCP urgent data (doc/rsocket-framework.md). A
 * connection that settles on TCP before the peer's module heard of it -
 * this end gave up waiting, or declined in a process that could not
 * anchor - can still get one of them afterwards: the peer's hello, or its
 * "stay on TCP". An application that never asks for urgent data would
 * still notice it: poll() reports POLLPRI (curl takes that for an error),
 * and with SO_OOBINLINE it arrives in the stream (vsftpd's control
 * connection read "\xa7USER ..."). So such a file remembers its module
 * (file.urgent_maybe), and:
 *   - poll/select hide POLLPRI for such a byte after taking it out
 *     (poll_agg.c: kernel_revents);
 *   - with SO_OOBINLINE every read first takes one at the head of the
 *     stream, and a blocking read first waits in a peek, so that a byte
 *     arriving while it waits is taken too: a read that starts at other
 *     data stops at the urgent mark by itself;
 *   - close() and exit() pass a lone one (anchor.c: anchor_close_tcp).
 * Which bytes are the module's is the module's knowledge
 * (anchor_hello(NSTACK_ANCHOR_STALE), ABI 1.5). None of it runs once the
 * process confined itself with seccomp (FW_CONFINED). */
#include "anchor_urgent.h"

#include <errno.h>
#include <sys/socket.h>

#include "fw.h"
#include "libc_api.h"
#include "module_load.h"

void anchor_urgent_watch(struct file *f, int fd, int stack1)
{
    int on = 0;
    socklen_t len = sizeof(on);
    f->urgent_maybe = stack1;
    if (stack1 > 0 && fd >= 0 && LIBC(getsockopt)(fd, SOL_SOCKET, SO_OOBINLINE, &on, &len) == 0 && on)
        __atomic_store_n(&f->urgent_inline, 1, __ATOMIC_RELAXED);
}

void anchor_urgent_inline(struct file *f, int on)
{
    if (f->urgent_maybe)
        __atomic_store_n(&f->urgent_inline, on != 0, __ATOMIC_RELAXED);
}

int anchor_stale_urgent(int fd, const struct file *f)
{
    int st = f->urgent_maybe - 1;
    if (st < 0 || st >= g_n_stacks || !MODULE_HAS_OP(g_stacks[st].mod, anchor_hello))
        return 0;
    int e = errno;
    MOD_ENTER();
    int r = g_stacks[st].mod->anchor_hello(fd, NSTACK_ANCHOR_STALE);
    MOD_LEAVE();
    errno = e;
    return r == 0;
}

/* The wait is a blocking 1-byte peek, not poll(): it needs no descriptor
 * room (vsftpd's session runs with RLIMIT_NOFILE 0, where poll() of one fd
 * fails EINVAL), and the kernel applies SO_RCVTIMEO, SA_RESTART and errors
 * exactly as to the application's read (an error it reports is returned
 * here, since the peek consumed it). */
int anchor_inline_read_wait(int fd, const struct file *f, int dontwait)
{
    int e = errno;
    anchor_stale_urgent(fd, f);
    if (dontwait || __atomic_load_n(&f->nonblock, __ATOMIC_RELAXED))
        return 0;
    for (int rounds = 0; rounds < 64; rounds++) {
        char b;
        if (LIBC(recv)(fd, &b, 1, MSG_PEEK) < 0)
            return -1;
        if (!anchor_stale_urgent(fd, f))
            break;                    /* data or EOF first: the read takes it */
    }
    errno = e;
    return 0;
}
