/*
 * rsfw_fds.c - descriptors per connection: N connections held open at
 * once, data checked on each, then the process's descriptor table counted
 * by kind (issue 8: at most 2 per connection on average).
 *
 *   rsfw_fds server IP PORT N BYTES   accept N connections, echo BYTES on
 *                                      each, report, then wait for N EOFs
 *   rsfw_fds client IP PORT N BYTES   connect N, send BYTES of a per-
 *                                      connection pattern on each and check
 *                                      the echo, report, then wait for the
 *                                      file $RSFW_FDS_HOLD (if set) to
 *                                      exist before closing them all
 *
 * With RSFW_FDS_LIMIT=1 the program instead runs until a connection fails
 * (run it under a small `ulimit -n`): the client reports how many
 * connections carried data, the errno of the first failure (it must be
 * EMFILE, from the call the kernel would fail: socket/connect/accept),
 * then checks every earlier connection again with BYTES more each way.
 *
 * Report line (one per process):
 *   <role>: fds N=<n> base=<fds before> now=<fds> per_conn=<x.xx>
 *           tcp=<t> unix=<u> epoll=<e> eventfd=<v> timerfd=<m> pipe=<p> other=<o>
 * kinds are counted over the whole table at report time. With
 * RSFW_FDS_IDS=FILE the ids of its eventfds (fdinfo "eventfd-id") are
 * written to FILE, one a line: an id both processes hold is the software
 * device's copy of the other process's completion eventfd (it passes them
 * over its AF_UNIX sockets), so the script can tell the device's
 * descriptors from the module's. Single-threaded,
 * nonblocking, level-triggered epoll; every wait bounded by RSFW_TIMEOUT_S
 * (default 300). Exit 0 pass, 1 fail (one line), 2 bad arguments.
 */
#include "rsfw_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CONNS 65536
#define CHUNK 16384
#define MAX_CONNECTING 32
#define LISTENER_TAG UINT32_MAX

struct conn {
    int fd;
    int connecting;
    uint64_t sent, rcvd, goal;     /* pattern offsets; goal: bytes each way */
};

static struct conn *conns;
static int epfd;
static int64_t deadline_ms;

static void ep_set(int op, int fd, uint32_t events, uint32_t tag)
{
    rsfw_ep_set(epfd, op, fd, events, tag);
}

static int wait_events(struct epoll_event *evs, int max, const char *what)
{
    return rsfw_wait_events(epfd, deadline_ms, evs, max, what);
}

/* ---- the descriptor table ---------------------------------------------- */

struct fdkinds { int total, tcp, unx, epoll, eventfd, timerfd, pipe, other; };

static void classify(int fd, const char *link, struct fdkinds *k)
{
    k->total++;
    if (!strncmp(link, "socket:", 7)) {
        int dom = 0;
        socklen_t l = sizeof(dom);
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 && dom == AF_UNIX)
            k->unx++;
        else
            k->tcp++;
    } else if (strstr(link, "eventpoll")) {
        k->epoll++;
    } else if (strstr(link, "eventfd")) {
        k->eventfd++;
    } else if (strstr(link, "timerfd")) {
        k->timerfd++;
    } else if (!strncmp(link, "pipe:", 5)) {
        k->pipe++;
    } else {
        k->other++;
    }
}

static struct fdkinds count_fds(void)
{
    struct fdkinds k = { 0 };
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        RSFW_FAIL("opendir /proc/self/fd: %s", strerror(errno));
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        char path[64], link[256];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t n = fd == self ? -1 : readlink(path, link, sizeof(link) - 1);
        if (n < 0)
            continue;
        link[n] = '\0';
        classify(fd, link, &k);
    }
    closedir(d);
    return k;
}

/* The eventfd-id of every eventfd in the table, to $RSFW_FDS_IDS. */
static void write_eventfd_ids(void)
{
    const char *path = getenv("RSFW_FDS_IDS");
    if (!path)
        return;
    FILE *out = fopen(path, "we");
    DIR *d = opendir("/proc/self/fdinfo");
    if (!out || !d)
        RSFW_FAIL("%s or /proc/self/fdinfo: %s", path, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[300], line[128];
        snprintf(p, sizeof(p), "/proc/self/fdinfo/%s", e->d_name);
        FILE *f = e->d_name[0] == '.' ? NULL : fopen(p, "re");
        long id;
        while (f && fgets(line, sizeof(line), f))
            if (sscanf(line, "eventfd-id: %ld", &id) == 1)
                fprintf(out, "%ld\n", id);
        if (f)
            fclose(f);
    }
    closedir(d);
    fclose(out);
}

/* The table once the software device's QP streams have closed: they
 * close on its own thread once idle (doc/softrdma.md "Streams open only
 * while used"), so the count is taken when the number of AF_UNIX sockets
 * has not changed for 200 ms (at most 5 s). */
static struct fdkinds count_fds_settled(void)
{
    struct fdkinds k = count_fds();
    int64_t end = rsfw_now_ms() + 5000, still = rsfw_now_ms();
    while (rsfw_now_ms() - still < 200 && rsfw_now_ms() < end) {
        poll(NULL, 0, 20);
        struct fdkinds again = count_fds();
        if (again.unx != k.unx)
            still = rsfw_now_ms();
        k = again;
    }
    return k;
}

static void report(const char *role, long n, const struct fdkinds *base)
{
    struct fdkinds k = count_fds_settled();
    write_eventfd_ids();
    printf("%s: fds N=%ld base=%d now=%d per_conn=%.2f tcp=%d unix=%d epoll=%d eventfd=%d "
           "timerfd=%d pipe=%d other=%d\n", role, n, base->total, k.total,
           n ? (double)(k.total - base->total) / (double)n : 0.0, k.tcp, k.unx, k.epoll,
           k.eventfd, k.timerfd, k.pipe, k.other);
    fflush(stdout);
}

/* ---- data: both roles run the same per-connection exchange ------------- */

/* Client: sends goal bytes of the pattern, checks the echo. Server: echoes
 * what it reads (the same pattern: it checks it too). Returns 1 once this
 * connection's exchange reached its goal, -1 on EOF. */
static int exchange(struct conn *c, uint32_t i, uint32_t events, int client)
{
    static uint8_t buf[CHUNK];
    if (client && (events & EPOLLOUT) && c->sent < c->goal) {
        size_t n = c->goal - c->sent < CHUNK ? c->goal - c->sent : CHUNK;
        rsfw_fill(i, c->sent, buf, n);
        ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN)
            RSFW_FAIL("conn %u: send: %s", i, strerror(errno));
        if (w > 0)
            c->sent += (uint64_t)w;
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return c->rcvd >= c->goal && c->sent >= c->goal;
    ssize_t r = recv(c->fd, buf, CHUNK, 0);
    if (r == 0)
        return -1;
    if (r < 0) {
        if (errno == EAGAIN)
            return 0;
        RSFW_FAIL("conn %u: recv: %s", i, strerror(errno));
    }
    /* the client checks the echo against its connection's pattern; the
     * server, which does not know the client's numbering, echoes */
    if (client) {
        long bad = rsfw_check(i, c->rcvd, buf, (size_t)r);
        if (bad >= 0)
            RSFW_FAIL("conn %u: echo mismatch at byte %lu", i, (unsigned long)(c->rcvd + (uint64_t)bad));
        c->rcvd += (uint64_t)r;
        return c->rcvd >= c->goal && c->sent >= c->goal;
    }
    for (ssize_t off = 0; off < r;) {    /* the client keeps reading: bounded */
        ssize_t w = send(c->fd, buf + off, (size_t)(r - off), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN)
            RSFW_FAIL("conn %u: echo send: %s", i, strerror(errno));
        if (w > 0)
            off += w;
        if (rsfw_now_ms() > deadline_ms)
            RSFW_FAIL("conn %u: echo timed out", i);
    }
    c->rcvd += (uint64_t)r;
    c->sent += (uint64_t)r;
    return c->rcvd >= c->goal;
}

/* Runs the epoll loop until every live connection reached its goal. */
static void run_exchanges(long n, int client, const char *what)
{
    long done = 0, live = 0;
    for (long i = 0; i < n; i++) {
        if (conns[i].fd < 0)
            continue;
        live++;
        ep_set(EPOLL_CTL_MOD, conns[i].fd, client ? EPOLLIN | EPOLLOUT : EPOLLIN, (uint32_t)i);
    }
    char *fin = calloc((size_t)n + 1, 1);
    struct epoll_event evs[256];
    while (done < live) {
        int k = wait_events(evs, 256, what);
        for (int e = 0; e < k; e++) {
            uint32_t i = evs[e].data.u32;
            if (i == LISTENER_TAG || conns[i].fd < 0 || fin[i])
                continue;
            int r = exchange(&conns[i], i, evs[e].events, client);
            if (r < 0)
                RSFW_FAIL("conn %u: peer closed early", i);
            if (r > 0) {
                fin[i] = 1;
                done++;
                ep_set(EPOLL_CTL_MOD, conns[i].fd, 0, i);
            }
        }
    }
    free(fin);
}

/* ---- server -------------------------------------------------------------- */

static long accept_some(int lfd, long *accepted, long n, uint64_t bytes)
{
    while (*accepted < n) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                return 0;
            RSFW_FAIL("accept4 after %ld connections: %s", *accepted, strerror(errno));
        }
        struct conn *c = &conns[*accepted];
        c->fd = fd;
        c->goal = bytes;
        ep_set(EPOLL_CTL_ADD, fd, EPOLLIN, (uint32_t)*accepted);
        (*accepted)++;
    }
    return 0;
}

/* Echoes until every connection ended (EOF); reports once all N echoed
 * BYTES, while the client still holds them. */
static int run_server(const struct sockaddr_storage *ss, socklen_t sl, long n, uint64_t bytes)
{
    struct fdkinds base = count_fds();
    int lfd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(lfd, (const struct sockaddr *)ss, sl) || listen(lfd, 1024))
        RSFW_FAIL("listener: %s", strerror(errno));
    base.total++;                                    /* the listener is not a connection */
    ep_set(EPOLL_CTL_ADD, lfd, EPOLLIN, LISTENER_TAG);
    printf("listening\n");
    fflush(stdout);
    long accepted = 0, ended = 0, full = 0, reported = 0;
    struct epoll_event evs[256];
    while (ended < n) {
        int k = wait_events(evs, 256, "server");
        for (int e = 0; e < k; e++) {
            uint32_t i = evs[e].data.u32;
            if (i == LISTENER_TAG) {
                accept_some(lfd, &accepted, n, bytes);
                continue;
            }
            struct conn *c = &conns[i];
            if (c->fd < 0)
                continue;
            int was = c->rcvd >= c->goal;
            int r = exchange(c, i, evs[e].events, 0);
            if (r < 0) {
                if (c->rcvd < c->goal)
                    RSFW_FAIL("conn %u: EOF after %lu of %lu bytes", i, (unsigned long)c->rcvd,
                              (unsigned long)c->goal);
                close(c->fd);
                c->fd = -1;
                ended++;
            } else if (r > 0 && !was && ++full == n && !reported) {
                report("server", n, &base);
                reported = 1;
            }
        }
    }
    printf("rsfw_fds server: PASS: %ld connections\n", n);
    return 0;
}

/* ---- client -------------------------------------------------------------- */

/* Starts connection i; returns -1 with errno when socket/connect failed. */
static int client_start(const struct sockaddr_storage *ss, socklen_t sl, long i, uint64_t bytes)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)ss, sl) && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    conns[i] = (struct conn){ .fd = fd, .connecting = 1, .goal = bytes };
    ep_set(EPOLL_CTL_ADD, fd, EPOLLOUT, (uint32_t)i);
    return 0;
}

/* The connect of c finished: 0, or -1 with errno (SO_ERROR). */
static int client_connected(struct conn *c, uint32_t i)
{
    int err = 0;
    socklen_t l = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l))
        RSFW_FAIL("conn %u: SO_ERROR: %s", i, strerror(errno));
    c->connecting = 0;
    ep_set(EPOLL_CTL_MOD, c->fd, 0, i);
    errno = err;
    return err ? -1 : 0;
}

static void connect_all(const struct sockaddr_storage *ss, socklen_t sl, long n, uint64_t bytes)
{
    long started = 0, up = 0;
    struct epoll_event evs[256];
    while (up < n) {
        while (started < n && started - up < MAX_CONNECTING) {
            if (client_start(ss, sl, started, bytes))
                RSFW_FAIL("connection %ld: %s", started, strerror(errno));
            started++;
        }
        int k = wait_events(evs, 256, "client connecting");
        for (int e = 0; e < k; e++) {
            uint32_t i = evs[e].data.u32;
            if (conns[i].connecting) {
                if (client_connected(&conns[i], i))
                    RSFW_FAIL("connect %u: %s", i, strerror(errno));
                up++;
            }
        }
    }
}

static void hold(void)
{
    const char *f = getenv("RSFW_FDS_HOLD");
    while (f && access(f, F_OK)) {
        if (rsfw_now_ms() > deadline_ms)
            RSFW_FAIL("timeout waiting for %s", f);
        poll(NULL, 0, 20);
    }
}

static int run_client(const struct sockaddr_storage *ss, socklen_t sl, long n, uint64_t bytes)
{
    struct fdkinds base = count_fds();
    connect_all(ss, sl, n, bytes);
    printf("client: %ld connections established at once\n", n);
    run_exchanges(n, 1, "client exchanging");
    printf("client: %ld connections x %lu bytes echoed and verified\n", n, (unsigned long)bytes);
    report("client", n, &base);
    hold();
    for (long i = 0; i < n; i++)
        close(conns[i].fd);
    printf("rsfw_fds client: PASS\n");
    return 0;
}

/* Opens connections one at a time until one fails; the failure must be
 * EMFILE/ENFILE and every earlier connection must still carry data. */
static int run_limit(const struct sockaddr_storage *ss, socklen_t sl, long n, uint64_t bytes)
{
    struct fdkinds base = count_fds();
    int spare = open("/dev/null", O_RDONLY | O_CLOEXEC);   /* for the report */
    long i;
    for (i = 0; i < n; i++) {
        const char *call = "socket/connect";
        int r = client_start(ss, sl, i, bytes);
        if (r == 0) {
            struct epoll_event ev;
            while (conns[i].connecting && wait_events(&ev, 1, "limit: connect"))
                if (client_connected(&conns[i], (uint32_t)i))
                    RSFW_FAIL("connect %ld: %s (SO_ERROR)", i, strerror(errno));
            call = "first exchange";
            run_exchanges(i + 1, 1, "limit: first exchange");
            continue;
        }
        printf("client: connection %ld failed at %s: %s\n", i, call, strerror(errno));
        if (errno != EMFILE && errno != ENFILE)
            RSFW_FAIL("connection %ld: %s, expected EMFILE", i, strerror(errno));
        break;
    }
    if (i == n)
        RSFW_FAIL("all %ld connections fit: the limit was not reached", n);
    close(spare);
    report("client", i, &base);
    for (long j = 0; j < i; j++)
        conns[j].goal += bytes;
    run_exchanges(i, 1, "limit: existing connections after EMFILE");
    printf("rsfw_fds client: PASS: %ld connections, then EMFILE; all %ld carried %lu more bytes each way\n",
           i, i, (unsigned long)bytes);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
        fprintf(stderr, "usage: rsfw_fds server|client IP PORT N BYTES\n");
        return 2;
    }
    struct sockaddr_storage ss;
    socklen_t sl = rsfw_addr(argv[2], argv[3], &ss);
    long n = rsfw_count("connection count", argv[4], MAX_CONNS);
    uint64_t bytes = (uint64_t)rsfw_count("byte count", argv[5], 1L << 30);
    const char *t = getenv("RSFW_TIMEOUT_S");
    deadline_ms = rsfw_now_ms() + (t && atol(t) > 0 ? atol(t) : 300) * 1000;
    conns = calloc((size_t)n + 1, sizeof(*conns));
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || epfd < 0)
        RSFW_FAIL("setup: %s", strerror(errno));
    for (long i = 0; i <= n; i++)
        conns[i].fd = -1;
    if (argv[1][0] == 's')
        return run_server(&ss, sl, n, bytes);
    if (getenv("RSFW_FDS_LIMIT"))
        return run_limit(&ss, sl, n, bytes);
    return run_client(&ss, sl, n, bytes);
}
