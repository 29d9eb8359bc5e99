/*
 * semcheck.h - tiny harness shared by the semantic test programs.
 *
 * Every program is a list of named cases run in order; the first failed
 * check prints one line "FAIL <case>: <file>:<line>: <reason>" and exits 1.
 * A watchdog (alarm) turns a hang into a failure naming the running case.
 *
 * The programs never link libnStackAPI.so: they run under LD_PRELOAD (or
 * without it, to validate the assertions against the plain kernel).
 * Addresses come from the environment so the same binary can talk over
 * loopback or over a namespace host that a config routes to a module:
 *   SEM_ADDR   IPv4 address to bind/connect (default 127.0.0.1)
 *   SEM_ADDR6  IPv6 address (default ::1; "none" skips IPv6 cases)
 */
#ifndef SEMCHECK_H
#define SEMCHECK_H

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

struct sem_case {
    const char *name;
    void (*run)(void);
};

/* Runs the cases (all, or those named on the command line). Returns the
 * process exit status: 0 when every case passed. */
int sem_main(int argc, char **argv, const struct sem_case *cases, size_t n);

void sem_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define CHECK(cond, ...) \
    do { if (!(cond)) sem_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
/* A call that must succeed (returns >= 0); reports errno otherwise. */
#define CHECK_OK(expr) \
    ({ long _r = (long)(expr); \
       if (_r < 0) sem_fail(__FILE__, __LINE__, "%s failed: %s", #expr, strerror(errno)); \
       _r; })
/* A call that must fail with the given errno. */
#define CHECK_ERR(expr, err) \
    do { errno = 0; long _r = (long)(expr); \
         if (_r != -1 || errno != (err)) \
             sem_fail(__FILE__, __LINE__, "%s: expected -1/%s, got %ld/%s", #expr, \
                      strerrorname_np(err), _r, errno ? strerrorname_np(errno) : "0"); \
    } while (0)

/* ---- addresses ---------------------------------------------------------- */
/* Fills *ss with the test address of `family` and `port`; returns its length. */
socklen_t sem_addr(int family, uint16_t port, struct sockaddr_storage *ss);
int sem_have_ipv6(void);
uint16_t sem_port_of(int fd);

/* ---- sockets ------------------------------------------------------------ */
/* Listening TCP socket on the test address, ephemeral port. */
int sem_listener(int family, int type_flags);
/* A connected TCP pair over the test address: *cli connected, *srv accepted. */
void sem_tcp_pair(int family, int *cli, int *srv);
/* A UDP socket bound to the test address, ephemeral port. */
int sem_udp_bound(int family);
void sem_set_nonblock(int fd, int on);

/* ---- time --------------------------------------------------------------- */
int64_t sem_now_ms(void);

/* ---- data --------------------------------------------------------------- */
/* Deterministic pattern: byte i of stream `seed` at offset `off`. */
void sem_fill(uint8_t *buf, size_t len, uint32_t seed, size_t off);
/* Returns the first mismatching offset, or (size_t)-1 if all match. */
size_t sem_verify(const uint8_t *buf, size_t len, uint32_t seed, size_t off);
/* Writes/reads exactly len bytes on a blocking fd (bounded by the watchdog). */
void sem_write_all(int fd, const void *buf, size_t len);
void sem_read_all(int fd, void *buf, size_t len);
/* Waits (poll, deadline in ms) until fd reports one of `events`; returns
 * revents, 0 on timeout. */
short sem_wait_fd(int fd, short events, int timeout_ms);

/* 64-bit FNV-1a digest, used to compare streams across threads/processes. */
uint64_t sem_digest(uint64_t h, const void *buf, size_t len);
#define SEM_DIGEST_INIT 1469598103934665603ull

#endif /* SEMCHECK_H */
