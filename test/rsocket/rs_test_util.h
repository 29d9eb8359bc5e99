/*
 * rs_test_util.h - helpers of the engine test programs: the module loaded
 * through its nstack_module contract (as libnStackAPI.so uses it), data
 * patterns, bounded waits on a socket's wait fd, and process counters.
 */
#ifndef RS_TEST_UTIL_H
#define RS_TEST_UTIL_H

#include <nstack/nstack_module.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A module socket and its wait fd. */
struct tsock {
    nstack_sock *s;
    int fd;
};

extern const struct nstack_module *M;

/* Register the module with a minimal dispatcher (log to stderr). */
int tu_module_init(void);

/* Print "rs_engine_test: <what>: <errno text>" and return -1. */
int tu_fail(const char *what);
int tu_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int tu_parse_addr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len);

/* Byte i of the stream with the given seed. */
static inline uint8_t tu_pattern(uint64_t i, uint32_t seed)
{
    return (uint8_t)(i * 131 + (i >> 11) + seed * 7 + (seed >> 8));
}
void tu_fill(uint8_t *buf, size_t len, uint64_t pos, uint32_t seed);
/* Index of the first wrong byte, or -1. */
long tu_check(const uint8_t *buf, size_t len, uint64_t pos, uint32_t seed);

int64_t tu_now_ms(void);

/* poll_events() until (mask & want) or the deadline; returns the mask,
 * 0 on timeout. Sleeps only in poll() on the wait fd. */
uint32_t tu_wait_mask(struct tsock *t, uint32_t want, int timeout_ms);

/* Nonblocking connect: EINPROGRESS, writable, SO_ERROR 0, then blocking. */
int tu_connect_start(struct tsock *t, const struct sockaddr *sa, socklen_t len);
int tu_connect_finish(struct tsock *t, int timeout_ms);
int tu_connect(struct tsock *t, const struct sockaddr *sa, socklen_t len);

/* Whole-buffer transfers; `form` alternates send/sendmsg, recv/recvmsg
 * with several iovecs. Return 0, or -1 (errno; EILSEQ on a bad byte). */
int tu_send_pattern(struct tsock *t, uint64_t total, uint32_t seed, int vary_forms);
int tu_recv_pattern(struct tsock *t, uint64_t total, uint32_t seed, int vary_forms);
int tu_send_all(struct tsock *t, const void *buf, size_t len);
int tu_recv_all(struct tsock *t, void *buf, size_t len);

/* Open fds and resident set size (KiB) of this process. */
int tu_count_fds(void);
long tu_rss_kib(void);

#endif
