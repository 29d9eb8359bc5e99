/* Deadlines: every wait in the examples is bounded by one. */
#include "ex_common.h"

#include <time.h>

int64_t ex_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ex_remaining_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - ex_now_ms();
    if (left <= 0)
        return 0;
    return left > 1000000 ? 1000000 : (int)left;
}
