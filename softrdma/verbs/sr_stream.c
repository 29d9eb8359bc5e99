/* softrdma: reading framed messages from a non-blocking stream; payloads
 * go straight into registered memory (readv) once buffered bytes are used. */
#include "sr_internal.h"
#include "sr_sys.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* recvmsg keeping up to two passed descriptors in rx->fds (more are
 * closed: a peer cannot make us hold descriptors we did not ask for). */
static ssize_t sr_rx_recv_fds(int fd, struct sr_rx *rx)
{
    union { struct cmsghdr h; char b[CMSG_SPACE(4 * sizeof(int))]; } cm;
    struct iovec iov = { rx->buf, sizeof rx->buf };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cm.b, .msg_controllen = sizeof cm.b };
    ssize_t n = sr_sys_recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int got[4];
        memcpy(got, CMSG_DATA(c), (size_t)(k > 4 ? 4 : k) * sizeof(int));
        for (int i = 0; i < k && i < 4; i++) {
            if (*rx->nfds < 2)
                rx->fds[(*rx->nfds)++] = got[i];
            else
                sr_sys_close(got[i]);
        }
    }
    return n;
}

ssize_t sr_rx_fill(int fd, struct sr_rx *rx)
{
    if (rx->off < rx->len)
        return (ssize_t)(rx->len - rx->off);
    rx->off = rx->len = 0;
    ssize_t n = rx->fds ? sr_rx_recv_fds(fd, rx) : sr_sys_read(fd, rx->buf, sizeof rx->buf);
    if (n > 0) {
        rx->len = (size_t)n;
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return -2;
    return n;   /* 0 = EOF, -1 = error */
}

int sr_rx_take(struct sr_rx *rx, void *dst, size_t want, size_t *got)
{
    size_t n = rx->len - rx->off;
    if (n > want - *got)
        n = want - *got;
    memcpy((char *)dst + *got, rx->buf + rx->off, n);
    rx->off += n;
    *got += n;
    return *got == want;
}

/* Returns 1 complete, 0 need more, -1 EOF/error. */
int sr_rx_need(int fd, struct sr_rx *rx, void *dst, size_t want, size_t *got)
{
    while (*got < want) {
        ssize_t r = sr_rx_fill(fd, rx);
        if (r == -2)
            return 0;
        if (r <= 0)
            return -1;
        sr_rx_take(rx, dst, want, got);
    }
    return 1;
}

void sr_iov_advance(struct iovec **iov, int *niov, size_t n)
{
    while (n && *niov) {
        if (n < (*iov)->iov_len) {
            (*iov)->iov_base = (char *)(*iov)->iov_base + n;
            (*iov)->iov_len -= n;
            return;
        }
        n -= (*iov)->iov_len;
        (*iov)++;
        (*niov)--;
    }
    while (*niov && (*iov)->iov_len == 0) {
        (*iov)++;
        (*niov)--;
    }
}

/* readv into at most `cap` bytes of iov: the posted buffers may be longer
 * than the message, and bytes past its end belong to the next message on
 * the stream. The last entry used is trimmed for the call and restored. */
static ssize_t sr_readv_capped(int fd, struct iovec *iov, int n, size_t cap)
{
    int cnt = 0;
    size_t sum = 0;
    while (cnt < n && cnt < 64 && sum < cap)
        sum += iov[cnt++].iov_len;
    size_t saved = iov[cnt - 1].iov_len;
    if (sum > cap)
        iov[cnt - 1].iov_len -= sum - cap;
    ssize_t r = sr_sys_readv(fd, iov, cnt);
    iov[cnt - 1].iov_len = saved;
    return r;
}

/* iov NULL means discard. Never consumes more than *left bytes of the
 * stream, whatever the iov's total length. */
int sr_rx_payload(int fd, struct sr_rx *rx, struct iovec *iov, int *niov, size_t *left)
{
    static char sink[65536];    /* discarded bytes only; contents never read */
    struct iovec *cur = iov;
    int n = *niov;
    /* buffered bytes first */
    while (*left && rx->off < rx->len) {
        size_t k = rx->len - rx->off;
        if (k > *left)
            k = *left;
        if (cur && n) {
            if (k > cur->iov_len)
                k = cur->iov_len;
            memcpy(cur->iov_base, rx->buf + rx->off, k);
            sr_iov_advance(&cur, &n, k);
        }
        rx->off += k;
        *left -= k;
    }
    while (*left) {
        ssize_t r;
        if (cur && n) {
            r = sr_readv_capped(fd, cur, n, *left);
        } else {
            r = sr_sys_read(fd, sink, *left < sizeof sink ? *left : sizeof sink);
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (r <= 0)
            return -1;
        if (cur && n)
            sr_iov_advance(&cur, &n, (size_t)r);
        *left -= (size_t)r;
    }
    if (cur && cur != iov)
        memmove(iov, cur, (size_t)n * sizeof *iov);
    *niov = n;
    return *left == 0;
}
