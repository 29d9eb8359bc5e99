/*
 * rs_engine_test - drives libdmm_rsocket.so through its nstack_module
 * contract (as libnStackAPI.so does) between two hosts. Every byte
 * transferred is checked against a position- and seed-dependent pattern.
 *
 *   rs_engine_test server PORT ADDR...         serve scenarios until "X"
 *   rs_engine_test server-sink PORT ADDR...    the same, plus a sink on PORT+1
 *   rs_engine_test client ADDR PORT SCENARIO... (see rs_engine_client.h)
 *   rs_engine_test refused ADDR PORT            ECONNREFUSED both ways
 *   rs_engine_test idle ADDR PORT               peer for "survive"
 *   rs_engine_test survive ADDR PORT [keepalive]
 * Exit 0 on success; one line on stderr naming the failed step otherwise.
 */
#include "rs_engine_client.h"
#include "rs_engine_server.h"
#include "rs_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: rs_engine_test server PORT ADDR... | client ADDR PORT SCENARIO... |"
                    " refused ADDR PORT | idle ADDR PORT | survive ADDR PORT [keepalive]\n");
    return 2;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4)
        return usage();
    if (tu_module_init())
        return 1;
    const char *mode = argv[1];
    if (!strcmp(mode, "server") || !strcmp(mode, "server-sink"))
        return run_server(argv + 3, argc - 3, atoi(argv[2]), !strcmp(mode, "server-sink")) ? 1 : 0;
    int port = atoi(argv[3]);
    if (!strcmp(mode, "client"))
        return run_client(argv[2], port, argv + 4, argc - 4) ? 1 : 0;
    if (!strcmp(mode, "refused"))
        return run_refused(argv[2], port) ? 1 : 0;
    if (!strcmp(mode, "idle"))
        return run_idle(argv[2], port) ? 1 : 0;
    if (!strcmp(mode, "survive"))
        return run_survive(argv[2], port, argc > 4 && !strcmp(argv[4], "keepalive")) ? 1 : 0;
    return usage();
}
