/* softrdma: libibverbs' private provider interface (IBVERBS_PRIVATE_34).
 *
 * Debian's provider libraries (libmlx5.so.1, libefa.so.1, ...) import these
 * symbols, and programs such as perftest link those libraries directly, so
 * the dynamic linker refuses to start them unless every symbol is here.
 * The providers' constructors call verbs_register_driver_34: it registers
 * nothing, so no provider ever drives softrdma0 and none of the ibv_cmd_*
 * calls below is reached through the device. Should a provider call one
 * anyway, it fails with EOPNOTSUPP and one line.
 *
 * The providers' direct-verbs entry points (mlx5dv_*, efadv_*) first ask
 * whether the device is theirs by comparing the ops pointer that follows
 * struct ibv_device inside rdma-core's struct verbs_device; sr_device.c
 * lays softrdma0 out with that field NULL, so they answer EOPNOTSUPP. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include "sr_log.h"

static void sr_private_unsupported(const char *what)
{
    sr_log("%s: provider interface, not supported by softrdma", what);
    errno = EOPNOTSUPP;
}

#define SR_PRIV_ERR(name) int name(void); \
    int name(void) { sr_private_unsupported(#name); return EOPNOTSUPP; }
#define SR_PRIV_NULL(name) void *name(void); \
    void *name(void) { sr_private_unsupported(#name); return NULL; }

/* rdma-core reads RDMAV_ALLOW_DISASSOC_DESTROY into it; nothing here does. */
bool verbs_allow_disassociate_destroy;

/* A provider library announcing itself from its constructor: ignored. */
void verbs_register_driver_34(const void *ops);
void verbs_register_driver_34(const void *ops) { (void)ops; }

/* A provider's debug log: there is no provider context to log for. */
void __verbs_log(void *ctx, unsigned level, const char *fmt, ...);
void __verbs_log(void *ctx, unsigned level, const char *fmt, ...)
{
    (void)ctx; (void)level; (void)fmt;
}

SR_PRIV_NULL(_verbs_init_and_alloc_context)
SR_PRIV_NULL(verbs_open_device)
SR_PRIV_ERR(verbs_init_cq)
SR_PRIV_ERR(verbs_set_ops)
SR_PRIV_ERR(verbs_uninit_context)
SR_PRIV_ERR(execute_ioctl)
SR_PRIV_ERR(__ioctl_final_num_attrs)
SR_PRIV_ERR(ibv_read_ibdev_sysfs_file)
SR_PRIV_ERR(ibv_cmd_advise_mr)
SR_PRIV_ERR(ibv_cmd_alloc_dm)
SR_PRIV_ERR(ibv_cmd_alloc_mw)
SR_PRIV_ERR(ibv_cmd_alloc_pd)
SR_PRIV_ERR(ibv_cmd_attach_mcast)
SR_PRIV_ERR(ibv_cmd_close_xrcd)
SR_PRIV_ERR(ibv_cmd_create_ah)
SR_PRIV_ERR(ibv_cmd_create_counters)
SR_PRIV_ERR(ibv_cmd_create_cq)
SR_PRIV_ERR(ibv_cmd_create_cq_ex)
SR_PRIV_ERR(ibv_cmd_create_flow)
SR_PRIV_ERR(ibv_cmd_create_flow_action_esp)
SR_PRIV_ERR(ibv_cmd_create_qp)
SR_PRIV_ERR(ibv_cmd_create_qp_ex)
SR_PRIV_ERR(ibv_cmd_create_qp_ex2)
SR_PRIV_ERR(ibv_cmd_create_rwq_ind_table)
SR_PRIV_ERR(ibv_cmd_create_srq)
SR_PRIV_ERR(ibv_cmd_create_srq_ex)
SR_PRIV_ERR(ibv_cmd_create_wq)
SR_PRIV_ERR(ibv_cmd_dealloc_mw)
SR_PRIV_ERR(ibv_cmd_dealloc_pd)
SR_PRIV_ERR(ibv_cmd_dereg_mr)
SR_PRIV_ERR(ibv_cmd_destroy_ah)
SR_PRIV_ERR(ibv_cmd_destroy_counters)
SR_PRIV_ERR(ibv_cmd_destroy_cq)
SR_PRIV_ERR(ibv_cmd_destroy_flow)
SR_PRIV_ERR(ibv_cmd_destroy_flow_action)
SR_PRIV_ERR(ibv_cmd_destroy_qp)
SR_PRIV_ERR(ibv_cmd_destroy_rwq_ind_table)
SR_PRIV_ERR(ibv_cmd_destroy_srq)
SR_PRIV_ERR(ibv_cmd_destroy_wq)
SR_PRIV_ERR(ibv_cmd_detach_mcast)
SR_PRIV_ERR(ibv_cmd_free_dm)
SR_PRIV_ERR(ibv_cmd_get_context)
SR_PRIV_ERR(ibv_cmd_modify_cq)
SR_PRIV_ERR(ibv_cmd_modify_flow_action_esp)
SR_PRIV_ERR(ibv_cmd_modify_qp)
SR_PRIV_ERR(ibv_cmd_modify_qp_ex)
SR_PRIV_ERR(ibv_cmd_modify_srq)
SR_PRIV_ERR(ibv_cmd_modify_wq)
SR_PRIV_ERR(ibv_cmd_open_qp)
SR_PRIV_ERR(ibv_cmd_open_xrcd)
SR_PRIV_ERR(ibv_cmd_poll_cq)
SR_PRIV_ERR(ibv_cmd_post_recv)
SR_PRIV_ERR(ibv_cmd_post_send)
SR_PRIV_ERR(ibv_cmd_post_srq_recv)
SR_PRIV_ERR(ibv_cmd_query_context)
SR_PRIV_ERR(ibv_cmd_query_device_any)
SR_PRIV_ERR(ibv_cmd_query_mr)
SR_PRIV_ERR(ibv_cmd_query_port)
SR_PRIV_ERR(ibv_cmd_query_qp)
SR_PRIV_ERR(ibv_cmd_query_srq)
SR_PRIV_ERR(ibv_cmd_read_counters)
SR_PRIV_ERR(ibv_cmd_reg_dm_mr)
SR_PRIV_ERR(ibv_cmd_reg_dmabuf_mr)
SR_PRIV_ERR(ibv_cmd_reg_mr)
SR_PRIV_ERR(ibv_cmd_req_notify_cq)
SR_PRIV_ERR(ibv_cmd_rereg_mr)
SR_PRIV_ERR(ibv_cmd_resize_cq)
