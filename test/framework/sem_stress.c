/* sem_stress.c - the dispatcher under concurrent use (bounded, checked):
 *  - close() racing with recv() on another thread;
 *  - epoll_ctl ADD/DEL racing a thread blocked in epoll_wait on the set;
 *  - fork() while another thread is inside a blocking call; the child must
 *    be able to make and use sockets (no framework lock left held). */
#include "semcheck.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 60
#define LONG_MS 10000

/* ---- close racing recv ---------------------------------------------------- */

struct reader {
    int fd;
    size_t got;
    uint8_t buf[4096];
};

static void *read_until_end(void *arg)
{
    struct reader *r = arg;
    for (int i = 0; i < 10000 && r->got < sizeof(r->buf); i++) {
        ssize_t n = recv(r->fd, r->buf + r->got, sizeof(r->buf) - r->got, 0);
        if (n <= 0)
            break;              /* EOF, or EBADF after the close */
        r->got += (size_t)n;
    }
    return NULL;
}

static void case_close_races_recv(void)
{
    for (int round = 0; round < ROUNDS; round++) {
        int c, s;
        sem_tcp_pair(AF_INET, &c, &s);
        struct reader r = { .fd = s };
        pthread_t t;
        CHECK(pthread_create(&t, NULL, read_until_end, &r) == 0, "pthread_create");
        uint8_t out[1000];
        sem_fill(out, sizeof(out), (uint32_t)round, 0);
        sem_write_all(c, out, sizeof(out));
        close(s);                               /* races the reader */
        shutdown(c, SHUT_RDWR);                 /* ends a recv still blocked */
        close(c);
        CHECK(pthread_join(t, NULL) == 0, "pthread_join");
        CHECK(r.got <= sizeof(out) && sem_verify(r.buf, r.got, (uint32_t)round, 0) == (size_t)-1,
              "round %d: reader got %zu wrong bytes", round, r.got);
    }
}

/* ---- epoll_ctl racing epoll_wait ------------------------------------------ */

#define TAG_BASE 0x7700000000ull

struct waiter {
    int ep;
    atomic_int stop;
    atomic_int bad;
    _Atomic uint64_t bad_value;
    atomic_long seen;
};

static void *wait_loop(void *arg)
{
    struct waiter *w = arg;
    struct epoll_event evs[8];
    for (int i = 0; i < 100000 && !atomic_load(&w->stop); i++) {
        int n = epoll_wait(w->ep, evs, 8, 50);
        for (int k = 0; k < n; k++) {
            if ((evs[k].data.u64 & ~0xffffull) != TAG_BASE) {
                atomic_store(&w->bad_value, evs[k].data.u64);
                atomic_store(&w->bad, 1);       /* framework data leaked to the app */
            }
            atomic_fetch_add(&w->seen, 1);
        }
    }
    return NULL;
}

static void case_ctl_races_wait(void)
{
    struct waiter w = { .ep = CHECK_OK(epoll_create1(0)) };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, wait_loop, &w) == 0, "pthread_create");
    for (int round = 0; round < ROUNDS; round++) {
        int c, s;
        sem_tcp_pair(AF_INET, &c, &s);
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_BASE | (uint64_t)round };
        CHECK_OK(epoll_ctl(w.ep, EPOLL_CTL_ADD, s, &ev));
        uint8_t b = (uint8_t)round, in;
        sem_write_all(c, &b, 1);
        CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "round %d: not readable", round);
        if (round % 2)
            CHECK_OK(epoll_ctl(w.ep, EPOLL_CTL_DEL, s, NULL));
        sem_read_all(s, &in, 1);
        CHECK(in == b, "round %d: byte", round);
        close(s);                               /* odd rounds: removed by close */
        close(c);
    }
    atomic_store(&w.stop, 1);
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    CHECK(!atomic_load(&w.bad), "epoll_wait returned data the app never registered: %#llx",
          (unsigned long long)atomic_load(&w.bad_value));
    close(w.ep);
}

/* ---- fork while another thread is inside a call ----------------------------- */

static void *blocked_recv(void *arg)
{
    int fd = *(int *)arg;
    uint8_t b;
    for (int i = 0; i < 1000; i++)
        if (recv(fd, &b, 1, 0) <= 0)
            break;
    return NULL;
}

static int child_echo(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    uint8_t out[2000], in[2000];
    sem_fill(out, sizeof(out), 91, 0);
    sem_write_all(c, out, sizeof(out));
    sem_read_all(s, in, sizeof(in));
    return sem_verify(in, sizeof(in), 91, 0) == (size_t)-1 ? 0 : 3;
}

static void case_fork_during_call(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, blocked_recv, &s) == 0, "pthread_create");
    int ep = CHECK_OK(epoll_create1(0));
    for (int round = 0; round < 20; round++) {
        pid_t pid = CHECK_OK(fork());
        if (pid == 0) {
            alarm(30);                          /* a deadlocked child fails, never hangs */
            _exit(child_echo());
        }
        int ec, es;                             /* the parent keeps working meanwhile */
        sem_tcp_pair(AF_INET, &ec, &es);
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 5 };
        CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, es, &ev));
        close(es);
        close(ec);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: child status %#x", round, status);
    }
    shutdown(c, SHUT_RDWR);
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    close(ep);
    close(c);
    close(s);
}

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = {
        { "close_races_recv", case_close_races_recv },
        { "ctl_races_wait", case_ctl_races_wait },
        { "fork_during_call", case_fork_during_call },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
