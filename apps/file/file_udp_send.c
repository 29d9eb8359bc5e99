/*
 * file_udp_send.c - the sending end of the UDP file pair (file_udp.h):
 *   vc_cli_file [cli] udp SERVER_IP PORT CLIENT_IP FILE TARGET CHUNK
 * Binds CLIENT_IP, connects to the server, sends START until it is
 * acknowledged, then keeps up to FU_WINDOW chunks in flight: a chunk is
 * retransmitted when its timeout (FU_RTO_MS, doubled per retry up to
 * FU_RTO_MAX_MS) passes without an ACK covering it, at most FU_MAX_TRIES
 * times. Then END with the digest until the VERDICT arrives. Every wait
 * is bounded by the idle timeout (VS_TIMEOUT): no progress for that long
 * fails the run.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct slot {
    int64_t due_ms;              /* next retransmission */
    int tries;
    bool acked;
};

struct tx {
    int fd, file;
    const char *path;
    uint32_t chunk, n_chunks;
    uint64_t length, digest;
    uint32_t base, next;         /* oldest unacknowledged, next never sent */
    struct slot win[FU_WINDOW];
    uint8_t *pkt;
    int64_t progress_ms;         /* last time an ACK moved base */
    uint64_t retransmits;
};

static int connect_udp(const char *srv, const char *port_text, const char *cli_ip)
{
    long port;
    struct net_addr peer, local;
    char text[NET_ADDR_STRLEN];
    if (!num_parse_long(port_text, 1, 65535, &port))
        app_die(APP_EXIT_USAGE, "port \"%s\": expected 1..65535", port_text);
    if (!net_addr_parse(srv, (int)port, &peer))
        app_die(APP_EXIT_USAGE, "server \"%s\": not an IPv4 or IPv6 address", srv);
    if (!net_addr_parse(cli_ip, 0, &local))
        app_die(APP_EXIT_USAGE, "client IP \"%s\": not an IPv4 or IPv6 address", cli_ip);
    int fd = socket(net_addr_family(&peer), SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&local.ss, local.len) != 0)
        app_fail_result("bind %s: %s", net_addr_str(&local, text, sizeof(text)),
                        strerror(errno));
    if (connect(fd, (struct sockaddr *)&peer.ss, peer.len) != 0)
        app_fail_result("connect %s: %s", net_addr_str(&peer, text, sizeof(text)),
                        strerror(errno));
    return fd;
}

static int64_t rto(int tries)
{
    int64_t t = FU_RTO_MS;
    for (int i = 1; i < tries && t < FU_RTO_MAX_MS; i++)
        t *= 2;
    return t < FU_RTO_MAX_MS ? t : FU_RTO_MAX_MS;
}

static void check_idle(const struct tx *t, const char *what)
{
    if (app_timeout_ms >= 0 && fu_now_ms() - t->progress_ms > app_timeout_ms)
        app_fail_result("timeout after %d s without an acknowledgement (%s; %u of %u "
                        "chunks acknowledged)", app_timeout_ms / 1000, what, t->base,
                        t->n_chunks);
}

/* Send a header-only or header+payload packet until a reply of type
 * `want` arrives; returns its header. */
static struct fu_hdr exchange(struct tx *t, uint8_t type, uint32_t seq, uint32_t aux,
                              const void *payload, size_t plen, uint8_t want)
{
    uint8_t p[FU_HDR + 8 + FU_TARGET_MAX];
    fu_put(p, &(struct fu_hdr){ type, seq, aux });
    memcpy(p + FU_HDR, payload, plen);
    t->progress_ms = fu_now_ms();
    for (int tries = 1; tries <= FU_MAX_TRIES; tries++) {
        fu_send(t->fd, p, FU_HDR + plen);
        int64_t until = fu_now_ms() + rto(tries);
        for (int64_t now; (now = fu_now_ms()) < until;) {
            size_t n = fu_recv(t->fd, t->pkt, FU_HDR + 8, (int)(until - now));
            struct fu_hdr h;
            if (n > 0 && fu_get(t->pkt, n, &h) && h.type == want)
                return h;
        }
        check_idle(t, want == FU_START_ACK ? "START" : "END");
    }
    app_fail_result("no answer after %d sends of packet type %u", FU_MAX_TRIES, type);
}

static void send_chunk(struct tx *t, uint32_t seq)
{
    uint64_t off = (uint64_t)seq * t->chunk;
    size_t len = t->length - off < t->chunk ? (size_t)(t->length - off) : t->chunk;
    fu_put(t->pkt, &(struct fu_hdr){ FU_DATA, seq, 0 });
    ssize_t n = pread(t->file, t->pkt + FU_HDR, len, (off_t)off);
    if (n != (ssize_t)len)
        app_fail_result("%s: read of chunk %u: %s", t->path, seq,
                        n < 0 ? strerror(errno) : "file shrank");
    if (seq == t->next)                       /* first send: digest in order */
        t->digest = fnv1a64_update(t->digest, t->pkt + FU_HDR, len);
    struct slot *s = &t->win[seq % FU_WINDOW];
    s->tries++;
    if (s->tries > FU_MAX_TRIES)
        app_fail_result("chunk %u unacknowledged after %d sends", seq, FU_MAX_TRIES);
    s->due_ms = fu_now_ms() + rto(s->tries);
    fu_send(t->fd, t->pkt, FU_HDR + len);
}

static void on_ack(struct tx *t, const struct fu_hdr *h)
{
    if (h->seq > t->next)
        return;                               /* acks what we never sent: ignored */
    while (t->base < h->seq) {
        t->win[t->base % FU_WINDOW] = (struct slot){ 0 };
        t->base++;
        t->progress_ms = fu_now_ms();
    }
    for (uint32_t i = 0; i < 32; i++)
        if ((h->aux >> i & 1) && h->seq + 1 + i < t->next)
            t->win[(h->seq + 1 + i) % FU_WINDOW].acked = true;
}

static void pump(struct tx *t)
{
    while (t->next < t->n_chunks && t->next < t->base + FU_WINDOW) {
        t->win[t->next % FU_WINDOW] = (struct slot){ 0 };
        send_chunk(t, t->next);
        t->next++;
    }
    int64_t now = fu_now_ms();
    for (uint32_t seq = t->base; seq < t->next; seq++) {
        struct slot *s = &t->win[seq % FU_WINDOW];
        if (!s->acked && s->due_ms <= now) {
            send_chunk(t, seq);
            t->retransmits++;
        }
    }
}

static int64_t next_due(const struct tx *t)
{
    int64_t due = fu_now_ms() + FU_RTO_MAX_MS;
    for (uint32_t seq = t->base; seq < t->next; seq++) {
        const struct slot *s = &t->win[seq % FU_WINDOW];
        if (!s->acked && s->due_ms < due)
            due = s->due_ms;
    }
    return due;
}

static void send_body(struct tx *t)
{
    t->progress_ms = fu_now_ms();
    while (t->base < t->n_chunks) {
        pump(t);
        int64_t wait = next_due(t) - fu_now_ms();
        size_t n = fu_recv(t->fd, t->pkt, FU_HDR + t->chunk, wait > 0 ? (int)wait : 0);
        for (int i = 0; n > 0 && i < FU_WINDOW; i++) {  /* every ack queued */
            struct fu_hdr h;
            if (fu_get(t->pkt, n, &h) && h.type == FU_ACK)
                on_ack(t, &h);
            n = fu_recv(t->fd, t->pkt, FU_HDR + t->chunk, 0);
        }
        check_idle(t, "DATA");
    }
}

int fu_send_file(int argc, char **argv)
{
    if (argc != 8)
        app_die(APP_EXIT_USAGE, "usage: vc_cli_file [cli] udp SERVER_IP PORT CLIENT_IP FILE "
                "TARGET CHUNK");
    app_timeout_init(NULL);
    struct tx t = { .path = argv[5], .chunk = fu_chunk_arg(argv[7]), .digest = FNV1A64_INIT };
    size_t tlen = strlen(argv[6]);
    if (tlen > FU_TARGET_MAX)
        app_die(APP_EXIT_USAGE, "target \"%s\": longer than %d bytes", argv[6], FU_TARGET_MAX);
    t.file = file_open_regular(t.path, &t.length);
    t.n_chunks = (uint32_t)((t.length + t.chunk - 1) / t.chunk);
    if ((uint64_t)t.n_chunks * t.chunk < t.length)
        app_die(APP_EXIT_USAGE, "file \"%s\": too many chunks of %u bytes", t.path, t.chunk);
    t.pkt = malloc(FU_HDR + t.chunk);
    if (t.pkt == NULL)
        app_fail_result("out of memory");
    t.fd = connect_udp(argv[2], argv[3], argv[4]);
    uint8_t start[8 + FU_TARGET_MAX];
    fu_be64(start, t.length);
    memcpy(start + 8, argv[6], tlen);
    struct fu_hdr h = exchange(&t, FU_START, 0, t.chunk, start, 8 + tlen, FU_START_ACK);
    if (h.aux != 0)
        app_fail_result("the receiver refused chunks of %u bytes (its CHUNK is smaller)",
                        t.chunk);
    send_body(&t);
    printf("sent %" PRIu64 " bytes of %s, fnv1a64=%016" PRIx64 " (%" PRIu64
           " retransmitted chunks)\n", t.length, t.path, t.digest, t.retransmits);
    uint8_t d[8];
    fu_be64(d, t.digest);
    h = exchange(&t, FU_END, t.n_chunks, 0, d, sizeof(d), FU_VERDICT);
    if (h.aux != 'K')
        app_fail_result("the receiver reports a length or digest mismatch");
    printf("receiver verified length and digest\n");
    close(t.file);
    close(t.fd);
    printf("Result = Success\n");
    return APP_EXIT_OK;
}
