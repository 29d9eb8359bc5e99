/* ms_fork.c - fork() while another thread is inside accept() on a wildcard
 * listener served by several stacks (test/multistack/fork.sh; run under
 * LD_PRELOAD=libnStackAPI.so with a config that puts the listener on the
 * kernel and the shadow module).
 *
 * A thread spins on nonblocking accept(), which holds the listener's
 * accept lock for most of each attempt; the main thread forks ROUNDS
 * times meanwhile. Each child must get EAGAIN from its own nonblocking
 * accept() at once: a child that inherited the lock held deadlocks and is
 * killed by its alarm. Prints "ok" when every child passed. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 60
#define CHILD_ALARM_S 10
#define SPIN_MAX 50000000L

static atomic_int g_stop;
static atomic_long g_attempts;

static void die(const char *what)
{
    fprintf(stderr, "FAIL ms_fork: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *spin_accept(void *arg)
{
    int lfd = *(int *)arg;
    for (long i = 0; i < SPIN_MAX && !atomic_load(&g_stop); i++) {
        int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (c >= 0)
            close(c);               /* nobody connects; tolerated all the same */
        atomic_fetch_add(&g_attempts, 1);
    }
    return NULL;
}

/* The child: its own nonblocking accept must answer EAGAIN at once. */
static int child_accept(int lfd)
{
    alarm(CHILD_ALARM_S);
    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    if (c >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
        return 2;
    return 0;
}

static int wildcard_listener(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0)
        die("socket");
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("bind");
    if (listen(lfd, 16) < 0)
        die("listen");
    if (fcntl(lfd, F_SETFL, O_NONBLOCK) < 0)
        die("fcntl O_NONBLOCK");
    return lfd;
}

/* Waits until the spinner made some attempts (bounded by count and time). */
static void wait_spinning(long at_least)
{
    struct timespec ts = { 0, 1000000 };
    for (int i = 0; i < 10000 && atomic_load(&g_attempts) < at_least; i++)
        nanosleep(&ts, NULL);
    if (atomic_load(&g_attempts) < at_least) {
        fprintf(stderr, "FAIL ms_fork: the accept thread does not run\n");
        exit(1);
    }
}

int main(void)
{
    alarm(240);
    int lfd = wildcard_listener();
    pthread_t t;
    if (pthread_create(&t, NULL, spin_accept, &lfd) != 0)
        die("pthread_create");
    for (int round = 0; round < ROUNDS; round++) {
        wait_spinning(atomic_load(&g_attempts) + 1);
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            _exit(child_accept(lfd));
        int status = 0;
        if (waitpid(pid, &status, 0) != pid)
            die("waitpid");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "FAIL ms_fork: round %d: child status %#x (%s)\n", round, status,
                    WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? "deadlocked in accept" : "bad accept");
            exit(1);
        }
    }
    atomic_store(&g_stop, 1);
    pthread_join(t, NULL);
    printf("ok %d forks, %ld accept attempts meanwhile\n", ROUNDS, atomic_load(&g_attempts));
    return 0;
}
