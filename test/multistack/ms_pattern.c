/* ms_pattern.c - see ms_pattern.h. */
#include "ms_pattern.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void die(const char *what)
{
    fprintf(stderr, "FAIL %s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
    exit(1);
}

void fail(const char *what)
{
    fprintf(stderr, "FAIL %s: %s\n", program_invocation_short_name, what);
    exit(1);
}

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)((i * 131u + 7u) ^ (i >> 9));
}

static void send_pattern(int fd, size_t bytes)
{
    unsigned char buf[16384];
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < sizeof(buf) ? bytes - done : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern_byte(done + i);
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w <= 0)
            die("send");
        done += (size_t)w;
    }
}

/* Receives exactly BYTES and checks each against the pattern. */
static void recv_pattern(int fd, size_t bytes, const char *who)
{
    unsigned char buf[16384];
    for (size_t got = 0; got < bytes;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r <= 0) {
            fprintf(stderr, "FAIL %s: %s: stream ended after %zu of %zu bytes\n", program_invocation_short_name,
                    who, got, bytes);
            exit(1);
        }
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pattern_byte(got + (size_t)i)) {
                fprintf(stderr, "FAIL %s: %s: byte %zu differs from the pattern\n",
                        program_invocation_short_name, who, got + (size_t)i);
                exit(1);
            }
        got += (size_t)r;
    }
}

/* Client: the pattern out, the same bytes back. */
void client_exchange(int fd, size_t bytes)
{
    send_pattern(fd, bytes);
    recv_pattern(fd, bytes, "client (echo)");
}

/* Server: the pattern in (checked), echoed. */
void server_exchange(int fd, size_t bytes)
{
    recv_pattern(fd, bytes, "server");
    send_pattern(fd, bytes);
}

