/* Helpers shared by the software device's benchmarks (softrdma_bench,
 * softrdma_ud_bench): the project's monotonic clock and a fatal error. */
#ifndef SOFTRDMA_BENCH_UTIL_H
#define SOFTRDMA_BENCH_UTIL_H
#include <stdio.h>
#include <stdlib.h>
#include "mono_clock.h"

/* BENCH_NAME: the program, defined before this header is included. */
static inline void die(const char *what)
{
    fprintf(stderr, "%s: %s failed\n", BENCH_NAME, what);
    exit(1);
}
#endif
