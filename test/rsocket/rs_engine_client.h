/* rs_engine_client.h - client roles of rs_engine_test. */
#ifndef RS_ENGINE_CLIENT_H
#define RS_ENGINE_CLIENT_H

/* Run the scenarios ("D:bytes", "L:bytes" (D with send sizes around the
 * device's inline limit), "P", "S:bytes", "R:bytes", "C:bytes",
 * "M:connections", "H:loops", "X") against a run_server(). */
int run_client(const char *ip, int port, char **specs, int n_specs);
/* Nothing listens: blocking and nonblocking connect give ECONNREFUSED. */
int run_refused(const char *ip, int port);
/* Against run_idle(): survive the peer's death (or, with keepalive, its
 * silence). */
int run_survive(const char *ip, int port, int keepalive);

#endif
