/*
 * rs_opts.c - socket options: SOL_SOCKET, IPPROTO_TCP, IPPROTO_IPV6 and
 * SOL_RDMA (0x10000; sizes only before the connection exists).
 */
#include "rs_sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

/* what TCP_MAXSEG and TCP_INFO report: no segments on RDMA, a plausible size */
#define RS_TCP_MAXSEG 2048

#define SOL_RDMA_LEVEL 0x10000
enum { RS_OPT_SQSIZE, RS_OPT_RQSIZE, RS_OPT_INLINE, RS_OPT_IOMAPSIZE, RS_OPT_ROUTE };

static int get_int(const void *val, socklen_t len, int *out)
{
    if (!val || len < sizeof(int)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(out, val, sizeof(int));
    return 0;
}

static int put_bytes(void *val, socklen_t *len, const void *src, socklen_t n)
{
    if (!val || !len) {
        errno = EFAULT;
        return -1;
    }
    memcpy(val, src, *len < n ? *len : n);
    *len = *len < n ? *len : n;
    return 0;
}

static int put_int(void *val, socklen_t *len, int v)
{
    return put_bytes(val, len, &v, sizeof(v));
}

static int endpoint_exists(struct rsock *s)
{
    return s->cq != NULL || s->state >= RS_RESOLVING_ADDR;
}

static int set_buf_size(struct rsock *s, uint32_t *field, int v)
{
    if (endpoint_exists(s))
        return 0;                        /* like rsockets: effective only early */
    if (v <= 0) {
        errno = EINVAL;
        return -1;
    }
    uint64_t b = (uint64_t)v * 2;
    *field = b > (1u << 30) ? (1u << 30) : (uint32_t)b;
    return 0;
}

static int set_timeout(struct timeval *tv, const void *val, socklen_t len)
{
    if (!val || len < sizeof(struct timeval)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(tv, val, sizeof(*tv));
    return 0;
}

static int set_socket_level(struct rsock *s, int name, const void *val, socklen_t len)
{
    int v;
    switch (name) {
    case SO_RCVTIMEO: return set_timeout(&s->rcvtimeo, val, len);
    case SO_SNDTIMEO: return set_timeout(&s->sndtimeo, val, len);
    case SO_LINGER:
        if (!val || len < sizeof(struct linger)) {
            errno = EINVAL;
            return -1;
        }
        memcpy(&s->linger, val, sizeof(s->linger));
        return 0;
    }
    if (get_int(val, len, &v))
        return -1;
    switch (name) {
    case SO_REUSEADDR:
        s->reuseaddr = !!v;
        return s->state == RS_INIT && s->id
               ? rdma_set_option(s->id, RDMA_OPTION_ID, RDMA_OPTION_ID_REUSEADDR,
                                 &v, sizeof(v))
               : 0;
    case SO_RCVBUF: return set_buf_size(s, &s->rbuf_size, v);
    case SO_SNDBUF: return set_buf_size(s, &s->sbuf_size, v);
    case SO_KEEPALIVE:
        s->keepalive = !!v;
        return s->state >= RS_CONNECTED ? rs_keepalive_arm(s) : 0;
    case SO_OOBINLINE: return 0;
    /* Stored, no effect: an rsocket listener is not shared (a second bind
     * of the port fails clearly at bind), and priorities do not apply to
     * the RDMA queue pair. */
    case SO_REUSEPORT: s->reuseport = !!v; return 0;
    case SO_PRIORITY:  return 0;
    }
    errno = ENOPROTOOPT;
    return -1;
}

static int set_keepalive_param(struct rsock *s, int name, int v)
{
    int max = name == TCP_KEEPCNT ? 127 : name == TCP_KEEPINTVL ? 32767 : INT32_MAX;
    int min = name == TCP_USER_TIMEOUT ? 0 : 1;
    if (v < min || v > max) {
        errno = EINVAL;
        return -1;
    }
    if (name == TCP_KEEPCNT)
        s->keepcnt = v;
    else if (name == TCP_KEEPINTVL)
        s->keepintvl_s = v;
    else
        s->user_timeout_ms = v;
    /* the timer serves keepalive and TCP_USER_TIMEOUT: (re)armed, or
     * stopped when neither is set */
    return s->state >= RS_CONNECTED ? rs_keepalive_arm(s) : 0;
}

static int set_tcp_level(struct rsock *s, int name, const void *val, socklen_t len)
{
    int v;
    if (name == TCP_CONGESTION)
        return val ? 0 : (errno = EFAULT, -1);       /* a string, not an int */
    if (get_int(val, len, &v))
        return -1;
    switch (name) {
    case TCP_NODELAY: s->nodelay = !!v; return 0;   /* every send posts at once */
    case TCP_KEEPIDLE:
        if (v <= 0) {
            errno = EINVAL;
            return -1;
        }
        s->keepidle_s = v;
        return s->keepalive && s->state >= RS_CONNECTED ? rs_keepalive_arm(s) : 0;
    /* Keepalive as TCP's (rs_keepalive_arm), with the kernel's ranges. */
    case TCP_KEEPCNT:
    case TCP_KEEPINTVL:
    case TCP_USER_TIMEOUT:
        return set_keepalive_param(s, name, v);
    /* TCP_CORK: data is not held back, every send posts at once (as with
     * TCP_NODELAY); a corked sender only loses the coalescing, never data
     * or order (nginx tcp_nopush). Stored for getsockopt, no effect. */
    case TCP_CORK:         s->cork = !!v; return 0;
    case TCP_DEFER_ACCEPT: s->defer_accept_s = v < 0 ? 0 : v; return 0;
    case TCP_FASTOPEN:     s->fastopen = v; return 0;
    case TCP_QUICKACK:     s->quickack_off = !v; return 0;
    case TCP_CONGESTION:
    case TCP_MAXSEG:
    case TCP_LINGER2:
    case TCP_WINDOW_CLAMP:
    case TCP_SYNCNT:
        return 0;
    }
    errno = ENOPROTOOPT;
    return -1;
}

static int set_rdma_level(struct rsock *s, int name, const void *val, socklen_t len)
{
    int v;
    if (name == RS_OPT_ROUTE) {
        errno = ENOPROTOOPT;             /* path records: not supported yet */
        return -1;
    }
    if (get_int(val, len, &v))
        return -1;
    if (endpoint_exists(s) || v < 0) {
        errno = EINVAL;
        return -1;
    }
    uint32_t u = v > 0xfffe ? 0xfffe : (uint32_t)v;
    switch (name) {
    case RS_OPT_SQSIZE:    s->sq_size = (uint16_t)(u < 16 ? 16 : u); return 0;
    case RS_OPT_RQSIZE:    s->rq_size = (uint16_t)(u < 16 ? 16 : u); return 0;
    case RS_OPT_INLINE:    s->sq_inline = u; return 0;
    case RS_OPT_IOMAPSIZE: s->target_iomap_size = (uint16_t)(u > 0x7f00 ? 0x7f00 : u); return 0;
    }
    errno = ENOPROTOOPT;
    return -1;
}

int rs_e_setsockopt(struct rsock *s, int level, int name, const void *val, socklen_t len)
{
    int r;
    pthread_mutex_lock(&s->lock);
    if (rs_check_usable(s))
        r = -1;
    else if (level == SOL_SOCKET)
        r = set_socket_level(s, name, val, len);
    else if (level == IPPROTO_TCP)
        r = set_tcp_level(s, name, val, len);
    else if (level == SOL_RDMA_LEVEL)
        r = set_rdma_level(s, name, val, len);
    else if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY && !get_int(val, len, &r)) {
        s->afonly = !!r;
        r = !s->id ? 0 : rdma_set_option(s->id, RDMA_OPTION_ID, RDMA_OPTION_ID_AFONLY,
                                         &s->afonly, sizeof(s->afonly));
    } else if ((level == IPPROTO_IP && name == IP_TOS) ||
               (level == IPPROTO_IPV6 && name == IPV6_TCLASS)) {
        r = get_int(val, len, &s->tos);  /* stored, no effect on RDMA */
    } else if (level == IPPROTO_IP || level == IPPROTO_IPV6)
        r = 0;                           /* the other IP options: accepted, no effect */
    else {
        errno = ENOPROTOOPT;
        r = -1;
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int get_socket_level(struct rsock *s, int name, void *val, socklen_t *len)
{
    int e;
    switch (name) {
    case SO_ERROR:
        e = s->err;
        s->err = 0;
        return put_int(val, len, e);
    case SO_TYPE:      return put_int(val, len, SOCK_STREAM);
    case SO_DOMAIN:    return put_int(val, len, s->domain);
    case SO_PROTOCOL:  return put_int(val, len, IPPROTO_TCP);
    case SO_ACCEPTCONN: return put_int(val, len, s->state == RS_LISTENING);
    case SO_REUSEADDR: return put_int(val, len, s->reuseaddr);
    case SO_KEEPALIVE: return put_int(val, len, s->keepalive);
    case SO_RCVBUF:    return put_int(val, len, (int)s->rbuf_size);
    case SO_SNDBUF:    return put_int(val, len, (int)s->sbuf_size);
    case SO_LINGER:    return put_bytes(val, len, &s->linger, sizeof(s->linger));
    case SO_RCVTIMEO:  return put_bytes(val, len, &s->rcvtimeo, sizeof(s->rcvtimeo));
    case SO_SNDTIMEO:  return put_bytes(val, len, &s->sndtimeo, sizeof(s->sndtimeo));
    case SO_REUSEPORT: return put_int(val, len, s->reuseport);
    case SO_OOBINLINE: return put_int(val, len, 0);
    }
    errno = ENOPROTOOPT;
    return -1;
}

/* The TCP state a program would see for this socket (TCP_INFO). */
static uint8_t tcp_state_of(const struct rsock *s)
{
    switch (s->state) {
    case RS_LISTENING:    return TCP_LISTEN;
    case RS_CONNECTED:    return TCP_ESTABLISHED;
    case RS_DISCONNECTED: return TCP_CLOSE_WAIT;
    case RS_RESOLVING_ADDR:
    case RS_RESOLVING_ROUTE:
    case RS_CONNECTING:   return TCP_SYN_SENT;
    case RS_ACCEPTING:    return TCP_SYN_RECV;
    default:              return TCP_CLOSE;
    }
}

/* TCP_INFO: programs (iperf3's end-of-test statistics) fail without it.
 * RDMA has no TCP counters, so everything but the state and the segment
 * size (as TCP_MAXSEG reports) is 0: no retransmits, no RTT estimate. */
static int get_tcp_info(struct rsock *s, void *val, socklen_t *len)
{
    struct tcp_info ti;
    memset(&ti, 0, sizeof(ti));
    ti.tcpi_state = tcp_state_of(s);
    ti.tcpi_snd_mss = ti.tcpi_rcv_mss = RS_TCP_MAXSEG;
    return put_bytes(val, len, &ti, sizeof(ti));
}

static int get_tcp_level(struct rsock *s, int name, void *val, socklen_t *len)
{
    switch (name) {
    case TCP_NODELAY:  return put_int(val, len, s->nodelay);
    case TCP_KEEPIDLE: return put_int(val, len, s->keepidle_s ? s->keepidle_s : 7200);
    case TCP_MAXSEG:   return put_int(val, len, RS_TCP_MAXSEG);
    case TCP_INFO:     return get_tcp_info(s, val, len);
    case TCP_CORK:     return put_int(val, len, s->cork);
    case TCP_KEEPINTVL: return put_int(val, len, s->keepintvl_s ? s->keepintvl_s : 75);
    case TCP_KEEPCNT:  return put_int(val, len, s->keepcnt ? s->keepcnt : 9);
    case TCP_DEFER_ACCEPT: return put_int(val, len, s->defer_accept_s);
    case TCP_FASTOPEN: return put_int(val, len, s->fastopen);
    case TCP_USER_TIMEOUT: return put_int(val, len, s->user_timeout_ms);
    case TCP_QUICKACK: return put_int(val, len, !s->quickack_off);
    }
    errno = ENOPROTOOPT;
    return -1;
}

static int get_rdma_level(struct rsock *s, int name, void *val, socklen_t *len)
{
    switch (name) {
    case RS_OPT_SQSIZE:    return put_int(val, len, s->sq_size);
    case RS_OPT_RQSIZE:    return put_int(val, len, s->rq_size);
    case RS_OPT_INLINE:    return put_int(val, len, (int)s->sq_inline);
    case RS_OPT_IOMAPSIZE: return put_int(val, len, s->target_iomap_size);
    }
    errno = ENOPROTOOPT;
    return -1;
}

int rs_e_getsockopt(struct rsock *s, int level, int name, void *val, socklen_t *len)
{
    int r;
    if (!val || !len) {
        errno = EFAULT;
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    if (rs_check_usable(s))
        r = -1;
    else if (level == SOL_SOCKET)
        r = get_socket_level(s, name, val, len);
    else if (level == IPPROTO_TCP)
        r = get_tcp_level(s, name, val, len);
    else if (level == SOL_RDMA_LEVEL)
        r = get_rdma_level(s, name, val, len);
    else if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY)
        r = put_int(val, len, s->afonly > 0);
    else if ((level == IPPROTO_IP && name == IP_TOS) ||
             (level == IPPROTO_IPV6 && name == IPV6_TCLASS))
        r = put_int(val, len, s->tos);
    else {
        errno = ENOPROTOOPT;
        r = -1;
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}
