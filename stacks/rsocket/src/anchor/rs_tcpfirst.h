/*
 * rs_tcpfirst.h - TCP-first connections (fork support): the module's
 * adopt() op moves a connected kernel TCP socket onto an rsocket with a
 * small handshake over that TCP connection. Protocol in doc/fork.md.
 */
#ifndef RS_TCPFIRST_H
#define RS_TCPFIRST_H

#include "rs_sock.h"
#include "nstack/nstack_module.h"

/* The wire message: both directions use the same 8 bytes. */
#define RS_TF_MAGIC      "NSFK"
#define RS_TF_VERSION    1
#define RS_TF_KICK       1      /* active -> passive: "I am using it, answer" */
#define RS_TF_OFFER      2      /* passive -> active: "connect to this port" */
#define RS_TF_MSG_LEN    8

/* nstack_module.adopt(): see include/nstack/nstack_module.h. */
int rs_tcpfirst_adopt(int kfd, int role, int flags, nstack_sock **out);

#endif
