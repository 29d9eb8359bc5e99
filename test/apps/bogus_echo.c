/*
 * bogus_echo - a deliberately broken echo server for the negative tests:
 * it proves that vc_common notices a bad echo. Serves one connection on
 * 127.0.0.1:PORT, messages of LEN bytes:
 *   flip    echoes, but byte 5 of message 2 is inverted
 *   short   reads one message, echoes half of it, closes
 *   silent  reads and never answers (the client must time out)
 * Prints "listening" when ready. Every wait is bounded (60 s).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 60000
#define FLIP_MSG 2
#define FLIP_BYTE 5

static int listen_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("bogus_echo: socket");
        exit(2);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0) {
        fprintf(stderr, "bogus_echo: bind/listen 127.0.0.1:%d: %s\n", port,
                strerror(errno));
        exit(2);
    }
    return fd;
}

/* A serving mode: the accepted socket and the message length. */
typedef void (*serve_fn)(int c, size_t len);

static int wait_in(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, WAIT_MS) == 1;
}

/* Echo with one flipped byte; stops at EOF or after 1000 reads. */
static void serve_flip(int c, size_t len)
{
    unsigned char buf[4096];
    size_t seen = 0, target = FLIP_MSG * len + FLIP_BYTE;
    for (int reads = 0; reads < 1000 && wait_in(c); reads++) {
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0)
            return;
        if (target >= seen && target < seen + (size_t)n)
            buf[target - seen] ^= 0xff;
        seen += (size_t)n;
        if (send(c, buf, (size_t)n, MSG_NOSIGNAL) != n)
            return;
    }
}

static void serve_short(int c, size_t len)
{
    unsigned char buf[4096];
    size_t got = 0;
    while (got < len && got < sizeof(buf) && wait_in(c)) {
        ssize_t n = recv(c, buf + got, sizeof(buf) - got, 0);
        if (n <= 0)
            return;
        got += (size_t)n;
    }
    send(c, buf, len / 2, MSG_NOSIGNAL);
}

static void serve_silent(int c, size_t len)
{
    unsigned char buf[4096];
    (void)len;   /* reads whatever comes */
    for (int reads = 0; reads < 1000 && wait_in(c); reads++)
        if (recv(c, buf, sizeof(buf), 0) <= 0)
            return;
}

/* The serving function named by the mode, or NULL. */
static serve_fn serve_of(const char *mode)
{
    if (strcmp(mode, "flip") == 0)
        return serve_flip;
    if (strcmp(mode, "short") == 0)
        return serve_short;
    if (strcmp(mode, "silent") == 0)
        return serve_silent;
    return NULL;
}

/* One connection within WAIT_MS, or exit 1 with the reason. */
static int accept_one(int lfd)
{
    if (!wait_in(lfd)) {
        fprintf(stderr, "bogus_echo: no connection within %d s\n", WAIT_MS / 1000);
        exit(1);
    }
    int c = accept(lfd, NULL, NULL);
    if (c < 0) {
        fprintf(stderr, "bogus_echo: accept: %s\n", strerror(errno));
        exit(1);
    }
    return c;
}

int main(int argc, char **argv)
{
    serve_fn serve = argc == 4 ? serve_of(argv[1]) : NULL;
    if (serve == NULL) {
        fprintf(stderr, "usage: bogus_echo flip|short|silent PORT LEN\n");
        return 2;
    }
    long port = strtol(argv[2], NULL, 10), len = strtol(argv[3], NULL, 10);
    if (port < 1 || port > 65535 || len < 1 || len > 4096) {
        fprintf(stderr, "bogus_echo: PORT \"%s\" must be 1..65535 and LEN "
                "\"%s\" 1..4096\n", argv[2], argv[3]);
        return 2;
    }
    int lfd = listen_local((int)port);
    printf("listening\n");
    fflush(stdout);
    int c = accept_one(lfd);
    serve(c, (size_t)len);
    close(c);
    return 0;
}
