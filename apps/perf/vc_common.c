/*
 * vc_common - DMM perf-test client. Opens -f connections to -d:-p (each
 * bound to -s:(a+i) when given), then -t times sends one -l byte message on
 * every connection and reads back its echo, checking every byte against
 * the (connection, sequence) pattern. Output (stdout):
 *   sendcount N , pps=X                  every -u messages when -x is set
 *   client I send N , sendtime : S s , pps=X   per connection at the end
 *   vc_common: PASS ...                  when every echo matched
 * Any failure prints one line to stderr and exits 1 (usage errors: 2).
 */
#include "app_fail.h"
#include "app_timeout.h"
#include "client_addr.h"
#include "mono_clock.h"
#include "msg_pattern.h"
#include "net_addr.h"
#include "perf_opts.h"
#include "sock_io.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct client_run {
    const struct perf_opts *o;
    int *fds;
    unsigned char *tx, *rx;   /* one message each, reused for every fd */
    double t_start, t_report;
};

static void connect_all(struct client_run *r)
{
    const struct perf_opts *o = r->o;
    struct net_addr peer, local;
    bool bind_local = client_addr_resolve(o->dst_ip, o->dst_port, o->bind_ip,
                                          o->src_port_base, &peer, &local);
    for (int i = 0; i < o->fds; i++) {
        struct io_error err;
        if (o->src_port_base > 0)
            net_addr_set_port(&local, o->src_port_base + i);
        r->fds[i] = sock_connect_tcp(bind_local ? &local : NULL, &peer,
                                     app_timeout_ms, &err);
        if (r->fds[i] < 0)
            app_die(APP_EXIT_FAIL, "FAIL: client %d: %s", i, err.text);
    }
}

static void exchange_one(struct client_run *r, int i, long seq, bool send_side)
{
    size_t len = r->o->msg_len;
    struct io_error err;
    if (send_side) {
        msg_pattern_fill(r->tx, len, (uint32_t)i, (uint64_t)seq);
        if (!io_send_all(r->fds[i], r->tx, len, app_timeout_ms, &err))
            app_die(APP_EXIT_FAIL, "FAIL: client %d message %ld: %s", i, seq,
                    err.text);
        return;
    }
    if (!io_recv_all(r->fds[i], r->rx, len, app_timeout_ms, &err))
        app_die(APP_EXIT_FAIL, "FAIL: client %d message %ld: short echo: %s",
                i, seq, err.text);
    uint8_t want;
    long bad = msg_pattern_check(r->rx, len, (uint32_t)i, (uint64_t)seq, &want);
    if (bad >= 0)
        app_die(APP_EXIT_FAIL,
                "FAIL: client %d message %ld: echo mismatch at byte %ld "
                "(expected 0x%02x, got 0x%02x)", i, seq, bad, want, r->rx[bad]);
}

static void report_progress(struct client_run *r, long sent)
{
    const struct perf_opts *o = r->o;
    if (!o->print || o->print_every <= 0 || sent % o->print_every != 0)
        return;
    double now = mono_now();
    printf("sendcount %ld , pps=%.0f\n", sent,
           mono_rate((double)o->print_every * o->fds, now - r->t_report));
    r->t_report = now;
}

static void pace(const struct perf_opts *o, long done)
{
    if (o->sleep_us > 0 && o->sleep_every > 0 && done % o->sleep_every == 0)
        usleep((useconds_t)o->sleep_us);
}

static void run_messages(struct client_run *r)
{
    const struct perf_opts *o = r->o;
    for (long seq = 0; seq < o->count; seq++) {
        for (int i = 0; i < o->fds; i++)
            exchange_one(r, i, seq, true);
        for (int i = 0; i < o->fds; i++)
            exchange_one(r, i, seq, false);
        report_progress(r, seq + 1);
        pace(o, seq + 1);
    }
}

static void print_results(const struct client_run *r)
{
    const struct perf_opts *o = r->o;
    double secs = mono_now() - r->t_start;
    for (int i = 0; i < o->fds; i++)
        printf("client %d send %ld , sendtime : %.6f s , pps=%.0f\n", i,
               o->count, secs, mono_rate((double)o->count, secs));
    printf("%s: PASS: %d connection(s) x %ld message(s) of %zu bytes echoed "
           "and verified\n", app_name, o->fds, o->count, o->msg_len);
}

int main(int argc, char **argv)
{
    struct perf_opts o;
    app_start(argv[0]);
    perf_opts_parse(argc, argv, PERF_CLIENT, &o);

    struct client_run r = { .o = &o };
    r.fds = calloc((size_t)o.fds, sizeof(*r.fds));
    r.tx = malloc(o.msg_len);
    r.rx = malloc(o.msg_len);
    if (r.fds == NULL || r.tx == NULL || r.rx == NULL)
        app_die(APP_EXIT_FAIL, "FAIL: out of memory for %d connections", o.fds);

    connect_all(&r);
    r.t_start = r.t_report = mono_now();
    run_messages(&r);
    for (int i = 0; i < o.fds; i++)
        close(r.fds[i]);
    print_results(&r);
    free(r.fds);
    free(r.tx);
    free(r.rx);
    return APP_EXIT_OK;
}
