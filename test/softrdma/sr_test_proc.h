/* sr_test_proc.h - what the stand-alone device tests (not cmocka) share:
 * a failure line and exit, a monotonic clock, and this process's count of
 * open descriptors. */
#ifndef SR_TEST_PROC_H
#define SR_TEST_PROC_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static inline long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* Open descriptors of this process (the listing's own one not counted). */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        FAIL("opendir /proc/self/fd");
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3;   /* ".", ".." and the listing's own descriptor */
}

#endif
