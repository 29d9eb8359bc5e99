/* fnv1a64.h - FNV-1a 64-bit digest, used by the file-transfer pair to
 * prove the received file equals the sent one. Not cryptographic: it
 * detects transport corruption, not tampering. */
#ifndef FNV1A64_H
#define FNV1A64_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A64_INIT 0xcbf29ce484222325ull

/* Fold len bytes into the running digest `h` (start with FNV1A64_INIT). */
uint64_t fnv1a64_update(uint64_t h, const void *buf, size_t len);

#endif /* FNV1A64_H */
