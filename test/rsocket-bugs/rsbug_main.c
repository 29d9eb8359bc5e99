/* rsbug_main.c - rsbug_api / rsbug_fw CASE server|client ADDR PORT [GO]:
 * one side of one known-bug case. GO is a file the driver creates to let a
 * waiting client go on ("-" when the case needs none). */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct rb_case cases[] = {
    { "iov", iov_server, iov_client },
    { "fd0", one_byte_server, fd0_client },
    { "select", one_byte_server, select_client },
    { "selcount", one_byte_server, selcount_client },
    { "pollmany", one_byte_server, pollmany_client },
    { "discbatch", discbatch_server, discbatch_client },
    { "listen_poll", listen_poll_server, listen_client },
    { "selfconn", selfconn_server, NULL },
    { "refused", NULL, refused_client },
    { "crash", crash_server, hold_client },
    { "deadclose", hold_server, deadclose_client },
    { "stress", stress_server, stress_client },
    { "mtpoll", mtpoll_server, mtpoll_client },
    { "rpoll", rpoll_server, rpoll_client },
    { "fork", fork_server, fork_client },
#ifdef RSBUG_API
    { "route", one_byte_server, route_client },
    { "iomap", iomap_server, iomap_client },
    { "revoke", revoke_server, revoke_client },
#else
    { "listen_epoll", listen_epoll_server, listen_client },
    { "sendfile", sendfile_server, sendfile_client },
#endif
};

static int usage(const char *why)
{
    fprintf(stderr, "rsbug_%s: %s\nusage: rsbug_%s CASE server|client ADDR PORT [GO]\ncases:",
            RSBUG_FLAVOUR, why, RSBUG_FLAVOUR);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        fprintf(stderr, " %s", cases[i].name);
    fprintf(stderr, "\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return usage("missing arguments");
    struct rb_args a = { .ip = argv[3], .port = atoi(argv[4]), .go = argc > 5 ? argv[5] : "-" };
    const char *dl = getenv("RSBUG_DEADLINE");
    if (a.port <= 0 || a.port > 65535)
        return usage("PORT is not in 1..65535");
    rb_deadline(dl ? (unsigned)atoi(dl) : 240);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (strcmp(cases[i].name, argv[1]) != 0)
            continue;
        rb_side side = strcmp(argv[2], "server") == 0 ? cases[i].server
                     : strcmp(argv[2], "client") == 0 ? cases[i].client : NULL;
        if (!side)
            return usage("this case has no such side");
        side(&a);
        return 0;
    }
    return usage("unknown case");
}
