/* msg_pattern.c - per-message payload generator (see msg_pattern.h). */
#include "msg_pattern.h"

#include <string.h>

/* splitmix64: a cheap generator whose every output bit depends on the
 * seed, so neighbouring (conn, seq) pairs give unrelated streams. */
static uint64_t next_word(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t seed_of(uint32_t conn, uint64_t seq)
{
    return ((uint64_t)conn << 48) ^ seq ^ 0x6E737461636B2121ull;
}

void msg_pattern_fill(void *buf, size_t len, uint32_t conn, uint64_t seq)
{
    uint64_t state = seed_of(conn, seq);
    unsigned char *p = buf;
    for (size_t off = 0; off < len; off += 8) {
        uint64_t w = next_word(&state);
        size_t n = len - off < 8 ? len - off : 8;
        memcpy(p + off, &w, n);
    }
}

long msg_pattern_check(const void *buf, size_t len, uint32_t conn,
                       uint64_t seq, uint8_t *expected)
{
    uint64_t state = seed_of(conn, seq);
    const unsigned char *p = buf;
    for (size_t off = 0; off < len; off += 8) {
        uint64_t w = next_word(&state);
        size_t n = len - off < 8 ? len - off : 8;
        if (memcmp(p + off, &w, n) == 0)
            continue;
        const unsigned char *want = (const unsigned char *)&w;
        for (size_t i = 0; i < n; i++) {
            if (p[off + i] != want[i]) {
                *expected = want[i];
                return (long)(off + i);
            }
        }
    }
    return -1;
}
