/*
 * srv_smallbuf.c - many transfers through a nonblocking, edge-triggered
 * server the way nginx and Apache serve static files, for the small RDMA
 * buffers of a worker without CAP_IPC_LOCK (16 KiB per direction): every
 * transfer must arrive whole and in time, whatever its size, the server's
 * way of writing it, and the reader's pace.
 *
 *   srv_smallbuf serve IP PORT FILE
 *       epoll (EPOLLET) over a nonblocking listener and its connections;
 *       each request (struct req) is answered with `size` bytes of FILE
 *       from `start`, written by sendfile (with an offset or through the
 *       file position), writev of three odd-sized pieces, or send; the
 *       server continues only at EPOLLOUT edges after EAGAIN. After the
 *       last byte it keeps the connection (the next request) or, when the
 *       request says so, shuts its side and closes at the client's EOF
 *       (nginx's lingering close). Runs until killed.
 *   srv_smallbuf fetch IP PORT FILE CLIENTS ROUNDS
 *       CLIENTS processes at once, each ROUNDS requests of sizes that are
 *       not multiples of the buffers, several per connection; a slow
 *       reader (small reads, a pause now and then); every byte checked
 *       against FILE; a transfer that makes no progress for STALL_MS
 *       (default 10000) fails naming its size, how far it got and how it
 *       was written.
 *
 * Exit 0 pass, 1 fail (one line), 2 bad arguments.
 */
#include "../rsocket-fw/rsfw_io.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

enum { W_SENDFILE_OFF, W_SENDFILE_POS, W_WRITEV, W_SEND, W_KINDS };
static const char *const w_name[W_KINDS] = { "sendfile(offset)", "sendfile(position)", "writev", "send" };

struct req {
    uint64_t start, size;
    uint32_t how;           /* W_* */
    uint32_t close_after;   /* shut down and close after this response */
};

enum { HEADER = 250 };   /* bytes a sendfile response writes with writev first */

struct conn {
    int fd, file_fd;        /* file_fd: own descriptor (the position mode) */
    struct req r;
    uint8_t rbuf[sizeof(struct req)];
    size_t rgot;
    uint64_t sent;          /* of the current response */
    int busy, closing;
};

static const uint8_t *map;
static size_t map_len;
static const char *file_path;

static void *xmap(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || st.st_size == 0)
        RSFW_FAIL("%s: %s", path, strerror(errno));
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        RSFW_FAIL("mmap %s: %s", path, strerror(errno));
    close(fd);
    *len = (size_t)st.st_size;
    return p;
}

/* ---- server ------------------------------------------------------------ */

/* One write of the rest of the response; bytes sent, or -1 (errno). */
static ssize_t write_some(struct conn *c)
{
    uint64_t left = c->r.size - c->sent, at = c->r.start + c->sent;
    switch (c->r.how) {
    case W_SENDFILE_OFF:
    case W_SENDFILE_POS:
        if (c->sent < HEADER) {
            /* a header first, by writev, then the body by sendfile (nginx) */
            size_t h = HEADER - c->sent < left ? HEADER - (size_t)c->sent : (size_t)left;
            struct iovec iov[2] = { { (void *)(map + at), h / 3 }, { (void *)(map + at + h / 3), h - h / 3 } };
            ssize_t n = writev(c->fd, iov, 2);
            if (n > 0 && c->r.how == W_SENDFILE_POS && lseek(c->file_fd, n, SEEK_CUR) < 0)
                RSFW_FAIL("lseek: %s", strerror(errno));
            return n;
        }
        break;
    default:
        break;
    }
    switch (c->r.how) {
    case W_SENDFILE_OFF: {
        off_t off = (off_t)at;
        ssize_t n = sendfile(c->fd, c->file_fd, &off, left);
        if (n > 0 && off != (off_t)(at + (uint64_t)n))
            RSFW_FAIL("sendfile returned %zd but moved the offset by %lld", n, (long long)(off - (off_t)at));
        return n;
    }
    case W_SENDFILE_POS: {
        if (lseek(c->file_fd, 0, SEEK_CUR) != (off_t)at)
            RSFW_FAIL("file position %lld, expected %llu", (long long)lseek(c->file_fd, 0, SEEK_CUR),
                      (unsigned long long)at);
        return sendfile(c->fd, c->file_fd, NULL, left);
    }
    case W_WRITEV: {
        /* three pieces of odd sizes, as a header, a body part and a tail */
        size_t a = left < 7 ? left : 7, b = left - a < 40000 ? left - a : 40000;
        size_t d = left - a - b < 70001 ? left - a - b : 70001;
        struct iovec iov[3] = { { (void *)(map + at), a }, { (void *)(map + at + a), b },
                                { (void *)(map + at + a + b), d } };
        return writev(c->fd, iov, 3);
    }
    default:
        return send(c->fd, map + at, left < 100003 ? left : 100003, MSG_NOSIGNAL);
    }
}

static void conn_free(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    close(c->file_fd);
    free(c);
}

/* Writes until done or EAGAIN; 0 go on, -1 the connection is gone. */
static int serve_write(struct conn *c)
{
    while (c->busy && c->sent < c->r.size) {
        ssize_t n = write_some(c);
        if (n < 0 && errno == EAGAIN)
            return 0;                        /* the next EPOLLOUT edge */
        if (n <= 0)
            RSFW_FAIL("%s at %llu of %llu: %s", w_name[c->r.how], (unsigned long long)c->sent,
                      (unsigned long long)c->r.size, n == 0 ? "returned 0" : strerror(errno));
        c->sent += (uint64_t)n;
    }
    if (c->busy && c->sent == c->r.size) {
        int off = 0;
        setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
        c->busy = 0;
        c->rgot = 0;
        if (c->r.close_after) {
            shutdown(c->fd, SHUT_WR);
            c->closing = 1;
        }
    }
    return 0;
}

/* Reads a request (or the client's EOF); 0 go on, -1 closed. */
static int serve_read(struct conn *c)
{
    for (;;) {
        uint8_t b[256];
        size_t want = c->busy || c->closing ? sizeof(b) : sizeof(c->rbuf) - c->rgot;
        ssize_t n = recv(c->fd, c->busy || c->closing ? b : c->rbuf + c->rgot, want, 0);
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return -1;                       /* the client is done */
        if (n < 0)
            RSFW_FAIL("recv: %s", strerror(errno));
        if (c->busy || c->closing)
            RSFW_FAIL("%zd bytes from the client during a response", n);
        c->rgot += (size_t)n;
        if (c->rgot < sizeof(c->rbuf))
            continue;
        memcpy(&c->r, c->rbuf, sizeof(c->r));
        if (c->r.how >= W_KINDS || c->r.start > map_len || c->r.size > map_len - c->r.start)
            RSFW_FAIL("bad request");
        c->sent = 0;
        c->busy = 1;
        int on = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));   /* nginx's tcp_nopush */
        if (c->r.how == W_SENDFILE_POS && lseek(c->file_fd, (off_t)c->r.start, SEEK_SET) < 0)
            RSFW_FAIL("lseek: %s", strerror(errno));
        if (serve_write(c) < 0)
            return -1;
    }
}

static void serve(const char *ip, const char *port)
{
    struct sockaddr_storage ss;
    socklen_t len = rsfw_addr(ip, port, &ss);
    int one = 1, l = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(l, (struct sockaddr *)&ss, len) || listen(l, 128))
        RSFW_FAIL("listen on %s:%s: %s", ip, port, strerror(errno));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &e))
        RSFW_FAIL("epoll: %s", strerror(errno));
    printf("listening on %s:%s\n", ip, port);
    fflush(stdout);
    for (;;) {
        struct epoll_event ev[64];
        int n = epoll_wait(ep, ev, 64, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            RSFW_FAIL("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = ev[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    c = calloc(1, sizeof(*c));
                    if (!c)
                        RSFW_FAIL("out of memory");
                    c->fd = fd;
                    c->file_fd = open(file_path, O_RDONLY | O_CLOEXEC);
                    struct epoll_event ce = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                              .data.ptr = c };
                    if (c->file_fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce))
                        RSFW_FAIL("connection setup: %s", strerror(errno));
                }
                if (errno != EAGAIN && errno != ECONNABORTED)
                    RSFW_FAIL("accept: %s", strerror(errno));
                continue;
            }
            if ((ev[i].events & EPOLLOUT) && serve_write(c) < 0) {
                conn_free(ep, c);
                continue;
            }
            if ((ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && serve_read(c) < 0)
                conn_free(ep, c);
        }
    }
}

/* ---- client ------------------------------------------------------------ */

static int stall_ms(void)
{
    const char *v = getenv("STALL_MS");
    return v && atoi(v) > 0 ? atoi(v) : 10000;
}

static int dial(const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)ss, len))
        RSFW_FAIL("connect: %s", strerror(errno));
    return fd;
}

/* Sizes around the buffers' multiples and a big one like the 8 MiB file. */
static uint64_t size_of(uint32_t k, uint64_t max)
{
    static const uint64_t base[] = { 8u << 20, 16384, 32768, 65536, 1u << 20, 3u << 20, 49152, 777 };
    uint64_t b = base[k % 8];
    int64_t d = (int64_t)(k * 2654435761u % 9001) - 4500;      /* never 0 mod 16 KiB */
    uint64_t s = (uint64_t)((int64_t)b + d > 1 ? (int64_t)b + d : 1 + k % 97);
    if (s % 16384 == 0)
        s++;
    return s > max ? max - (k % 4093) : s;
}

/* Reads exactly r->size bytes, slowly, checking each against the file. */
static void read_response(int fd, const struct req *r, uint32_t who, uint32_t k)
{
    static uint8_t buf[40000];
    uint64_t got = 0;
    int64_t last = rsfw_now_ms();
    uint32_t x = who * 7919u + k;
    while (got < r->size) {
        x = x * 1103515245u + 12345u;
        size_t want = 1 + (x >> 8) % sizeof(buf);
        if (want > r->size - got)
            want = (size_t)(r->size - got);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int left = (int)(last + stall_ms() - rsfw_now_ms());
        if (left <= 0 || poll(&p, 1, left) == 0)
            RSFW_FAIL("client %u request %u: %s of %llu bytes from %llu (close %u) stalled at %llu "
                      "(%llu missing) for %d ms", who, k, w_name[r->how], (unsigned long long)r->size,
                      (unsigned long long)r->start, r->close_after, (unsigned long long)got,
                      (unsigned long long)(r->size - got), stall_ms());
        ssize_t n = recv(fd, buf, want, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            RSFW_FAIL("client %u request %u: %s at %llu of %llu", who, k, n ? strerror(errno) : "EOF",
                      (unsigned long long)got, (unsigned long long)r->size);
        if (memcmp(buf, map + r->start + got, (size_t)n))
            RSFW_FAIL("client %u request %u: data differs near %llu", who, k, (unsigned long long)got);
        got += (uint64_t)n;
        last = rsfw_now_ms();
        if (who % 2 == 0 && (x >> 4) % 64 == 0)
            poll(NULL, 0, 1);                /* a slow reader: the server meets EAGAIN */
    }
}

static void fetch_one(const struct sockaddr_storage *ss, socklen_t len, uint32_t who, uint32_t rounds)
{
    int fd = -1;
    for (uint32_t k = 0; k < rounds; k++) {
        uint32_t v = who * 31u + k;
        struct req r = { .how = v % W_KINDS, .close_after = v % 3 == 2 || k + 1 == rounds };
        r.size = size_of(v, map_len / 2);
        r.start = (v * 40503u) % (map_len - r.size);
        if (fd < 0)
            fd = dial(ss, len);
        if (send(fd, &r, sizeof(r), MSG_NOSIGNAL) != (ssize_t)sizeof(r))
            RSFW_FAIL("client %u: request not sent: %s", who, strerror(errno));
        read_response(fd, &r, who, k);
        if (r.close_after) {
            /* the server shuts its side: EOF, then close */
            struct pollfd p = { .fd = fd, .events = POLLIN };
            uint8_t b;
            if (poll(&p, 1, stall_ms()) != 1 || recv(fd, &b, 1, 0) != 0)
                RSFW_FAIL("client %u request %u: no EOF after the response", who, k);
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
}

static void fetch(const char *ip, const char *port, int clients, int rounds)
{
    struct sockaddr_storage ss;
    socklen_t len = rsfw_addr(ip, port, &ss);
    for (int i = 0; i < clients; i++) {
        pid_t p = fork();
        if (p < 0)
            RSFW_FAIL("fork: %s", strerror(errno));
        if (p == 0) {
            fetch_one(&ss, len, (uint32_t)i, (uint32_t)rounds);
            exit(0);
        }
    }
    int bad = 0;
    for (int i = 0; i < clients; i++) {
        int st;
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
            bad++;
    }
    if (bad)
        RSFW_FAIL("%d of %d clients failed", bad, clients);
    printf("%d clients x %d transfers: every byte arrived\n", clients, rounds);
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "serve")) {
        file_path = argv[4];
        map = xmap(file_path, &map_len);
        serve(argv[2], argv[3]);
    } else if (argc == 7 && !strcmp(argv[1], "fetch") && atoi(argv[5]) > 0 && atoi(argv[6]) > 0) {
        map = xmap(argv[4], &map_len);
        if (map_len < (17u << 20))
            RSFW_FAIL("%s: want at least 17 MiB", argv[4]);
        fetch(argv[2], argv[3], atoi(argv[5]), atoi(argv[6]));
        return 0;
    }
    fprintf(stderr, "usage: srv_smallbuf serve IP PORT FILE | fetch IP PORT FILE CLIENTS ROUNDS\n");
    return 2;
}
