/* softrdma librdmacm: rdma_create_ep/rdma_destroy_ep (synchronous ids). */
#include "cm_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

CM_API int rdma_create_ep(struct rdma_cm_id **out, struct rdma_addrinfo *res, struct ibv_pd *pd,
                          struct ibv_qp_init_attr *qp_init_attr)
{
    struct rdma_cm_id *id;
    if (!out || !res) {
        errno = EINVAL;
        return -1;
    }
    if (rdma_create_id(NULL, &id, NULL, res->ai_port_space ? res->ai_port_space : RDMA_PS_TCP))
        return -1;
    struct cm_id *c = cm_of(id);
    if (res->ai_flags & RAI_PASSIVE) {
        if (rdma_bind_addr(id, res->ai_src_addr))
            goto fail;
        if (qp_init_attr) {     /* the QP is made on each request (rdma_get_request) */
            c->ep_attr = malloc(sizeof *c->ep_attr);
            if (!c->ep_attr)
                goto fail;
            *c->ep_attr = *qp_init_attr;
            c->ep_pd = pd;
        }
    } else {
        if (rdma_resolve_addr(id, res->ai_src_len ? res->ai_src_addr : NULL, res->ai_dst_addr, 2000) ||
            rdma_resolve_route(id, 2000))
            goto fail;
        if (qp_init_attr && rdma_create_qp(id, pd, qp_init_attr))
            goto fail;
    }
    *out = id;
    return 0;
fail:;
    int e = errno;
    rdma_destroy_id(id);
    errno = e;
    return -1;
}

CM_API void rdma_destroy_ep(struct rdma_cm_id *id)
{
    if (!id)
        return;
    rdma_destroy_qp(id);
    rdma_destroy_id(id);
}
