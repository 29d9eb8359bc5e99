/* rs_engine_server.h - server roles of rs_engine_test. */
#ifndef RS_ENGINE_SERVER_H
#define RS_ENGINE_SERVER_H

/* Listen on every address (same port), serve scenarios until TP_EXIT;
 * with_sink: also a sink on PORT+1 that never reads and reports how each
 * connection ended (for the misbehaving-peer test). */
int run_server(char **ips, int n_ips, int port, int with_sink);
/* Accept one connection, send 100 bytes, then block (peer-death tests). */
int run_idle(const char *ip, int port);

#endif
