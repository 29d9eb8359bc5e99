/* shadow_module.c - the shadow module's description and entry point
 * (shadow_stack_register, see include/nstack/nstack_module.h). */
#include "shadow.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

/* Set once before any socket exists; read-only afterwards. */
const struct nstack_fw_api *shadow_fw;
int shadow_port_offset;

/* SHADOW_PORT_OFFSET: 0..65535, anything else is ignored with a log line. */
static void shadow_read_port_offset(const struct nstack_fw_api *fw)
{
    const char *v = getenv("SHADOW_PORT_OFFSET");
    if (v == NULL || *v == '\0')
        return;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < 0 || n > 65535) {
        if (fw && fw->log)
            fw->log(NSTACK_LOG_WAR, "shadow", "SHADOW_PORT_OFFSET=%s: not a port offset 0..65535; ignored", v);
        return;
    }
    shadow_port_offset = (int)n;
}

static int shadow_init(const struct nstack_fw_api *fw)
{
    shadow_fw = fw;
    shadow_read_port_offset(fw);
    if (fw && fw->log)
        fw->log(NSTACK_LOG_INF, "shadow", "shadow test stack ready (TCP over private kernel sockets)");
    return 0;
}

/* The private kernel sockets and epoll fds are inherited by fork, so a
 * child keeps using the same shadow sockets; only the counters restart. */
static void shadow_fork_child(void) { shadow_stats_reset(); }

/* The ops both variants share (everything up to ABI 1.1). */
#define SHADOW_COMMON_OPS                                             \
    .abi_version = NSTACK_MODULE_ABI_VERSION,                         \
    .name = "shadow",                                                 \
    .caps = NSTACK_CAP_INET | NSTACK_CAP_INET6 | NSTACK_CAP_STREAM,   \
    .init = shadow_init,                                              \
    .fork_child = shadow_fork_child,                                  \
    .socket = shadow_socket,                                          \
    .set_cookie = shadow_set_cookie,                                  \
    .bind = shadow_bind,                                              \
    .listen = shadow_listen,                                          \
    .accept = shadow_accept,                                          \
    .connect = shadow_connect,                                        \
    .shutdown = shadow_shutdown,                                      \
    .close = shadow_close,                                            \
    .send = shadow_send,                                              \
    .recv = shadow_recv,                                              \
    .sendmsg = shadow_sendmsg,                                        \
    .recvmsg = shadow_recvmsg,                                        \
    .getsockname = shadow_getsockname,                                \
    .getpeername = shadow_getpeername,                                \
    .getsockopt = shadow_getsockopt,                                  \
    .setsockopt = shadow_setsockopt,                                  \
    .set_nonblock = shadow_set_nonblock,                              \
    .ioctl = shadow_ioctl,                                            \
    .poll_events = shadow_poll_events

static const struct nstack_module shadow_module = {
    SHADOW_COMMON_OPS,
    .struct_size = sizeof(struct nstack_module),
    .anchor_hello = shadow_anchor_hello,
    .anchor = shadow_anchor,
};

/* SHADOW_ANCHOR=off: the same module without the ABI 1.2 ops. */
static const struct nstack_module shadow_module_direct = {
    SHADOW_COMMON_OPS,
    .struct_size = offsetof(struct nstack_module, anchor_hello),
};

__attribute__((visibility("default")))
int shadow_stack_register(const struct nstack_fw_api *fw, const struct nstack_module **out)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    shadow_fw = fw;
    shadow_anchor_config();
    *out = shadow_anchor_mode == SHADOW_ANCHOR_OFF ? &shadow_module_direct : &shadow_module;
    return 0;
}
