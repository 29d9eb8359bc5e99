/* anchor_local.h - connections between two sockets of this same process.
 *
 * A candidate is anchored at its first use, so that the process that uses
 * a connection is the one that upgrades it. When both ends live in one
 * process that alone can deadlock: a thread connects to its own listener,
 * accepts, then sends on the client; the client commits to the upgrade
 * and waits for the server's OFFER, but the server end is anchored only
 * when the thread uses it, after the send returned. So this process keeps
 * the local addresses of the connections it made (connect) and accepted;
 * the first use of one end whose other end is still in this process's
 * table anchors both and runs their handshakes to the end at once (the
 * module drives a pair from a wait on either end: rs_anchor_pair.c). An
 * end that went to another process (accept-then-fork: the parent closed
 * its copy) is not paired: each process upgrades what it uses. */
#ifndef ANCHOR_LOCAL_H
#define ANCHOR_LOCAL_H

#include "file.h"

/* connect() of candidate fd succeeded or is in progress, or accept()
 * made candidate fd. */
void anchor_local_add(int fd);

/* fd was just anchored at its first use (at_accept 0): when its other
 * end is a candidate or anchored socket of this process, anchors that one
 * too and lets both handshakes finish (bounded). fd was just accepted
 * (at_accept 1): the same when the other end is anchored already. */
void anchor_local_pair(int fd, int at_accept);

/* 1 when the other end of fd's connection is a connection this process
 * made or accepted since its last fork (and still holds). */
int anchor_local_other_end(int fd);

#endif
