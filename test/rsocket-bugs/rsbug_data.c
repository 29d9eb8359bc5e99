/* rsbug_data.c - data-path known bugs: every iovec filled by readv and
 * recvmsg, recvmsg's msg_flags ignored on input, an rsocket at fd 0 seen by
 * select/poll, select reporting only the caller's fds, all data before a
 * DISCONNECT delivered, RDMA_ROUTE getsockopt. */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IOV_PHASE (128 * 1024)   /* bytes read by readv, then by recvmsg */
#define IOV_WAITALL 10000        /* bytes read by one recvmsg(MSG_WAITALL) */
#define IOV_PEEK 512

int rb_serve_one(const struct rb_args *a)
{
    int lfd = rb_listen(a, 0);
    rb_say("LISTENING");
    int fd = rb_accept(lfd);
    rb_close(lfd, "listener");
    return fd;
}

/* Server of every data case: the pattern stream in one send, then wait for
 * the client's 1-byte verdict and close. */
void iov_server(const struct rb_args *a)
{
    int fd = rb_serve_one(a);
    rb_send_pattern(fd, IOV_PEEK + 2 * IOV_PHASE + IOV_WAITALL, 0);
    char ok;
    rb_recv_all(fd, &ok, 1);
    CHECK(ok == 'K', "client verdict byte");
    rb_close(fd, "connection");
    rb_say("SERVER OK");
}

/* Read `total` bytes into 4 iovecs per call; each iovec must hold the
 * stream's next bytes in order. */
static void read_iovecs(int fd, size_t total, uint64_t *off, int use_msg)
{
    static const size_t sizes[4] = { 1, 7, 4093, 70000 };
    uint8_t *b[4];
    for (int i = 0; i < 4; i++)
        CHECK((b[i] = malloc(sizes[i])), "malloc");
    for (size_t got = 0, calls = 0; got < total; calls++) {
        struct iovec iov[4];
        size_t want = total - got;
        int n = 0;
        for (; n < 4 && want; n++) {
            size_t len = sizes[n] < want ? sizes[n] : want;
            iov[n] = (struct iovec){ b[n], len };
            want -= len;
        }
        ssize_t r;
        if (use_msg) {
            /* msg_flags is output only: MSG_PEEK here must not peek */
            struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n,
                                .msg_flags = MSG_PEEK | MSG_DONTWAIT };
            r = SK(recvmsg)(fd, &m, 0);
            CHECK(r <= 0 || m.msg_flags == 0, "recvmsg set msg_flags 0x%x", m.msg_flags);
        } else {
            r = SK(readv)(fd, iov, n);
        }
        CHECK(r > 0, "%s call %zu after %zu of %zu bytes returned %zd",
              use_msg ? "recvmsg" : "readv", calls, got, total, r);
        for (int i = 0; i < n && r > 0; i++) {
            size_t part = (size_t)r < iov[i].iov_len ? (size_t)r : iov[i].iov_len;
            long bad = rb_mismatch(iov[i].iov_base, part, *off);
            CHECK(bad < 0, "%s: iov[%d] differs from the stream at offset %llu",
                  use_msg ? "recvmsg" : "readv", i, (unsigned long long)(*off + (uint64_t)bad));
            *off += part;
            got += part;
            r -= (ssize_t)part;
        }
        CHECK(calls < total, "more calls than bytes");
    }
    for (int i = 0; i < 4; i++)
        free(b[i]);
}

/* A whole phase through 4 iovecs of mixed sizes, data checked per iovec. */
static void read_phase(int fd, size_t total, uint64_t *off, int use_msg)
{
    uint64_t start = *off;
    read_iovecs(fd, total, off, use_msg);
    CHECK(*off - start == total, "phase length");
}

/* recvmsg(MSG_WAITALL) into 5 iovecs must fill all of them in one call. */
static void read_waitall(int fd, uint64_t *off)
{
    static uint8_t b[IOV_WAITALL];
    struct iovec iov[5] = { { b, 1 }, { b + 1, 2 }, { b + 3, 997 }, { b + 1000, 4000 },
                            { b + 5000, IOV_WAITALL - 5000 } };
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = 5 };
    ssize_t r = SK(recvmsg)(fd, &m, MSG_WAITALL);
    CHECK(r == IOV_WAITALL, "recvmsg(MSG_WAITALL) over 5 iovecs returned %zd of %d", r,
          IOV_WAITALL);
    long bad = rb_mismatch(b, IOV_WAITALL, *off);
    CHECK(bad < 0, "recvmsg(MSG_WAITALL): byte %ld differs", bad);
    *off += IOV_WAITALL;
}

/* The flags argument is honoured: MSG_PEEK leaves the data in place. */
static void read_peek(int fd, uint64_t *off)
{
    uint8_t p[IOV_PEEK], q[IOV_PEEK];
    struct iovec iov = { p, IOV_PEEK };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t r = SK(recvmsg)(fd, &m, MSG_PEEK | MSG_WAITALL);
    CHECK(r == IOV_PEEK, "recvmsg(MSG_PEEK|MSG_WAITALL) returned %zd", r);
    rb_recv_all(fd, q, IOV_PEEK);
    CHECK(memcmp(p, q, IOV_PEEK) == 0 && rb_mismatch(q, IOV_PEEK, *off) < 0,
          "peeked bytes are not the bytes read next");
    *off += IOV_PEEK;
}

/* Whether iovecs past iov[0] are used, without timing: iov[0] is one byte
 * long, so a call that fills only iov[0] returns 1 and reading the phase
 * would take one call per byte. */
static void read_counted(int fd, size_t total, uint64_t *off, int use_msg)
{
    uint8_t one, *rest = malloc(total);
    size_t got = 0, calls = 0;
    CHECK(rest, "malloc");
    while (got < total) {
        struct iovec iov[2] = { { &one, 1 }, { rest, total - got - 1 } };
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = total - got > 1 ? 2 : 1 };
        ssize_t r = use_msg ? SK(recvmsg)(fd, &m, 0) : SK(readv)(fd, iov, (int)m.msg_iovlen);
        CHECK(r > 0, "read_counted: call returned %zd", r);
        CHECK(one == rb_pat(*off), "iov[0] byte at offset %llu", (unsigned long long)*off);
        CHECK(r == 1 || rb_mismatch(rest, (size_t)r - 1, *off + 1) < 0, "iov[1] data");
        *off += (uint64_t)r;
        got += (size_t)r;
        calls++;
    }
    free(rest);
    /* with iov[0] ignored past its one byte, every call returns 1 */
    CHECK(calls * 4 < total, "%s: %zu calls for %zu bytes: iovecs past iov[0] not filled",
          use_msg ? "recvmsg" : "readv", calls, total);
}

void iov_client(const struct rb_args *a)
{
    int fd = rb_connect(a);
    uint64_t off = 0;
    read_peek(fd, &off);
    read_counted(fd, IOV_PHASE / 2, &off, 0);
    read_phase(fd, IOV_PHASE / 2, &off, 0);
    read_counted(fd, IOV_PHASE / 2, &off, 1);
    read_phase(fd, IOV_PHASE / 2, &off, 1);
    read_waitall(fd, &off);
    rb_send_all(fd, "K", 1);
    rb_expect_eof(fd);
    rb_close(fd, "connection");
    rb_say("CLIENT OK");
}
