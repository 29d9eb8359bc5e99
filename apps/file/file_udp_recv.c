/*
 * file_udp_recv.c - the receiving end of the UDP file pair (file_udp.h):
 *   vc_serv_file [serv] udp BIND_IP PORT OUTFILE CHUNK
 * Waits for one sender's START, connects the socket to it (so nobody else
 * can interfere), keeps up to FU_WINDOW chunks ahead of the next expected
 * one, writes the file in order with a running FNV-1a-64 digest, answers
 * every DATA with an ACK, and the END with the verdict. Then it lingers
 * FU_LINGER_MS of silence to repeat the verdict or acks that were lost.
 */
#include "app_fail.h"
#include "app_timeout.h"
#include "file_udp.h"
#include "fnv1a64.h"
#include "net_addr.h"
#include "num_parse.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct rx {
    int fd, out;
    const char *path;
    uint32_t chunk;              /* ours: the largest chunk accepted */
    uint32_t peer_chunk, n_chunks;
    uint64_t length, digest;
    uint32_t next;               /* chunks below arrived and are written */
    uint8_t *win;                /* FU_WINDOW slots of peer_chunk bytes */
    uint32_t win_len[FU_WINDOW]; /* 0: slot empty (a chunk is never empty) */
    uint8_t *pkt;
    size_t pkt_cap;
};

static int bind_udp(const char *ip, const char *port_text)
{
    long port;
    struct net_addr local;
    char text[NET_ADDR_STRLEN];
    if (!num_parse_long(port_text, 1, 65535, &port))
        app_die(APP_EXIT_USAGE, "port \"%s\": expected 1..65535", port_text);
    if (!net_addr_parse(ip, (int)port, &local))
        app_die(APP_EXIT_USAGE, "bind IP \"%s\": not an IPv4 or IPv6 address", ip);
    int fd = socket(net_addr_family(&local), SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&local.ss, local.len) != 0)
        app_fail_result("bind %s: %s", net_addr_str(&local, text, sizeof(text)),
                        strerror(errno));
    printf("listening on udp %s\n", net_addr_str(&local, text, sizeof(text)));
    return fd;
}

static void reply(struct rx *r, uint8_t type, uint32_t seq, uint32_t aux)
{
    uint8_t p[FU_HDR];
    fu_put(p, &(struct fu_hdr){ type, seq, aux });
    fu_send(r->fd, p, sizeof(p));
}

/* The selective bits: bit i = chunk next+1+i is buffered. */
static uint32_t sack_bits(const struct rx *r)
{
    uint32_t bits = 0;
    for (uint32_t i = 0; i < 32 && i + 1 < FU_WINDOW; i++)
        if (r->win_len[(r->next + 1 + i) % FU_WINDOW])
            bits |= 1u << i;
    return bits;
}

/* Wait for a START from anyone; connect to its source. */
static void accept_start(struct rx *r)
{
    struct sockaddr_storage from;
    socklen_t fl;
    int64_t deadline = app_timeout_ms < 0 ? -1 : fu_now_ms() + app_timeout_ms;
    for (;;) {
        if (deadline >= 0 && fu_now_ms() > deadline)
            app_fail_result("timeout after %d s waiting for the sender's START",
                            app_timeout_ms / 1000);
        struct pollfd pf = { .fd = r->fd, .events = POLLIN };
        if (poll(&pf, 1, 1000) < 0 && errno != EINTR)
            app_fail_result("poll: %s", strerror(errno));
        fl = sizeof(from);
        ssize_t n = recvfrom(r->fd, r->pkt, r->pkt_cap, MSG_DONTWAIT,
                             (struct sockaddr *)&from, &fl);
        struct fu_hdr h;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            app_fail_result("recvfrom: %s", strerror(errno));
        if (n >= FU_HDR + 8 && fu_get(r->pkt, (size_t)n, &h) && h.type == FU_START) {
            r->peer_chunk = h.aux;
            r->length = fu_get64(r->pkt + FU_HDR);
            size_t tlen = (size_t)n - FU_HDR - 8;
            printf("sender target name \"%.*s\", %" PRIu64 " bytes in chunks of %u\n",
                   (int)(tlen > FU_TARGET_MAX ? FU_TARGET_MAX : tlen),
                   (const char *)r->pkt + FU_HDR + 8, r->length, h.aux);
            break;
        }
    }
    if (connect(r->fd, (struct sockaddr *)&from, fl) != 0)
        app_fail_result("connect to the sender: %s", strerror(errno));
    if (r->peer_chunk == 0 || r->peer_chunk > r->chunk) {
        reply(r, FU_START_ACK, 0, FU_REFUSE_CHUNK);
        app_fail_result("sender's chunk %u is larger than ours (%u)", r->peer_chunk, r->chunk);
    }
    r->n_chunks = (uint32_t)((r->length + r->peer_chunk - 1) / r->peer_chunk);
    if ((uint64_t)r->n_chunks * r->peer_chunk < r->length)
        app_fail_result("file of %" PRIu64 " bytes: too many chunks", r->length);
    r->win = calloc(FU_WINDOW, r->peer_chunk);
    if (r->win == NULL)
        app_fail_result("out of memory for the receive window");
    reply(r, FU_START_ACK, 0, 0);
}

/* Write every buffered chunk that is next in order. */
static void deliver(struct rx *r)
{
    for (uint32_t s; (s = r->next % FU_WINDOW), r->win_len[s] != 0;) {
        uint8_t *c = r->win + (size_t)s * r->peer_chunk;
        if (write(r->out, c, r->win_len[s]) != (ssize_t)r->win_len[s])
            app_fail_result("%s: write: %s", r->path, strerror(errno));
        r->digest = fnv1a64_update(r->digest, c, r->win_len[s]);
        r->win_len[s] = 0;
        r->next++;
    }
}

static uint32_t chunk_len(const struct rx *r, uint32_t seq)
{
    uint64_t left = r->length - (uint64_t)seq * r->peer_chunk;
    return left < r->peer_chunk ? (uint32_t)left : r->peer_chunk;
}

static void on_data(struct rx *r, const struct fu_hdr *h, size_t n)
{
    size_t len = n - FU_HDR;
    if (h->seq >= r->next && h->seq < r->next + FU_WINDOW && h->seq < r->n_chunks) {
        if (len != chunk_len(r, h->seq))
            app_fail_result("chunk %u has %zu bytes, expected %u", h->seq, len,
                            chunk_len(r, h->seq));
        uint32_t s = h->seq % FU_WINDOW;
        memcpy(r->win + (size_t)s * r->peer_chunk, r->pkt + FU_HDR, len);
        r->win_len[s] = (uint32_t)len;
        deliver(r);
    }
    reply(r, FU_ACK, r->next, sack_bits(r));   /* duplicates are acked again */
}

/* One packet of the transfer; an END after the last chunk ends it. */
static void on_packet(struct rx *r, size_t n, bool *ended, uint64_t *sent_digest)
{
    struct fu_hdr h;
    if (!fu_get(r->pkt, n, &h))
        return;                                /* not ours: ignored */
    if (h.type == FU_START)
        reply(r, FU_START_ACK, 0, 0);          /* our START_ACK was lost */
    else if (h.type == FU_DATA)
        on_data(r, &h, n);
    else if (h.type == FU_END && n >= FU_HDR + 8 && r->next == r->n_chunks) {
        *ended = true;
        *sent_digest = fu_get64(r->pkt + FU_HDR);
    }
}

static bool receive_file(struct rx *r)
{
    bool ended = false;
    uint64_t sent = 0;
    while (!ended) {
        size_t n = fu_recv(r->fd, r->pkt, r->pkt_cap, app_timeout_ms);
        if (n == 0)
            app_fail_result("timeout after %d s: file shorter than the announced %" PRIu64
                            " bytes (%u of %u chunks arrived)", app_timeout_ms / 1000,
                            r->length, r->next, r->n_chunks);
        on_packet(r, n, &ended, &sent);
    }
    bool ok = sent == r->digest;
    if (!ok)
        app_warn("FAIL: digest mismatch: sender fnv1a64=%016" PRIx64
                 ", received data fnv1a64=%016" PRIx64, sent, r->digest);
    return ok;
}

/* Repeat the verdict for every END until the sender is quiet. */
static void linger(struct rx *r, bool ok)
{
    uint32_t verdict = ok ? 'K' : 'F';
    reply(r, FU_VERDICT, r->n_chunks, verdict);
    for (int i = 0; i < 10 * FU_MAX_TRIES; i++) {
        size_t n = fu_recv(r->fd, r->pkt, r->pkt_cap, FU_LINGER_MS);
        if (n == 0)
            return;
        struct fu_hdr h;
        if (fu_get(r->pkt, n, &h) && h.type == FU_END)
            reply(r, FU_VERDICT, r->n_chunks, verdict);
        else if (fu_get(r->pkt, n, &h) && h.type == FU_DATA)
            reply(r, FU_ACK, r->next, 0);
    }
}

int fu_serve(int argc, char **argv)
{
    if (argc != 6)
        app_die(APP_EXIT_USAGE, "usage: vc_serv_file [serv] udp BIND_IP PORT OUTFILE CHUNK");
    app_timeout_init(NULL);
    struct rx r = { .path = argv[4], .chunk = fu_chunk_arg(argv[5]), .digest = FNV1A64_INIT };
    /* +1: a datagram longer than a chunk shows as a wrong length */
    r.pkt_cap = FU_HDR + (r.chunk > 8 + FU_TARGET_MAX ? r.chunk : 8 + FU_TARGET_MAX) + 1;
    r.pkt = malloc(r.pkt_cap);
    r.out = open(r.path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (r.out < 0)
        app_die(APP_EXIT_USAGE, "outfile \"%s\": %s", r.path, strerror(errno));
    if (r.pkt == NULL)
        app_fail_result("out of memory");
    r.fd = bind_udp(argv[2], argv[3]);
    accept_start(&r);
    bool ok = receive_file(&r);
    if (close(r.out) != 0)
        app_fail_result("%s: close: %s", r.path, strerror(errno));
    linger(&r, ok);
    close(r.fd);
    if (!ok)
        app_fail_result("%s: received data differs from what was sent", r.path);
    printf("received %" PRIu64 " bytes into %s, fnv1a64=%016" PRIx64 "\n", r.length,
           r.path, r.digest);
    printf("Result = Success\n");
    return APP_EXIT_OK;
}
