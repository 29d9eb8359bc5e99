/* softrdma: verbs the device does not model (SRQ,
 * multicast, imports, ECE ...). Each fails with EOPNOTSUPP and one line
 * naming the verb; none crashes. Declared without <infiniband/verbs.h>:
 * only the return kind (pointer, int, void) matters to callers here. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include "sr_log.h"

static void sr_unsupported(const char *verb)
{
    sr_log("%s: not supported by softrdma", verb);
    errno = EOPNOTSUPP;
}

#define SR_NULL_STUB(name) void *name(void); void *name(void) { sr_unsupported(#name); return NULL; }
#define SR_ERR_STUB(name) int name(void); int name(void) { sr_unsupported(#name); return EOPNOTSUPP; }
#define SR_VOID_STUB(name) void name(void); void name(void) { sr_unsupported(#name); }

SR_NULL_STUB(ibv_create_srq)
SR_NULL_STUB(ibv_import_device)
SR_NULL_STUB(ibv_import_mr)
SR_NULL_STUB(ibv_import_pd)
SR_NULL_STUB(ibv_import_dm)
SR_NULL_STUB(ibv_reg_dmabuf_mr)
SR_NULL_STUB(ibv_qp_to_qp_ex)
SR_ERR_STUB(ibv_destroy_srq)
SR_ERR_STUB(ibv_modify_srq)
SR_ERR_STUB(ibv_query_srq)
SR_ERR_STUB(ibv_attach_mcast)
SR_ERR_STUB(ibv_detach_mcast)
SR_ERR_STUB(ibv_resolve_eth_l2_from_gid)
SR_ERR_STUB(ibv_query_ece)
SR_ERR_STUB(ibv_set_ece)
SR_ERR_STUB(ibv_query_qp_data_in_order)
SR_VOID_STUB(ibv_unimport_mr)
SR_VOID_STUB(ibv_unimport_pd)
SR_VOID_STUB(ibv_unimport_dm)
SR_VOID_STUB(ibv_copy_ah_attr_from_kern)
SR_VOID_STUB(ibv_copy_path_rec_from_kern)
SR_VOID_STUB(ibv_copy_path_rec_to_kern)
SR_VOID_STUB(ibv_copy_qp_attr_from_kern)

/* Fork protection ranges: there is nothing to protect in user space. */
int ibv_dontfork_range(void *base, size_t size);
int ibv_dontfork_range(void *base, size_t size) { (void)base; (void)size; return 0; }
int ibv_dofork_range(void *base, size_t size);
int ibv_dofork_range(void *base, size_t size) { (void)base; (void)size; return 0; }
