/* shadow_contract_test.c - drives libdmm_shadow.so through the module
 * contract directly (no dispatcher): registration, TCP over loopback, wait
 * fd readiness, poll_events() masks and gen, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "nstack/nstack_module.h"

static const struct nstack_module *mod;

static int load_module(void **state)
{
    (void)state;
    void *h = dlopen(SHADOW_LIB_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        print_error("cannot load %s: %s\n", SHADOW_LIB_PATH, dlerror());
        return -1;
    }
    nstack_stack_register_fn reg = (nstack_stack_register_fn)dlsym(h, "shadow_stack_register");
    static const struct nstack_fw_api fw = {
        .abi_version = NSTACK_MODULE_ABI_VERSION,
        .struct_size = sizeof(struct nstack_fw_api),
        .config_dir = "",
    };
    if (!reg || reg(&fw, &mod) != 0 || mod->init(&fw) != 0)
        return -1;
    return 0;
}

/* Wait-fd readable within a generous deadline (ms)? */
static int wait_fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, timeout_ms) == 1;
}

struct conn {
    nstack_sock *lis, *cli, *srv;
    int lis_w, cli_w, srv_w;
};

static void open_conn(struct conn *c)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    c->lis_w = mod->socket(AF_INET, SOCK_STREAM, 0, &c->lis);
    assert_true(c->lis_w >= 0);
    assert_int_equal(mod->bind(c->lis, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(mod->listen(c->lis, 8), 0);
    assert_int_equal(mod->getsockname(c->lis, (struct sockaddr *)&a, &len), 0);
    c->cli_w = mod->socket(AF_INET, SOCK_STREAM, 0, &c->cli);
    assert_true(c->cli_w >= 0);
    assert_int_equal(mod->connect(c->cli, (struct sockaddr *)&a, sizeof(a)), 0);
    c->srv_w = mod->accept(c->lis, NULL, NULL, 0, &c->srv);
    assert_true(c->srv_w >= 0);
}

static void close_conn(struct conn *c)
{
    assert_int_equal(mod->close(c->cli), 0);
    assert_int_equal(mod->close(c->srv), 0);
    assert_int_equal(mod->close(c->lis), 0);
}

static void test_register_describes_tcp(void **state)
{
    (void)state;
    assert_int_equal(mod->abi_version >> 16, NSTACK_MODULE_ABI_MAJOR);
    assert_string_equal(mod->name, "shadow");
    assert_true(mod->caps & NSTACK_CAP_STREAM);
    assert_false(mod->caps & NSTACK_CAP_DGRAM);
    nstack_sock *s;
    errno = 0;
    assert_int_equal(mod->socket(AF_INET, SOCK_DGRAM, 0, &s), -1);
    assert_int_equal(errno, EPROTONOSUPPORT);
}

static void test_data_and_wait_fd(void **state)
{
    (void)state;
    struct conn c;
    open_conn(&c);
    uint64_t g0, g1, g2;
    uint32_t m = mod->poll_events(c.srv, &g0);
    assert_false(m & EPOLLIN);
    assert_true(m & EPOLLOUT);
    /* drained: the wait fd stays quiet until something happens */
    assert_false(wait_fd_readable(c.srv_w, 100));

    const char msg[] = "shadow-data-0123456789";
    assert_int_equal(mod->send(c.cli, msg, sizeof(msg), 0), sizeof(msg));
    assert_true(wait_fd_readable(c.srv_w, 10000));
    m = mod->poll_events(c.srv, &g1);
    assert_true(m & EPOLLIN);
    assert_true(g1 > g0);
    /* nothing new: same gen, wait fd quiet, still readable (level) */
    m = mod->poll_events(c.srv, &g2);
    assert_true(m & EPOLLIN);
    assert_int_equal(g2, g1);
    assert_false(wait_fd_readable(c.srv_w, 100));

    char buf[64];
    assert_int_equal(mod->recv(c.srv, buf, sizeof(buf), MSG_PEEK), sizeof(msg));
    assert_int_equal(mod->recv(c.srv, buf, sizeof(buf), 0), sizeof(msg));
    assert_memory_equal(buf, msg, sizeof(msg));
    m = mod->poll_events(c.srv, &g2);
    assert_false(m & EPOLLIN);
    close_conn(&c);
}

static void test_vectors_nonblock_rdhup(void **state)
{
    (void)state;
    struct conn c;
    open_conn(&c);
    assert_int_equal(mod->set_nonblock(c.srv, 1), 0);
    char buf[16];
    errno = 0;
    assert_int_equal(mod->recv(c.srv, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, EAGAIN);

    char a[] = "abc", b[] = "defgh";
    struct iovec iov[2] = { { a, 3 }, { b, 5 } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
    assert_int_equal(mod->sendmsg(c.cli, &mh, 0), 8);
    assert_true(wait_fd_readable(c.srv_w, 10000));
    int avail = 0;
    for (int i = 0; i < 200 && avail < 8; i++) {
        assert_int_equal(mod->ioctl(c.srv, FIONREAD, &avail), 0);
        if (avail < 8)
            usleep(10000);   /* bounded: 2 s at most on a loaded machine */
    }
    assert_int_equal(avail, 8);
    char x[4] = { 0 }, y[4] = { 0 };
    struct iovec riov[2] = { { x, 4 }, { y, 4 } };
    struct msghdr rmh = { .msg_iov = riov, .msg_iovlen = 2 };
    assert_int_equal(mod->recvmsg(c.srv, &rmh, 0), 8);
    assert_memory_equal(x, "abcd", 4);
    assert_memory_equal(y, "efgh", 4);

    uint64_t g;
    assert_int_equal(mod->shutdown(c.cli, SHUT_WR), 0);
    assert_true(wait_fd_readable(c.srv_w, 10000));
    uint32_t m = mod->poll_events(c.srv, &g);
    assert_true(m & EPOLLRDHUP);
    assert_true(m & EPOLLIN);
    assert_int_equal(mod->recv(c.srv, buf, sizeof(buf), 0), 0);
    close_conn(&c);
}

static void test_nonblocking_connect_refused(void **state)
{
    (void)state;
    /* a port nobody listens on: bind a socket, note its port, close it */
    nstack_sock *probe, *s;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    assert_true(mod->socket(AF_INET, SOCK_STREAM, 0, &probe) >= 0);
    assert_int_equal(mod->bind(probe, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(mod->getsockname(probe, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(mod->close(probe), 0);

    int w = mod->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0, &s);
    assert_true(w >= 0);
    int r = mod->connect(s, (struct sockaddr *)&a, sizeof(a));
    assert_true(r == 0 || errno == EINPROGRESS || errno == ECONNREFUSED);
    if (r < 0 && errno == EINPROGRESS) {
        uint64_t g;
        uint32_t m = 0;
        for (int i = 0; i < 100 && !(m & (EPOLLERR | EPOLLHUP)); i++) {
            wait_fd_readable(w, 100);
            m = mod->poll_events(s, &g);
        }
        assert_true(m & EPOLLERR);
    }
    int err = 0;
    len = sizeof(err);
    assert_int_equal(mod->getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    assert_true(err == ECONNREFUSED || (r < 0 && errno == ECONNREFUSED));
    assert_int_equal(mod->close(s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_describes_tcp),
        cmocka_unit_test(test_data_and_wait_fd),
        cmocka_unit_test(test_vectors_nonblock_rdhup),
        cmocka_unit_test(test_nonblocking_connect_refused),
    };
    return cmocka_run_group_tests(tests, load_module, NULL);
}
