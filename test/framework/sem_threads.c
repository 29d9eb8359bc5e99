/* sem_threads.c - concurrency: 16 threads each with their own connection;
 * one socket used by a sender thread and a receiver thread at once; a
 * thread blocked in epoll_wait/poll is woken by data another thread
 * causes; a poll or epoll_wait right after blocking calls is woken by
 * data that comes later. Every stream is digest- or pattern-checked. */
#include "semcheck.h"

#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LONG_MS 20000

enum { NTHREADS = 16, ROUNDS = 64, CHUNK = 8192 };

struct own_conn {
    int idx;
    uint64_t sent_digest, recv_digest;
    const char *error;
};

/* Each thread: its own pair, ROUNDS chunks c->s, each echoed s->c. */
static void *own_connection(void *arg)
{
    struct own_conn *o = arg;
    int c, s;
    sem_tcp_pair(o->idx % 2 && sem_have_ipv6() ? AF_INET6 : AF_INET, &c, &s);
    uint8_t out[CHUNK], mid[CHUNK], in[CHUNK];
    o->sent_digest = o->recv_digest = SEM_DIGEST_INIT;
    for (int r = 0; r < ROUNDS; r++) {
        sem_fill(out, CHUNK, (uint32_t)o->idx * 1000u + (uint32_t)r, 0);
        o->sent_digest = sem_digest(o->sent_digest, out, CHUNK);
        sem_write_all(c, out, CHUNK);
        sem_read_all(s, mid, CHUNK);
        sem_write_all(s, mid, CHUNK);
        sem_read_all(c, in, CHUNK);
        o->recv_digest = sem_digest(o->recv_digest, in, CHUNK);
    }
    close(c);
    close(s);
    return NULL;
}

static void case_sixteen_connections(void)
{
    pthread_t t[NTHREADS];
    static struct own_conn o[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        o[i] = (struct own_conn){ .idx = i };
        CHECK(pthread_create(&t[i], NULL, own_connection, &o[i]) == 0, "pthread_create %d", i);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(o[i].sent_digest == o[i].recv_digest, "thread %d: echoed stream digest differs", i);
}

/* ---- one socket, two threads ------------------------------------------ */

enum { DUPLEX_TOTAL = 8 << 20 };

struct duplex {
    int fd;
    uint64_t digest;
    size_t bytes;
};

static void *duplex_sender(void *arg)
{
    struct duplex *d = arg;
    static uint8_t buf[32768];
    d->digest = SEM_DIGEST_INIT;
    for (size_t off = 0; off < DUPLEX_TOTAL; off += sizeof(buf)) {
        sem_fill(buf, sizeof(buf), 77, off);
        d->digest = sem_digest(d->digest, buf, sizeof(buf));
        sem_write_all(d->fd, buf, sizeof(buf));
        d->bytes += sizeof(buf);
    }
    CHECK_OK(shutdown(d->fd, SHUT_WR));
    return NULL;
}

static void *duplex_receiver(void *arg)
{
    struct duplex *d = arg;
    static uint8_t buf[10007];
    d->digest = SEM_DIGEST_INIT;
    for (;;) {
        ssize_t n = recv(d->fd, buf, sizeof(buf), 0);
        CHECK(n >= 0, "receiver recv: %s", strerror(errno));
        if (n == 0)
            break;
        d->digest = sem_digest(d->digest, buf, (size_t)n);
        d->bytes += (size_t)n;
    }
    return NULL;
}

/* The far end echoes everything until EOF, then closes. */
static void *echo_until_eof(void *arg)
{
    int fd = *(int *)arg;
    static uint8_t buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        CHECK(n >= 0, "echo read: %s", strerror(errno));
        if (n == 0)
            break;
        sem_write_all(fd, buf, (size_t)n);
    }
    close(fd);
    return NULL;
}

static void case_send_and_recv_threads(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    struct duplex tx = { .fd = c }, rx = { .fd = c };
    pthread_t te, ts, tr;
    CHECK(pthread_create(&te, NULL, echo_until_eof, &s) == 0, "echo thread");
    CHECK(pthread_create(&tr, NULL, duplex_receiver, &rx) == 0, "receiver thread");
    CHECK(pthread_create(&ts, NULL, duplex_sender, &tx) == 0, "sender thread");
    pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    pthread_join(te, NULL);
    CHECK(rx.bytes == DUPLEX_TOTAL, "received %zu of %d", rx.bytes, DUPLEX_TOTAL);
    CHECK(rx.digest == tx.digest, "digest of the echoed stream differs");
    close(c);
}

/* ---- cross-thread wake-ups --------------------------------------------- */

struct waiter {
    int fd, use_epoll;
    volatile int ready;     /* set just before blocking (a hint only) */
    int result;
};

static void *block_until_readable(void *arg)
{
    struct waiter *w = arg;
    if (w->use_epoll) {
        int ep = CHECK_OK(epoll_create1(0));
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 9 };
        CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev));
        w->ready = 1;
        w->result = epoll_wait(ep, &ev, 1, -1);
        close(ep);
    } else {
        struct pollfd p = { w->fd, POLLIN, 0 };
        w->ready = 1;
        w->result = poll(&p, 1, -1);
    }
    return NULL;
}

static void wake_blocked(int use_epoll)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    struct waiter w = { .fd = s, .use_epoll = use_epoll };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, block_until_readable, &w) == 0, "pthread_create");
    /* bounded: wait for the thread to be about to block */
    for (int i = 0; i < 2000 && !w.ready; i++)
        usleep(1000);
    usleep(50 * 1000);   /* let it enter the kernel wait; the test holds either way */
    CHECK(write(c, "w", 1) == 1, "write");
    pthread_join(t, NULL);   /* a lost wake-up hangs here: the watchdog fails it */
    CHECK(w.result == 1, "blocked waiter returned %d", w.result);
    char b;
    CHECK(read(s, &b, 1) == 1 && b == 'w', "data");
    close(c); close(s);
}

static void case_wake_epoll(void) { wake_blocked(1); }
static void case_wake_poll(void) { wake_blocked(0); }

/* ---- a wait after blocking calls ----------------------------------------
 * Blocking send/recv over rsocket poll the CQ and leave it unarmed while
 * they do (doc/rsocket.md, "Poll before sleeping"); a poll() or epoll_wait
 * that follows must arm it before it sleeps, or data arriving later never
 * wakes it. */

struct late_writer {
    int fd;
    char byte;
};

static void *write_later(void *arg)
{
    struct late_writer *l = arg;
    usleep(50 * 1000);      /* let the waiter sleep first; the test holds either way */
    CHECK(write(l->fd, &l->byte, 1) == 1, "late write");
    return NULL;
}

static void ping_pong_blocking(int c, int s, int rounds)
{
    uint8_t out[64], in[64];
    for (int r = 0; r < rounds; r++) {
        sem_fill(out, sizeof out, (uint32_t)r, 0);
        sem_write_all(c, out, sizeof out);
        sem_read_all(s, in, sizeof in);
        CHECK(memcmp(in, out, sizeof in) == 0, "round %d: data c->s", r);
        sem_write_all(s, in, sizeof in);
        sem_read_all(c, out, sizeof out);
        CHECK(memcmp(in, out, sizeof in) == 0, "round %d: data s->c", r);
    }
}

static void wait_after_blocking(int use_epoll)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    ping_pong_blocking(c, s, 200);
    struct late_writer l = { c, 'L' };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, write_later, &l) == 0, "pthread_create");
    int n;
    if (use_epoll) {
        int ep = CHECK_OK(epoll_create1(0));
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 };
        CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
        n = epoll_wait(ep, &ev, 1, 5000);
        CHECK(n != 1 || (ev.data.u64 == 7 && (ev.events & EPOLLIN)), "event %#x", ev.events);
        close(ep);
    } else {
        struct pollfd p = { s, POLLIN, 0 };
        n = poll(&p, 1, 5000);
        CHECK(n != 1 || (p.revents & POLLIN), "revents %#x", p.revents);
    }
    pthread_join(t, NULL);
    CHECK(n == 1, "the wait after blocking calls returned %d (0: the data never woke it)", n);
    char b;
    CHECK(read(s, &b, 1) == 1 && b == 'L', "data");
    ping_pong_blocking(s, c, 20);      /* and blocking calls still work after it */
    close(c); close(s);
}

static void case_poll_after_blocking(void) { wait_after_blocking(0); }
static void case_epoll_after_blocking(void) { wait_after_blocking(1); }

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = {
        { "sixteen_connections", case_sixteen_connections },
        { "send_and_recv_threads", case_send_and_recv_threads },
        { "wake_epoll", case_wake_epoll }, { "wake_poll", case_wake_poll },
        { "poll_after_blocking", case_poll_after_blocking },
        { "epoll_after_blocking", case_epoll_after_blocking },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
