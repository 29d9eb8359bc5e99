/* fnv1a64.c - FNV-1a 64-bit (see fnv1a64.h). */
#include "fnv1a64.h"

#define FNV1A64_PRIME 0x100000001b3ull

uint64_t fnv1a64_update(uint64_t h, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV1A64_PRIME;
    }
    return h;
}
