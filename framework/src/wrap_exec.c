/* wrap_exec.c - exec*(): TCP-anchored candidates that the new image
 * inherits (not close-on-exec, not anchored yet) are named in its
 * environment (NSTACK_ANCHOR_INHERIT, anchor.c), so the exec'd program
 * anchors them at their first use as this process would have (an
 * inetd-style service on stdin/stdout, a re-exec'd server). Without such
 * sockets the call is exactly libc's. posix_spawn, system and popen:
 * wrap_spawn.c. glibc's execl, execlp, execle, execv and execvp call
 * execve internally (not through this library), so each is wrapped here. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "anchor.h"
#include "anchor_fork.h"
#include "fw.h"
#include "libc_api.h"

#define EXPORT __attribute__((visibility("default")))

extern char **environ;

typedef int exec_fn(const char *, char *const[], char *const[]);

/* libc's fn with envp plus the inherited candidates, if any. */
static int exec_with(exec_fn *fn, const char *path, char *const argv[], char *const envp[])
{
    /* upgraded ones: back to TCP, the image gets a TCP socket; bytes
     * RDMA delivered and not read yet cannot follow it: refused, the
     * caller still reads them (doc/fork.md) */
    if (!t_in_module && anchor_release_all(1) > 0) {
        errno = EBUSY;
        return -1;
    }
    char **env = t_in_module ? NULL : anchor_exec_env(envp);
    int r = fn(path, argv, env ? env : envp);
    int err = errno;
    free(env);
    errno = err;
    return r;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    return exec_with(LIBC(execve), path, argv, envp);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return exec_with(LIBC(execvpe), file, argv, envp);
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
