/* rsbug_cases.h - the known-bug cases: each has a server side (host A) and
 * a client side (host B); a NULL side is not used by that case. */
#ifndef RSBUG_CASES_H
#define RSBUG_CASES_H

#include "rsbug_util.h"

typedef void (*rb_side)(const struct rb_args *a);
struct rb_case {
    const char *name;
    rb_side server, client;
};

/* Listen, say LISTENING, accept one connection, close the listener. */
int rb_serve_one(const struct rb_args *a);

void iov_server(const struct rb_args *a);
void iov_client(const struct rb_args *a);
void fd0_client(const struct rb_args *a);
void select_client(const struct rb_args *a);
void selcount_client(const struct rb_args *a);
void pollmany_client(const struct rb_args *a);
void one_byte_server(const struct rb_args *a);
void discbatch_server(const struct rb_args *a);
void discbatch_client(const struct rb_args *a);
void sendfile_server(const struct rb_args *a);
void sendfile_client(const struct rb_args *a);
void route_client(const struct rb_args *a);

void listen_poll_server(const struct rb_args *a);
void listen_epoll_server(const struct rb_args *a);
void listen_client(const struct rb_args *a);
void selfconn_server(const struct rb_args *a);
void refused_client(const struct rb_args *a);
void crash_server(const struct rb_args *a);
void hold_client(const struct rb_args *a);
void hold_server(const struct rb_args *a);
void deadclose_client(const struct rb_args *a);
void stress_server(const struct rb_args *a);
void stress_client(const struct rb_args *a);
void mtpoll_server(const struct rb_args *a);
void mtpoll_client(const struct rb_args *a);
void rpoll_server(const struct rb_args *a);
void rpoll_client(const struct rb_args *a);
void fork_server(const struct rb_args *a);
void fork_client(const struct rb_args *a);
void iomap_server(const struct rb_args *a);
void iomap_client(const struct rb_args *a);
void revoke_server(const struct rb_args *a);
void revoke_client(const struct rb_args *a);

#endif
