/*
 * vs_select - DMM perf-test echo server, select flavour: select() waits on
 * the nonblocking listener; each connection gets a thread that select()s
 * on its nonblocking socket for the direction the echo needs, until -t
 * messages. Flags and output: see server_core.h.
 */
#include "app_timeout.h"
#include "server_wait.h"

#include <errno.h>
#include <sys/select.h>

/* select() on one fd; 1 ready, 0 timeout, -1 error (errno). */
static int select_one(int fd, bool want_write)
{
    if (fd >= FD_SETSIZE) {
        errno = EBADF;   /* select() cannot represent this fd */
        return -1;
    }
    for (;;) {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(fd, &set);
        /* select() may change the timeval: rebuild it for every call. */
        struct timeval tv = { .tv_sec = app_timeout_ms / 1000,
                              .tv_usec = (app_timeout_ms % 1000) * 1000 };
        int n = select(fd + 1, want_write ? NULL : &set,
                       want_write ? &set : NULL, NULL,
                       app_timeout_ms < 0 ? NULL : &tv);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

static const struct fd_waiter select_waiter = { "select", select_one };

int main(int argc, char **argv)
{
    return server_wait_main(argc, argv, &select_waiter);
}
