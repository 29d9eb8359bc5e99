/*
 * rs_anchor_policy.c - the long-lived policy's announcements (ABI 1.3,
 * anchor_policy; doc/rsocket-framework.md "Long-lived policy"): one urgent
 * byte each way, 0xC0 + code, before any in-band byte of its sender. The
 * active announces at connect; the passive answers only an announcement
 * it read (a plain client never gets an urgent byte); each decides what
 * the peer's stream starts with without consuming an in-band byte.
 */
#include "rs_anchor.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* The urgent byte first, then SIOCATMARK - never the other way round.
 * SIOCATMARK alone is also true at the hole an urgent byte read before
 * leaves in the stream (until an in-band read passes it: the passive's
 * announcement, the active's answer), and a newer urgent byte arriving
 * right after that look moves the head past the hole (tcp_check_urg): its
 * byte, read with MSG_OOB, then lies further on, behind data the
 * application has not read (the EPROTO race of the long-lived switch).
 * Once the pending urgent byte is seen, its pointer is fixed (the peer
 * sends no other before this end answers), so a look after it is
 * decisive. EINVAL: nothing pending, at most a hole at the head. */
int rs_anc_mark_at_head(int kfd, uint8_t *v)
{
    int at = 0;
    ssize_t n = recv(kfd, v, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT);
    int err = errno;
    if (n != 1 && !(n < 0 && (err == EAGAIN || err == EWOULDBLOCK)))
        return 0;
    if (ioctl(kfd, SIOCATMARK, &at) < 0 || !at)
        return 0;                /* pending, but behind in-band data */
    if (n != 1)
        return -1;               /* at the head, its byte not here yet */
    return recv(kfd, v, 1, MSG_OOB | MSG_DONTWAIT) == 1 ? 1 : 0;
}

/* What the peer's stream starts with, decided without a race: a peek,
 * then the mark (the peek passes an urgent byte at the head, so data it
 * saw with the mark at the head lies after that byte). 1 with *v: an
 * urgent byte (read), -1: in-band data or EOF first, 0: nothing yet. */
static int head_of_stream(int kfd, uint8_t *v)
{
    uint8_t b;
    ssize_t p = recv(kfd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    int perr = errno;
    int mk = rs_anc_mark_at_head(kfd, v);
    if (mk == 1)
        return 1;
    if (mk == -1 || (p < 0 && (perr == EAGAIN || perr == EWOULDBLOCK || perr == EINTR)))
        return 0;
    return -1;
}

static int ll_send(int kfd, int code)
{
    struct sockaddr_storage peer;
    socklen_t len;
    if (code < 1 || code > RS_ANC_LL_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (rs_anc_addr(kfd, 1, &peer, &len))
        return -1;
    if (rs_anc_negcache_hit(&peer)) {
        errno = ENOPROTOOPT;     /* answered nothing recently: stay on TCP */
        return -1;
    }
    return rs_anc_urgent_send(kfd, (uint8_t)(RS_ANC_LL_BASE + code));
}

/* Passive: answer only an announcement that was read (a plain client never
 * gets an urgent byte). */
static int ll_answer(int kfd, int *code)
{
    uint8_t v;
    if (rs_anc_urgent_peek(kfd, &v) && (v == RS_ANC_HELLO || v == RS_ANC_KICK))
        return 2;                /* upgrade first: anchor() reads it */
    int h = head_of_stream(kfd, &v);
    if (h <= 0)
        return h;
    if (!rs_anc_ll_value(v))
        return -1;
    int agreed = v - RS_ANC_LL_BASE;
    if (*code > agreed && *code <= RS_ANC_LL_MAX)
        agreed = *code;
    if (rs_anc_urgent_send(kfd, (uint8_t)(RS_ANC_LL_BASE + agreed)))
        return -1;               /* the active sees data without an answer: TCP */
    *code = agreed;
    return 1;
}

/* Active: the answer precedes every in-band byte of the passive. */
static int ll_peer(int kfd, int *code)
{
    uint8_t v;
    struct sockaddr_storage peer;
    socklen_t len;
    int h = head_of_stream(kfd, &v);
    if (h == 1 && rs_anc_ll_value(v)) {
        *code = v - RS_ANC_LL_BASE;
        if (rs_anc_addr(kfd, 1, &peer, &len) == 0)
            rs_anc_poscache_add(&peer);
        return 1;
    }
    if (h == 0)
        return 0;
    if (rs_anc_addr(kfd, 1, &peer, &len) == 0)
        rs_anc_negcache_add(&peer);      /* a plain server: announce nothing for a while */
    return -1;
}

int rs_anchor_policy(int kfd, int op, int *code)
{
    if (kfd < 0 || !code) {
        errno = EINVAL;
        return -1;
    }
    rs_global_init_once();
    switch (op) {
    case NSTACK_LL_SEND:   return ll_send(kfd, *code);
    case NSTACK_LL_ANSWER: return ll_answer(kfd, code);
    case NSTACK_LL_PEER:   return ll_peer(kfd, code);
    default:
        errno = EINVAL;
        return -1;
    }
}

