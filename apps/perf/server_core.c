/* server_core.c - listener, accept, threads, summary (see server_core.h). */
#include "server_core.h"

#include "app_fail.h"
#include "app_listen.h"
#include "app_timeout.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void open_listener(struct server *s, bool nonblock)
{
    struct net_addr local;
    const char *ip = s->o.bind_ip ? s->o.bind_ip : "0.0.0.0";
    if (!net_addr_parse(ip, s->o.srv_port, &local))
        app_die(APP_EXIT_USAGE, "-s: \"%s\": not an IPv4 or IPv6 address", ip);
    struct io_error err;
    s->lfd = app_listen_announce(&local, nonblock, &err);
    if (s->lfd < 0)
        app_die(APP_EXIT_FAIL, "FAIL: %s", err.text);
}

void server_start(struct server *s, int argc, char **argv,
                  bool nonblock_listener, server_serve_fn serve)
{
    app_start(argv[0]);
    memset(s, 0, sizeof(*s));
    perf_opts_parse(argc, argv, PERF_SERVER, &s->o);
    s->serve = serve;
    s->conns = calloc((size_t)s->o.accept_n, sizeof(*s->conns));
    if (s->conns == NULL)
        app_die(APP_EXIT_FAIL, "FAIL: out of memory for %d connections",
                s->o.accept_n);
    open_listener(s, nonblock_listener);
}

static void start_conn(struct server *s, int fd, const struct sockaddr *peer)
{
    struct server_conn *c = &s->conns[s->accepted];
    if (!server_conn_init(c, &s->o, s->accepted, fd, peer))
        app_die(APP_EXIT_FAIL, "FAIL: out of memory for a %zu byte buffer",
                s->o.msg_len);
    printf("conn %d accepted from %s\n", c->index, c->peer);
    int rc = pthread_create(&c->thread, NULL, s->serve, c);
    if (rc != 0)
        app_die(APP_EXIT_FAIL, "FAIL: pthread_create: %s", strerror(rc));
    s->accepted++;
}

bool server_accept_one(struct server *s, int accept_flags)
{
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(s->lfd, (struct sockaddr *)&peer, &len, accept_flags);
        if (fd >= 0) {
            start_conn(s, fd, (struct sockaddr *)&peer);
            return true;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return false;
        if (errno != EINTR && errno != ECONNABORTED)
            server_accept_failed(s, strerror(errno));
    }
}

void server_accept_ready(struct server *s, int accept_flags)
{
    while (!server_all_accepted(s) && server_accept_one(s, accept_flags))
        ;
}

bool server_all_accepted(const struct server *s)
{
    return s->accepted >= s->o.accept_n;
}

static int join_and_report(struct server *s)
{
    int complete = 0;
    uint64_t msgs = 0, bytes = 0;
    for (int i = 0; i < s->accepted; i++) {
        struct server_conn *c = &s->conns[i];
        pthread_join(c->thread, NULL);
        server_conn_print_result(c);
        complete += c->complete;
        msgs += c->bytes_in / s->o.msg_len;
        bytes += c->bytes_out;
        server_conn_release(c);
    }
    bool pass = complete == s->o.accept_n;
    printf("server summary: connections=%d complete=%d messages=%" PRIu64
           " bytes=%" PRIu64 " result=%s\n", s->accepted, complete, msgs,
           bytes, pass ? "PASS" : "FAIL");
    return pass ? APP_EXIT_OK : APP_EXIT_FAIL;
}

void server_accept_failed(struct server *s, const char *reason)
{
    close(s->lfd);
    join_and_report(s);
    app_die(APP_EXIT_FAIL, "FAIL: accepted %d of %d connections: %s",
            s->accepted, s->o.accept_n, reason);
}

void server_accept_timed_out(struct server *s)
{
    char why[96];
    snprintf(why, sizeof(why), "timeout after %d s waiting for a connection",
             app_timeout_ms / 1000);
    server_accept_failed(s, why);
}

int server_finish(struct server *s)
{
    close(s->lfd);
    int rc = join_and_report(s);
    free(s->conns);
    if (rc != APP_EXIT_OK)
        app_warn("FAIL: not every connection completed (see the conn lines)");
    return rc;
}
