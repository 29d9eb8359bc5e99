/* app_listen.c - listener with its banner (see app_listen.h). */
#include "app_listen.h"

#include <stdio.h>

int app_listen_announce(const struct net_addr *local, bool nonblock,
                        struct io_error *err)
{
    int lfd = sock_listen_tcp(local, nonblock, err);
    if (lfd < 0)
        return -1;
    char a[NET_ADDR_STRLEN];
    printf("listening on %s\n", net_addr_str(local, a, sizeof(a)));
    fflush(stdout);   /* also when stdout is a pipe that is not line-buffered */
    return lfd;
}
