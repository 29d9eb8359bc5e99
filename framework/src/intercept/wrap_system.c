/* wrap_system.c - system(), popen(): glibc spawns /bin/sh internally with
 * our environ (not through wrap_exec.c or wrap_spawn.c), and the shell
 * gets every fd without FD_CLOEXEC (popen's pipe end lands on 0 or 1).
 * So, before the real call: upgraded anchored connections without
 * FD_CLOEXEC go back to TCP (anchor_fork.c; not a connection whose two
 * ends are in this process, wrap_spawn.c); candidates without it are
 * named in NSTACK_ANCHOR_INHERIT by putting a copy of environ with the
 * variable in `environ` for the duration of the call (the preloaded shell
 * reads it, and its exec hands them on to the command). Without such
 * connections the call is exactly libc's.
 *
 * Thread safety of the environ swap: `environ` is switched with one
 * pointer store to a complete array and back, so a getenv() of another
 * thread sees either array, never a partial one; an array we installed
 * is freed only at the next swap (a getenv() that started before the
 * restore has long finished by then). Calls of several threads at once
 * share one swap (g_env.users). A setenv() of another thread during the
 * call (which glibc already documents as unsafe next to getenv()) keeps
 * its array: the variable is removed from it afterwards instead of
 * restoring ours.
 *
 * Locking: g_env is guarded by g_env_mu, held only around the swap and
 * the restore, never across the real call. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "anchor.h"
#include "anchor_fork.h"
#include "fw.h"
#include "libc_api.h"
#include "wrap_spawn.h"

#define EXPORT __attribute__((visibility("default")))
#define INHERIT_VAR "NSTACK_ANCHOR_INHERIT"

extern char **environ;

static pthread_mutex_t g_env_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int users;                    /* calls inside the swap */
    char **orig;                  /* environ before it */
    char **ours;                  /* the array installed */
    char **retired;               /* the last one installed, freed at the next swap */
} g_env;

/* 1 when this call joined a swap (env_end must follow). */
static int env_begin(void)
{
    int joined = 0;
    pthread_mutex_lock(&g_env_mu);
    if (g_env.users > 0) {
        g_env.users++;
        joined = 1;
    } else {
        char **env = anchor_exec_env(environ);
        if (env != NULL) {
            free(g_env.retired);
            g_env.retired = NULL;
            g_env.orig = environ;
            g_env.ours = env;
            g_env.users = 1;
            __atomic_store_n(&environ, env, __ATOMIC_RELEASE);
            joined = 1;
        }
    }
    pthread_mutex_unlock(&g_env_mu);
    return joined;
}

static void env_end(void)
{
    pthread_mutex_lock(&g_env_mu);
    if (--g_env.users == 0) {
        if (__atomic_load_n(&environ, __ATOMIC_ACQUIRE) == g_env.ours)
            __atomic_store_n(&environ, g_env.orig, __ATOMIC_RELEASE);
        else
            unsetenv(INHERIT_VAR);    /* a setenv() copied ours meanwhile */
        g_env.retired = g_env.ours;
        g_env.ours = NULL;
    }
    pthread_mutex_unlock(&g_env_mu);
}

EXPORT int system(const char *cmd)
{
    if (t_in_module || cmd == NULL)   /* NULL: is there a shell; no child keeps our fds */
        return LIBC(system)(cmd);
    if (anchor_release_map(1, spawn_release_map, NULL) > 0) {  /* unread RDMA bytes cannot follow (as at exec) */
        errno = EBUSY;
        return -1;
    }
    spawn_note_inherited(NULL, NULL);
    int joined = env_begin();
    int r = LIBC(system)(cmd);
    int err = errno;
    if (joined)
        env_end();
    errno = err;
    return r;
}

EXPORT FILE *popen(const char *cmd, const char *mode)
{
    if (t_in_module)
        return LIBC(popen)(cmd, mode);
    if (anchor_release_map(1, spawn_release_map, NULL) > 0) {
        errno = EBUSY;
        return NULL;
    }
    int joined = env_begin();
    FILE *f = LIBC(popen)(cmd, mode);
    int err = errno;
    if (f != NULL)
        spawn_note_inherited(NULL, NULL);
    if (joined)
        env_end();
    errno = err;
    return f;
}
