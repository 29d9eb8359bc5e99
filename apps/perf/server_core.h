/*
 * server_core.h - what every vs_* server shares: the listener, accepting
 * up to -n connections (one serving thread each), joining them, and the
 * output. Output (stdout, line-buffered):
 *   listening on IP:PORT                        once the listener is up
 *   conn I accepted from IP:PORT
 *   conn I receive N , pps=X                    every -u messages with -x
 *   conn I done: receive N messages , B bytes echoed , peer IP:PORT , result=ok|FAIL : reason
 *   server summary: connections=N complete=C messages=M bytes=B result=PASS|FAIL
 * Exit 0 when all -n connections echoed their -t messages (or, with -t 0,
 * closed cleanly on a message boundary); 1 otherwise; 2 for usage errors.
 */
#ifndef SERVER_CORE_H
#define SERVER_CORE_H

#include "perf_opts.h"
#include "server_conn.h"

#include <stdbool.h>

typedef void *(*server_serve_fn)(void *conn);  /* thread body, arg = server_conn */

struct server {
    struct perf_opts o;
    int lfd;
    struct server_conn *conns;   /* -n slots, see server_conn.h for ownership */
    int accepted;
    server_serve_fn serve;
};

/* Parse the command line, open the listener on -s:-r (nonblocking when
 * asked) and print the "listening" line. Exits on any failure. */
void server_start(struct server *s, int argc, char **argv,
                  bool nonblock_listener, server_serve_fn serve);

/* Accept connections until accept() would block or -n is reached;
 * accepted sockets get `accept_flags` (accept4). Exits on hard errors. */
void server_accept_ready(struct server *s, int accept_flags);

/* One accept4(); false when it would block (nonblocking listener). A
 * blocking listener blocks here: call it after the listener polled ready. */
bool server_accept_one(struct server *s, int accept_flags);

bool server_all_accepted(const struct server *s);

/* Wait for readiness of the listener failed (timeout or error): report it
 * and exit 1 after joining the connections already running. */
void server_accept_failed(struct server *s, const char *reason)
    __attribute__((noreturn));

/* The idle timeout passed while waiting for the next connection:
 * server_accept_failed() with "timeout after N s waiting for a connection". */
void server_accept_timed_out(struct server *s) __attribute__((noreturn));

/* Join the serving threads, print results and the summary; exit code. */
int server_finish(struct server *s);

#endif /* SERVER_CORE_H */
