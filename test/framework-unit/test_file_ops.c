/* Unit tests of framework/src/core/file_ops.c: each kind's table is
 * filled once from its parents and at last from the libc pass-through
 * defaults, so no slot is NULL and a kind's own ops are never replaced.
 * The kinds' tables are this test's own (the real ones live beside each
 * kind's code and need the whole dispatcher). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "file.h"
#include "file_ops.h"

static int own_connect(struct file *f, int fd, const struct sockaddr *a, socklen_t l)
{ (void)f; (void)fd; (void)a; (void)l; return 1; }
static int own_bind(struct file *f, int fd, const struct sockaddr *a, socklen_t l)
{ (void)f; (void)fd; (void)a; (void)l; return 2; }
static int own_shutdown(struct file *f, int fd, int how) { (void)f; (void)fd; (void)how; return 3; }
static int own_getsockname(struct file *f, int fd, struct sockaddr *a, socklen_t *l)
{ (void)f; (void)fd; (void)a; (void)l; return 4; }
static int own_io_module(const struct file *f) { (void)f; return 1; }
static void own_release(struct file *f) { (void)f; }

/* sock: connect; ksock: bind; msock: io_module; anchored: shutdown;
 * anchored direct: getsockname; epoll: release; mlisten: nothing. */
const struct file_ops sock_file_ops = { .connect = own_connect };
const struct file_ops ksock_file_ops = { .bind = own_bind };
const struct file_ops msock_file_ops = { .io_module = own_io_module };
const struct file_ops anchored_file_ops = { .shutdown = own_shutdown };
const struct file_ops anchored_direct_file_ops = { .getsockname = own_getsockname };
const struct file_ops epoll_file_ops = { .release = own_release };
const struct file_ops mlisten_file_ops = { 0 };

typedef void (*slot_fn)(void);

static slot_fn slot(const struct file_ops *t, size_t off)
{
    slot_fn s;
    memcpy(&s, (const char *)t + off, sizeof(s));
    return s;
}

static void test_no_slot_is_null(void **state)
{
    (void)state;
    for (int id = 0; id < FOPS_N; id++)
        for (size_t off = 0; off < sizeof(struct file_ops); off += sizeof(slot_fn))
            assert_non_null(slot(file_ops_get(id), off));
}

static void test_own_ops_kept_and_inherited_down_the_chain(void **state)
{
    (void)state;
    const struct file_ops *libc = file_ops_get(FOPS_LIBC);
    const struct file_ops *ad = file_ops_get(FOPS_ANCHORED_DIRECT);
    assert_ptr_equal(ad->getsockname, own_getsockname);     /* its own */
    assert_ptr_equal(ad->shutdown, own_shutdown);           /* anchored's */
    assert_ptr_equal(ad->connect, own_connect);             /* every socket's */
    assert_ptr_equal(ad->bind, libc->bind);                 /* the default */
    assert_ptr_equal(file_ops_get(FOPS_KSOCK)->bind, own_bind);
    assert_ptr_equal(file_ops_get(FOPS_KSOCK)->connect, own_connect);
    assert_ptr_equal(file_ops_get(FOPS_MLISTEN)->connect, own_connect);
    /* a sibling's ops are not shared */
    assert_ptr_equal(file_ops_get(FOPS_MSOCK)->bind, libc->bind);
    assert_ptr_equal(file_ops_get(FOPS_MSOCK)->shutdown, libc->shutdown);
    assert_ptr_not_equal(file_ops_get(FOPS_KSOCK)->io_module, own_io_module);
}

/* An epoll fd is no socket: nothing of the socket table reaches it. */
static void test_epoll_gets_libc_not_socket_ops(void **state)
{
    (void)state;
    const struct file_ops *ep = file_ops_get(FOPS_EPOLL);
    assert_ptr_equal(ep->release, own_release);
    assert_ptr_equal(ep->connect, file_ops_get(FOPS_LIBC)->connect);
    assert_int_equal(ep->io_module(NULL), 0);
}

static void test_kind_picks_its_table(void **state)
{
    (void)state;
    assert_ptr_equal(file_ops_of_kind(FILE_KSOCK), file_ops_get(FOPS_KSOCK));
    assert_ptr_equal(file_ops_of_kind(FILE_MSOCK), file_ops_get(FOPS_MSOCK));
    assert_ptr_equal(file_ops_of_kind(FILE_EPOLL), file_ops_get(FOPS_EPOLL));
    assert_ptr_equal(file_ops_of_kind(FILE_MLISTEN), file_ops_get(FOPS_MLISTEN));
    assert_ptr_equal(file_ops_of_kind(0), file_ops_get(FOPS_LIBC));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_slot_is_null),
        cmocka_unit_test(test_own_ops_kept_and_inherited_down_the_chain),
        cmocka_unit_test(test_epoll_gets_libc_not_socket_ops),
        cmocka_unit_test(test_kind_picks_its_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
