/* mono_clock.h - monotonic seconds for rate (pps) reports. */
#ifndef MONO_CLOCK_H
#define MONO_CLOCK_H

#include <time.h>

static inline double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Events per second, 0 when no time has passed (no division by zero). */
static inline double mono_rate(double events, double seconds)
{
    return seconds > 0 ? events / seconds : 0.0;
}

#endif /* MONO_CLOCK_H */
