/*
 * srv_mtaccept.c - a multi-threaded event-loop echo server: two threads
 * accept on one nonblocking listener, each with its own epoll set holding
 * the listener and the connections it accepted (the shape of many
 * servers' worker threads). A handshake that makes one thread wait on
 * another, or blocks a nonblocking call, shows as a stall here.
 *
 *   srv_mtaccept IP PORT N TOTAL
 *       echo N connections until EOF; pass when all N ended and exactly
 *       TOTAL bytes were echoed; prints how many each thread accepted
 *
 * Bounded: SRV_TIMEOUT_S (default 60 s) for the whole run. Exit 0 pass,
 * 1 fail (one line), 2 bad arguments.
 */
#include "../rsocket-fw/rsfw_io.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <unistd.h>

#define CHUNK 16384
#define THREADS 2

struct conn {
    int fd;
    size_t len, off;           /* bytes read, not yet echoed */
    uint8_t buf[CHUNK];
};

static int lfd;
static long n_conns;
static int64_t deadline_ms;
static atomic_long ended, echoed;   /* shared by both threads */

struct loop {
    int ep;
    long accepted;
};

static void ep_ctl(int ep, int op, int fd, uint32_t ev, void *ptr)
{
    struct epoll_event e = { .events = ev, .data.ptr = ptr };
    if (epoll_ctl(ep, op, fd, &e))
        RSFW_FAIL("epoll_ctl(op %d, fd %d): %s", op, fd, strerror(errno));
}

static void accept_all(struct loop *l)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                return;
            RSFW_FAIL("accept4: %s", strerror(errno));
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (!c)
            RSFW_FAIL("out of memory");
        c->fd = fd;
        ep_ctl(l->ep, EPOLL_CTL_ADD, fd, EPOLLIN, c);
        l->accepted++;
    }
}

static void finish(struct loop *l, struct conn *c)
{
    ep_ctl(l->ep, EPOLL_CTL_DEL, c->fd, 0, NULL);
    close(c->fd);
    free(c);
    atomic_fetch_add(&ended, 1);
}

/* One readiness event on a connection: echo what can be echoed. */
static void on_conn(struct loop *l, struct conn *c)
{
    if (c->len == 0) {
        ssize_t r = recv(c->fd, c->buf, CHUNK, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return finish(l, c);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            RSFW_FAIL("recv: %s", strerror(errno));
        }
        c->len = (size_t)r;
        c->off = 0;
    }
    while (c->off < c->len) {
        ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR)
                RSFW_FAIL("send: %s", strerror(errno));
            ep_ctl(l->ep, EPOLL_CTL_MOD, c->fd, EPOLLOUT, c);
            return;
        }
        c->off += (size_t)w;
        atomic_fetch_add(&echoed, w);
    }
    c->len = 0;
    ep_ctl(l->ep, EPOLL_CTL_MOD, c->fd, EPOLLIN, c);
}

static void *run(void *arg)
{
    struct loop *l = arg;
    struct epoll_event ev[64];
    ep_ctl(l->ep, EPOLL_CTL_ADD, lfd, EPOLLIN, NULL);
    while (atomic_load(&ended) < n_conns) {
        if (rsfw_now_ms() > deadline_ms)
            RSFW_FAIL("timeout: %ld of %ld connections ended (stalled or deadlocked)",
                      atomic_load(&ended), n_conns);
        int n = epoll_wait(l->ep, ev, 64, 100);
        if (n < 0 && errno != EINTR)
            RSFW_FAIL("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == NULL)
                accept_all(l);
            else
                on_conn(l, ev[i].data.ptr);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: srv_mtaccept IP PORT N TOTAL\n");
        return 2;
    }
    n_conns = rsfw_count("connection count", argv[3], 65536);
    long total = rsfw_count("byte total", argv[4], 1L << 40);
    const char *t = getenv("SRV_TIMEOUT_S");
    deadline_ms = rsfw_now_ms() + (t && atol(t) > 0 ? atol(t) : 60) * 1000;
    struct sockaddr_storage ss;
    socklen_t len = rsfw_addr(argv[1], argv[2], &ss);
    int one = 1;
    lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 1024))
        RSFW_FAIL("listen on %s:%s: %s", argv[1], argv[2], strerror(errno));
    struct loop loops[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        loops[i] = (struct loop){ .ep = epoll_create1(0) };
        if (loops[i].ep < 0 || pthread_create(&th[i], NULL, run, &loops[i]))
            RSFW_FAIL("thread %d: %s", i, strerror(errno));
    }
    printf("listening on %s:%s, %d threads\n", argv[1], argv[2], THREADS);
    fflush(stdout);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    printf("server: %ld connections, %ld bytes echoed; accepted per thread: %ld %ld\n",
           n_conns, atomic_load(&echoed), loops[0].accepted, loops[1].accepted);
    if (atomic_load(&echoed) != total)
        RSFW_FAIL("echoed %ld bytes, want %ld", atomic_load(&echoed), total);
    return 0;
}
