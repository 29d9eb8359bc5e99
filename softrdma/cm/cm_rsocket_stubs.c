/* softrdma librdmacm: the rsocket API. Debian's rstream/riostream import it
 * from librdmacm.so.1 and are linked with -z now, so every symbol must
 * exist. The real implementation is a separate library (the project's
 * rsocket engine) preloaded in front of this one; these fail with ENOSYS.
 * Declared without <rdma/rsocket.h>: only "returns -1, errno ENOSYS" matters. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "sr_log.h"

#include "sr_log.h"

static int sr_rsocket_enosys(const char *fn)
{
    sr_log("%s: rsockets are not implemented in softrdma's librdmacm; preload the rsocket engine", fn);
    errno = ENOSYS;
    return -1;
}

#define SR_RS_STUB(name) int name(void); int name(void) { return sr_rsocket_enosys(#name); }
SR_RS_STUB(rsocket) SR_RS_STUB(rbind) SR_RS_STUB(rlisten) SR_RS_STUB(raccept)
SR_RS_STUB(rconnect) SR_RS_STUB(rshutdown) SR_RS_STUB(rclose) SR_RS_STUB(rrecv)
SR_RS_STUB(rrecvfrom) SR_RS_STUB(rrecvmsg) SR_RS_STUB(rsend) SR_RS_STUB(rsendto)
SR_RS_STUB(rsendmsg) SR_RS_STUB(rread) SR_RS_STUB(rreadv) SR_RS_STUB(rwrite)
SR_RS_STUB(rwritev) SR_RS_STUB(rpoll) SR_RS_STUB(rselect) SR_RS_STUB(rgetpeername)
SR_RS_STUB(rgetsockname) SR_RS_STUB(rsetsockopt) SR_RS_STUB(rgetsockopt) SR_RS_STUB(rfcntl)
SR_RS_STUB(riounmap)

/* riomap returns an offset, riowrite a byte count: -1 either way. */
long riomap(void); long riomap(void) { return sr_rsocket_enosys("riomap"); }
long riowrite(void); long riowrite(void) { return sr_rsocket_enosys("riowrite"); }

/* Connection-manager features softrdma does not model. */
static int sr_cm_unsupported(const char *fn)
{
    sr_log("%s: not supported by softrdma", fn);
    errno = EOPNOTSUPP;
    return -1;
}
#define SR_CM_STUB(name) int name(void); int name(void) { return sr_cm_unsupported(#name); }
SR_CM_STUB(rdma_join_multicast) SR_CM_STUB(rdma_leave_multicast) SR_CM_STUB(rdma_join_multicast_ex)
SR_CM_STUB(rdma_create_srq) SR_CM_STUB(rdma_create_srq_ex) SR_CM_STUB(rdma_notify)
SR_CM_STUB(rdma_get_remote_ece) SR_CM_STUB(rdma_set_local_ece) SR_CM_STUB(rdma_reject_ece)
void rdma_destroy_srq(void); void rdma_destroy_srq(void) { sr_cm_unsupported("rdma_destroy_srq"); }
