/* ms_pattern.h - what the multi-stack test programs share: failing with
 * one line, and the pattern-checked echo exchange. */
#ifndef MS_PATTERN_H
#define MS_PATTERN_H

#include <stddef.h>

/* Print "FAIL <prog>: what[: strerror(errno)]" and exit 1. */
__attribute__((noreturn)) void die(const char *what);
__attribute__((noreturn)) void fail(const char *what);
/* Client: BYTES of the pattern out, the same bytes back (checked). */
void client_exchange(int fd, size_t bytes);
/* Server: BYTES of the pattern in (checked), echoed. */
void server_exchange(int fd, size_t bytes);

#endif
