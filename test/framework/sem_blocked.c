/* sem_blocked.c - a thread blocked in one call, signalled (sem_blocked.h). */
#include "sem_blocked.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "semcheck.h"

/* Runs of the counting handler (any signal). */
static volatile sig_atomic_t hits;

static void on_signal(int sig)
{
    (void)sig;
    hits++;
}

void sem_catch(int sig, int flags)
{
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(sig, &sa, NULL));
}

void sem_uncatch(int sig)
{
    struct sigaction sa = { .sa_handler = SIG_DFL };
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(sig, &sa, NULL));
}

static void *blocked_main(void *arg)
{
    struct sem_blocked *b = arg;
    b->tid = gettid();
    errno = 0;
    b->r = b->op(b);
    b->err = errno;
    __atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

int sem_blocked_done(struct sem_blocked *b)
{
    return __atomic_load_n(&b->done, __ATOMIC_ACQUIRE);
}

void sem_wait_asleep(struct sem_blocked *b)
{
    char path[64], st[256];
    int64_t end = sem_now_ms() + 10000;
    while (!b->tid)
        CHECK(sem_now_ms() < end, "blocked thread never started");
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)b->tid);
    while (!sem_blocked_done(b)) {
        FILE *f = fopen(path, "r");
        CHECK(f, "open %s", path);
        size_t n = fread(st, 1, sizeof(st) - 1, f);
        fclose(f);
        st[n] = 0;
        char *p = strrchr(st, ')');
        if (p && p[1] == ' ' && p[2] == 'S')
            return;
        CHECK(sem_now_ms() < end, "thread never went to sleep in its call");
        usleep(1000);
    }
}

void sem_start_blocked(struct sem_blocked *b, sem_blocked_op op, int fd, uint8_t *buf, size_t len)
{
    *b = (struct sem_blocked){ .op = op, .fd = fd, .buf = buf, .len = len };
    CHECK(pthread_create(&b->th, NULL, blocked_main, b) == 0, "pthread_create");
    sem_wait_asleep(b);
}

void sem_poke(struct sem_blocked *b, int sig)
{
    sem_wait_asleep(b);
    if (sem_blocked_done(b))
        return;
    sig_atomic_t before = hits;
    CHECK(pthread_kill(b->th, sig) == 0, "pthread_kill");
    int64_t end = sem_now_ms() + 10000;
    while (hits == before)
        CHECK(sem_now_ms() < end, "%s handler never ran", sigabbrev_np(sig));
    sem_wait_asleep(b);
}

void sem_interrupt(struct sem_blocked *b, int sig, int restart)
{
    for (int i = 0; i < 20 && !sem_blocked_done(b); i++) {
        sem_poke(b, sig);
        if (restart && i == 2)
            break;
    }
    if (restart)
        CHECK(!sem_blocked_done(b), "call returned %ld/%s after a SA_RESTART SIG%s", b->r,
              b->r < 0 ? strerrorname_np(b->err) : "-", sigabbrev_np(sig));
    else
        CHECK(sem_blocked_done(b), "call not interrupted by 20 SIG%s without SA_RESTART",
              sigabbrev_np(sig));
}

void sem_blocked_join(struct sem_blocked *b)
{
    pthread_join(b->th, NULL);
}

long sem_op_recv(struct sem_blocked *b) { return recv(b->fd, b->buf, b->len, 0); }
long sem_op_read(struct sem_blocked *b) { return read(b->fd, b->buf, b->len); }
long sem_op_send(struct sem_blocked *b) { return send(b->fd, b->buf, b->len, MSG_NOSIGNAL); }
long sem_op_write(struct sem_blocked *b) { return write(b->fd, b->buf, b->len); }
long sem_op_accept(struct sem_blocked *b) { return accept(b->fd, NULL, NULL); }

void *sem_echo_byte(void *arg)
{
    int fd = *(int *)arg;
    uint8_t b;
    sem_read_all(fd, &b, 1);
    sem_write_all(fd, &b, 1);
    return NULL;
}

void sem_warm_pair(int *c, int *s)
{
    uint8_t b = 0x5a;
    pthread_t t;
    sem_tcp_pair(AF_INET, c, s);
    CHECK(pthread_create(&t, NULL, sem_echo_byte, s) == 0, "pthread_create");
    sem_write_all(*c, &b, 1);
    sem_read_all(*c, &b, 1);
    pthread_join(t, NULL);
    CHECK(b == 0x5a, "warm-up byte differs");
}

int sem_any_listener(int wildcard, uint16_t *port)
{
    int l = sem_listener(AF_INET, 0);
    if (wildcard) {
        close(l);
        l = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
        struct sockaddr_in a = { .sin_family = AF_INET };
        CHECK_OK(bind(l, (struct sockaddr *)&a, sizeof(a)));
        CHECK_OK(listen(l, 64));
    }
    *port = sem_port_of(l);
    return l;
}

int sem_connect_port(uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, port, &ss);
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    CHECK_OK(connect(c, (struct sockaddr *)&ss, len));
    return c;
}
