/* sem_data.c - every data call variant with checked payloads:
 * send/recv, read/write, readv/writev (all iovecs used), sendmsg/recvmsg,
 * MSG_PEEK, MSG_WAITALL, MSG_DONTWAIT, sendto/recvfrom, a large stream,
 * sendfile, splice to and from a pipe, and UDP sendmmsg/recvmmsg. */
#include "semcheck.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#define LONG_MS 10000

static void case_send_recv_read_write(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    uint8_t out[1000], in[1000];
    sem_fill(out, sizeof(out), 1, 0);
    CHECK(send(c, out, 500, 0) == 500, "send");
    CHECK(write(c, out + 500, 500) == 500, "write");
    sem_read_all(s, in, 300);
    size_t got = 300;
    while (got < 1000) {
        ssize_t n = recv(s, in + got, sizeof(in) - got, 0);
        CHECK(n > 0, "recv: %s", n < 0 ? strerror(errno) : "EOF");
        got += (size_t)n;
    }
    CHECK(sem_verify(in, 1000, 1, 0) == (size_t)-1, "payload");
    CHECK(sendto(s, out, 10, 0, NULL, 0) == 10, "sendto on TCP without address");
    CHECK(recvfrom(c, in, 10, MSG_WAITALL, NULL, NULL) == 10, "recvfrom without address");
    CHECK(memcmp(in, out, 10) == 0, "recvfrom payload");
    close(c);
    CHECK(recv(s, in, 1, 0) == 0, "recv after peer close must be 0 (EOF)");
    CHECK(read(s, in, 1) == 0, "read after EOF stays 0");
    close(s);
}

static void case_readv_writev(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    uint8_t out[1 + 7 + 0 + 300 + 4096];
    sem_fill(out, sizeof(out), 2, 0);
    struct iovec w[5] = {
        { out, 1 }, { out + 1, 7 }, { out + 8, 0 }, { out + 8, 300 }, { out + 308, 4096 },
    };
    CHECK(writev(c, w, 5) == (ssize_t)sizeof(out), "writev must use every iovec");
    uint8_t in[sizeof(out)];
    memset(in, 0, sizeof(in));
    struct iovec r[4] = { { in, 3 }, { in + 3, 100 }, { in + 103, 0 }, { in + 103, sizeof(in) - 103 } };
    size_t got = 0;
    while (got < sizeof(in)) {
        /* rebuild the tail of the vector after a short read */
        struct iovec tail[4];
        int nt = 0;
        size_t skip = got;
        for (int i = 0; i < 4; i++) {
            if (skip >= r[i].iov_len) { skip -= r[i].iov_len; continue; }
            tail[nt].iov_base = (uint8_t *)r[i].iov_base + skip;
            tail[nt++].iov_len = r[i].iov_len - skip;
            skip = 0;
        }
        ssize_t n = readv(s, tail, nt);
        CHECK(n > 0, "readv: %s", n < 0 ? strerror(errno) : "EOF");
        got += (size_t)n;
    }
    CHECK(sem_verify(in, sizeof(in), 2, 0) == (size_t)-1, "readv payload (offset %zu)",
          sem_verify(in, sizeof(in), 2, 0));
    close(c); close(s);
}

static void case_sendmsg_recvmsg(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    uint8_t out[64];
    sem_fill(out, sizeof(out), 3, 0);
    struct iovec w[3] = { { out, 10 }, { out + 10, 20 }, { out + 30, 34 } };
    struct msghdr wm = { .msg_iov = w, .msg_iovlen = 3 };
    CHECK(sendmsg(c, &wm, MSG_NOSIGNAL) == 64, "sendmsg with 3 iovecs");
    uint8_t a[16], b[48];
    struct iovec r[2] = { { a, 16 }, { b, 48 } };
    struct msghdr rm = { .msg_iov = r, .msg_iovlen = 2 };
    CHECK(recvmsg(s, &rm, MSG_WAITALL) == 64, "recvmsg MSG_WAITALL into 2 iovecs");
    CHECK(sem_verify(a, 16, 3, 0) == (size_t)-1 && sem_verify(b, 48, 3, 16) == (size_t)-1,
          "recvmsg payload");
    CHECK(rm.msg_flags == 0, "recvmsg flags %#x", rm.msg_flags);
    close(c); close(s);
}

static void case_peek_dontwait(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    char b[16];
    CHECK_ERR(recv(s, b, sizeof(b), MSG_DONTWAIT), EAGAIN);
    CHECK(send(c, "peekaboo", 8, 0) == 8, "send");
    CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "data");
    CHECK(recv(s, b, 4, MSG_PEEK) == 4 && memcmp(b, "peek", 4) == 0, "MSG_PEEK");
    CHECK(recv(s, b, 8, MSG_PEEK | MSG_WAITALL) == 8, "MSG_PEEK again sees the same bytes");
    CHECK(recv(s, b, 8, 0) == 8 && memcmp(b, "peekaboo", 8) == 0, "data after peek");
    CHECK_ERR(recv(s, b, sizeof(b), MSG_DONTWAIT), EAGAIN);
    close(c); close(s);
}

struct delayed_send {
    int fd;
    const uint8_t *buf;
    size_t len;
};

static void *send_later(void *arg)
{
    struct delayed_send *d = arg;
    /* not synchronization: the delay only makes MSG_WAITALL have to wait */
    usleep(100 * 1000);
    sem_write_all(d->fd, d->buf, d->len);
    return NULL;
}

static void case_waitall(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    uint8_t out[2000], in[2000];
    sem_fill(out, sizeof(out), 4, 0);
    sem_write_all(c, out, 1000);
    struct delayed_send d = { c, out + 1000, 1000 };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, send_later, &d) == 0, "pthread_create");
    CHECK(recv(s, in, sizeof(in), MSG_WAITALL) == (ssize_t)sizeof(in), "MSG_WAITALL returned short");
    pthread_join(t, NULL);
    CHECK(sem_verify(in, sizeof(in), 4, 0) == (size_t)-1, "MSG_WAITALL payload");
    close(c); close(s);
}

struct stream_reader {
    int fd;
    size_t len;
    uint32_t seed;
    size_t bad;   /* first bad offset or (size_t)-1 */
    size_t got;
};

static void *read_stream(void *arg)
{
    struct stream_reader *r = arg;
    static __thread uint8_t buf[7919];   /* odd size: reads never align with writes */
    r->bad = (size_t)-1;
    while (r->got < r->len) {
        ssize_t n = read(r->fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        size_t off = sem_verify(buf, (size_t)n, r->seed, r->got);
        if (off != (size_t)-1 && r->bad == (size_t)-1)
            r->bad = r->got + off;
        r->got += (size_t)n;
    }
    return NULL;
}

static void case_large_stream(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    enum { TOTAL = 4 << 20, CHUNK = 65536 };
    struct stream_reader r = { .fd = s, .len = TOTAL, .seed = 5 };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, read_stream, &r) == 0, "pthread_create");
    static uint8_t chunk[CHUNK];
    for (size_t off = 0; off < TOTAL; off += CHUNK) {
        sem_fill(chunk, CHUNK, 5, off);
        sem_write_all(c, chunk, CHUNK);
    }
    pthread_join(t, NULL);
    CHECK(r.got == TOTAL, "received %zu of %d bytes", r.got, TOTAL);
    CHECK(r.bad == (size_t)-1, "stream corrupted at offset %zu", r.bad);
    close(c); close(s);
}

static void case_sendfile(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    char path[] = "/tmp/nstack-sem-sendfile.XXXXXX";
    int f = CHECK_OK(mkstemp(path));
    unlink(path);
    enum { FLEN = 300000 };
    static uint8_t data[FLEN];
    sem_fill(data, FLEN, 6, 0);
    sem_write_all(f, data, FLEN);
    struct stream_reader r = { .fd = s, .len = FLEN - 1000 + 5000, .seed = 6 };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, read_stream, &r) == 0, "pthread_create");
    /* with an offset: the file position must not move */
    off_t off = 0;
    while (off < FLEN - 1000) {
        ssize_t n = sendfile(c, f, &off, (size_t)(FLEN - 1000 - off));
        CHECK(n > 0, "sendfile with offset: %s", n < 0 ? strerror(errno) : "0");
    }
    CHECK(lseek(f, 0, SEEK_CUR) == FLEN, "sendfile with an offset moved the file position");
    /* without an offset: continues from the file position (rewound to FLEN-1000) */
    CHECK_OK(lseek(f, FLEN - 1000, SEEK_SET));
    size_t left = 1000;
    while (left > 0) {
        ssize_t n = sendfile(c, f, NULL, left);
        CHECK(n > 0, "sendfile without offset: %s", n < 0 ? strerror(errno) : "0");
        left -= (size_t)n;
    }
    /* the tail of the stream continues the pattern for the reader */
    static uint8_t tail[4000];
    sem_fill(tail, sizeof(tail), 6, FLEN);
    sem_write_all(c, tail, sizeof(tail));
    pthread_join(t, NULL);
    CHECK(r.got == r.len, "received %zu of %zu", r.got, r.len);
    CHECK(r.bad == (size_t)-1, "sendfile stream corrupted at %zu", r.bad);
    close(f); close(c); close(s);
}

struct stream_writer {
    int fd;
    size_t len;
    uint32_t seed;
};

static void *write_stream(void *arg)
{
    struct stream_writer *w = arg;
    static __thread uint8_t buf[6007];
    for (size_t off = 0; off < w->len;) {
        size_t k = w->len - off < sizeof(buf) ? w->len - off : sizeof(buf);
        sem_fill(buf, k, w->seed, off);
        sem_write_all(w->fd, buf, k);
        off += k;
    }
    return NULL;
}

/* splice between a pipe and the connection, both ways, blocking and
 * nonblocking sockets: every byte arrives once, in order, and the pipe
 * keeps what the socket did not take (sem: the kernel's own splice). */
static void splice_pipe_to_sock(int p[2], int sock, size_t total, uint32_t seed)
{
    static uint8_t chunk[8192];
    size_t put = 0, moved = 0;
    int64_t deadline = sem_now_ms() + LONG_MS;
    while (moved < total && sem_now_ms() < deadline) {
        if (put < total && put - moved < sizeof(chunk)) {
            size_t k = total - put < sizeof(chunk) ? total - put : sizeof(chunk);
            sem_fill(chunk, k, seed, put);
            sem_write_all(p[1], chunk, k);
            put += k;
        }
        ssize_t n = splice(p[0], NULL, sock, NULL, put - moved, 0);
        CHECK(n > 0 || (n < 0 && errno == EAGAIN), "splice pipe->socket: %s", n < 0 ? strerror(errno) : "0");
        if (n < 0)
            sem_wait_fd(sock, POLLOUT, LONG_MS);
        else
            moved += (size_t)n;
    }
    CHECK(moved == total, "splice pipe->socket moved %zu of %zu", moved, total);
}

static void splice_sock_to_pipe(int sock, int p[2], size_t total, uint32_t seed)
{
    static uint8_t in[8192];
    size_t got = 0;
    int64_t deadline = sem_now_ms() + LONG_MS;
    while (got < total && sem_now_ms() < deadline) {
        ssize_t n = splice(sock, NULL, p[1], NULL, total - got, SPLICE_F_NONBLOCK);
        CHECK(n > 0 || (n < 0 && errno == EAGAIN), "splice socket->pipe: %s", n < 0 ? strerror(errno) : "EOF");
        if (n < 0) {
            sem_wait_fd(sock, POLLIN, 100);
            continue;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t r = read(p[0], in, (size_t)(n - done) < sizeof(in) ? (size_t)(n - done) : sizeof(in));
            CHECK(r > 0, "read the pipe: %s", r < 0 ? strerror(errno) : "EOF");
            CHECK(sem_verify(in, (size_t)r, seed, got) == (size_t)-1, "spliced bytes at %zu", got);
            got += (size_t)r;
            done += r;
        }
    }
    CHECK(got == total, "splice socket->pipe moved %zu of %zu", got, total);
}

static void case_splice(void)
{
    enum { TOTAL = 1 << 20 };
    for (int nb = 0; nb < 2; nb++) {
        int c, s, p[2], q[2];
        sem_tcp_pair(AF_INET, &c, &s);
        CHECK_OK(pipe(p));
        CHECK_OK(pipe(q));
        sem_set_nonblock(c, nb);
        /* first use by a plain write (the connection upgrades on a module route) */
        CHECK(write(c, "x", 1) == 1, "write");
        char x;
        CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "first byte");
        CHECK(read(s, &x, 1) == 1 && x == 'x', "first byte");
        struct stream_reader r = { .fd = s, .len = TOTAL, .seed = 90u + (uint32_t)nb };
        pthread_t t;
        CHECK(pthread_create(&t, NULL, read_stream, &r) == 0, "pthread_create");
        splice_pipe_to_sock(p, c, TOTAL, 90u + (uint32_t)nb);
        pthread_join(t, NULL);
        CHECK(r.got == TOTAL && r.bad == (size_t)-1, "pipe->socket stream: %zu bytes, bad at %zu", r.got, r.bad);
        /* the other way: written by the peer, spliced out of the socket */
        struct stream_writer w = { .fd = c, .len = TOTAL, .seed = 95u + (uint32_t)nb };
        sem_set_nonblock(c, 0);
        sem_set_nonblock(s, nb);
        CHECK(pthread_create(&t, NULL, write_stream, &w) == 0, "pthread_create");
        splice_sock_to_pipe(s, q, TOTAL, 95u + (uint32_t)nb);
        pthread_join(t, NULL);
        /* the kernel's errors: an offset on the pipe (ESPIPE) or on the
         * socket (EINVAL), two sockets (EINVAL) */
        loff_t off = 0;
        CHECK(splice(p[0], &off, c, NULL, 10, 0) == -1 && errno == ESPIPE, "splice with a pipe offset: want ESPIPE");
        CHECK(splice(p[0], NULL, c, &off, 10, 0) == -1 && errno == EINVAL, "splice with a socket offset: want EINVAL");
        CHECK(splice(s, NULL, c, NULL, 10, 0) == -1 && errno == EINVAL, "splice socket->socket: want EINVAL");
        close(p[0]); close(p[1]); close(q[0]); close(q[1]);
        close(c); close(s);
    }
}

static void case_udp_mmsg(void)
{
    int a = sem_udp_bound(AF_INET), b = sem_udp_bound(AF_INET);
    struct sockaddr_storage to;
    socklen_t tl = sem_addr(AF_INET, sem_port_of(b), &to);
    enum { N = 4 };
    uint8_t out[N][100], in[N][200];
    struct mmsghdr w[N], r[N];
    struct iovec wi[N], ri[N];
    memset(w, 0, sizeof(w));
    memset(r, 0, sizeof(r));
    for (int i = 0; i < N; i++) {
        sem_fill(out[i], 10 + 20 * i, 40 + i, 0);
        wi[i] = (struct iovec){ out[i], 10 + 20 * i };
        w[i].msg_hdr = (struct msghdr){ .msg_name = &to, .msg_namelen = tl, .msg_iov = &wi[i], .msg_iovlen = 1 };
        ri[i] = (struct iovec){ in[i], sizeof(in[i]) };
        r[i].msg_hdr = (struct msghdr){ .msg_iov = &ri[i], .msg_iovlen = 1 };
    }
    CHECK(sendmmsg(a, w, N, 0) == N, "sendmmsg sent fewer than %d", N);
    for (int i = 0; i < N; i++)
        CHECK(w[i].msg_len == (unsigned)(10 + 20 * i), "sendmmsg msg_len[%d]=%u", i, w[i].msg_len);
    int got = 0;
    int64_t deadline = sem_now_ms() + LONG_MS;
    while (got < N && sem_now_ms() < deadline) {
        CHECK(sem_wait_fd(b, POLLIN, LONG_MS) & POLLIN, "datagrams did not arrive");
        int n = recvmmsg(b, r + got, N - got, MSG_DONTWAIT, NULL);
        CHECK(n > 0 || errno == EAGAIN, "recvmmsg: %s", strerror(errno));
        got += n > 0 ? n : 0;
    }
    CHECK(got == N, "received %d of %d datagrams", got, N);
    for (int i = 0; i < N; i++) {
        CHECK(r[i].msg_len == (unsigned)(10 + 20 * i), "datagram %d length %u", i, r[i].msg_len);
        CHECK(sem_verify(in[i], r[i].msg_len, 40 + i, 0) == (size_t)-1, "datagram %d payload", i);
    }
    /* recvfrom reports the sender */
    CHECK(sendto(b, "r", 1, 0, NULL, 0) == -1, "unconnected UDP sendto without address must fail");
    struct sockaddr_storage from, src;
    socklen_t fl = sizeof(from), sl = sizeof(src);
    CHECK_OK(getsockname(a, (struct sockaddr *)&src, &sl));
    CHECK(sendto(a, "hello", 5, 0, (struct sockaddr *)&to, tl) == 5, "sendto");
    char buf[8];
    CHECK(sem_wait_fd(b, POLLIN, LONG_MS) & POLLIN, "datagram");
    CHECK(recvfrom(b, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl) == 5, "recvfrom");
    CHECK(fl == sl && memcmp(&from, &src, fl) == 0, "recvfrom source address");
    close(a); close(b);
}

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = {
        { "send_recv_read_write", case_send_recv_read_write }, { "readv_writev", case_readv_writev },
        { "sendmsg_recvmsg", case_sendmsg_recvmsg }, { "peek_dontwait", case_peek_dontwait },
        { "waitall", case_waitall }, { "large_stream", case_large_stream },
        { "sendfile", case_sendfile }, { "udp_mmsg", case_udp_mmsg }, { "splice", case_splice },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
