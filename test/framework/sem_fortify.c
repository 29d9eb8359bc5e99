/* sem_fortify.c - built with -O2 -D_FORTIFY_SOURCE=2, so glibc's headers
 * turn read/recv/recvfrom/poll/ppoll/FD_SET into __read_chk, __recv_chk,
 * __recvfrom_chk, __poll_chk, __ppoll_chk and __fdelt_chk. The dispatcher
 * must interpose those entries too, or fortified programs bypass it.
 * test/framework/check_fortify_symbols.sh proves with nm that the binary
 * really references them. Lengths come from a volatile so the compiler
 * cannot prove them safe and fall back to the plain calls. */
#include "semcheck.h"

#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <unistd.h>

#define LONG_MS 10000

static volatile size_t runtime_len = 5;
static volatile nfds_t runtime_nfds = 1;

static void case_fortified_calls(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    char buf[64];

    CHECK(write(c, "hello", 5) == 5, "write");
    struct pollfd p[1] = { { s, POLLIN, 0 } };
    CHECK(poll(p, runtime_nfds, LONG_MS) == 1 && p[0].revents == POLLIN, "__poll_chk");
    CHECK(read(s, buf, runtime_len) == 5 && memcmp(buf, "hello", 5) == 0, "__read_chk");

    CHECK(write(c, "world", 5) == 5, "write");
    struct timespec ts = { 10, 0 };
    p[0].revents = 0;
    CHECK(ppoll(p, runtime_nfds, &ts, NULL) == 1 && p[0].revents == POLLIN, "__ppoll_chk");
    CHECK(recv(s, buf, runtime_len, MSG_WAITALL) == 5 && memcmp(buf, "world", 5) == 0, "__recv_chk");

    CHECK(write(c, "again", 5) == 5, "write");
    fd_set r;
    FD_ZERO(&r);
    FD_SET(s, &r);                         /* __fdelt_chk */
    struct timeval tv = { 10, 0 };
    CHECK(select(s + 1, &r, NULL, NULL, &tv) == 1 && FD_ISSET(s, &r), "select with fortified FD_SET");
    CHECK(recvfrom(s, buf, runtime_len, MSG_WAITALL, NULL, NULL) == 5 && memcmp(buf, "again", 5) == 0,
          "__recvfrom_chk");
    close(c);
    CHECK(read(s, buf, runtime_len) == 0, "EOF via __read_chk");
    close(s);
}

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = { { "fortified_calls", case_fortified_calls } };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
