/* wrap_exec.c - exec*(): TCP-anchored candidates that the new image
 * inherits (not close-on-exec, not anchored yet) are named in its
 * environment (NSTACK_ANCHOR_INHERIT, anchor.c), so the exec'd program
 * anchors them at their first use as this process would have (an
 * inetd-style service on stdin/stdout, a re-exec'd server). Without such
 * sockets the call is exactly libc's. posix_spawn, system and popen:
 * wrap_spawn.c, wrap_system.c. glibc's execl, execlp, execle, execv and execvp call
 * execve internally (not through this library), so each is wrapped here. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anchor.h"
#include "anchor_fork.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"

#define EXPORT __attribute__((visibility("default")))

extern char **environ;

/* Before an exec: upgraded connections the image gets go back to TCP (it
 * gets a TCP socket); *env: envp plus the inherited candidates (malloc'd),
 * NULL when there are none. -1 (EBUSY): bytes RDMA delivered and not read
 * yet cannot follow the image; refused, the caller still reads them
 * (doc/fork.md). */
/* A process whose real and effective ids differ (squid's master: real
 * proxy, effective root) execs its image in secure-execution mode, where
 * the dynamic loader ignores an LD_PRELOAD path: the new image (squid's
 * worker) runs without the framework and its connections stay on the
 * kernel, its peers seeing a plain TCP end. Said once per process, and
 * only by one that used the framework (a program without sockets prints
 * nothing it would not print alone). */
static void secure_exec_notice(void)
{
    static _Atomic int said;
    uid_t ru = getuid(), eu = geteuid();
    gid_t rg = getgid(), eg = getegid();
    if ((ru == eu && rg == eg) || !fw_is_started() || __atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        return;
    LOG_WAR("exec with real and effective ids apart (uid %u/%u, gid %u/%u): the new image runs in "
            "secure-execution mode, where the loader ignores LD_PRELOAD, so it uses the kernel stack "
            "only; preload it through /etc/ld.so.preload instead", (unsigned)ru, (unsigned)eu,
            (unsigned)rg, (unsigned)eg);
}

/* Whether env names this library in LD_PRELOAD. */
static int env_preloads_us(char *const env[])
{
    for (char *const *e = env; e != NULL && *e != NULL; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) == 0 && strstr(*e + 11, "libnStackAPI") != NULL)
            return 1;
    return 0;
}

/* A program that builds its children's environment from scratch (dovecot
 * passes only what import_environment lists) starts them without the
 * preload, though it has it itself: they use the kernel stack only, and
 * their peers see plain TCP ends. Said once per process that used the
 * framework; not when the preload came from /etc/ld.so.preload (no
 * LD_PRELOAD here either), which every image gets. */
static void dropped_preload_notice(char *const envp[])
{
    static _Atomic int said;
    if (envp == environ || !fw_is_started() || env_preloads_us(envp) || !env_preloads_us(environ) ||
        __atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        return;
    LOG_WAR("exec with an environment that has no LD_PRELOAD of this library: the new image uses the "
            "kernel stack only; pass LD_PRELOAD on to it (dovecot: import_environment), or preload "
            "through /etc/ld.so.preload");
}

static int exec_prepare(char *const envp[], char ***env)
{
    *env = NULL;
    if (t_in_module)
        return 0;
    secure_exec_notice();
    dropped_preload_notice(envp);
    if (anchor_release_all(1) > 0) {
        errno = EBUSY;
        return -1;
    }
    *env = anchor_exec_env(envp);
    return 0;
}

/* After a failed exec: its result, errno kept. */
static int exec_failed(int r, char **env)
{
    int err = errno;
    free(env);
    errno = err;
    return r;
}

#define EXEC_WITH(call_with_env, envp)                                           \
    do {                                                                         \
        char **env_;                                                             \
        if (exec_prepare((envp), &env_))                                         \
            return -1;                                                           \
        char *const *e_ = env_ ? env_ : (envp);                                  \
        return exec_failed(call_with_env, env_);                                 \
    } while (0)

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    EXEC_WITH(LIBC(execve)(path, argv, e_), envp);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    EXEC_WITH(LIBC(execvpe)(file, argv, e_), envp);
}

/* glibc's fexecve and execveat make the system call themselves. */
EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    EXEC_WITH(LIBC(fexecve)(fd, argv, e_), envp);
}

EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
    EXEC_WITH(LIBC(execveat)(dirfd, path, argv, e_, flags), envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

EXPORT int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

/* The argument list of execl* as an argv (NULL-terminated; `count` is
 * the number of arguments before the NULL, from a first pass); *envp gets
 * the environment after the NULL when want_env. NULL/ENOMEM. */
static char **list_to_argv(const char *arg0, size_t count, va_list ap, char *const **envp, int want_env)
{
    char **argv = malloc((count + 1) * sizeof(*argv));
    if (argv == NULL)
        return NULL;
    argv[0] = (char *)arg0;
    for (size_t i = 1; i <= count; i++)
        argv[i] = arg0 != NULL ? va_arg(ap, char *) : NULL;
    if (want_env)
        *envp = va_arg(ap, char *const *);
    return argv;
}

/* How many arguments execl* got before its NULL (arg0 included). */
static size_t list_count(const char *arg0, va_list ap)
{
    size_t n = 0;
    if (arg0 == NULL)
        return 0;
    for (n = 1; va_arg(ap, char *) != NULL; n++)
        ;
    return n;
}

#define EXEC_LIST(call, want_env)                                                \
    do {                                                                         \
        va_list ap, ap2;                                                         \
        char *const *envp = environ;                                             \
        va_start(ap, arg);                                                       \
        va_copy(ap2, ap);                                                        \
        size_t n_ = list_count(arg, ap2);                                        \
        va_end(ap2);                                                             \
        char **argv = list_to_argv(arg, n_, ap, &envp, want_env);                \
        va_end(ap);                                                              \
        if (argv == NULL)                                                        \
            return -1;                                                           \
        int r_ = (call);                                                         \
        int e_ = errno;                                                          \
        free(argv);                                                              \
        errno = e_;                                                              \
        return r_;                                                               \
    } while (0)

EXPORT int execl(const char *path, const char *arg, ...)
{
    EXEC_LIST(execve(path, argv, envp), 0);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
    EXEC_LIST(execvpe(file, argv, envp), 0);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
    EXEC_LIST(execve(path, argv, envp), 1);
}
