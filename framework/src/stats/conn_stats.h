/* conn_stats.h - per-connection records in the stats segment (layout and
 * publication protocol: include/nstack/nstack_stats.h). The hooks are
 * one-line calls from the routing code; everything but conn_stats_io()
 * is slow path (connect, accept, anchoring, fallback, close). */
#ifndef CONN_STATS_H
#define CONN_STATS_H

#include <stdint.h>
#include <sys/socket.h>

#include "file.h"
#include "stats.h"

/* After connect() decided fd's stack (r: connect's result). */
void conn_stats_connect(int fd, const struct sockaddr *dest, int r);
/* After accept() returned fd. */
void conn_stats_accept(int fd);
/* An anchored candidate inherited across exec (NSTACK_ANCHOR_INHERIT). */
void conn_stats_inherited(int fd, int inbound);
/* The app fd's file is replaced by `to` (sock_publish): the record follows. */
void conn_stats_move(int fd, struct file *from, struct file *to);
/* An anchored candidate stays on TCP: anchor() failed with err. */
void conn_stats_stay_tcp(int fd, struct file *f, int err);
/* A long-lived connection carries its first bytes on TCP (anchor_ll.c). */
void conn_stats_tcp_phase(int fd, struct file *f, int inbound);
/* An anchored connection went back to TCP (sock_fallback); to may be NULL.
 * released: it was returned to TCP for a fork/exec (anchor_released), not
 * refused by the peer. */
void conn_stats_fallback(struct file *from, struct file *to, int released);
/* The file is freed: its record is free for reuse. */
void conn_stats_release(struct file *f);
/* The first data moved on an anchored module socket (from conn_stats_io). */
void conn_stats_upgraded(struct nstat_conn *c);
/* At exit, before the report: every record still in use gets its last
 * word (a candidate never used: "closed before first use"). */
void conn_stats_finish_all(void);
/* Exit report lines (stats_at_exit); verbose: NSTACK_STATS=1 (conn_report.c). */
void conn_stats_report(int verbose);
/* A connection ended up not accelerated (reason != NSTAT_R_NONE) or on
 * the kernel by its route: one more in the report's line for it. */
void conn_report_add(int state, int reason, const char *rule);
/* A record about to be freed, or still in use at exit (a consistent copy):
 * named in the report when its route names a module but most of its
 * bytes went over the kernel (conn_report.c). */
void conn_report_conn(const struct nstat_conn *c);
/* In a fork child: the child reports its own connections only. */
void conn_report_fork_child(void);
/* In a fork child: records copied from the parent's segment. */
void conn_stats_fork_child(const struct nstat_shm *old, struct nstat_shm *now);

/* Which path carries f's bytes: a kernel socket's go over the kernel; a
 * module socket's over the module, except the sends of an anchored
 * connection returned to TCP before a fork/exec whose module still serves
 * the bytes RDMA delivered (anchor_fork.c: `downgraded`; its sends go to
 * the TCP socket). */
static inline int conn_stats_path(const struct file *f, int tx)
{
    if (f->kind != FILE_MSOCK)
        return NSTAT_PATH_KERNEL;
    if (__builtin_expect(tx && __atomic_load_n(&f->downgraded, __ATOMIC_RELAXED), 0))
        return NSTAT_PATH_KERNEL;
    return NSTAT_PATH_MODULE;
}

/* Data path: relaxed adds on the record, no lock, no syscall. */
static inline void conn_stats_io(struct file *f, int tx, uint64_t n)
{
    int i = __atomic_load_n(&f->conn_slot, __ATOMIC_RELAXED);
    struct nstat_shm *s = g_stat_shm;
    if (__builtin_expect(i == 0 || s == NULL || i > NSTAT_CONNS, 1))
        return;
    struct nstat_conn *c = &s->conns[i - 1];
    struct nstat_traffic *t = &c->path[conn_stats_path(f, tx)];
    __atomic_fetch_add(tx ? &t->tx_bytes : &t->rx_bytes, n, __ATOMIC_RELAXED);
    __atomic_fetch_add(tx ? &t->tx_msgs : &t->rx_msgs, 1, __ATOMIC_RELAXED);
    if (__builtin_expect(__atomic_load_n(&c->state, __ATOMIC_RELAXED) == NSTAT_ST_UPGRADING, 0) &&
        f->kind == FILE_MSOCK)
        conn_stats_upgraded(c);
}

#endif
