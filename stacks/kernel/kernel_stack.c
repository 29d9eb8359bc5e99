/* kernel_stack.c - the kernel stack through the module contract. A kernel
 * socket is its own wait fd; nstack_sock* encodes the fd (+1, never NULL). */
#include "kernel_stack.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include "libc_api.h"

static int fd_of(nstack_sock *s)
{
    return (int)((intptr_t)s - 1);
}

static nstack_sock *sock_of(int fd)
{
    return (nstack_sock *)(intptr_t)(fd + 1);
}

static int k_init(const struct nstack_fw_api *fw)
{
    (void)fw;
    return 0;
}

static int k_socket(int domain, int type, int protocol, nstack_sock **out)
{
    int fd = LIBC(socket)(domain, type, protocol);
    if (fd >= 0)
        *out = sock_of(fd);
    return fd;
}

static void k_set_cookie(nstack_sock *s, void *cookie)
{
    (void)s;
    (void)cookie;       /* the kernel wakes its waiters itself */
}

static int k_bind(nstack_sock *s, const struct sockaddr *a, socklen_t l) { return LIBC(bind)(fd_of(s), a, l); }
static int k_listen(nstack_sock *s, int backlog) { return LIBC(listen)(fd_of(s), backlog); }
static int k_connect(nstack_sock *s, const struct sockaddr *a, socklen_t l) { return LIBC(connect)(fd_of(s), a, l); }
static int k_shutdown(nstack_sock *s, int how) { return LIBC(shutdown)(fd_of(s), how); }
static int k_close(nstack_sock *s) { return LIBC(close)(fd_of(s)); }

static int k_accept(nstack_sock *s, struct sockaddr *a, socklen_t *l, int flags, nstack_sock **out)
{
    int fd = LIBC(accept4)(fd_of(s), a, l, flags);
    if (fd >= 0)
        *out = sock_of(fd);
    return fd;
}

static ssize_t k_send(nstack_sock *s, const void *b, size_t n, int fl) { return LIBC(send)(fd_of(s), b, n, fl); }
static ssize_t k_recv(nstack_sock *s, void *b, size_t n, int fl) { return LIBC(recv)(fd_of(s), b, n, fl); }
static ssize_t k_sendmsg(nstack_sock *s, const struct msghdr *m, int fl) { return LIBC(sendmsg)(fd_of(s), m, fl); }
static ssize_t k_recvmsg(nstack_sock *s, struct msghdr *m, int fl) { return LIBC(recvmsg)(fd_of(s), m, fl); }

static int k_getsockname(nstack_sock *s, struct sockaddr *a, socklen_t *l) { return LIBC(getsockname)(fd_of(s), a, l); }
static int k_getpeername(nstack_sock *s, struct sockaddr *a, socklen_t *l) { return LIBC(getpeername)(fd_of(s), a, l); }

static int k_getsockopt(nstack_sock *s, int lv, int nm, void *v, socklen_t *l)
{
    return LIBC(getsockopt)(fd_of(s), lv, nm, v, l);
}

static int k_setsockopt(nstack_sock *s, int lv, int nm, const void *v, socklen_t l)
{
    return LIBC(setsockopt)(fd_of(s), lv, nm, v, l);
}

static int k_set_nonblock(nstack_sock *s, int on)
{
    int fl = LIBC(fcntl)(fd_of(s), F_GETFL);
    if (fl < 0)
        return -1;
    return LIBC(fcntl)(fd_of(s), F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static int k_ioctl(nstack_sock *s, unsigned long req, void *arg)
{
    return LIBC(ioctl)(fd_of(s), req, arg);
}

/* The kernel socket is its own wait fd; its readiness is poll()'s. The
 * generation is a fresh value per call with readiness, so edge-triggered
 * users see every check that found the socket ready as a new event. */
static uint32_t k_poll_events(nstack_sock *s, uint64_t *gen)
{
    struct pollfd p = { .fd = fd_of(s), .events = POLLIN | POLLOUT | POLLRDHUP | POLLPRI };
    if (LIBC(poll)(&p, 1, 0) < 0)
        return EPOLLERR;
    if (p.revents)
        (*gen)++;
    return (uint32_t)(uint16_t)p.revents;
}

static const struct nstack_module g_kernel_module = {
    .abi_version = NSTACK_MODULE_ABI_VERSION,
    .struct_size = sizeof(struct nstack_module),
    .name = "kernel",
    .caps = NSTACK_CAP_INET | NSTACK_CAP_INET6 | NSTACK_CAP_STREAM | NSTACK_CAP_DGRAM,
    .init = k_init,
    .socket = k_socket,
    .set_cookie = k_set_cookie,
    .bind = k_bind,
    .listen = k_listen,
    .accept = k_accept,
    .connect = k_connect,
    .shutdown = k_shutdown,
    .close = k_close,
    .send = k_send,
    .recv = k_recv,
    .sendmsg = k_sendmsg,
    .recvmsg = k_recvmsg,
    .getsockname = k_getsockname,
    .getpeername = k_getpeername,
    .getsockopt = k_getsockopt,
    .setsockopt = k_setsockopt,
    .set_nonblock = k_set_nonblock,
    .ioctl = k_ioctl,
    .poll_events = k_poll_events,
};

const struct nstack_module *kernel_stack_module(void)
{
    return &g_kernel_module;
}

/* The "static" registration path works for the kernel too. */
__attribute__((visibility("default"))) int kernel_stack_register(const struct nstack_fw_api *fw,
                                                                 const struct nstack_module **out)
{
    (void)fw;
    *out = &g_kernel_module;
    return 0;
}
