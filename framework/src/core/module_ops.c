/* module_ops.c - missing module operations filled once, at load.
 *
 * The module ABI lets a module leave any socket operation NULL (a stack
 * without listeners has no accept) and lets an older module end its
 * structure before the newer fields. Rather than test each pointer and the
 * structure's size at every call, the dispatcher works on its own
 * full-size copy in which the gaps are stubs - the way rdma-core's
 * libibverbs fills a provider's missing verbs. */
#include "module_ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int fail_opnotsupp(void)
{
    errno = EOPNOTSUPP;
    return -1;
}

static int stub_init(const struct nstack_fw_api *fw) { (void)fw; return 0; }
static void stub_hook(void) { }
static void stub_set_cookie(nstack_sock *s, void *cookie) { (void)s; (void)cookie; }
static int stub_bind(nstack_sock *s, const struct sockaddr *a, socklen_t l)
{ (void)s; (void)a; (void)l; return fail_opnotsupp(); }
static int stub_listen(nstack_sock *s, int backlog) { (void)s; (void)backlog; return fail_opnotsupp(); }
static int stub_accept(nstack_sock *s, struct sockaddr *a, socklen_t *l, int flags, nstack_sock **out)
{ (void)s; (void)a; (void)l; (void)flags; (void)out; return fail_opnotsupp(); }
static int stub_connect(nstack_sock *s, const struct sockaddr *a, socklen_t l)
{ (void)s; (void)a; (void)l; return fail_opnotsupp(); }
static int stub_shutdown(nstack_sock *s, int how) { (void)s; (void)how; return fail_opnotsupp(); }
static ssize_t stub_send(nstack_sock *s, const void *b, size_t n, int flags)
{ (void)s; (void)b; (void)n; (void)flags; return fail_opnotsupp(); }
static ssize_t stub_recv(nstack_sock *s, void *b, size_t n, int flags)
{ (void)s; (void)b; (void)n; (void)flags; return fail_opnotsupp(); }
static ssize_t stub_sendmsg(nstack_sock *s, const struct msghdr *m, int flags)
{ (void)s; (void)m; (void)flags; return fail_opnotsupp(); }
static ssize_t stub_recvmsg(nstack_sock *s, struct msghdr *m, int flags)
{ (void)s; (void)m; (void)flags; return fail_opnotsupp(); }
static int stub_name(nstack_sock *s, struct sockaddr *a, socklen_t *l)
{ (void)s; (void)a; (void)l; return fail_opnotsupp(); }
static int stub_getsockopt(nstack_sock *s, int level, int name, void *v, socklen_t *l)
{
    (void)s; (void)level; (void)name; (void)v; (void)l;
    errno = ENOPROTOOPT;
    return -1;
}
static int stub_setsockopt(nstack_sock *s, int level, int name, const void *v, socklen_t l)
{
    (void)s; (void)level; (void)name; (void)v; (void)l;
    errno = ENOPROTOOPT;
    return -1;
}
static int stub_set_nonblock(nstack_sock *s, int on) { (void)s; (void)on; return fail_opnotsupp(); }
static int stub_ioctl(nstack_sock *s, unsigned long req, void *arg)
{ (void)s; (void)req; (void)arg; return fail_opnotsupp(); }

/* Every operation that has a stub; socket, close and poll_events are
 * required (module_load refuses a module without them). */
static const struct nstack_module g_stubs = {
    .init = stub_init,
    .fini = stub_hook,
    .fork_prepare = stub_hook,
    .fork_parent = stub_hook,
    .fork_child = stub_hook,
    .set_cookie = stub_set_cookie,
    .bind = stub_bind,
    .listen = stub_listen,
    .accept = stub_accept,
    .connect = stub_connect,
    .shutdown = stub_shutdown,
    .send = stub_send,
    .recv = stub_recv,
    .sendmsg = stub_sendmsg,
    .recvmsg = stub_recvmsg,
    .getsockname = stub_name,
    .getpeername = stub_name,
    .getsockopt = stub_getsockopt,
    .setsockopt = stub_setsockopt,
    .set_nonblock = stub_set_nonblock,
    .ioctl = stub_ioctl,
};

/* The pointer-sized slot at `offset` of table t. */
static void *slot(const struct nstack_module *t, size_t offset)
{
    void *p;
    memcpy(&p, (const char *)t + offset, sizeof(p));
    return p;
}

static void fill_gap(struct nstack_module *c, size_t offset)
{
    void *stub = slot(&g_stubs, offset);
    if (stub != NULL && slot(c, offset) == NULL)
        memcpy((char *)c + offset, &stub, sizeof(stub));
}

const struct nstack_module *module_ops_fill(const struct nstack_module *m)
{
    struct nstack_module *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    size_t n = m->struct_size < sizeof(*c) ? m->struct_size : sizeof(*c);
    memcpy(c, m, n);
    c->struct_size = sizeof(*c);
    /* every function pointer lies between init and the last optional op */
    for (size_t off = offsetof(struct nstack_module, init); off < sizeof(*c); off += sizeof(void *))
        fill_gap(c, off);
    /* ABI 1.5: without a cheaper re-check, the full one */
    if (c->poll_recheck == NULL)
        c->poll_recheck = c->poll_events;
    return c;
}

int module_ops_implements(const struct nstack_module *m, size_t offset)
{
    return slot(m, offset) != NULL && slot(m, offset) != slot(&g_stubs, offset);
}
