/*
 * rs_anchor_tcp.c - the TCP side of the anchor handshake: urgent bytes,
 * the two in-band messages, addresses, and the table of peers that did
 * not answer a hello. Every call here is nonblocking (MSG_DONTWAIT): the
 * TCP socket belongs to the dispatcher and may be in blocking mode.
 *
 * Linux urgent data, as used here (receiver without SO_OOBINLINE):
 *   - recv(MSG_OOB) returns the byte once it arrived, EAGAIN while only
 *     the urgent pointer is known, EINVAL when there is none (or it was
 *     read already);
 *   - the byte keeps its place in the receive queue until an in-band read
 *     passes it (it is skipped then). A socket closed with it still queued
 *     counts as closed with unread data and sends RST instead of FIN, so
 *     the passive end skips it explicitly (rs_anc_skip_mark) and the
 *     active end's read of OFFER passes it.
 */
#include "rs_anchor.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int rs_anc_urgent_send(int kfd, uint8_t v)
{
    ssize_t n = send(kfd, &v, 1, MSG_OOB | MSG_DONTWAIT | MSG_NOSIGNAL);
    return n == 1 ? 0 : -1;
}

static int urgent_read(int kfd, uint8_t *v, int flags)
{
    ssize_t n = recv(kfd, v, 1, MSG_OOB | MSG_DONTWAIT | flags);
    if (n == 1)
        return 1;
    if (n == 0 || errno == EINVAL || errno == EAGAIN || errno == EWOULDBLOCK ||
        errno == EINTR)
        return 0;
    return -1;
}

/* An urgent byte read out of band stays in the receive queue until an
 * in-band read passes it. An application that never reads (the sending
 * end of an FTP data connection) would then close with "unread data",
 * which Linux answers with a reset instead of a FIN, discarding what it
 * had not sent yet. When that byte is all the queue holds, a 1-byte read
 * passes it and finds nothing (EAGAIN). Only where this end settles on
 * TCP (a decline, a late byte): the handshake reads its messages at the
 * mark itself. The peer sends nothing in-band until it hears from this
 * end (or gives up waiting), so a byte of the application arriving
 * between the look and the read is not expected. */
static void pass_lone_mark(int kfd)
{
    int atmark = 0;
    uint8_t b;
    /* at the mark, a peek skips the urgent byte: EAGAIN = nothing else */
    if (ioctl(kfd, SIOCATMARK, &atmark) || !atmark || rs_anc_inband(kfd) != -1)
        return;
    if (recv(kfd, &b, 1, MSG_DONTWAIT) == 1)
        rs_log(3, "anchor: an in-band byte came right after the peer's urgent byte and was taken");
}

int rs_anc_urgent_recv(int kfd, uint8_t *v)
{
    return urgent_read(kfd, v, 0);
}

int rs_anc_urgent_take(int kfd, uint8_t *v)
{
    int r = urgent_read(kfd, v, 0);
    if (r == 1)
        pass_lone_mark(kfd);
    return r;
}

int rs_anc_urgent_peek(int kfd, uint8_t *v)
{
    return urgent_read(kfd, v, MSG_PEEK) == 1;
}

/* An application that set SO_OOBINLINE gets urgent bytes in its stream:
 * a hello or KICK of ours at the urgent mark is taken out (1), so that
 * the application never reads it; the connection then stays on TCP. */
int rs_anc_inline_taken(int kfd, uint8_t *v, int any)
{
    int on = 0, atmark = 0;
    socklen_t len = sizeof(on);
    uint8_t b;
    if (getsockopt(kfd, SOL_SOCKET, SO_OOBINLINE, &on, &len) || !on ||
        ioctl(kfd, SIOCATMARK, &atmark) || !atmark ||
        recv(kfd, &b, 1, MSG_PEEK | MSG_DONTWAIT) != 1 ||
        (any ? !rs_anc_ours(b) : b != RS_ANC_HELLO && b != RS_ANC_KICK))
        return 0;
    if (recv(kfd, &b, 1, MSG_DONTWAIT) != 1)
        return 0;
    if (v)
        *v = b;
    return 1;
}

int rs_anc_inband(int kfd)
{
    uint8_t b;
    ssize_t n = recv(kfd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        return 1;
    if (n == 0)
        return 0;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
}

/* After the peer's KICK: no in-band byte may follow it (the peer is
 * committed and waits for our OFFER), so a read passes the urgent mark and
 * finds nothing else (EAGAIN): 0. An in-band byte behind the mark means
 * the peer did not commit after all (it sent application data): it is
 * left where it is, for the application, and 1 tells the caller to stay
 * on TCP. (A read here used to take that byte: once, a stream lost its
 * first byte - doc/rsocket-framework.md, "a byte taken at the KICK".) */
int rs_anc_skip_mark(int kfd)
{
    uint8_t b;
    if (recv(kfd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
        rs_log(3, "anchor: the peer sent data behind its KICK: left for the application, "
                  "the connection stays on TCP");
        return 1;
    }
    if (recv(kfd, &b, 1, MSG_DONTWAIT) > 0)     /* raced in since the peek */
        rs_log(3, "anchor: unexpected in-band byte from the peer during the handshake");
    return 0;
}

static void msg_encode(uint8_t msg[RS_ANC_MSG_LEN], int type, uint16_t port)
{
    memcpy(msg, RS_ANC_MAGIC, 4);
    msg[4] = RS_ANC_VERSION;
    msg[5] = (uint8_t)type;
    uint16_t be = htons(port);
    memcpy(msg + 6, &be, 2);
}

/* 8 bytes on a connection that carried nothing else in this direction:
 * the send buffer always has room, so a short write is an error. */
int rs_anc_send_whole(int kfd, const void *msg, size_t len)
{
    ssize_t n = send(kfd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == (ssize_t)len)
        return 0;
    if (n >= 0)
        errno = EPROTO;
    return -1;
}

int rs_anc_msg_send(int kfd, int type, uint16_t port)
{
    uint8_t msg[RS_ANC_MSG_LEN];
    msg_encode(msg, type, port);
    return rs_anc_send_whole(kfd, msg, sizeof(msg));
}

int rs_anc_msg_recv(int kfd, int type, uint16_t *port)
{
    uint8_t msg[RS_ANC_MSG_LEN], want[RS_ANC_MSG_LEN];
    ssize_t n = recv(kfd, msg, sizeof(msg), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) {
        errno = 0;
        return -1;
    }
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -2;
    msg_encode(want, type, 0);
    if (memcmp(msg, want, (size_t)n < 6 ? (size_t)n : 6) != 0) {
        errno = ENOPROTOOPT;
        return -1;
    }
    if (n < (ssize_t)sizeof(msg))
        return 0;
    if (recv(kfd, msg, sizeof(msg), MSG_DONTWAIT) != (ssize_t)sizeof(msg)) {
        errno = EPROTO;
        return -2;
    }
    uint16_t be;
    memcpy(&be, msg + 6, 2);
    *port = ntohs(be);
    return 1;
}

void rs_anc_set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
}

uint16_t rs_anc_get_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

/* An IPv6 socket talking to an IPv4 peer uses mapped addresses; the
 * RDMA side is addressed as plain IPv4. */
int rs_anc_addr(int kfd, int peer, struct sockaddr_storage *ss, socklen_t *len)
{
    *len = sizeof(*ss);
    int r = peer ? getpeername(kfd, (struct sockaddr *)ss, len)
                 : getsockname(kfd, (struct sockaddr *)ss, len);
    if (r < 0)
        return -1;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
        struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = s6->sin6_port };
        memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
        memset(ss, 0, sizeof(*ss));
        memcpy(ss, &s4, sizeof(s4));
    }
    *len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    return 0;
}

int rs_anc_tcp_connecting(int kfd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (getsockopt(kfd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return 0;
    return ti.tcpi_state == TCP_SYN_SENT || ti.tcpi_state == TCP_SYN_RECV;
}

/* ---- peer caches -------------------------------------------------------
 * Negative: a plain server answers no hello: each connection to it would
 * wait the hello timeout. Positive: a framework server answered one; its
 * next hello may be late (the server accepts late under load) and must
 * not be taken for a plain server's silence. Per address and port, in
 * small tables (oldest entry replaced). Guarded by nc_lock.
 *
 * A negative entry backs off: its first span is RS_ANCHOR_NEGCACHE_MS / 32
 * and each miss that comes within twice the span of the last doubles it,
 * up to RS_ANCHOR_NEGCACHE_MS. A framework server that was only slow to
 * accept its first connection (a pre-forked worker still loading its
 * application: gunicorn's took a second) would otherwise send every
 * connection of a long-running client (ab, a connection pool) over TCP for
 * the whole 30 s; now it is asked again within a second. A plain server
 * costs six hello waits in its first minute instead of one. A hello
 * answered clears the negative entry. Positive entries last
 * RS_ANCHOR_NEGCACHE_MS. */
#define RS_ANC_NC_SLOTS 64
#define RS_ANC_NC_FIRST_DIV 32

struct nc_entry {
    uint8_t key[18];             /* address (16, v4 in the first 4) + port */
    int64_t until_ms;
    int64_t span_ms;             /* negative: the span last given */
};
static struct nc_entry nc_table[RS_ANC_NC_SLOTS], pc_table[RS_ANC_NC_SLOTS];
static pthread_mutex_t nc_lock = PTHREAD_MUTEX_INITIALIZER;

static void nc_key(const struct sockaddr_storage *ss, uint8_t key[18])
{
    memset(key, 0, 18);
    if (ss->ss_family == AF_INET6)
        memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    else
        memcpy(key, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    uint16_t port = rs_anc_get_port(ss);
    memcpy(key + 16, &port, 2);
}

void rs_anc_fork_child(void)
{
    pthread_mutex_init(&nc_lock, NULL);
}

/* The entry of key in t, live or expired, or NULL (nc_lock held). */
static struct nc_entry *cache_find(struct nc_entry *t, const uint8_t key[18])
{
    for (int i = 0; i < RS_ANC_NC_SLOTS; i++)
        if (!memcmp(t[i].key, key, 18))
            return &t[i];
    return NULL;
}

/* The span of a new negative entry after `e` (NULL: none). */
static int64_t neg_span(const struct nc_entry *e, int64_t now)
{
    int64_t max = rs_tun.anchor_negcache_ms;
    int64_t first = max / RS_ANC_NC_FIRST_DIV > 0 ? max / RS_ANC_NC_FIRST_DIV : max;
    if (!e || e->span_ms <= 0 || now > e->until_ms + e->span_ms)
        return first;
    return 2 * e->span_ms < max ? 2 * e->span_ms : max;
}

/* Remembers peer in t; negative: with the back-off above. */
static void cache_add(struct nc_entry *t, const struct sockaddr_storage *peer, int negative)
{
    if (rs_tun.anchor_negcache_ms == 0)
        return;
    uint8_t key[18];
    nc_key(peer, key);
    int64_t now = rs_now_ms();
    pthread_mutex_lock(&nc_lock);
    struct nc_entry *slot = cache_find(t, key);
    int64_t span = negative ? neg_span(slot, now) : rs_tun.anchor_negcache_ms;
    if (!slot) {
        slot = &t[0];
        for (int i = 1; i < RS_ANC_NC_SLOTS; i++)
            if (t[i].until_ms < slot->until_ms)
                slot = &t[i];
    }
    memcpy(slot->key, key, 18);
    slot->until_ms = now + span;
    slot->span_ms = span;
    if (!negative && (slot = cache_find(nc_table, key)) != NULL)
        slot->until_ms = slot->span_ms = 0;     /* it answered: it runs the framework */
    pthread_mutex_unlock(&nc_lock);
}

static int cache_hit(struct nc_entry *t, const struct sockaddr_storage *peer)
{
    uint8_t key[18];
    nc_key(peer, key);
    int64_t now = rs_now_ms();
    pthread_mutex_lock(&nc_lock);
    const struct nc_entry *e = cache_find(t, key);
    int hit = e && e->until_ms > now;
    pthread_mutex_unlock(&nc_lock);
    return hit;
}

void rs_anc_negcache_add(const struct sockaddr_storage *peer)
{
    cache_add(nc_table, peer, 1);
}

int rs_anc_negcache_hit(const struct sockaddr_storage *peer)
{
    return cache_hit(nc_table, peer);
}

void rs_anc_poscache_add(const struct sockaddr_storage *peer)
{
    cache_add(pc_table, peer, 0);
}

int rs_anc_poscache_hit(const struct sockaddr_storage *peer)
{
    return cache_hit(pc_table, peer);
}

/* The dup-and-close probe: exact, 2 x RS_ANC_FD_HEADROOM system calls. */
static int headroom_probe(int kfd)
{
    int fds[RS_ANC_FD_HEADROOM], n = 0, err = 0;
    while (n < RS_ANC_FD_HEADROOM) {
        long fd = syscall(SYS_fcntl, kfd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            break;
        }
        fds[n++] = (int)fd;
    }
    while (n > 0)
        syscall(SYS_close, fds[--n]);
    if (!err)
        return 0;
    errno = err;
    return -1;
}

/* Free descriptor numbers in [low, low + RS_ANC_FD_WINDOW) below the
 * soft RLIMIT_NOFILE, counted with one poll (POLLNVAL: not open); -1 if
 * that cannot be asked. The kernel's limit, not the framework's view of
 * it (raw prlimit64). */
#define RS_ANC_FD_WINDOW 64
static int free_in_window(long low)
{
    struct rlimit rl;
    if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl))
        return -1;
    struct pollfd p[RS_ANC_FD_WINDOW];
    int n = 0;
    while (n < RS_ANC_FD_WINDOW && (rlim_t)(low + n) < rl.rlim_cur) {
        p[n] = (struct pollfd){ .fd = (int)(low + n), .events = 0 };
        n++;
    }
    if (syscall(SYS_poll, p, n, 0) < 0)
        return -1;
    int free = 0;
    for (int i = 0; i < n; i++)
        free += !!(p[i].revents & POLLNVAL);
    return free;
}

/*
 * Whether the descriptors an RDMA connection needs are free: the CM and
 * completion channels, and what the device opens per connection (the
 * software device: sockets to the peer, a copy of its completion eventfd,
 * a CM timer, transient sockets while resolving). Asked right before an
 * end commits (the active's KICK, the passive's OFFER), where falling
 * back to TCP is still clean: past that point a device that runs out of
 * descriptors fails the new RDMA connection after it was established,
 * when the other end may already carry the connection on it. 0, or -1
 * with errno EMFILE/ENFILE. Raw system calls: dispatcher bookkeeping of
 * these throw-away fds has no use.
 *
 * First the lowest free number (one dup), then one poll over the 64
 * numbers from there: enough free ones below the limit answer at once (4
 * system calls; the dup-and-close probe alone was 24 per connection end,
 * 1.7% of its CPU). Otherwise the exact probe decides, as before. Both
 * are a snapshot: another thread may take descriptors right after.
 */
int rs_anc_fd_headroom(int kfd)
{
    long low = syscall(SYS_fcntl, kfd, F_DUPFD_CLOEXEC, 0);
    if (low < 0)
        return -1;                      /* errno EMFILE/ENFILE */
    syscall(SYS_close, low);
    if (free_in_window(low) >= RS_ANC_FD_HEADROOM)
        return 0;
    return headroom_probe(kfd);
}
