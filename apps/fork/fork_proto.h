/*
 * fork_proto.h - what fork_client and fork_server agree on: the client
 * ends a session by sending this marker; the server's child echoes
 * everything before it, then exits (DMM's func-test/fork protocol).
 */
#ifndef FORK_PROTO_H
#define FORK_PROTO_H

#define FORK_EXIT_MARKER "#exit"
#define FORK_MARKER_LEN 5     /* strlen(FORK_EXIT_MARKER), for array sizes */

#endif /* FORK_PROTO_H */
