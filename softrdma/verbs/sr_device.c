/* softrdma: the device, its ports (the host's interfaces) and GIDs. */
#include "sr_internal.h"
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <endian.h>

/* Laid out as rdma-core's struct verbs_device: provider libraries loaded
 * beside the device (perftest links libmlx5 and libefa) recognise their
 * own devices by the ops pointer after struct ibv_device; NULL here, so
 * their direct-verbs calls (mlx5dv_*, efadv_*) fail with EOPNOTSUPP. The
 * rest of rdma-core's fields are zero. */
static struct {
    struct ibv_device dev;
    const void *provider_ops;
    void *reserved[8];
} sr_vdev = { .dev = {
    .node_type = IBV_NODE_CA,
    .transport_type = IBV_TRANSPORT_IB,
    .name = "softrdma0",
    .dev_name = "usoftrdma0",
    .dev_path = "/sys/class/infiniband_verbs/usoftrdma0",
    .ibdev_path = "/sys/class/infiniband/softrdma0",
} };
#define sr_dev (sr_vdev.dev)

void sr_gid_from_sa(const struct sockaddr *sa, union ibv_gid *g)
{
    memset(g, 0, sizeof *g);
    if (sa->sa_family == AF_INET) {
        g->raw[10] = g->raw[11] = 0xff;
        memcpy(&g->raw[12], &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else {
        memcpy(g->raw, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
}

/* One port per interface that has an IPv4/IPv6 address, in getifaddrs
 * order, from the process's copy of the address list (sr_ifcache.c). */
int sr_ports_scan(struct sr_port *ports, int max)
{
    struct sr_ifaddr a[SR_MAX_IFADDRS];
    int na = sr_ifaddrs(a, SR_MAX_IFADDRS), n = 0;
    if (na < 0)
        return -1;
    for (int k = 0; k < na; k++) {
        int i;
        for (i = 0; i < n && strcmp(ports[i].ifname, a[k].ifname); i++)
            ;
        if (i == n) {
            if (n == max)
                continue;
            memset(&ports[n], 0, sizeof ports[n]);
            memcpy(ports[n].ifname, a[k].ifname, sizeof ports[n].ifname);  /* both 32 */
            ports[n].up = (a[k].flags & IFF_UP) && (a[k].flags & IFF_RUNNING);
            n++;
        }
        if (ports[i].ngids < SR_MAX_GIDS)
            sr_gid_from_sa((const struct sockaddr *)&a[k].addr, &ports[i].gids[ports[i].ngids++]);
    }
    return n;
}

static unsigned long sr_netns_ino(void)
{
    struct stat st;     /* stat needs no descriptor: works at the fd limit */
    return stat("/proc/self/ns/net", &st) ? 0ul : (unsigned long)st.st_ino;
}

void sr_ports_prime(void)
{
    sr_ifc_prime();
}

/* Index (0-based) of the port among n whose GIDs hold sa's; -1 if none. */
static int sr_port_index(const struct sr_port *ports, int n, const struct sockaddr *sa)
{
    union ibv_gid g;
    sr_gid_from_sa(sa, &g);
    for (int p = 0; p < n; p++)
        for (int i = 0; i < ports[p].ngids; i++)
            if (!memcmp(&ports[p].gids[i], &g, sizeof g))
                return p;
    return -1;
}

int sr_port_of_addr(const struct sockaddr *sa)
{
    struct sr_port ports[SR_MAX_PORTS];
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    return n < 0 ? -1 : sr_port_index(ports, n, sa) + 1;
}

int sr_addr_link_up(const struct sockaddr *sa, char *ifname, size_t len)
{
    struct sr_port ports[SR_MAX_PORTS];
    int p = sr_port_index(ports, sr_ports_scan(ports, SR_MAX_PORTS), sa);  /* one list */
    if (p < 0)
        return -1;
    snprintf(ifname, len, "%s", ports[p].ifname);
    return ports[p].up;
}

int sr_gid_is_local(const uint8_t gid[16])
{
    struct sr_port ports[SR_MAX_PORTS];
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    if (n < 0)
        return -1;
    for (int p = 0; p < n; p++)
        for (int i = 0; i < ports[p].ngids; i++)
            if (!memcmp(ports[p].gids[i].raw, gid, 16))
                return 1;
    return 0;
}

static uint64_t sr_host_guid(void)
{
    uint64_t id = sr_netns_ino();
    if (!id)
        id = 1;
    return htobe64(0x0253520000000000ull | (id & 0xffffffffffull));
}

/*
 * Fault knob SOFTRDMA_TRANSPORT=iwarp|ib (read whenever the device list
 * is taken or the device opened):
 * the device then reports itself as an iWARP RNIC, so that users' refusal
 * of iWARP can be tested. Only the reported type changes, not the
 * device's behaviour. sr_dev's two fields are written here without a lock:
 * every open writes the same values (the environment does not change).
 */
static void sr_apply_transport_knob(void)
{
    const char *t = getenv("SOFTRDMA_TRANSPORT");
    if (!t || !*t || !strcmp(t, "ib"))
        return;
    if (strcmp(t, "iwarp")) {
        sr_log("SOFTRDMA_TRANSPORT=\"%s\": not \"ib\" or \"iwarp\"; reporting InfiniBand", t);
        return;
    }
    sr_dev.node_type = IBV_NODE_RNIC;
    sr_dev.transport_type = IBV_TRANSPORT_IWARP;
}

SR_API struct ibv_device **ibv_get_device_list(int *num)
{
    sr_apply_transport_knob();
    struct ibv_device **l = calloc(2, sizeof *l);
    if (!l) {
        errno = ENOMEM;
        return NULL;
    }
    l[0] = &sr_dev;
    if (num)
        *num = 1;
    return l;
}

SR_API void ibv_free_device_list(struct ibv_device **list) { free(list); }
SR_API const char *ibv_get_device_name(struct ibv_device *d) { return d ? d->name : NULL; }
SR_API __be64 ibv_get_device_guid(struct ibv_device *d) { (void)d; return sr_host_guid(); }
SR_API int ibv_get_device_index(struct ibv_device *d) { (void)d; return 0; }

extern int sr_poll_cq(struct ibv_cq *, int, struct ibv_wc *);
extern int sr_req_notify_cq(struct ibv_cq *, int);
extern int sr_post_send(struct ibv_qp *, struct ibv_send_wr *, struct ibv_send_wr **);
extern int sr_post_recv(struct ibv_qp *, struct ibv_recv_wr *, struct ibv_recv_wr **);
extern int sr_post_srq_recv(struct ibv_srq *, struct ibv_recv_wr *, struct ibv_recv_wr **);

struct sr_ctx { unsigned epoch; struct verbs_context v; };

/* The device pins nothing (a peer's data is written with
 * process_vm_writev into whatever pages back the region), so it offers
 * on-demand paging for the operations it carries: a region registered
 * with IBV_ACCESS_ON_DEMAND does not count against RLIMIT_MEMLOCK
 * (sr_mr.c), as an ODP region of an HCA does not. A program that cannot
 * raise its locked-memory limit (a server's worker after it dropped
 * privileges) registers full-size buffers that way. Not implicit ODP
 * (the whole address space as one region). SOFTRDMA_ODP=0 models a NIC
 * without it. */
static int sr_query_device_ex(struct ibv_context *ctx, const struct ibv_query_device_ex_input *in,
                              struct ibv_device_attr_ex *attr, size_t attr_size)
{
    (void)in;
    size_t odp_end = offsetof(struct ibv_device_attr_ex, odp_caps) + sizeof(attr->odp_caps);
    if (attr_size < sizeof(attr->orig_attr))
        return EINVAL;
    memset(attr, 0, attr_size);
    int err = ibv_query_device(ctx, &attr->orig_attr);
    if (err || attr_size < odp_end || !sr_knobs.odp)
        return err;
    attr->odp_caps.general_caps = IBV_ODP_SUPPORT;
    attr->odp_caps.per_transport_caps.rc_odp_caps =
        IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV | IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ;
    attr->odp_caps.per_transport_caps.ud_odp_caps = IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV;
    return 0;
}

SR_API struct ibv_context *ibv_open_device(struct ibv_device *device)
{
    if (device != &sr_dev) {
        sr_log("ibv_open_device: unknown device %p", (void *)device);
        errno = ENODEV;
        return NULL;
    }
    sr_apply_transport_knob();
    if (sr_nic_start())
        return NULL;
    sr_ports_prime();
    struct sr_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    c->epoch = sr_epoch;
    struct ibv_context *ctx = &c->v.context;
    c->v.sz = sizeof(struct verbs_context);
    ctx->abi_compat = __VERBS_ABI_IS_EXTENDED;
    ctx->device = device;
    ctx->cmd_fd = -1;
    ctx->async_fd = -1;
    ctx->num_comp_vectors = 1;
    pthread_mutex_init(&ctx->mutex, NULL);
    ctx->ops.poll_cq = sr_poll_cq;
    ctx->ops.req_notify_cq = sr_req_notify_cq;
    ctx->ops.post_send = sr_post_send;
    ctx->ops.post_recv = sr_post_recv;
    ctx->ops.post_srq_recv = sr_post_srq_recv;
    c->v.query_device_ex = sr_query_device_ex;
    return ctx;
}

SR_API int ibv_close_device(struct ibv_context *ctx)
{
    struct sr_ctx *c = (struct sr_ctx *)((char *)ctx - offsetof(struct sr_ctx, v.context));
    if (c == (struct sr_ctx *)sr_default_context())
        return 0;
    free(c);
    return 0;
}

/* The context librdmacm hands out in cm_id->verbs (one per process epoch). */
struct ibv_context *sr_default_context(void)
{
    static struct ibv_context *ctx;
    static unsigned ctx_epoch;
    pthread_mutex_lock(&sr_lock);
    if (!ctx || ctx_epoch != sr_epoch) {
        ctx = ibv_open_device(&sr_dev);
        ctx_epoch = sr_epoch;
    }
    pthread_mutex_unlock(&sr_lock);
    return ctx;
}

SR_API int ibv_query_device(struct ibv_context *ctx, struct ibv_device_attr *a)
{
    struct sr_port ports[SR_MAX_PORTS];
    (void)ctx;
    memset(a, 0, sizeof *a);
    snprintf(a->fw_ver, sizeof a->fw_ver, "1.0.0");
    a->node_guid = a->sys_image_guid = sr_host_guid();
    a->max_mr_size = SR_MAX_MSG;
    a->page_size_cap = 4096;
    a->vendor_id = 0x5352;
    a->vendor_part_id = 1;
    a->hw_ver = 1;
    a->max_qp = 65536;
    a->max_qp_wr = SR_MAX_QP_WR;
    a->device_cap_flags = IBV_DEVICE_RC_RNR_NAK_GEN | IBV_DEVICE_PORT_ACTIVE_EVENT;
    a->max_sge = a->max_sge_rd = SR_MAX_SGE;
    a->max_cq = 65536;
    a->max_cqe = SR_MAX_CQE;
    a->max_mr = SR_MAX_MR - 1;
    a->max_pd = 65536;
    a->max_qp_rd_atom = a->max_qp_init_rd_atom = 16;
    a->max_res_rd_atom = 16 * 65536;
    a->atomic_cap = IBV_ATOMIC_NONE;
    a->max_pkeys = 1;
    a->local_ca_ack_delay = 15;
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    if (n < 0)
        return errno;
    a->phys_port_cnt = (uint8_t)n;
    return 0;
}

#undef ibv_query_port
SR_API int ibv_query_port(struct ibv_context *ctx, uint8_t port, struct _compat_ibv_port_attr *out)
{
    struct sr_port ports[SR_MAX_PORTS];
    struct ibv_port_attr *a = (struct ibv_port_attr *)out;
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    (void)ctx;
    if (n < 0)
        return errno;
    if (port < 1 || port > n) {
        sr_log("ibv_query_port: no port %u (device has %d)", port, n);
        return EINVAL;
    }
    memset(a, 0, sizeof *a);
    a->state = ports[port - 1].up ? IBV_PORT_ACTIVE : IBV_PORT_DOWN;
    a->max_mtu = IBV_MTU_4096;
    a->active_mtu = IBV_MTU_4096;      /* the UD message limit (sr_ud.h) */
    a->gid_tbl_len = SR_MAX_GIDS;
    a->port_cap_flags = IBV_PORT_CM_SUP;
    a->max_msg_sz = SR_MAX_MSG;
    a->pkey_tbl_len = 1;
    a->active_width = 2;        /* 4X */
    a->active_speed = 32;       /* EDR */
    a->phys_state = ports[port - 1].up ? 5 : 3;
    a->link_layer = IBV_LINK_LAYER_ETHERNET;
    return 0;
}

SR_API int ibv_query_gid(struct ibv_context *ctx, uint8_t port, int index, union ibv_gid *gid)
{
    struct sr_port ports[SR_MAX_PORTS];
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    (void)ctx;
    if (n < 0)
        return -1;
    if (port < 1 || port > n || index < 0 || index >= SR_MAX_GIDS) {
        errno = EINVAL;
        return -1;
    }
    if (index >= ports[port - 1].ngids)
        memset(gid, 0, sizeof *gid);    /* empty table entry, as in sysfs */
    else
        *gid = ports[port - 1].gids[index];
    return 0;
}

/* Private in rdma-core, imported by ibv_devinfo: every GID is RoCE v2. */
SR_API int ibv_query_gid_type(struct ibv_context *ctx, uint8_t port, unsigned index, int *type)
{
    (void)ctx; (void)port; (void)index;
    *type = 1;
    return 0;
}

/* ibv_query_gid_ex: one RoCE v2 entry; an empty slot is ENODATA as in
 * rdma-core (perftest and rdma-core's GID selection walk the table). */
static int sr_gid_entry(const struct sr_port *ports, int n, uint32_t port, uint32_t index,
                        struct ibv_gid_entry *e)
{
    if (port < 1 || port > (uint32_t)n || index >= SR_MAX_GIDS)
        return EINVAL;
    if (index >= (uint32_t)ports[port - 1].ngids)
        return ENODATA;
    memset(e, 0, sizeof *e);
    e->gid = ports[port - 1].gids[index];
    e->gid_index = index;
    e->port_num = port;
    e->gid_type = IBV_GID_TYPE_ROCE_V2;
    e->ndev_ifindex = if_nametoindex(ports[port - 1].ifname);
    return 0;
}

SR_API int _ibv_query_gid_ex(struct ibv_context *ctx, uint32_t port, uint32_t index,
                             struct ibv_gid_entry *entry, uint32_t flags, size_t entry_size)
{
    struct sr_port ports[SR_MAX_PORTS];
    (void)ctx;
    if (!entry || flags || entry_size < sizeof *entry) {
        sr_log("ibv_query_gid_ex: bad arguments (flags 0x%x, entry size %zu)", flags, entry_size);
        return EINVAL;
    }
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    if (n < 0)
        return errno;
    return sr_gid_entry(ports, n, port, index, entry);
}

SR_API ssize_t _ibv_query_gid_table(struct ibv_context *ctx, struct ibv_gid_entry *entries,
                                    size_t max, uint32_t flags, size_t entry_size)
{
    struct sr_port ports[SR_MAX_PORTS];
    size_t k = 0;
    (void)ctx;
    if (!entries || flags || entry_size < sizeof *entries) {
        sr_log("ibv_query_gid_table: bad arguments (flags 0x%x, entry size %zu)", flags, entry_size);
        return -EINVAL;
    }
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    if (n < 0)
        return -errno;
    for (int p = 0; p < n; p++)
        for (int i = 0; i < ports[p].ngids; i++) {
            if (k == max)
                return -EINVAL;     /* as rdma-core: the table does not fit */
            sr_gid_entry(ports, n, (uint32_t)p + 1, (uint32_t)i,
                         (struct ibv_gid_entry *)((char *)entries + k++ * entry_size));
        }
    return (ssize_t)k;
}

SR_API int ibv_query_pkey(struct ibv_context *ctx, uint8_t port, int index, __be16 *pkey)
{
    (void)ctx; (void)port;
    if (index != 0) {
        errno = EINVAL;
        return -1;
    }
    *pkey = htobe16(0xffff);
    return 0;
}

SR_API int ibv_get_pkey_index(struct ibv_context *ctx, uint8_t port, __be16 pkey)
{
    (void)ctx; (void)port;
    return pkey == htobe16(0xffff) ? 0 : -1;
}

/* There is no sysfs for a user-space device. */
SR_API int ibv_read_sysfs_file(const char *dir, const char *file, char *buf, size_t size)
{
    (void)dir; (void)file; (void)buf; (void)size;
    return -1;
}
SR_API const char *ibv_get_sysfs_path(void) { return "/sys"; }
SR_API int ibv_fork_init(void) { return 0; }
SR_API enum ibv_fork_status ibv_is_fork_initialized(void) { return IBV_FORK_DISABLED; }
SR_API int ibv_get_async_event(struct ibv_context *ctx, struct ibv_async_event *ev)
{
    (void)ctx; (void)ev;
    errno = ENOSYS;
    return -1;
}
SR_API void ibv_ack_async_event(struct ibv_async_event *ev) { (void)ev; }
