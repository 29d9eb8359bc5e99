/*
 * rsbug_rpoll.c - a poll() for POLLOUT while another thread is blocked in
 * recv() on the same socket (upstream: multi-threaded rpoll lost
 * wake-ups, fixed there with a periodic wake-up).
 *
 * The blocked recv() consumes the completion events - among them the
 * credit updates the poll waits for - so the poller cannot rely on the
 * socket's fd staying readable: the engine must wake it itself. The client
 * reads all the time, so a poll(POLLOUT) that times out after 15 s is a
 * lost wake-up.
 */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RP_BYTES (64u << 20)
#define RP_CHUNK (256u << 10)

struct rp_sender {
    int fd;
    unsigned waits;     /* polls for POLLOUT that were needed */
};

static void *rp_send(void *arg)
{
    struct rp_sender *w = arg;
    uint8_t *buf = malloc(RP_CHUNK);
    size_t off = 0;

    CHECK(buf != NULL, "malloc");
    while (off < RP_BYTES) {
        size_t n = RP_BYTES - off < RP_CHUNK ? RP_BYTES - off : RP_CHUNK;
        rb_fill(buf, n, off);
        ssize_t r = SK(send)(w->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        CHECK(r < 0 && errno == EAGAIN, "send: %s", r ? strerror(errno) : "0");
        struct pollfd p = { .fd = w->fd, .events = POLLOUT };
        int k = SK(poll)(&p, 1, 15000);
        CHECK(k >= 0, "poll: %s", strerror(errno));
        CHECK(k == 1, "poll(POLLOUT) slept 15 s while the peer kept reading "
                      "(a lost wake-up; %zu of %u bytes sent)", off, RP_BYTES);
        w->waits++;
    }
    free(buf);
    return NULL;
}

/* Blocks in recv() until the client has read everything. */
static void *rp_recv(void *arg)
{
    int fd = *(int *)arg;
    char c;
    rb_recv_all(fd, &c, 1);
    CHECK(c == 'D', "done byte");
    return NULL;
}

void rpoll_server(const struct rb_args *a)
{
    struct rp_sender w = { .fd = rb_serve_one(a) };
    pthread_t ts, tr;
    CHECK(pthread_create(&tr, NULL, rp_recv, &w.fd) == 0, "pthread_create");
    CHECK(pthread_create(&ts, NULL, rp_send, &w) == 0, "pthread_create");
    pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    CHECK(w.waits > 0, "the send side never had to wait: nothing was tested");
    fprintf(stderr, "rpoll: %u waits for POLLOUT\n", w.waits);
    rb_expect_eof(w.fd);
    rb_close(w.fd, "connection");
    rb_say("SERVER OK");
}

void rpoll_client(const struct rb_args *a)
{
    int fd = rb_connect(a);
    rb_recv_pattern(fd, RP_BYTES, 0);
    rb_send_all(fd, "D", 1);
    rb_close(fd, "connection");
    rb_say("CLIENT OK");
}
