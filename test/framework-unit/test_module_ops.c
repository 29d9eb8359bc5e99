/* Unit tests of framework/src/core/module_ops.c: the dispatcher's full-size
 * copy of a module's table, with stubs for the socket operations the
 * module leaves NULL and nothing read past the module's struct_size. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "module_ops.h"

static int my_socket(int d, int t, int p, nstack_sock **out) { (void)d; (void)t; (void)p; *out = NULL; return 42; }
static int my_close(nstack_sock *s) { (void)s; return 0; }
static uint32_t my_poll(nstack_sock *s, uint64_t *gen) { (void)s; (void)gen; return 0; }
static int my_listen(nstack_sock *s, int b) { (void)s; return b; }
static int my_anchor(int kfd, int role, int flags, nstack_sock **out)
{ (void)kfd; (void)role; (void)flags; (void)out; return 0; }

/* A module of ABI 1.0: its structure ends with poll_events. */
#define SIZE_1_0 (offsetof(struct nstack_module, poll_events) + sizeof(void *))

/* A 1.0 module in memory followed by bytes that are not its own: the
 * copy must not take them for later ops. */
static void test_old_module_reads_nothing_past_its_size(void **state)
{
    (void)state;
    struct nstack_module *buf = malloc(sizeof(*buf));
    assert_non_null(buf);
    memset(buf, 0xA5, sizeof(*buf));
    memset(buf, 0, SIZE_1_0);
    buf->struct_size = SIZE_1_0;
    buf->name = "old";
    buf->socket = my_socket;
    buf->close = my_close;
    buf->poll_events = my_poll;
    const struct nstack_module *c = module_ops_fill(buf);
    free(buf);                    /* the copy does not point into it */
    assert_non_null(c);
    assert_int_equal(c->struct_size, sizeof(struct nstack_module));
    assert_null(c->anchor);
    assert_null(c->anchor_hello);
    assert_null(c->anchor_release);
    assert_null(c->anchor_policy);
    assert_null(c->adopt);
    assert_ptr_equal(c->socket, my_socket);
    free((void *)c);
}

static void test_missing_ops_are_stubs(void **state)
{
    (void)state;
    struct nstack_module m = { .struct_size = sizeof(m), .name = "m", .socket = my_socket,
                               .close = my_close, .poll_events = my_poll, .listen = my_listen };
    const struct nstack_module *c = module_ops_fill(&m);
    assert_non_null(c);
    char b[4];
    errno = 0;
    assert_int_equal(c->send(NULL, b, sizeof(b), 0), -1);
    assert_int_equal(errno, EOPNOTSUPP);
    errno = 0;
    assert_int_equal(c->accept(NULL, NULL, NULL, 0, NULL), -1);
    assert_int_equal(errno, EOPNOTSUPP);
    int v;
    socklen_t l = sizeof(v);
    errno = 0;
    assert_int_equal(c->getsockopt(NULL, 1, 2, &v, &l), -1);
    assert_int_equal(errno, ENOPROTOOPT);
    errno = 0;
    assert_int_equal(c->setsockopt(NULL, 1, 2, &v, l), -1);
    assert_int_equal(errno, ENOPROTOOPT);
    assert_int_equal(c->init(NULL), 0);
    c->fork_prepare();            /* no-op hooks are callable */
    c->set_cookie(NULL, NULL);
    assert_int_equal(c->listen(NULL, 7), 7);   /* its own op is kept */
    free((void *)c);
}

static void test_implements_tells_own_ops_from_stubs(void **state)
{
    (void)state;
    struct nstack_module m = { .struct_size = sizeof(m), .name = "m", .socket = my_socket,
                               .close = my_close, .poll_events = my_poll, .listen = my_listen,
                               .anchor = my_anchor };
    const struct nstack_module *c = module_ops_fill(&m);
    assert_non_null(c);
    assert_true(MODULE_IMPLEMENTS(c, listen));
    assert_true(MODULE_IMPLEMENTS(c, socket));
    assert_false(MODULE_IMPLEMENTS(c, accept));
    assert_false(MODULE_IMPLEMENTS(c, bind));
    assert_true(MODULE_IMPLEMENTS(c, anchor));
    assert_false(MODULE_IMPLEMENTS(c, anchor_hello));
    free((void *)c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_module_reads_nothing_past_its_size),
        cmocka_unit_test(test_missing_ops_are_stubs),
        cmocka_unit_test(test_implements_tells_own_ops_from_stubs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
