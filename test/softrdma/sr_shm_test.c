/* White-box test of the softrdma shared segment's block locks
 * (softrdma/verbs/sr_shm.c, compiled in): a peer's sender that takes a
 * block's robust lock while its owner frees the block must be able to
 * unlock it, so that it leaves its thread's robust list before the peer
 * unmaps the segment. Before the fix the owner punched the block's pages
 * (zeroing the mutex) while the peer held it: the peer's unlock failed,
 * the mutex stayed on its robust list, and its next robust lock after the
 * munmap wrote into unmapped memory (the rsbug.api.stress SIGSEGV in
 * sr_shm_cq_add). Here the order is forced, not hoped for: the peer holds
 * the lock until the owner has either finished the free (old code: the
 * bytes changed under the holder) or is blocked waiting for the lock (the
 * fix: the free takes the lock before it clears the block). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "sr_internal.h"

/* ---- what sr_shm.c needs from the rest of the device ---- */
unsigned sr_epoch = 1;

void sr_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

uint64_t sr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int sr_fd_internal(int fd) { return fd; }

void sr_peer_ch_forget(struct sr_peer_seg *p) { (void)p; }   /* no channels here */

/* ---- helpers ---- */

/* The process's state letter from /proc/PID/stat ('S': asleep, e.g. in a
 * futex wait), '?' if unreadable. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

/* Waits (deadline 10 s) until pid sleeps; 0 when it does. */
static int wait_asleep(pid_t pid)
{
    for (int i = 0; i < 10000; i++) {
        if (proc_state(pid) == 'S')
            return 0;
        usleep(1000);
    }
    return -1;
}

/* This thread's robust list is empty (the kernel's head as glibc set it). */
static int robust_list_empty(void)
{
    struct robust_list_head *h = NULL;
    size_t len = 0;
    if (syscall(SYS_get_robust_list, 0, &h, &len) || !h)
        return 0;
    return h->list.next == &h->list;
}

/* Exit codes of the peer process */
enum { PEER_OK = 0, PEER_MAP = 10, PEER_DEADLINE, PEER_GEN, PEER_LIST, PEER_PIPE };

/* The peer: maps the owner's segment as sr_fast.c does, waits for the
 * block's lock (the owner holds it), then holds it until the owner has
 * freed the block or waits for the lock itself, and checks what a sender
 * checks (generation 0: leave) and that its robust list is clean again
 * before it unmaps the segment and takes another robust lock. */
static int peer(int segfd, uint64_t off, int go_r, int freed_r, pid_t owner)
{
    struct sr_peer_seg *seg = sr_peer_seg_get(segfd);
    if (!seg)
        return PEER_MAP;
    struct sr_shm_qp *b = (struct sr_shm_qp *)(seg->base + off);
    char c;
    if (read(go_r, &c, 1) != 1)
        return PEER_PIPE;
    sr_shm_lock(&b->lock);          /* blocks: the owner holds it */
    struct pollfd p = { .fd = freed_r, .events = POLLIN };
    int i;
    for (i = 0; i < 10000; i++) {
        if (poll(&p, 1, 1) == 1 || proc_state(owner) == 'S')
            break;
    }
    if (i == 10000)
        return PEER_DEADLINE;
    uint32_t gen = __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE);
    sr_shm_unlock(&b->lock);
    if (gen != 0)
        return PEER_GEN;
    if (!robust_list_empty())
        return PEER_LIST;           /* the mutex stayed on the list */
    sr_peer_seg_put(seg);           /* idle: stays mapped a while */
    sr_peer_segs_drop_idle();       /* munmap */
    pthread_mutex_t other;
    sr_shm_lock_init(&other);
    sr_shm_lock(&other);            /* SIGSEGV here before the fix */
    sr_shm_unlock(&other);
    return robust_list_empty() ? PEER_OK : PEER_LIST;
}

/* One round: owner (this process) and a forked peer, as ibv_destroy_qp
 * meets a peer's ibv_post_send waiting for the QP block's lock. */
static void one_round(void)
{
    uint64_t off = sr_seg_alloc(3 * 4096);
    assert_true(off != 0);
    struct sr_shm_qp *b = (struct sr_shm_qp *)((char *)sr_seg() + off);
    __atomic_store_n(&b->gen, 7, __ATOMIC_RELEASE);
    memset(b->rq, 0xab, 2 * 4096);      /* pages the free gives back */
    int go[2], freed[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(freed), 0);
    int segfd = sr_seg_fd();
    sr_shm_lock(&b->lock);
    pid_t owner = getpid(), pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(peer(dup(segfd), off, go[0], freed[0], owner));
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(wait_asleep(pid), 0);  /* in the futex wait */
    /* ibv_destroy_qp: generation 0 under the lock, then the free */
    __atomic_store_n(&b->gen, 0, __ATOMIC_RELEASE);
    sr_shm_unlock(&b->lock);
    sr_seg_free(off, 3 * 4096);
    assert_int_equal(write(freed[1], "f", 1), 1);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st))
        fail_msg("the peer died of signal %d", WTERMSIG(st));
    assert_true(WIFEXITED(st));
    static const char *why[] = { [PEER_MAP - PEER_MAP] = "cannot map the segment",
        [PEER_DEADLINE - PEER_MAP] = "the owner neither freed nor waited within 10 s",
        [PEER_GEN - PEER_MAP] = "the freed block's generation is not 0",
        [PEER_LIST - PEER_MAP] = "the block's mutex stayed on the peer's robust list",
        [PEER_PIPE - PEER_MAP] = "pipe" };
    int code = WEXITSTATUS(st);
    if (code != PEER_OK)
        fail_msg("peer exit %d: %s", code,
                 code >= PEER_MAP && code <= PEER_PIPE ? why[code - PEER_MAP] : "?");
    /* freed: the lock works for its owner, the first page reads as
     * zeroes; the block stays warm (its pages kept) and is the next one
     * handed out */
    sr_shm_lock(&b->lock);
    sr_shm_unlock(&b->lock);
    assert_int_equal(b->gen, 0);
    assert_int_equal(b->rq[0], 0);
    assert_true(robust_list_empty());
    assert_int_equal(sr_seg_alloc(3 * 4096), off);
    sr_seg_free(off, 3 * 4096);
    close(go[0]); close(go[1]); close(freed[0]); close(freed[1]);
}

/* Warm blocks are bounded: of a burst of frees, those beyond the budget
 * (4 MiB) give their pages back (they read as zeroes), and warm ones are
 * reused before new blocks are cut. */
#define BURST 400
static void test_warm_budget(void **state)
{
    (void)state;
    static uint64_t offs[BURST];
    for (int i = 0; i < BURST; i++) {
        offs[i] = sr_seg_alloc(3 * 4096);
        assert_true(offs[i] != 0);
        struct sr_shm_qp *b = (struct sr_shm_qp *)((char *)sr_seg() + offs[i]);
        memset(b->rq, 0xab, 2 * 4096);
    }
    for (int i = 0; i < BURST; i++)
        sr_seg_free(offs[i], 3 * 4096);
    int kept = 0, punched = 0;
    for (int i = 0; i < BURST; i++) {
        struct sr_shm_qp *b = (struct sr_shm_qp *)((char *)sr_seg() + offs[i]);
        assert_int_equal(b->rq[0], 0);          /* first page always zeroed */
        if (b->rq[4096] == 0xab)
            kept++;
        else if (b->rq[4096] == 0)
            punched++;
    }
    assert_int_equal(kept + punched, BURST);
    assert_true(kept * 3 * 4096 <= 4 << 20);
    assert_true(kept >= 300);                   /* 341 fit the budget */
    assert_true(punched >= BURST - 341);
    /* the next allocation takes a warm block (kept pages), not a new one */
    uint64_t again = sr_seg_alloc(3 * 4096);
    struct sr_shm_qp *b = (struct sr_shm_qp *)((char *)sr_seg() + again);
    assert_int_equal(b->rq[4096], 0xab);
    sr_seg_free(again, 3 * 4096);
}

static void test_free_while_peer_waits(void **state)
{
    (void)state;
    assert_non_null(sr_seg());
    for (int i = 0; i < 20; i++)
        one_round();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_while_peer_waits),
        cmocka_unit_test(test_warm_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
