/* check.h - nstack-check's parts: running under the preload (check_run.c),
 * the connection and its pattern (check_conn.c), the verdict from the
 * connection record (check_verdict.c). */
#ifndef NSTACK_CHECK_H
#define NSTACK_CHECK_H

struct check_opts {
    const char *config;     /* --config DIR */
    const char *target;     /* HOST:PORT */
    int serve_port;         /* --serve PORT */
    int count;              /* --count N connections served, 0: forever */
    long bytes;             /* --bytes: pattern length each way */
    int timeout;            /* --timeout seconds (client) */
};

/* 1 when libnStackAPI.so is preloaded into this process. */
int check_under_preload(void);
/* --config DIR for a process already under the preload. */
void check_config_env(const char *dir);
/* Runs this program again under nstack-run; returns 2 when it cannot. */
int check_reexec(int argc, char **argv, const char *config);

int check_client(const struct check_opts *o);
int check_serve(const struct check_opts *o);

/* Prints the verdict for the connection at fd (what: the line's subject);
 * returns 0 accelerated, 1 kernel TCP, 2 no record (framework not loaded). */
int check_verdict(int fd, const char *what, long bytes);

#endif
