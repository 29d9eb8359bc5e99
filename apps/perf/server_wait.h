/*
 * server_wait.h - the loops of the servers that wait on one fd at a time
 * (vs_poll, vs_select). They differ only in the call that waits, which
 * each passes in; the echo steps, the accept bursts and the verdicts are
 * the same.
 */
#ifndef SERVER_WAIT_H
#define SERVER_WAIT_H

#include "server_conn.h"
#include "server_core.h"

#include <stdbool.h>

/* Wait, within the idle timeout, until fd is writable (want_write) or
 * readable: 1 ready, 0 timed out, -1 failed (errno set). */
typedef int (*fd_wait_fn)(int fd, bool want_write);

struct fd_waiter {
    const char *call;    /* "poll", "select": named in error verdicts */
    fd_wait_fn wait;
};

/* The whole server: parse the command line, listen (nonblocking), accept
 * -n connections waiting with w, echo on each in its own thread waiting
 * with w, then print the results. Returns main()'s exit code. */
int server_wait_main(int argc, char **argv, const struct fd_waiter *w);

#endif /* SERVER_WAIT_H */
