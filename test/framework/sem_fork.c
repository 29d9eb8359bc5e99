/* sem_fork.c - fork: a child uses inherited sockets and an inherited epoll
 * set while the parent keeps working; exec'd children (sh -c) work and can
 * use an inherited socket fd.
 * SEM_MODULE_SOCKETS=1 (set by the runner when the test address is routed to
 * a module) skips the exec-inheritance case: a module socket's app fd is the
 * module's wait fd, which a freshly exec'd program cannot use as a socket
 * (documented limitation of the architecture). */
#include "semcheck.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#define LONG_MS 20000

/* Waits for the child and checks it exited 0 (its own checks passed). */
static void reap_ok(pid_t pid, const char *what)
{
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid %s: %s", what, strerror(errno));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s child failed (status %#x)", what, st);
}

static void echo_once(int fd, size_t len)
{
    uint8_t buf[4096];
    CHECK(len <= sizeof(buf), "echo too long");
    sem_read_all(fd, buf, len);
    sem_write_all(fd, buf, len);
}

static void case_child_uses_socket(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(s);
        uint8_t out[3000], in[3000];
        sem_fill(out, sizeof(out), 90, 0);
        sem_write_all(c, out, sizeof(out));
        sem_read_all(c, in, sizeof(in));
        CHECK(sem_verify(in, sizeof(in), 90, 0) == (size_t)-1, "child: echo payload");
        exit(0);
    }
    close(c);
    echo_once(s, 3000);
    reap_ok(pid, "socket");
    /* the parent's copy of the child's end is closed: EOF arrives */
    CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "EOF readable");
    char b;
    CHECK(read(s, &b, 1) == 0, "EOF after the child exits");
    close(s);
}

static void case_child_uses_epoll(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xf0f0 };
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        CHECK(epoll_wait(ep, &ev, 1, LONG_MS) == 1, "child: inherited epoll set reports nothing");
        CHECK(ev.data.u64 == 0xf0f0 && (ev.events & EPOLLIN), "child: wrong event");
        uint8_t in[500];
        sem_read_all(s, in, sizeof(in));
        CHECK(sem_verify(in, sizeof(in), 91, 0) == (size_t)-1, "child: payload");
        CHECK(write(s, "done", 4) == 4, "child: reply");
        exit(0);
    }
    uint8_t out[500];
    sem_fill(out, sizeof(out), 91, 0);
    sem_write_all(c, out, sizeof(out));
    char b[4];
    sem_read_all(c, b, 4);
    CHECK(memcmp(b, "done", 4) == 0, "child's reply");
    reap_ok(pid, "epoll");
    /* the parent keeps working: same set, same sockets, and a new connection */
    CHECK(write(c, "p", 1) == 1, "parent write");
    CHECK(epoll_wait(ep, &ev, 1, LONG_MS) == 1 && ev.data.u64 == 0xf0f0, "parent epoll after fork");
    CHECK(read(s, b, 1) == 1 && b[0] == 'p', "parent read");
    int c2, s2;
    sem_tcp_pair(AF_INET, &c2, &s2);
    CHECK(write(c2, "n", 1) == 1 && read(s2, b, 1) == 1 && b[0] == 'n', "new connection in parent");
    close(c); close(s); close(c2); close(s2); close(ep);
}

static void case_child_accepts(void)
{
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int s = CHECK_OK(accept(l, NULL, NULL));
        echo_once(s, 1000);
        close(s);
        exit(0);
    }
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    CHECK_OK(connect(c, (struct sockaddr *)&ss, len));
    uint8_t out[1000], in[1000];
    sem_fill(out, sizeof(out), 92, 0);
    sem_write_all(c, out, sizeof(out));
    sem_read_all(c, in, sizeof(in));
    CHECK(sem_verify(in, sizeof(in), 92, 0) == (size_t)-1, "echo from the forked acceptor");
    reap_ok(pid, "acceptor");
    close(c); close(l);
}

static void case_exec_child(void)
{
    /* sh -c: exit status and output come through */
    FILE *p = popen("echo exec-ok; exit 0", "r");
    CHECK(p != NULL, "popen: %s", strerror(errno));
    char line[64] = "";
    CHECK(fgets(line, sizeof(line), p) != NULL, "no output from sh -c");
    CHECK(strcmp(line, "exec-ok\n") == 0, "sh -c output %s", line);
    CHECK(pclose(p) == 0, "sh -c exit status");
    int st = system("exit 7");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "system() status %#x", st);
}

static void case_exec_inherits_socket(void)
{
    const char *m = getenv("SEM_MODULE_SOCKETS");
    if (m && strcmp(m, "1") == 0) {
        printf("skip exec_inherits_socket (module sockets)\n");
        return;
    }
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "printf inherited >&%d", c);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exec'd child could not write the socket (%#x)", st);
    char b[9];
    sem_read_all(s, b, 9);
    CHECK(memcmp(b, "inherited", 9) == 0, "data from the exec'd child");
    close(c); close(s);
}

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = {
        { "child_uses_socket", case_child_uses_socket },
        { "child_uses_epoll", case_child_uses_epoll },
        { "child_accepts", case_child_accepts },
        { "exec_child", case_exec_child },
        { "exec_inherits_socket", case_exec_inherits_socket },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
