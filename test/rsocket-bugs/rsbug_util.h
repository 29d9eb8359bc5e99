/* rsbug_util.h - helpers shared by the known-bug cases (pattern data,
 * addresses, exact transfers, deadlines). Every failure exits the process
 * with one "FAIL:" line naming what went wrong. */
#ifndef RSBUG_UTIL_H
#define RSBUG_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The case's arguments: role-independent, parsed once in main. */
struct rb_args {
    const char *ip;     /* the server host's address (IPv4 or IPv6) */
    int port;
    const char *go;     /* a file whose creation lets a client go on */
};

__attribute__((noreturn, format(printf, 1, 2))) void rb_fail(const char *fmt, ...);
#define CHECK(cond, ...) do { if (!(cond)) rb_fail(__VA_ARGS__); } while (0)

/* Print one progress word the driving script waits for. */
void rb_say(const char *word);
/* Fail the whole process with a clear line when `secs` pass. */
void rb_deadline(unsigned secs);
/* Wait (bounded) until `path` exists. */
void rb_wait_file(const char *path, unsigned secs);

uint8_t rb_pat(uint64_t i);
void rb_fill(uint8_t *b, size_t n, uint64_t off);
/* Index of the first byte that differs from the pattern at `off`, or -1. */
long rb_mismatch(const uint8_t *b, size_t n, uint64_t off);

int rb_listen(const struct rb_args *a, int nonblock);
/* a->ip:a->port as a sockaddr; its length. */
socklen_t rb_addr(const struct rb_args *a, struct sockaddr_storage *ss);
int rb_socket(const struct rb_args *a);
int rb_connect_fd(int fd, const struct rb_args *a);
int rb_connect(const struct rb_args *a);
int rb_accept(int lfd);
void rb_send_all(int fd, const void *b, size_t n);
void rb_recv_all(int fd, void *b, size_t n);
void rb_send_pattern(int fd, size_t n, uint64_t off);
void rb_recv_pattern(int fd, size_t n, uint64_t off);
void rb_expect_eof(int fd);
void rb_close(int fd, const char *what);
void rb_set_nonblock(int fd, int on);
int rb_is_nonblock(int fd);

#endif
