/* timeutil.h - deadlines on CLOCK_MONOTONIC for the wait loops. */
#ifndef TIMEUTIL_H
#define TIMEUTIL_H

#include <stdint.h>
#include <time.h>

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Deadline for a timeout (NULL = infinite -> -1). */
static inline int64_t deadline_of(const struct timespec *t)
{
    if (t == NULL)
        return -1;
    return now_ns() + (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* Milliseconds left until deadline, rounded up; -1 for infinite, 0 if past. */
static inline int ms_left(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - now_ns();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

static inline int deadline_passed(int64_t deadline)
{
    return deadline >= 0 && now_ns() >= deadline;
}

/* Stores the time left until deadline (>= 0) in *ts; returns it in ns
 * (0: expired). For timeouts the caller must update, as recvmmsg's. */
static inline int64_t timespec_left(int64_t deadline, struct timespec *ts)
{
    int64_t left = deadline - now_ns();
    if (left < 0)
        left = 0;
    ts->tv_sec = left / 1000000000;
    ts->tv_nsec = left % 1000000000;
    return left;
}

#endif
