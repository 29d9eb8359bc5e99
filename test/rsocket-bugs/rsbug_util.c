/* rsbug_util.c - pattern data, exact transfers and deadlines for the
 * known-bug cases; socket calls go through SK() (rsbug_io.h). */
#include "rsbug_util.h"
#include "rsbug_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void rb_fail(const char *fmt, ...)
{
    int e = errno;
    va_list ap;
    fprintf(stderr, "FAIL(%s): ", RSBUG_FLAVOUR);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (errno %d %s)\n", e, strerror(e));
    exit(1);
}

void rb_say(const char *word)
{
    printf("%s\n", word);
    fflush(stdout);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL: deadline passed (hang)\n";
    ssize_t r = write(2, msg, sizeof(msg) - 1);
    (void)r;
    _exit(3);
}

void rb_deadline(unsigned secs)
{
    signal(SIGALRM, on_alarm);
    alarm(secs);
}

void rb_wait_file(const char *path, unsigned secs)
{
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    for (unsigned i = 0; i < secs * 50; i++) {
        if (access(path, F_OK) == 0)
            return;
        nanosleep(&pause, NULL);
    }
    rb_fail("go file %s did not appear within %u s", path, secs);
}

uint8_t rb_pat(uint64_t i)
{
    return (uint8_t)(i * 131u + (i >> 9) + 7u);
}

void rb_fill(uint8_t *b, size_t n, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        b[i] = rb_pat(off + i);
}

long rb_mismatch(const uint8_t *b, size_t n, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != rb_pat(off + i))
            return (long)i;
    return -1;
}

/* The sockaddr for a->ip:a->port (IPv4 or IPv6 text). */
socklen_t rb_addr(const struct rb_args *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, a->ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)a->port);
        return sizeof(*v4);
    }
    if (inet_pton(AF_INET6, a->ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)a->port);
        return sizeof(*v6);
    }
    errno = EINVAL;
    rb_fail("address '%s' is neither IPv4 nor IPv6", a->ip);
}

int rb_listen(const struct rb_args *a, int nonblock)
{
    struct sockaddr_storage ss;
    socklen_t len = rb_addr(a, &ss);
    int one = 1;
    int fd = SK(socket)(ss.ss_family, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket for the listener");
    CHECK(SK(setsockopt)(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0, "SO_REUSEADDR");
    CHECK(SK(bind)(fd, (struct sockaddr *)&ss, len) == 0, "bind %s:%d", a->ip, a->port);
    CHECK(SK(listen)(fd, 64) == 0, "listen");
    if (nonblock)
        rb_set_nonblock(fd, 1);
    return fd;
}

int rb_socket(const struct rb_args *a)
{
    struct sockaddr_storage ss;
    rb_addr(a, &ss);
    int fd = SK(socket)(ss.ss_family, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket for the client");
    return fd;
}

int rb_connect_fd(int fd, const struct rb_args *a)
{
    struct sockaddr_storage ss;
    socklen_t len = rb_addr(a, &ss);
    CHECK(SK(connect)(fd, (struct sockaddr *)&ss, len) == 0, "connect %s:%d", a->ip, a->port);
    return fd;
}

int rb_connect(const struct rb_args *a)
{
    return rb_connect_fd(rb_socket(a), a);
}

int rb_accept(int lfd)
{
    int fd = SK(accept)(lfd, NULL, NULL);
    CHECK(fd >= 0, "accept on %d", lfd);
    return fd;
}

void rb_send_all(int fd, const void *b, size_t n)
{
    const uint8_t *p = b;
    while (n) {
        ssize_t r = SK(send)(fd, p, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        CHECK(r > 0, "send of %zu bytes on fd %d", n, fd);
        p += r;
        n -= (size_t)r;
    }
}

void rb_recv_all(int fd, void *b, size_t n)
{
    uint8_t *p = b;
    while (n) {
        ssize_t r = SK(recv)(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        CHECK(r > 0, "recv of %zu more bytes on fd %d returned %zd", n, fd, r);
        p += r;
        n -= (size_t)r;
    }
}

void rb_send_pattern(int fd, size_t n, uint64_t off)
{
    uint8_t *b = malloc(n);
    CHECK(b, "malloc %zu", n);
    rb_fill(b, n, off);
    rb_send_all(fd, b, n);
    free(b);
}

void rb_recv_pattern(int fd, size_t n, uint64_t off)
{
    uint8_t *b = malloc(n);
    CHECK(b, "malloc %zu", n);
    rb_recv_all(fd, b, n);
    long bad = rb_mismatch(b, n, off);
    CHECK(bad < 0, "received data differs from the pattern at stream offset %llu",
          (unsigned long long)(off + (uint64_t)bad));
    free(b);
}

void rb_expect_eof(int fd)
{
    char c;
    ssize_t r = SK(recv)(fd, &c, 1, 0);
    CHECK(r == 0, "recv after the peer's close returned %zd, expected 0 (EOF)", r);
}

void rb_close(int fd, const char *what)
{
    int r = SK(close)(fd);
    CHECK(r == 0, "close of %s (fd %d) returned %d, expected 0", what, fd, r);
}

void rb_set_nonblock(int fd, int on)
{
    int fl = SK(fcntl)(fd, F_GETFL, 0);
    CHECK(fl >= 0, "F_GETFL on %d", fd);
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    CHECK(SK(fcntl)(fd, F_SETFL, fl) == 0, "F_SETFL on %d", fd);
}

int rb_is_nonblock(int fd)
{
    int fl = SK(fcntl)(fd, F_GETFL, 0);
    CHECK(fl >= 0, "F_GETFL on %d", fd);
    return !!(fl & O_NONBLOCK);
}
