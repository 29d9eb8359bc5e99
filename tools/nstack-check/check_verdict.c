/* check_verdict.c - which stack carried nstack-check's connection and why,
 * from this process's own connection record (nstack_stats.h). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../nstack-stat/nstat.h"
#include "check.h"

static const struct nstat_conn *find(const struct snapshot *s, int fd)
{
    for (int i = 0; i < s->n_conns; i++)
        if (s->conns[i].fd == fd)
            return &s->conns[i];
    return NULL;
}

int check_verdict(int fd, const char *what, long bytes)
{
    struct snapshot *s = malloc(sizeof(*s));
    if (s == NULL || snap_read(getpid(), s, 1) < 0) {
        fprintf(stderr, "nstack-check: %s: no connection record: libnStackAPI.so is not loaded, or its "
                        "stats segment is unavailable\n", what);
        free(s);
        return 2;
    }
    const struct nstat_conn *c = find(s, fd);
    int rc = 2;
    if (c == NULL) {
        fprintf(stderr, "nstack-check: %s: no connection record for fd %d (%llu connections not recorded)\n",
                what, fd, (unsigned long long)s->conn_overflow);
    } else {
        int fast = c->state == NSTAT_ST_UPGRADED || c->state == NSTAT_ST_DIRECT;
        const char *stack = c->stack >= 0 && c->stack < s->n_stacks ? s->stacks[c->stack].name : "?";
        rc = fast ? 0 : 1;
        printf("nstack-check: %s: %s: carried by %s (%s)%s%s; route: %s; %ld bytes checked each way\n", what,
               fast ? "Success" : "TCP fallback", stack, nstat_state_name(c->state),
               c->reason ? ": " : "", c->reason ? nstat_reason_text(c->reason) : "", c->rule, bytes);
        fflush(stdout);
    }
    free(s);
    return rc;
}
