/* rsbug_fork.c - fork after the engine registered memory (upstream set
 * MADV_DONTFORK on partial pages and so unmapped heap objects sharing those
 * pages in the child): the child's heap objects made before and after the
 * connection keep their contents and malloc/free work; the parent's
 * connection still carries data after the child exits. */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORK_OBJS 64
#define FORK_DATA 65536

static uint8_t *objs[2 * FORK_OBJS];

static size_t obj_size(int i)
{
    return 24 + (size_t)i * 61 % 4000;
}

static void make_objs(int first, int count)
{
    for (int i = first; i < first + count; i++) {
        CHECK((objs[i] = malloc(obj_size(i))), "malloc");
        rb_fill(objs[i], obj_size(i), (uint64_t)i * 977);
    }
}

/* The child: every object intact, then allocation churn; exit code says. */
static int child_heap_check(void)
{
    for (int i = 0; i < 2 * FORK_OBJS; i++)
        if (rb_mismatch(objs[i], obj_size(i), (uint64_t)i * 977) >= 0)
            return 10;
    for (int i = 0; i < 2000; i++) {
        size_t n = 16 + (size_t)i * 37 % 20000;
        uint8_t *p = malloc(n);
        if (!p)
            return 11;
        memset(p, i & 0xff, n);
        p = realloc(p, n * 2);
        if (!p || p[n - 1] != (uint8_t)(i & 0xff))
            return 12;
        free(p);
    }
    for (int i = 0; i < 2 * FORK_OBJS; i++)
        free(objs[i]);
    return 0;
}

void fork_server(const struct rb_args *a)
{
    int fd = rb_serve_one(a);
    rb_send_pattern(fd, FORK_DATA, 0);
    rb_recv_pattern(fd, FORK_DATA, 3);
    rb_expect_eof(fd);
    rb_close(fd, "connection");
    rb_say("SERVER OK");
}

void fork_client(const struct rb_args *a)
{
    make_objs(0, FORK_OBJS);
    int fd = rb_connect(a);
    make_objs(FORK_OBJS, FORK_OBJS);
    rb_recv_pattern(fd, FORK_DATA, 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0)
        _exit(child_heap_check());
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "child heap after fork: %s %d (10 object changed, 11-12 malloc/realloc failed)",
          WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    rb_send_pattern(fd, FORK_DATA, 3);
    rb_close(fd, "connection");
    rb_say("CLIENT OK");
}
