/* sem_wakeup.c - one readiness change, two waiters on the same socket.
 *
 * Thread A sleeps in poll() (or in epoll_wait() on set 2) on a socket;
 * thread B sleeps in epoll_wait() on set 1 holding the same socket. One
 * byte arrives: both must see it. A module's wait fd is edge-like (the
 * dispatcher's poll_events() for B drains it, as an RDMA completion
 * channel is drained by ibv_get_cq_event), so unless the dispatcher wakes
 * A itself after consuming that wake-up on B's behalf, A sleeps on.
 *
 * The order is forced, not hoped for: all three threads run on one CPU,
 * B and (while it writes) the main thread are SCHED_FIFO, A is not. A is
 * woken by the byte but cannot run before B has drained the wait fd and
 * returned, which is exactly the order that loses a wake-up. Without
 * permission for SCHED_FIFO the case still runs, in whatever order the
 * scheduler picks. */
#include "semcheck.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 8000            /* how long A and B wait for the byte */
#define BLOCKED_MS 10000        /* how long we wait for them to fall asleep */

struct sleeper {
    int fd;                     /* poll: the socket; epoll: the set */
    int use_epoll;
    _Atomic pid_t tid;
    int result;                 /* poll/epoll_wait return value */
    uint32_t events;            /* revents / events reported */
};

static void *sleep_on(void *arg)
{
    struct sleeper *w = arg;
    __atomic_store_n(&w->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    if (w->use_epoll) {
        struct epoll_event ev = { 0 };
        w->result = epoll_wait(w->fd, &ev, 1, WAIT_MS);
        w->events = ev.events;
    } else {
        struct pollfd p = { .fd = w->fd, .events = POLLIN };
        w->result = poll(&p, 1, WAIT_MS);
        w->events = (uint32_t)(uint16_t)p.revents;
    }
    return NULL;
}

static int is_wait_syscall(long nr)
{
    return nr == SYS_poll || nr == SYS_ppoll || nr == SYS_epoll_wait || nr == SYS_epoll_pwait
#ifdef SYS_epoll_pwait2
           || nr == SYS_epoll_pwait2
#endif
        ;
}

/* Whether thread tid sleeps inside one of the wait system calls. */
static int sleeps_in_wait(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *state = strrchr(buf, ')');
    if (state == NULL || state[1] != ' ' || state[2] != 'S')
        return 0;
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    long nr = -1;
    int ok = fscanf(f, "%ld", &nr) == 1;
    fclose(f);
    return ok && is_wait_syscall(nr);
}

static void wait_until_asleep(struct sleeper *w, const char *who)
{
    int64_t deadline = sem_now_ms() + BLOCKED_MS;
    for (int i = 0; i < 100000; i++) {
        pid_t tid = __atomic_load_n(&w->tid, __ATOMIC_ACQUIRE);
        if (tid != 0 && sleeps_in_wait(tid))
            return;
        CHECK(sem_now_ms() < deadline, "%s never fell asleep in its wait", who);
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    CHECK(0, "%s never fell asleep in its wait", who);
}

static int set_fifo(pthread_t t, int on)
{
    struct sched_param sp = { .sched_priority = on ? 1 : 0 };
    return pthread_setschedparam(t, on ? SCHED_FIFO : SCHED_OTHER, &sp);
}

/* Pins the calling thread (and the threads it creates) to its first CPU;
 * returns the old mask in *old. */
static void pin_to_one_cpu(cpu_set_t *old)
{
    CHECK_OK(sched_getaffinity(0, sizeof(*old), old));
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (CPU_ISSET(c, old)) {
            CPU_SET(c, &one);
            break;
        }
    }
    CHECK_OK(sched_setaffinity(0, sizeof(one), &one));
}

static void start_consumer(pthread_t *t, struct sleeper *b, int *rt)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    struct sched_param sp = { .sched_priority = 1 };
    *rt = pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED) == 0 &&
          pthread_attr_setschedpolicy(&attr, SCHED_FIFO) == 0 &&
          pthread_attr_setschedparam(&attr, &sp) == 0 && pthread_create(t, &attr, sleep_on, b) == 0;
    pthread_attr_destroy(&attr);
    if (!*rt) {
        fprintf(stderr, "note: SCHED_FIFO not permitted; the order of the two waiters is left to chance\n");
        CHECK(pthread_create(t, NULL, sleep_on, b) == 0, "pthread_create");
    }
}

/* A sleeps in poll (a_epoll = 0) or in epoll_wait on its own set. */
static void run_two_waiters(int a_epoll)
{
    cpu_set_t old;
    pin_to_one_cpu(&old);
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    int ep_b = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = 0xb };
    CHECK_OK(epoll_ctl(ep_b, EPOLL_CTL_ADD, s, &ev));
    int ep_a = -1;
    if (a_epoll) {
        ep_a = CHECK_OK(epoll_create1(0));
        ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 0xa };
        CHECK_OK(epoll_ctl(ep_a, EPOLL_CTL_ADD, s, &ev));
    }
    struct sleeper a = { .fd = a_epoll ? ep_a : s, .use_epoll = a_epoll };
    struct sleeper b = { .fd = ep_b, .use_epoll = 1 };
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, sleep_on, &a) == 0, "pthread_create");
    wait_until_asleep(&a, "thread A");
    int rt;
    start_consumer(&tb, &b, &rt);
    wait_until_asleep(&b, "thread B");

    /* The byte wakes A and B; as FIFO threads on A's only CPU, we and
     * then B run first, so B's wait drains the wake-up before A looks. */
    int main_rt = rt && set_fifo(pthread_self(), 1) == 0;
    uint8_t byte = 0x5a, in = 0;
    ssize_t wr = write(c, &byte, 1);
    CHECK(pthread_join(tb, NULL) == 0, "pthread_join B");
    if (main_rt)
        set_fifo(pthread_self(), 0);
    CHECK(wr == 1, "write: %s", strerror(errno));
    CHECK(pthread_join(ta, NULL) == 0, "pthread_join A");
    CHECK_OK(sched_setaffinity(0, sizeof(old), &old));

    CHECK(b.result == 1 && (b.events & EPOLLIN), "thread B (epoll set 1): result %d events %#x", b.result,
          b.events);
    CHECK(a.result == 1 && (a.events & POLLIN),
          "thread A (%s): result %d events %#x: its wake-up was consumed on B's behalf and lost",
          a_epoll ? "epoll set 2" : "poll", a.result, a.events);
    sem_read_all(s, &in, 1);
    CHECK(in == byte, "byte %#x, expected %#x", in, byte);
    if (ep_a >= 0)
        close(ep_a);
    close(ep_b);
    close(s);
    close(c);
}

static void case_poll_and_epoll(void)
{
    run_two_waiters(0);
}

static void case_two_epoll_sets(void)
{
    run_two_waiters(1);
}

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = {
        { "poll_and_epoll", case_poll_and_epoll },
        { "two_epoll_sets", case_two_epoll_sets },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
