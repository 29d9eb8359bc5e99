/* nstat_out.c - nstack-stat's views: per-stack totals and the
 * per-connection list (text like ss/smcss, or JSON), with deltas against
 * the previous sample under -w. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "nstat.h"

static unsigned long long u(uint64_t v)
{
    return (unsigned long long)v;
}

static void addr_str(const struct nstat_conn *c, int peer, char *out, size_t n)
{
    char a[INET6_ADDRSTRLEN] = "?";
    const uint8_t *raw = peer ? c->raddr : c->laddr;
    unsigned port = peer ? c->rport : c->lport;
    if (c->family == AF_INET6) {
        inet_ntop(AF_INET6, raw, a, sizeof(a));
        snprintf(out, n, "[%s]:%u", a, port);
    } else {
        inet_ntop(AF_INET, raw, a, sizeof(a));
        snprintf(out, n, "%s:%u", a, port);
    }
}

static const char *stack_name(const struct snapshot *s, int st)
{
    return st >= 0 && st < s->n_stacks ? s->stacks[st].name : "-";
}

struct nstat_traffic conn_total(const struct nstat_conn *c)
{
    struct nstat_traffic t = { 0, 0, 0, 0 };
    for (int p = 0; p < NSTAT_PATHS; p++) {
        t.tx_bytes += c->path[p].tx_bytes;
        t.rx_bytes += c->path[p].rx_bytes;
        t.tx_msgs += c->path[p].tx_msgs;
        t.rx_msgs += c->path[p].rx_msgs;
    }
    return t;
}

static const struct nstat_conn *prev_conn(const struct view *v, const struct nstat_conn *c)
{
    if (v->prev == NULL)
        return NULL;
    for (int i = 0; i < v->prev->n_conns; i++) {
        const struct nstat_conn *p = &v->prev->conns[i];
        if (p->opened_ns == c->opened_ns && p->fd == c->fd && p->lport == c->lport && p->rport == c->rport)
            return p;
    }
    return NULL;
}

/* ---- text ---------------------------------------------------------------- */

/* The table of the first version, column for column (scripts read it by
 * position); -c adds the anchored columns, -w the rates. */
static void text_totals(FILE *out, const struct snapshot *s, const struct view *v)
{
    double dt = v->prev ? s->when - v->prev->when : 0;
    fprintf(out, "  %-16s %10s %10s %10s %16s %16s %10s", "stack", "sockets", "connect", "accept", "tx_bytes",
            "rx_bytes", "fallback");
    if (v->conns)
        fprintf(out, " %10s %10s", "anchored", "tcp_stay");
    fprintf(out, "%s\n", v->prev ? "     tx_B/s     rx_B/s" : "");
    for (int st = 0; st < s->n_stacks; st++) {
        const uint64_t *t = s->stacks[st].t;
        fprintf(out, "  %-16s %10llu %10llu %10llu %16llu %16llu %10llu", s->stacks[st].name, u(t[NSTAT_SOCKETS]),
                u(t[NSTAT_CONN_OUT]), u(t[NSTAT_CONN_IN]), u(t[NSTAT_TX_BYTES]), u(t[NSTAT_RX_BYTES]),
                u(t[NSTAT_FALLBACK]));
        if (v->conns)
            fprintf(out, " %10lld %10llu", (long long)(int64_t)t[NSTAT_ANCHORED], u(t[NSTAT_ANCHOR_TCP]));
        if (v->prev && st < v->prev->n_stacks && dt > 0) {
            const uint64_t *p = v->prev->stacks[st].t;
            fprintf(out, " %10.0f %10.0f", (double)(t[NSTAT_TX_BYTES] - p[NSTAT_TX_BYTES]) / dt,
                    (double)(t[NSTAT_RX_BYTES] - p[NSTAT_RX_BYTES]) / dt);
        }
        fputc('\n', out);
    }
}

/* "tx/rx" messages of one path, for a column of its own. */
static const char *msgs_str(const struct nstat_traffic *t, char *out, size_t n)
{
    snprintf(out, n, "%llu/%llu", u(t->tx_msgs), u(t->rx_msgs));
    return out;
}

static void text_conns(FILE *out, const struct snapshot *s, const struct view *v)
{
    fprintf(out, "  %-5s %-5s %-22s %-22s %-9s %-16s %12s %12s %8s %8s %12s %12s %12s %12s %11s %11s%s  %s\n",
            "fd", "proto", "local", "peer", "stack", "state", "tx_bytes", "rx_bytes", "tx_msgs", "rx_msgs", "mod_tx",
            "mod_rx", "krn_tx", "krn_rx", "mod_msgs", "krn_msgs", v->prev ? "     d_tx     d_rx" : "",
            "route / reason");
    for (int i = 0; i < s->n_conns; i++) {
        const struct nstat_conn *c = &s->conns[i];
        const struct nstat_traffic *m = &c->path[NSTAT_PATH_MODULE], *k = &c->path[NSTAT_PATH_KERNEL];
        struct nstat_traffic t = conn_total(c);
        char l[64], r[64], mm[48], km[48];
        addr_str(c, 0, l, sizeof(l));
        addr_str(c, 1, r, sizeof(r));
        fprintf(out, "  %-5d %-5s %-22s %-22s %-9s %-16s %12llu %12llu %8llu %8llu %12llu %12llu %12llu %12llu %11s %11s",
                c->fd, c->type == SOCK_DGRAM ? "udp" : "tcp", l, r, stack_name(s, c->stack),
                nstat_state_name(c->state), u(t.tx_bytes), u(t.rx_bytes), u(t.tx_msgs), u(t.rx_msgs),
                u(m->tx_bytes), u(m->rx_bytes), u(k->tx_bytes), u(k->rx_bytes), msgs_str(m, mm, sizeof(mm)),
                msgs_str(k, km, sizeof(km)));
        if (v->prev) {
            const struct nstat_conn *p = prev_conn(v, c);
            struct nstat_traffic pt = p ? conn_total(p) : (struct nstat_traffic){ 0, 0, 0, 0 };
            fprintf(out, " %8llu %8llu", u(t.tx_bytes - pt.tx_bytes), u(t.rx_bytes - pt.rx_bytes));
        }
        fprintf(out, "  %s", c->rule);
        if (c->reason != NSTAT_R_NONE)
            fprintf(out, ": %s", nstat_reason_text(c->reason));
        fputc('\n', out);
    }
    fprintf(out, "  connections recorded since start: %llu, open now: %d", u(s->conn_recorded), s->n_conns);
    if (s->conn_overflow > 0)
        fprintf(out, ", not recorded: %llu (all %d records were in use)", u(s->conn_overflow), NSTAT_CONNS);
    fputc('\n', out);
}

/* The modules' tunables that differ from their defaults. */
static void text_settings(FILE *out, const struct snapshot *s)
{
    if (s->n_settings == 0 && s->settings_lost == 0)
        return;
    fprintf(out, "  settings that differ from the defaults:\n");
    for (int i = 0; i < s->n_settings; i++) {
        const struct nstat_setting *e = &s->settings[i];
        fprintf(out, "    %s: %s=%s (default %s; from %s)\n", e->module, e->key, e->value, e->dflt, e->source);
    }
    if (s->settings_lost > 0)
        fprintf(out, "    (%u more not shown: the table is full)\n", s->settings_lost);
}

void print_text(FILE *out, const struct snapshot *s, const struct view *v)
{
    fprintf(out, "pid %d (%s)%s\n", s->pid, s->comm, v->prev ? " [rates and deltas since the last sample]" : "");
    text_totals(out, s, v);
    text_settings(out, s);
    if (v->conns)
        text_conns(out, s, v);
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_str(FILE *out, const char *str)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void json_stack(FILE *out, const struct snapshot *s, int st, const struct view *v)
{
    static const char *const key[NSTAT_N] = { "connect", "accept", "sockets", "tx_bytes", "rx_bytes",
                                              "fallback", "anchored", "anchor_stayed_tcp" };
    fputs("{\"name\":", out);
    json_str(out, s->stacks[st].name);
    for (int c = 0; c < NSTAT_N; c++) {
        if (c == NSTAT_ANCHORED)
            fprintf(out, ",\"%s\":%lld", key[c], (long long)(int64_t)s->stacks[st].t[c]);
        else
            fprintf(out, ",\"%s\":%llu", key[c], u(s->stacks[st].t[c]));
    }
    if (v->prev && st < v->prev->n_stacks)
        fprintf(out, ",\"delta_tx_bytes\":%llu,\"delta_rx_bytes\":%llu",
                u(s->stacks[st].t[NSTAT_TX_BYTES] - v->prev->stacks[st].t[NSTAT_TX_BYTES]),
                u(s->stacks[st].t[NSTAT_RX_BYTES] - v->prev->stacks[st].t[NSTAT_RX_BYTES]));
    fputc('}', out);
}

static void json_traffic(FILE *out, const struct nstat_traffic *t)
{
    fprintf(out, "\"tx_bytes\":%llu,\"rx_bytes\":%llu,\"tx_msgs\":%llu,\"rx_msgs\":%llu", u(t->tx_bytes),
            u(t->rx_bytes), u(t->tx_msgs), u(t->rx_msgs));
}

static void json_settings(FILE *out, const struct snapshot *s)
{
    fputs(",\"settings\":[", out);
    for (int i = 0; i < s->n_settings; i++) {
        const struct nstat_setting *e = &s->settings[i];
        fputs(i ? ",{\"module\":" : "{\"module\":", out);
        json_str(out, e->module);
        fputs(",\"key\":", out);
        json_str(out, e->key);
        fputs(",\"value\":", out);
        json_str(out, e->value);
        fputs(",\"default\":", out);
        json_str(out, e->dflt);
        fputs(",\"source\":", out);
        json_str(out, e->source);
        fputc('}', out);
    }
    fprintf(out, "],\"settings_lost\":%u", s->settings_lost);
}

static void json_conn(FILE *out, const struct snapshot *s, const struct nstat_conn *c, const struct view *v)
{
    char l[64], r[64];
    addr_str(c, 0, l, sizeof(l));
    addr_str(c, 1, r, sizeof(r));
    fprintf(out, "{\"fd\":%d,\"proto\":\"%s\",\"direction\":\"%s\",\"local\":", c->fd,
            c->type == SOCK_DGRAM ? "udp" : "tcp", c->inbound ? "in" : "out");
    json_str(out, l);
    fputs(",\"peer\":", out);
    json_str(out, r);
    fputs(",\"stack\":", out);
    json_str(out, stack_name(s, c->stack));
    fputs(",\"route_stack\":", out);
    json_str(out, stack_name(s, c->route_stack));
    fprintf(out, ",\"route_index\":%d,\"route\":", c->route_index);
    json_str(out, c->rule);
    fprintf(out, ",\"state\":\"%s\",\"reason_code\":\"%s\",\"reason\":", nstat_state_name(c->state),
            nstat_reason_code(c->reason));
    json_str(out, nstat_reason_text(c->reason));
    struct nstat_traffic t = conn_total(c);
    fprintf(out, ",\"errno\":%d,", c->err);
    json_traffic(out, &t);
    fputs(",\"paths\":{", out);
    for (int p = 0; p < NSTAT_PATHS; p++) {
        fprintf(out, "%s\"%s\":{", p ? "," : "", nstat_path_name((unsigned)p));
        json_traffic(out, &c->path[p]);
        fputc('}', out);
    }
    fputc('}', out);
    if (v->prev) {
        const struct nstat_conn *p = prev_conn(v, c);
        struct nstat_traffic pt = p ? conn_total(p) : (struct nstat_traffic){ 0, 0, 0, 0 };
        fprintf(out, ",\"delta_tx_bytes\":%llu,\"delta_rx_bytes\":%llu", u(t.tx_bytes - pt.tx_bytes),
                u(t.rx_bytes - pt.rx_bytes));
    }
    fputc('}', out);
}

void print_json(FILE *out, const struct snapshot *s, const struct view *v)
{
    fprintf(out, "{\"pid\":%d,\"comm\":", s->pid);
    json_str(out, s->comm);
    fputs(",\"stacks\":[", out);
    for (int st = 0; st < s->n_stacks; st++) {
        if (st)
            fputc(',', out);
        json_stack(out, s, st, v);
    }
    fprintf(out, "],\"conn_recorded\":%llu,\"conn_overflow\":%llu", u(s->conn_recorded), u(s->conn_overflow));
    json_settings(out, s);
    if (v->conns) {
        fputs(",\"connections\":[", out);
        for (int i = 0; i < s->n_conns; i++) {
            if (i)
                fputc(',', out);
            json_conn(out, s, &s->conns[i], v);
        }
        fputc(']', out);
    }
    fputc('}', out);
}
