/* Data patterns: every byte depends on the seed and its offset, so a
 * transfer that lands at the wrong place, is stale (an older seed) or is cut
 * short is caught by ex_find_mismatch. */
#include "ex_common.h"

static inline uint8_t pattern_byte(size_t off, uint32_t seed)
{
    /* A cheap mix: consecutive seeds give different bytes almost everywhere. */
    uint32_t x = (uint32_t)off * 2654435761u + seed * 40503u + (seed >> 7);
    return (uint8_t)(x >> 24 ^ x);
}

void ex_fill_pattern(void *buf, size_t len, uint32_t seed)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = pattern_byte(i, seed);
}

long ex_find_mismatch(const void *buf, size_t len, uint32_t seed)
{
    const uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i] != pattern_byte(i, seed))
            return (long)i;
    return -1;
}
