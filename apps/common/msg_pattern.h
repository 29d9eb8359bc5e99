/*
 * msg_pattern.h - the payload of vc_common messages. Each message's bytes
 * are a pseudo-random stream seeded by (connection index, sequence number),
 * so an echo that is corrupted, truncated, reordered, or delivered on the
 * wrong connection fails the check, and the checker needs no copy of what
 * was sent.
 */
#ifndef MSG_PATTERN_H
#define MSG_PATTERN_H

#include <stddef.h>
#include <stdint.h>

void msg_pattern_fill(void *buf, size_t len, uint32_t conn, uint64_t seq);

/* Offset of the first byte that differs from the pattern, or -1 when the
 * buffer matches. *expected receives the byte that should be there. */
long msg_pattern_check(const void *buf, size_t len, uint32_t conn,
                       uint64_t seq, uint8_t *expected);

#endif /* MSG_PATTERN_H */
