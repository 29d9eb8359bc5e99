/*
 * rs_api_signals - a blocked rrecv of the rsocket API (no dispatcher: run
 * with LD_PRELOAD=libdmm_rsocket.so, as rstream is) interrupted by
 * signals. Without the dispatcher the engine cannot know which signal
 * interrupted its poll() and scans the handlers (nstack_intr_scan,
 * include/nstack/nstack_sigrestart.h; doc/module-interface.md, "Signals"):
 *
 *   only SIGUSR1, with SA_RESTART   3 signals, rrecv goes on, gets the data
 *   only SIGUSR1, without           rrecv fails EINTR, the data read after
 *   SIGUSR1 with, SIGUSR2 without   rrecv fails EINTR on SIGUSR1 too (the
 *                                   scan's rule; the dispatcher's is exact)
 *
 *   rs_api_signals ADDR PORT        one process: listener, client, and the
 *                                   blocked rrecv in a thread
 * Exits 0 and prints "SIGNALS OK", or names the failed step.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <rdma/rsocket.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 20000
#define MSG 300

static int failed(const char *what)
{
    fprintf(stderr, "rs_api_signals: %s (errno %s)\n", what, strerrorname_np(errno));
    exit(1);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static volatile sig_atomic_t hits;
static void on_signal(int sig) { (void)sig; hits++; }

static void catch_sig(int sig, int flags)
{
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL))
        failed("sigaction");
}

/* ---- the blocked rrecv -------------------------------------------------- */

struct blocked {
    pthread_t th;
    volatile pid_t tid;
    int fd;
    uint8_t buf[MSG];
    ssize_t r;
    int err;
    volatile int done;
};

static void *recv_main(void *arg)
{
    struct blocked *b = arg;
    b->tid = gettid();
    size_t got = 0;
    errno = 0;
    ssize_t r = rrecv(b->fd, b->buf, MSG, 0);
    /* the message may come in parts: read the rest */
    while (r > 0 && (got += (size_t)r) < MSG)
        r = rrecv(b->fd, b->buf + got, MSG - got, 0);
    b->err = errno;
    b->r = r > 0 ? (ssize_t)got : r;
    __atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int is_done(struct blocked *b)
{
    return __atomic_load_n(&b->done, __ATOMIC_ACQUIRE);
}

/* The thread sleeps (state S) or has returned. */
static void wait_asleep(struct blocked *b)
{
    char path[64], st[256];
    int64_t end = now_ms() + DEADLINE_MS;
    while (!b->tid)
        if (now_ms() > end)
            failed("receiving thread never started");
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)b->tid);
    while (!is_done(b)) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(st, 1, sizeof(st) - 1, f) : 0;
        if (f)
            fclose(f);
        st[n] = 0;
        char *p = strrchr(st, ')');
        if (p && p[1] == ' ' && p[2] == 'S')
            return;
        if (now_ms() > end)
            failed("rrecv never went to sleep");
        usleep(1000);
    }
}

/* One signal to the sleeping thread; back once its handler ran and the
 * thread sleeps again or returned. */
static void poke(struct blocked *b, int sig)
{
    wait_asleep(b);
    if (is_done(b))
        return;
    sig_atomic_t before = hits;
    if (pthread_kill(b->th, sig))
        failed("pthread_kill");
    for (int64_t end = now_ms() + DEADLINE_MS; hits == before;)
        if (now_ms() > end)
            failed("handler never ran");
    wait_asleep(b);
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = rsend(fd, p, n, 0);
        if (w <= 0)
            failed("rsend");
        p += w;
        n -= (size_t)w;
    }
}

static void fill(uint8_t *p, uint32_t seed)
{
    for (size_t i = 0; i < MSG; i++)
        p[i] = (uint8_t)(i * 151 + seed * 13);
}

/* A blocked rrecv on s, signalled with `sig` up to 20 times (3 when it
 * must restart); then c sends the message. want_eintr: the call must fail
 * EINTR (the message is read afterwards), else return it whole. */
static void round_trip(int c, int s, int sig, int want_eintr, uint32_t seed)
{
    struct blocked b = { .fd = s };
    uint8_t out[MSG];
    if (pthread_create(&b.th, NULL, recv_main, &b))
        failed("pthread_create");
    wait_asleep(&b);
    for (int i = 0; i < (want_eintr ? 20 : 3) && !is_done(&b); i++)
        poke(&b, sig);
    if (is_done(&b) != want_eintr)
        failed(want_eintr ? "rrecv not interrupted by 20 signals" : "rrecv ended by a signal");
    fill(out, seed);
    send_all(c, out, MSG);
    pthread_join(b.th, NULL);
    if (want_eintr) {
        if (b.r != -1 || b.err != EINTR)
            errno = b.err, failed("interrupted rrecv did not fail EINTR");
        b.done = 0;
        recv_main(&b);
    }
    if (b.r != MSG)
        errno = b.err, failed("rrecv did not return the message");
    if (memcmp(b.buf, out, MSG))
        failed("data after the signals differs");
}

/* ---- the connection ----------------------------------------------------- */

struct acceptor {
    int lfd, fd;
};

static void *accept_main(void *arg)
{
    struct acceptor *a = arg;
    struct pollfd p = { .fd = a->lfd, .events = POLLIN };
    a->fd = rpoll(&p, 1, DEADLINE_MS) == 1 ? raccept(a->lfd, NULL, NULL) : -1;
    return NULL;
}

static void connect_pair(const char *ip, const char *port, int *c, int *s)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
        failed("bad IPv4 address");
    struct acceptor acc = { .lfd = rsocket(AF_INET, SOCK_STREAM, 0), .fd = -1 };
    if (acc.lfd < 0 || rbind(acc.lfd, (struct sockaddr *)&a, sizeof(a)) || rlisten(acc.lfd, 4))
        failed("listener");
    pthread_t t;
    if (pthread_create(&t, NULL, accept_main, &acc))
        failed("pthread_create");
    *c = rsocket(AF_INET, SOCK_STREAM, 0);
    if (*c < 0 || rconnect(*c, (struct sockaddr *)&a, sizeof(a)))
        failed("rconnect");
    pthread_join(t, NULL);
    if (acc.fd < 0)
        failed("raccept");
    *s = acc.fd;
    rclose(acc.lfd);
}

int main(int argc, char **argv)
{
    int c, s;
    if (argc != 3)
        return fprintf(stderr, "usage: rs_api_signals ADDR PORT\n"), 2;
    connect_pair(argv[1], argv[2], &c, &s);
    catch_sig(SIGUSR1, SA_RESTART);
    round_trip(c, s, SIGUSR1, 0, 1);
    catch_sig(SIGUSR1, 0);
    round_trip(c, s, SIGUSR1, 1, 2);
    catch_sig(SIGUSR1, SA_RESTART);
    catch_sig(SIGUSR2, 0);
    round_trip(c, s, SIGUSR1, 1, 3);       /* the scan: SIGUSR2 lacks SA_RESTART */
    round_trip(c, s, SIGUSR2, 1, 4);
    rclose(c);
    rclose(s);
    printf("SIGNALS OK\n");
    return 0;
}
