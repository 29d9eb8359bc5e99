/* bench_stream - a one-way TCP stream with a checked pattern, for counting
 * copies per side: the client only sends, the server only receives, so
 * each process's copy count belongs to one direction.
 *
 *   bench_stream -s ADDR PORT SIZE COUNT   receive COUNT x SIZE bytes, verify, ack
 *   bench_stream -c ADDR PORT SIZE COUNT   send COUNT x SIZE bytes, wait for the ack
 *
 * The server prints "bench_stream: listening" once it listens (an rsocket
 * listener is invisible to ss) and both print the byte count at the end.
 * Exit status 0 only when every byte arrived with the expected pattern. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE            /* the CMake build defines it already */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SIZE (4u << 20)
#define MAX_COUNT 10000000ul

/* The byte at stream offset `off`: position dependent, so a lost, repeated
 * or reordered chunk is detected. */
static uint8_t pattern_byte(uint64_t off)
{
    return (uint8_t)(off * 131u + (off >> 12));
}

static void fill_pattern(uint8_t *buf, size_t n, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern_byte(off + i);
}

static int check_pattern(const uint8_t *buf, size_t n, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pattern_byte(off + i)) {
            fprintf(stderr, "bench_stream: byte %llu is 0x%02x, expected 0x%02x\n",
                    (unsigned long long)(off + i), buf[i], pattern_byte(off + i));
            return -1;
        }
    return 0;
}

static int parse_addr(const char *ip, const char *port, struct sockaddr_in *sa)
{
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (*end || p == 0 || p > 65535 || inet_pton(AF_INET, ip, &sa->sin_addr) != 1) {
        fprintf(stderr, "bench_stream: bad address \"%s\" port \"%s\"\n", ip, port);
        return -1;
    }
    sa->sin_port = htons((uint16_t)p);
    return 0;
}

static int send_all(int fd, const uint8_t *buf, size_t n)
{
    while (n) {
        ssize_t r = send(fd, buf, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            perror("bench_stream: send");
            return -1;
        }
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

static int run_client(const struct sockaddr_in *sa, size_t size, unsigned long count, uint8_t *buf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
        perror("bench_stream: connect");
        return 1;
    }
    uint64_t off = 0;
    for (unsigned long i = 0; i < count; i++, off += size) {
        fill_pattern(buf, size, off);
        if (send_all(fd, buf, size))
            return 1;
    }
    char ack;
    if (recv(fd, &ack, 1, MSG_WAITALL) != 1 || ack != 'K') {
        fprintf(stderr, "bench_stream: no acknowledgement from the server\n");
        return 1;
    }
    close(fd);
    printf("bench_stream: sent %llu bytes\n", (unsigned long long)off);
    return 0;
}

static int receive_stream(int fd, size_t size, uint64_t total, uint8_t *buf)
{
    uint64_t off = 0;
    while (off < total) {
        size_t want = total - off < size ? (size_t)(total - off) : size;
        ssize_t r = recv(fd, buf, want, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "bench_stream: stream ended at byte %llu of %llu\n",
                    (unsigned long long)off, (unsigned long long)total);
            return -1;
        }
        if (check_pattern(buf, (size_t)r, off))
            return -1;
        off += (uint64_t)r;
    }
    return 0;
}

static int run_server(const struct sockaddr_in *sa, size_t size, unsigned long count, uint8_t *buf)
{
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(lfd, 1) < 0) {
        perror("bench_stream: listen");
        return 1;
    }
    printf("bench_stream: listening\n");
    fflush(stdout);
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
        perror("bench_stream: accept");
        return 1;
    }
    uint64_t total = (uint64_t)size * count;
    if (receive_stream(fd, size, total, buf) || send_all(fd, (const uint8_t *)"K", 1))
        return 1;
    char eof;
    if (recv(fd, &eof, 1, 0) != 0)      /* the client closes after the ack */
        fprintf(stderr, "bench_stream: data after the stream\n");
    close(fd);
    close(lfd);
    printf("bench_stream: received %llu bytes\n", (unsigned long long)total);
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    char *end1, *end2;
    if (argc != 6 || (strcmp(argv[1], "-s") && strcmp(argv[1], "-c"))) {
        fprintf(stderr, "usage: bench_stream -s|-c ADDR PORT SIZE COUNT\n");
        return 2;
    }
    unsigned long size = strtoul(argv[4], &end1, 10), count = strtoul(argv[5], &end2, 10);
    if (*end1 || *end2 || size == 0 || size > MAX_SIZE || count == 0 || count > MAX_COUNT) {
        fprintf(stderr, "bench_stream: SIZE \"%s\" must be 1..%u, COUNT \"%s\" 1..%lu\n",
                argv[4], MAX_SIZE, argv[5], MAX_COUNT);
        return 2;
    }
    if (parse_addr(argv[2], argv[3], &sa))
        return 2;
    uint8_t *buf = malloc(size);
    if (!buf) {
        fprintf(stderr, "bench_stream: out of memory for %lu bytes\n", size);
        return 1;
    }
    int rc = argv[1][1] == 's' ? run_server(&sa, size, count, buf)
                               : run_client(&sa, size, count, buf);
    free(buf);
    return rc;
}
