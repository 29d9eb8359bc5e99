/*
 * tsan_log_setup.c - the dispatcher's log setup raced by its first callers.
 *
 * The first log line of a process may come from several threads at once
 * (before fw_start). Every thread here logs one line at the same moment
 * (a barrier): the setup must run once, so NSTACK_LOG_FILE is opened
 * exactly once (a second open is a leaked fd) and every line lands in the
 * file intact. Under ThreadSanitizer a racing setup is also reported (exit
 * status 66). Each round is a fresh process (the setup runs once per
 * process). Built from the framework's own fw_log.c and libc_api.c.
 */
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fw_log.h"

#define THREADS 8

static pthread_barrier_t g_start;

static void *log_one_line(void *arg)
{
    pthread_barrier_wait(&g_start);
    fw_log(NSTACK_LOG_WAR, "tsan", "line of thread %d", (int)(long)arg);
    return NULL;
}

/* How many of our fds are open on path. */
static int fds_open_on(const char *path)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char link[300], target[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(link, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        n += strcmp(target, path) == 0;
    }
    closedir(d);
    return n;
}

/* Lines "...: WAR: tsan: line of thread N" for every N, each exactly once. */
static int check_lines(const char *path)
{
    int seen[THREADS] = { 0 };
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[256];
    int bad = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, "WAR: tsan: line of thread ");
        int t;
        if (p == NULL || sscanf(p, "WAR: tsan: line of thread %d", &t) != 1 ||
            t < 0 || t >= THREADS || seen[t]++) {
            fprintf(stderr, "FAIL tsan_log_setup: unexpected log line: %s", line);
            bad = 1;
        }
    }
    fclose(f);
    for (int t = 0; t < THREADS; t++)
        if (!seen[t]) {
            fprintf(stderr, "FAIL tsan_log_setup: the line of thread %d is missing\n", t);
            bad = 1;
        }
    return bad ? -1 : 0;
}

/* One race in a fresh process (the setup runs once per process):
 * returns the child's verdict, 0 = pass. */
static int race_once(void)
{
    char path[] = "/tmp/nstack-tsan-log.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("FAIL tsan_log_setup: mkstemp");
        return 1;
    }
    close(fd);
    setenv("NSTACK_LOG_FILE", path, 1);
    setenv("NSTACK_LOG_ON", "WAR", 1);

    pthread_t t[THREADS];
    pthread_barrier_init(&g_start, NULL, THREADS);
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, log_one_line, (void *)i) != 0) {
            fprintf(stderr, "FAIL tsan_log_setup: pthread_create\n");
            return 1;
        }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);

    int open_fds = fds_open_on(path);
    int lines_ok = check_lines(path);
    unlink(path);
    if (open_fds != 1) {
        fprintf(stderr, "FAIL tsan_log_setup: NSTACK_LOG_FILE open %d times, expected once\n", open_fds);
        return 1;
    }
    return lines_ok != 0;
}

/* The race is lost only sometimes: ROUNDS fresh processes, one at a time
 * (the parent itself never starts a thread, so forking it is safe). */
#define ROUNDS 20

int main(void)
{
    for (int r = 0; r < ROUNDS; r++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("FAIL tsan_log_setup: fork");
            return 1;
        }
        if (pid == 0)
            _exit(race_once());
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "FAIL tsan_log_setup: round %d failed (status 0x%x)\n", r, status);
            return 1;
        }
    }
    printf("PASS tsan_log_setup (%d rounds)\n", ROUNDS);
    return 0;
}
