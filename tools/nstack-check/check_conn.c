/* check_conn.c - nstack-check's connection: the client moves a pattern in
 * chunks (send one, read its echo back, check it), the server echoes. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define CHUNK 4096

static unsigned char pattern_byte(long i)
{
    return (unsigned char)((i * 131 + (i >> 8) * 7 + 29) & 0xff);
}

/* HOST:PORT or [HOST]:PORT -> addrinfo; prints one line on failure. */
static struct addrinfo *resolve(const char *target)
{
    char host[256];
    const char *colon = strrchr(target, ':');
    size_t hl = colon ? (size_t)(colon - target) : 0;
    if (colon == NULL || hl == 0 || hl >= sizeof(host) || colon[1] == '\0') {
        fprintf(stderr, "nstack-check: \"%s\": expected HOST:PORT\n", target);
        return NULL;
    }
    memcpy(host, target, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int r = getaddrinfo(host, colon + 1, &hints, &ai);
    if (r != 0) {
        fprintf(stderr, "nstack-check: %s: %s\n", target, gai_strerror(r));
        return NULL;
    }
    return ai;
}

static int read_full(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? (errno = ECONNRESET, -1) : -1;
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const unsigned char *buf, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = send(fd, buf + put, n - put, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        put += (size_t)r;
    }
    return 0;
}

/* The pattern out and back; 0, or 2 with one line on stderr. */
static int exchange(int fd, const char *target, long bytes)
{
    unsigned char out[CHUNK], in[CHUNK];
    for (long off = 0; off < bytes; off += CHUNK) {
        size_t n = (size_t)(bytes - off < CHUNK ? bytes - off : CHUNK);
        for (size_t i = 0; i < n; i++)
            out[i] = pattern_byte(off + (long)i);
        if (write_full(fd, out, n) < 0 || read_full(fd, in, n) < 0) {
            fprintf(stderr, "nstack-check: %s: transfer failed after %ld bytes: %s\n", target, off, strerror(errno));
            return 2;
        }
        if (memcmp(in, out, n) != 0) {
            fprintf(stderr, "nstack-check: %s: the echo differs from the pattern within bytes %ld..%ld\n", target,
                    off, off + (long)n - 1);
            return 2;
        }
    }
    return 0;
}

int check_client(const struct check_opts *o)
{
    struct addrinfo *ai = resolve(o->target);
    if (ai == NULL)
        return 2;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        fprintf(stderr, "nstack-check: %s: connect: %s\n", o->target, strerror(errno));
        freeaddrinfo(ai);
        return 2;
    }
    freeaddrinfo(ai);
    int rc = exchange(fd, o->target, o->bytes);
    if (rc == 0)
        rc = check_verdict(fd, o->target, o->bytes);
    close(fd);
    return rc;
}

/* Echoes until the client's end; returns the bytes echoed or -1. */
static long echo(int fd)
{
    unsigned char buf[CHUNK];
    long total = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? total : -1;
        if (write_full(fd, buf, (size_t)r) < 0)
            return -1;
        total += r;
    }
}

/* An IPv4 wildcard listener (the framework routes accepted connections by
 * their local address). */
static int listen_on(int port)
{
    int on = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
        fprintf(stderr, "nstack-check: --serve %d: %s\n", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int check_serve(const struct check_opts *o)
{
    int lfd = listen_on(o->serve_port);
    if (lfd < 0)
        return 2;
    printf("nstack-check: serving on port %d\n", o->serve_port);
    fflush(stdout);
    for (int served = 0; o->count == 0 || served < o->count; served++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd = accept(lfd, (struct sockaddr *)&peer, &len);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fprintf(stderr, "nstack-check: accept: %s\n", strerror(errno));
            return 2;
        }
        char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?", what[NI_MAXHOST + NI_MAXSERV + 16];
        getnameinfo((struct sockaddr *)&peer, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(what, sizeof(what), "client %s:%s", host, serv);
        long n = echo(fd);
        if (n < 0)
            fprintf(stderr, "nstack-check: %s: echo failed: %s\n", what, strerror(errno));
        else
            check_verdict(fd, what, n);
        close(fd);
    }
    close(lfd);
    return 0;
}
