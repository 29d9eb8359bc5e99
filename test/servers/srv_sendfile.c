/*
 * srv_sendfile.c - sendfile(2) of a big file on a nonblocking socket, the
 * way nginx uses it, checked against the kernel's contract: a call that
 * can send nothing returns -1/EAGAIN (never 0, which means end of file),
 * and the offset (or the file position) moves only by what was sent.
 *
 *   srv_sendfile serve IP PORT FILE FLAG offset|position
 *       accept one connection, make it nonblocking, sendfile FILE until
 *       all of it went out (offset: with an off_t; position: offset NULL,
 *       the file position moves); creates FLAG at the first EAGAIN
 *   srv_sendfile fetch IP PORT FLAG
 *       connect, read nothing until FLAG exists (so the sender really
 *       fills the socket and meets EAGAIN), then copy the stream to stdout
 *
 * Every wait is bounded (SRV_TIMEOUT_S, default 60 s). Exit 0 pass, 1 fail
 * (one line), 2 bad arguments.
 */
#include "../rsocket-fw/rsfw_io.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

static int64_t deadline_ms;

static void set_deadline(void)
{
    const char *v = getenv("SRV_TIMEOUT_S");
    long s = v ? atol(v) : 60;
    deadline_ms = rsfw_now_ms() + (s > 0 ? s : 60) * 1000;
}

static int left_ms(const char *what)
{
    int64_t left = deadline_ms - rsfw_now_ms();
    if (left <= 0)
        RSFW_FAIL("timeout: %s", what);
    return left > 1000 ? 1000 : (int)left;
}

static int listen_accept(const char *ip, const char *port)
{
    struct sockaddr_storage ss;
    socklen_t len = rsfw_addr(ip, port, &ss);
    int one = 1, lfd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 8))
        RSFW_FAIL("listen on %s:%s: %s", ip, port, strerror(errno));
    printf("listening on %s:%s\n", ip, port);
    fflush(stdout);
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        RSFW_FAIL("accept: %s", strerror(errno));
    close(lfd);
    return fd;
}

static void wait_writable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    while (poll(&p, 1, left_ms("socket never became writable")) == 0)
        ;
}

/* One sendfile call, checked against the kernel's contract. */
static ssize_t one_call(int sfd, int ffd, off_t *off, off_t sent, off_t size)
{
    off_t before = off ? *off : lseek(ffd, 0, SEEK_CUR);
    ssize_t n = sendfile(sfd, ffd, off, (size_t)(size - sent));
    off_t after = off ? *off : lseek(ffd, 0, SEEK_CUR);
    if (n == 0)
        RSFW_FAIL("sendfile returned 0 at %lld of %lld bytes (reads as end of file)",
                  (long long)sent, (long long)size);
    if (n < 0 && errno != EAGAIN)
        RSFW_FAIL("sendfile at %lld: %s", (long long)sent, strerror(errno));
    if (after - before != (n < 0 ? 0 : n))
        RSFW_FAIL("sendfile returned %zd but the %s moved by %lld", n,
                  off ? "offset" : "file position", (long long)(after - before));
    return n;
}

static int serve(char **av)
{
    int ffd = open(av[2], O_RDONLY);
    struct stat st;
    if (ffd < 0 || fstat(ffd, &st))
        RSFW_FAIL("%s: %s", av[2], strerror(errno));
    int use_off = strcmp(av[4], "offset") == 0;
    if (!use_off && strcmp(av[4], "position")) {
        fprintf(stderr, "srv_sendfile: mode must be offset or position, got \"%s\"\n", av[4]);
        return 2;
    }
    int sfd = listen_accept(av[0], av[1]);
    set_deadline();
    if (fcntl(sfd, F_SETFL, fcntl(sfd, F_GETFL) | O_NONBLOCK))
        RSFW_FAIL("O_NONBLOCK: %s", strerror(errno));
    off_t off = 0, sent = 0;
    long calls = 0, eagain = 0;
    while (sent < st.st_size) {
        left_ms("file not sent");
        ssize_t n = one_call(sfd, ffd, use_off ? &off : NULL, sent, st.st_size);
        calls++;
        if (n > 0) {
            sent += n;
            continue;
        }
        if (eagain++ == 0)
            close(open(av[3], O_CREAT | O_WRONLY, 0644));   /* the reader may start */
        wait_writable(sfd);
    }
    if (eagain == 0)
        RSFW_FAIL("never met EAGAIN in %ld calls: the test did not fill the socket", calls);
    printf("sent %lld bytes in %ld calls, %ld EAGAIN\n", (long long)sent, calls, eagain);
    close(sfd);
    return 0;
}

static int fetch(char **av)
{
    struct sockaddr_storage ss;
    socklen_t len = rsfw_addr(av[0], av[1], &ss);
    set_deadline();
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len))
        RSFW_FAIL("connect %s:%s: %s", av[0], av[1], strerror(errno));
    /* A sender that died closes the connection: stop waiting then. */
    struct pollfd hup = { .fd = fd, .events = POLLRDHUP };
    while (access(av[2], F_OK)) {
        int ms = left_ms("the sender never met EAGAIN");
        if (poll(&hup, 1, ms < 20 ? ms : 20) > 0)
            break;
    }
    char buf[65536];
    long long total = 0;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, left_ms("the stream did not end")) == 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n == 0)
            break;
        if (n < 0)
            RSFW_FAIL("read after %lld bytes: %s", total, strerror(errno));
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            RSFW_FAIL("stdout: %s", strerror(errno));
        total += n;
    }
    fprintf(stderr, "fetched %lld bytes\n", total);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "serve") == 0)
        return serve(argv + 2);
    if (argc == 5 && strcmp(argv[1], "fetch") == 0)
        return fetch(argv + 2);
    fprintf(stderr, "usage: srv_sendfile serve IP PORT FILE FLAG offset|position\n"
                    "       srv_sendfile fetch IP PORT FLAG\n");
    return 2;
}
