/* ms_fds.c - the app's fd numbers stay compact under the dispatcher
 * (test/multistack/fds.sh; LD_PRELOAD with the kernel + shadow config).
 *
 *   ms_fds ADDR    ADDR: this host's address on the shadow subnet
 *
 * Makes everything that gives the dispatcher fds of its own - a wildcard
 * listener on two stacks (private epoll fd, eventfd, kernel socket), an
 * epoll set holding a module socket (wake eventfd), a poll() over a module
 * socket (the thread's wake eventfd) - and checks that none of those took
 * a number the app would get next (only the module's own fds may). A shadow
 * connection to the listener carries a checked pattern. Prints "ok". */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "FAIL ms_fds: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The lowest free fd number (what the app's next socket would get). */
static int lowest_free(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    close(fd);
    return fd;
}

static void same_lowest(int before, const char *after)
{
    int now = lowest_free();
    if (now != before) {
        fprintf(stderr, "FAIL ms_fds: after %s the lowest free fd is %d, was %d "
                "(the dispatcher took a low number for itself)\n", after, now, before);
        exit(1);
    }
}

/* Whether fd is one the dispatcher made for the multi-stack listener lfd
 * on port: an eventfd, its private epoll (the file lfd shares), or its
 * kernel listening socket. The shadow module's own fds (its socket on
 * port + SHADOW_PORT_OFFSET and its epoll wait fd) may sit in between. */
static int dispatcher_owned(int fd, int lfd, uint16_t port)
{
    char path[64], link[128] = "";
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n < 0)
        return 0;
    link[n] = 0;
    if (strstr(link, "[eventfd]") != NULL)
        return 1;
    if (syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, lfd, fd) == 0)
        return 1;
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    return strncmp(link, "socket:", 7) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0 &&
           a.sin_family == AF_INET && ntohs(a.sin_port) == port;
}

static void none_owned_below(int lfd, int next, uint16_t port)
{
    for (int fd = lfd + 1; fd < next; fd++) {
        if (dispatcher_owned(fd, lfd, port)) {
            fprintf(stderr, "FAIL ms_fds: fd %d (below the app's next fd %d) belongs to the dispatcher\n",
                    fd, next);
            exit(1);
        }
    }
}

static int wildcard_listener(uint16_t *port)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
    socklen_t len = sizeof(a);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 8) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) < 0)
        die("wildcard listener");
    *port = ntohs(a.sin_port);
    return lfd;
}

static void check_transfer(int from, int to)
{
    unsigned char out[4096], in[4096];
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (unsigned char)(i * 7 + 3);
    if (send(from, out, sizeof(out), MSG_NOSIGNAL) != (ssize_t)sizeof(out))
        die("send");
    size_t got = 0;
    for (int i = 0; i < 10000 && got < sizeof(in); i++) {
        ssize_t n = recv(to, in + got, sizeof(in) - got, 0);
        if (n <= 0)
            die("recv");
        got += (size_t)n;
    }
    if (got != sizeof(in) || memcmp(in, out, sizeof(in)) != 0) {
        fprintf(stderr, "FAIL ms_fds: pattern mismatch\n");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    alarm(60);
    uint16_t port;
    int lfd = wildcard_listener(&port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0)
        die("socket");
    none_owned_below(lfd, c, port);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1)
        die("address");
    if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connect");
    int s = accept(lfd, NULL, NULL);
    if (s < 0)
        die("accept");
    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    int low = lowest_free();
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = s };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) < 0)
        die("epoll_ctl ADD of a module socket");
    same_lowest(low, "an epoll set got a module socket");
    struct pollfd p = { .fd = c, .events = POLLOUT };
    if (poll(&p, 1, 10000) != 1 || !(p.revents & POLLOUT))
        die("poll on a module socket");
    same_lowest(low, "a poll over a module socket");
    check_transfer(c, s);
    struct epoll_event got;
    if (epoll_wait(ep, &got, 1, 0) != 0)
        die("epoll_wait after the data was read: still readable");
    printf("ok listener fd %d, app fds compact up to %d\n", lfd, low);
    return 0;
}
