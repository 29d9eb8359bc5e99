/* rsbug_stress.c - open/close stress with stale CM events (a server that
 * closes every connection at once, a client that sometimes closes before
 * the accept), and N threads each blocked in poll/epoll on its own socket,
 * every one woken by its data. */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define STRESS_CYCLES 300
#define MT_THREADS 8

/* Accept and close at once on PORT until the client's last connection,
 * made to PORT+1 once all cycles are done, says END!. */
void stress_server(const struct rb_args *a)
{
    struct rb_args end_at = *a;
    end_at.port = a->port + 1;
    int lfd = rb_listen(a, 0), efd = rb_listen(&end_at, 0), accepted = 0;
    rb_say("LISTENING");
    for (int i = 0; i < 2 * STRESS_CYCLES + 1; i++) {
        struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = efd, .events = POLLIN } };
        CHECK(SK(poll)(p, 2, -1) >= 1, "poll on the two listeners");
        if (p[1].revents & POLLIN)
            break;
        rb_close(rb_accept(lfd), "accepted connection");
        accepted++;
    }
    int fd = rb_accept(efd);
    char end[4];
    rb_recv_all(fd, end, 4);
    CHECK(memcmp(end, "END!", 4) == 0, "last connection's word");
    rb_close(fd, "last connection");
    CHECK(accepted >= STRESS_CYCLES / 2, "only %d connections accepted", accepted);
    rb_close(lfd, "listener");
    rb_close(efd, "END listener");
    rb_say("SERVER OK");
}

/* Even cycles wait for the server's close, odd ones close at once (the
 * server's CM events then concern a connection already gone). */
void stress_client(const struct rb_args *a)
{
    struct rb_args end_at = *a;
    end_at.port = a->port + 1;
    for (int i = 0; i < STRESS_CYCLES; i++) {
        int fd = rb_connect(a);
        if (i % 2 == 0) {
            char c;
            ssize_t r = SK(recv)(fd, &c, 1, 0);
            CHECK(r == 0 || (r < 0 && errno == ECONNRESET), "cycle %d: recv returned %zd", i, r);
        }
        rb_close(fd, "stress connection");
    }
    int fd = rb_connect(&end_at);
    rb_send_all(fd, "END!", 4);
    rb_expect_eof(fd);
    rb_close(fd, "last connection");
    rb_say("CLIENT OK");
}

/* One waiter: blocks in poll, or in its own epoll (fw build, odd ones). */
struct mt_waiter {
    int fd, use_epoll;
    pthread_t t;
};
static pthread_mutex_t mt_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mt_cond = PTHREAD_COND_INITIALIZER;
static int mt_ready;   /* waiters about to block; under mt_lock */

static void mt_block(int fd, int use_epoll)
{
    if (!use_epoll) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n = SK(poll)(&p, 1, -1);
        CHECK(n == 1 && (p.revents & POLLIN), "waiter poll(-1) returned %d", n);
        return;
    }
#ifndef RSBUG_API
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd }, out;
    CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl");
    int n = epoll_wait(ep, &out, 1, -1);
    CHECK(n == 1 && (out.events & EPOLLIN), "waiter epoll_wait(-1) returned %d", n);
    close(ep);
#endif
}

/* Announce, block until readable, then echo the byte that woke it. */
static void *mt_wait(void *arg)
{
    struct mt_waiter *w = arg;
    pthread_mutex_lock(&mt_lock);
    mt_ready++;
    pthread_cond_broadcast(&mt_cond);
    pthread_mutex_unlock(&mt_lock);
    mt_block(w->fd, w->use_epoll);
    char c;
    rb_recv_all(w->fd, &c, 1);
    rb_send_all(w->fd, &c, 1);
    return NULL;
}

/* N connections, N waiters started; 'R' on each tells the client that all
 * waiters are (about to be) blocked. A lost wake-up hangs a join: the
 * process deadline fails it. */
void mtpoll_server(const struct rb_args *a)
{
    struct mt_waiter w[MT_THREADS];
    int lfd = rb_listen(a, 0);
    rb_say("LISTENING");
    for (int i = 0; i < MT_THREADS; i++) {
        w[i].fd = rb_accept(lfd);
#ifdef RSBUG_API
        w[i].use_epoll = 0;
#else
        w[i].use_epoll = i % 2;
#endif
        CHECK(pthread_create(&w[i].t, NULL, mt_wait, &w[i]) == 0, "pthread_create");
    }
    pthread_mutex_lock(&mt_lock);
    while (mt_ready < MT_THREADS)
        pthread_cond_wait(&mt_cond, &mt_lock);
    pthread_mutex_unlock(&mt_lock);
    for (int i = 0; i < MT_THREADS; i++)
        rb_send_all(w[i].fd, "R", 1);
    for (int i = 0; i < MT_THREADS; i++) {
        pthread_join(w[i].t, NULL);
        rb_expect_eof(w[i].fd);
        rb_close(w[i].fd, "connection");
    }
    rb_close(lfd, "listener");
    rb_say("SERVER OK");
}

/* Wake the waiters one at a time, last first; each must echo. */
void mtpoll_client(const struct rb_args *a)
{
    int fd[MT_THREADS];
    for (int i = 0; i < MT_THREADS; i++)
        fd[i] = rb_connect(a);
    for (int i = 0; i < MT_THREADS; i++) {
        char r;
        rb_recv_all(fd[i], &r, 1);
        CHECK(r == 'R', "ready byte on connection %d", i);
    }
    for (int i = MT_THREADS - 1; i >= 0; i--) {
        char c = (char)('a' + i), back;
        rb_send_all(fd[i], &c, 1);
        rb_recv_all(fd[i], &back, 1);
        CHECK(back == c, "echo from waiter %d", i);
    }
    for (int i = 0; i < MT_THREADS; i++)
        rb_close(fd[i], "connection");
    rb_say("CLIENT OK");
}
