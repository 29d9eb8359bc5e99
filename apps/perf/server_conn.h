/*
 * server_conn.h - one connection of a vs_* server: counters, receive
 * reports, the final verdict, and the nonblocking echo step shared by
 * vs_epoll, vs_select and vs_poll.
 *
 * Ownership: a server_conn is written by the accepting thread until its
 * serving thread starts, then only by that thread until pthread_join();
 * the main thread reads it after the join. No lock is needed.
 */
#ifndef SERVER_CONN_H
#define SERVER_CONN_H

#include "net_addr.h"
#include "perf_opts.h"
#include "sock_io.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct server_conn {
    const struct perf_opts *o;
    int index;
    int fd;
    pthread_t thread;
    char peer[NET_ADDR_STRLEN];

    unsigned char *buf;          /* -l bytes: data read, not yet echoed */
    size_t pend_off, pend_len;
    uint64_t target;             /* bytes to echo before stopping; 0 = until EOF */
    uint64_t bytes_in, bytes_out;

    uint64_t next_report;        /* message count of the next receive line */
    double t_report;

    bool finished, complete;
    char reason[IO_REASON_LEN];
};

/* What the echo step needs before it can continue. */
enum echo_next { ECHO_WANT_IN, ECHO_WANT_OUT, ECHO_FINISHED };

/* Prepare a slot for an accepted fd (allocates the -l buffer). */
bool server_conn_init(struct server_conn *c, const struct perf_opts *o,
                      int index, int fd, const struct sockaddr *peer);
void server_conn_release(struct server_conn *c);

/* Bytes to ask recv() for: the buffer, capped by what -t still allows. */
size_t server_conn_recv_room(const struct server_conn *c);

/* Count n received bytes; print "conn I receive N , pps=X" lines. */
void server_conn_received(struct server_conn *c, size_t n);

/* Verdicts: finish when the peer closed (checks the -t target). */
void server_conn_peer_closed(struct server_conn *c);
void server_conn_fail(struct server_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The idle timeout passed while the echo waited for `next`. */
void server_conn_timed_out(struct server_conn *c, enum echo_next next);
/* true (and finished/complete set) once -t messages are echoed. */
bool server_conn_target_done(struct server_conn *c);

/* Nonblocking echo: echo pending data, read more, repeat until the socket
 * would block (EAGAIN, so it is safe with EPOLLET) or the connection ends. */
enum echo_next server_conn_echo_step(struct server_conn *c);

/* The final "conn I done: ..." line. */
void server_conn_print_result(const struct server_conn *c);

#endif /* SERVER_CONN_H */
