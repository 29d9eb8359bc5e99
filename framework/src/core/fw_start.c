/* fw_start.c - lazy start and the stack table. Configuration and module
 * registration happen once, on the first AF_INET/AF_INET6 socket
 * (pthread_once); until then the library reads nothing and loads nothing.
 * Also each module's first init() (fw_stack_ready) and the fork sequence
 * around the stacks' locks (fw_fork_*). Routing lookups: route/route.c. */
#include <errno.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw.h"
#include "anchor.h"
#include "kernel_stack.h"
#include "fw_log.h"
#include "ep_arena.h"
#include "epoll_agg.h"
#include "file.h"
#include "module_load.h"
#include "module_ops.h"
#include "multilisten.h"
#include "poll_agg.h"
#include "stats.h"
#include "nstack_config.h"

struct stack g_stacks[FW_MAX_STACKS];
int g_n_stacks;
int g_kernel_stack;
__thread int t_in_module;
extern char g_config_dir[4096];

static pthread_once_t g_start_once = PTHREAD_ONCE_INIT;
static _Atomic int g_started;
/* Serialises module init() calls (rare, at the first socket of a stack). */
static pthread_mutex_t g_stack_init_lock = PTHREAD_MUTEX_INITIALIZER;

static struct nstack_config *g_cfg;   /* set once in start_once(), read-only after */

static void describe_line(void *arg, const char *line)
{
    (void)arg;
    fw_log(NSTACK_LOG_DBG, "config", "%s", line);
}

static void config_diag(void *arg, enum nstack_diag_severity sev, const char *line)
{
    (void)arg;
    fw_log(sev == NSTACK_DIAG_ERROR ? NSTACK_LOG_ERR : NSTACK_LOG_WAR, "config", "%s", line);
}

/* The built-in kernel stack's table, filled like a loaded module's
 * (module_ops.c). Written once under fw_start's pthread_once. */
static const struct nstack_module *kernel_ops(void)
{
    static const struct nstack_module *ops;
    if (ops == NULL)
        ops = module_ops_fill(kernel_stack_module());
    return ops;
}

static void kernel_only(void)
{
    memset(g_stacks, 0, sizeof(g_stacks));
    snprintf(g_stacks[0].name, sizeof(g_stacks[0].name), "kernel");
    g_stacks[0].is_kernel = 1;
    g_stacks[0].mod = kernel_ops();
    g_stacks[0].state = STACK_READY;
    g_n_stacks = 1;
    g_kernel_stack = 0;
}

static void stacks_from_config(const struct nstack_config *cfg)
{
    g_n_stacks = cfg->n_modules < FW_MAX_STACKS ? cfg->n_modules : FW_MAX_STACKS;
    g_kernel_stack = -1;
    for (int i = 0; i < g_n_stacks; i++) {
        const struct nstack_module_desc *d = &cfg->modules[i];
        struct stack *s = &g_stacks[i];
        snprintf(s->name, sizeof(s->name), "%s", d->stack_name);
        if (strcmp(d->stack_name, "kernel") == 0) {
            s->is_kernel = 1;
            s->mod = kernel_ops();
            s->state = STACK_READY;
            if (g_kernel_stack < 0)
                g_kernel_stack = i;
            continue;
        }
        s->mod = module_load(cfg->module_file[0] ? cfg->module_file : "module_config.json",
                             d->stack_name, d->libname, d->loadtype == NSTACK_LOAD_STATIC);
        s->state = s->mod ? STACK_LOADED : STACK_FAILED;
    }
    if (g_kernel_stack < 0) {
        /* The config promises a kernel entry; keep the promise ourselves. */
        if (g_n_stacks >= FW_MAX_STACKS)
            g_n_stacks = FW_MAX_STACKS - 1;
        struct stack *s = &g_stacks[g_n_stacks];
        snprintf(s->name, sizeof(s->name), "kernel");
        s->is_kernel = 1;
        s->mod = kernel_ops();
        s->state = STACK_READY;
        g_kernel_stack = g_n_stacks++;
    }
}

/* Switches of earlier versions that are set but no longer do anything:
 * one line each, so a user who still sets one learns why it has no effect. */
static void retired_switches(void)
{
    const char *v = getenv("NSTACK_FORK_SUPPORT");
    if (v != NULL && strcmp(v, "0") != 0)
        LOG_WAR("NSTACK_FORK_SUPPORT=%s is retired and ignored: TCP-anchored connections (the default) "
                "survive fork, exec and privilege drops (doc/fork.md)", v);
}

static void start_once(void)
{
    /* Module constructors and register functions run in here; socket
     * calls they make must not re-enter fw_start() (pthread_once would
     * deadlock) - they go straight to libc like any module-internal call. */
    MOD_ENTER();
    fw_log_setup();
    retired_switches();
    kernel_only();
    struct nstack_config *cfg = NULL;
    if (nstack_config_load(NULL, NULL, config_diag, NULL, &cfg) < 0 || cfg == NULL) {
        fw_log(NSTACK_LOG_ERR, "config", "configuration unusable; the kernel stack serves every socket");
    } else {
        if (cfg->module_file[0]) {
            char tmp[sizeof(g_config_dir)];
            snprintf(tmp, sizeof(tmp), "%s", cfg->module_file);
            snprintf(g_config_dir, sizeof(g_config_dir), "%s", dirname(tmp));
        }
        stacks_from_config(cfg);
        g_cfg = cfg;
        if (fw_log_enabled(NSTACK_LOG_DBG))
            nstack_config_describe(cfg, describe_line, NULL);
    }
    anchor_setup();
    stats_start();
    __atomic_store_n(&g_started, 1, __ATOMIC_RELEASE);
    MOD_LEAVE();
    fw_log(NSTACK_LOG_INF, NULL, "framework started: %d stack(s)", g_n_stacks);
}

void fw_start(void)
{
    if (__atomic_load_n(&g_started, __ATOMIC_ACQUIRE))
        return;
    int saved = errno;
    pthread_once(&g_start_once, start_once);
    errno = saved;
}

const struct nstack_config *fw_config(void)
{
    return fw_is_started() ? g_cfg : NULL;
}

int fw_is_started(void)
{
    return __atomic_load_n(&g_started, __ATOMIC_ACQUIRE);
}

int fw_stack_ready(int idx)
{
    if (idx < 0 || idx >= g_n_stacks)
        return -1;
    struct stack *s = &g_stacks[idx];
    int st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    if (st == STACK_READY)
        return 0;
    if (st == STACK_FAILED)
        return -1;
    pthread_mutex_lock(&g_stack_init_lock);
    if (s->state == STACK_LOADED) {
        int saved = errno;
        MOD_ENTER();
        int r = s->mod->init(fw_api());
        int err = errno;
        MOD_LEAVE();
        if (r < 0) {
            fw_log(NSTACK_LOG_ERR, s->name, "init() failed: %s; its sockets go to the default stack",
                   strerror(err));
            __atomic_store_n(&s->state, STACK_FAILED, __ATOMIC_RELEASE);
        } else {
            __atomic_store_n(&s->state, STACK_READY, __ATOMIC_RELEASE);
        }
        errno = saved;
    }
    st = s->state;
    pthread_mutex_unlock(&g_stack_init_lock);
    return st == STACK_READY ? 0 : -1;
}

/* ---- fork ----------------------------------------------------------------
 * The framework's own locks are taken first, then each module's
 * fork_prepare: a thread holding a framework lock may be waiting for a
 * module lock (poll_events under an epoll set lock), never the reverse. */

static void each_ready_module(size_t hook_offset)
{
    for (int i = 0; i < g_n_stacks; i++) {
        struct stack *s = &g_stacks[i];
        if (s->is_kernel || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STACK_READY)
            continue;
        void (*hook)(void);
        memcpy(&hook, (const char *)s->mod + hook_offset, sizeof(hook));
        MOD_ENTER();
        hook();                 /* a stub when the module has none (module_ops.c) */
        MOD_LEAVE();
    }
}

void fw_fork_prepare(void)
{
    pthread_mutex_lock(&g_stack_init_lock);
    ev_fork_prepare();
    poll_fork_prepare();
    file_pool_lock();
    each_ready_module(offsetof(struct nstack_module, fork_prepare));
}

void fw_fork_parent(void)
{
    each_ready_module(offsetof(struct nstack_module, fork_parent));
    file_pool_unlock();
    poll_fork_parent();
    ev_fork_parent();
    pthread_mutex_unlock(&g_stack_init_lock);
}

void fw_fork_child(void)
{
    each_ready_module(offsetof(struct nstack_module, fork_child));
    file_pool_fork_child();
    ml_fork_child();
    ep_arena_fork_child();
    poll_fork_child();
    ev_fork_child();
    pthread_mutex_unlock(&g_stack_init_lock);   /* taken by this thread in fw_fork_prepare */
    stats_fork_child();
}
