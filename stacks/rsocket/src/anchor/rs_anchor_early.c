/*
 * rs_anchor_early.c - a reply written while the handshake runs.
 *
 * A fresh kernel socket takes a small write at once, and some servers
 * rely on it: redis answers a client it refuses (protected mode,
 * maxclients) with one nonblocking write right after accept() and closes,
 * ignoring the result. While an accepted connection is still upgrading,
 * such a send would get EAGAIN and the reply would be lost. Instead the
 * first send of a passive end (at most RS_ANC_EARLY_MAX bytes, taken
 * whole) is kept here and leaves first: over RDMA once upgraded (from the
 * engine's progress, since the server may only read next), in-band on
 * TCP when the connection stays there (fallback()), and close() finishes
 * a handshake the peer committed to (bounded) before it lets them go.
 *
 * Fields (struct rsock): early, early_len, early_busy; socket lock held
 * for all of them.
 */
#include "rs_anchor_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* What a fresh TCP socket surely takes (its send buffer is larger). */
#define RS_ANC_EARLY_MAX 4096u
/* close(): the longest wait for the peer's window to take them */
#define RS_ANC_EARLY_CLOSE_S 2

static int passive_upgrading(const struct rsock *s)
{
    int p = s->anc_phase;
    return s->anc && (p == ANC_P_HELLO || p == ANC_P_KICK || p == ANC_P_OFFERING ||
                      p == ANC_P_LISTEN || p == ANC_P_ACCEPTING);
}

ssize_t rs_anchor_early_take(struct rsock *s, const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    pthread_mutex_lock(&s->lock);
    ssize_t r = -1;
    if (!passive_upgrading(s) || s->early_len || total == 0 || total > RS_ANC_EARLY_MAX) {
        errno = EAGAIN;
        goto out;
    }
    s->early = malloc(total);
    if (!s->early) {
        errno = EAGAIN;
        goto out;
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        memcpy(s->early + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    s->early_len = (uint32_t)total;
    r = (ssize_t)total;
out:
    pthread_mutex_unlock(&s->lock);
    return r;
}

static void early_consumed(struct rsock *s, size_t n)
{
    s->early_len -= (uint32_t)n;
    if (s->early_len)
        memmove(s->early, s->early + n, s->early_len);
    else {
        free(s->early);
        s->early = NULL;
    }
}

void rs_anchor_early_drain(struct rsock *s, int wait)
{
    if (!s->early_len || s->early_busy || s->anc_phase != ANC_UPGRADED)
        return;
    s->early_busy = 1;          /* the send's own progress passes come back here */
    while (s->early_len) {
        struct iovec v = { s->early, s->early_len };
        ssize_t k = rs_sendv_locked(s, &v, 1, wait ? 0 : MSG_DONTWAIT);
        if (k <= 0)
            break;
        early_consumed(s, (size_t)k);
    }
    s->early_busy = 0;
}

void rs_anchor_early_to_tcp(struct rsock *s, int kfd)
{
    while (s->early_len) {
        /* write(), not send(): a sandboxed child may allow only that */
        ssize_t k = write(kfd, s->early, s->early_len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rs_log(2, "anchor: %u bytes sent while upgrading could not go on TCP: %s", s->early_len,
                   k < 0 ? strerror(errno) : "nothing written");
            break;
        }
        early_consumed(s, (size_t)k);
    }
    free(s->early);
    s->early = NULL;
    s->early_len = 0;
}

/* The reply went in-band and the socket closes: the peer's hello (an
 * urgent byte, never read in-band) is passed if nothing follows it, and
 * FIN goes out now, so that the peer reads the reply and EOF as from a
 * plain server, not a reset for bytes left unread. */
static void fin_after_reply(int kfd)
{
    int mark = 0;
    uint8_t b;
    if (ioctl(kfd, SIOCATMARK, &mark) == 0 && mark) {
        ssize_t p = recv(kfd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (p == 0 || (p < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
            (void)recv(kfd, &b, 1, MSG_DONTWAIT);
    }
    (void)shutdown(kfd, SHUT_WR);
}

void rs_anchor_early_close(struct rsock *s)
{
    if (s->fork_gen != __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED))
        return;                 /* a forked child's copy: the reply is its parent's */
    pthread_mutex_lock(&s->lock);
    int pending = s->early_len != 0;
    int uncommitted = s->anc_phase == ANC_P_HELLO || s->anc_phase == ANC_P_KICK;
    pthread_mutex_unlock(&s->lock);
    if (!pending)
        return;
    if (uncommitted) {
        /* closing: an upgrade is of no use now, TCP carries the reply */
        pthread_mutex_lock(&s->lock);
        if (s->anc_phase == ANC_P_HELLO || s->anc_phase == ANC_P_KICK) {
            rs_anc_fallback(s, "closed while upgrading, with a reply to send");
            fin_after_reply(s->anc->kfd);
            rs_anc_linger(s->anc->kfd);   /* the peer's hello may still come */
        }
        pthread_mutex_unlock(&s->lock);
    }
    /* the peer committed: let the handshake end (bounded), then the reply
     * goes the way it ended (RDMA: below; TCP: in fallback()) */
    (void)rs_anchor_gate(s, 0, RS_GATE_WAIT);
    pthread_mutex_lock(&s->lock);
    /* as a lingering close: blocking, at most RS_ANC_EARLY_CLOSE_S (the
     * socket is going away, its own mode no longer matters) */
    int nb = s->nonblock;
    struct timeval tv = s->sndtimeo;
    s->nonblock = 0;
    if (!tv.tv_sec && !tv.tv_usec)
        s->sndtimeo = (struct timeval){ .tv_sec = RS_ANC_EARLY_CLOSE_S };
    rs_anchor_early_drain(s, 1);
    s->nonblock = nb;
    s->sndtimeo = tv;
    if (s->early_len)
        rs_log(2, "anchor: closed before %u bytes sent while upgrading could leave", s->early_len);
    pthread_mutex_unlock(&s->lock);
}
