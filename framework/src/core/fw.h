/* fw.h - global framework state: stacks (modules), lazy start, routing. */
#ifndef FW_H
#define FW_H

#include <pthread.h>
#include <sys/socket.h>

#include "nstack/nstack_module.h"

#define FW_MAX_STACKS 16
#define FW_NAME_MAX 64

struct file;

enum stack_state { STACK_UNLOADED = 0, STACK_LOADED, STACK_READY, STACK_FAILED };

/* One configured stack. Filled once by fw_start() (under its pthread_once),
 * read lock-free afterwards; `state` moves LOADED -> READY/FAILED under
 * g_stack_init_lock when the module's init() is first needed. */
struct stack {
    char name[FW_NAME_MAX];
    int is_kernel;
    const struct nstack_module *mod;   /* NULL for the built-in kernel stack */
    _Atomic int state;
    _Atomic int caps_notice_done;      /* "cannot carry" notice printed once */
};

extern struct stack g_stacks[FW_MAX_STACKS];
extern int g_n_stacks;
extern int g_kernel_stack;             /* index of the kernel stack */

/* Nesting depth of calls into a module on this thread: while > 0 every
 * interposed call goes straight to libc, so a module's own sockets and fds
 * never re-enter the dispatcher. */
extern __thread int t_in_module;

/* 1 once the process installed a seccomp filter (prctl PR_SET_SECCOMP or
 * the seccomp system call: wrap_prctl.c, wrap_syscall.c). A call the
 * filter does not allow may kill it (OpenSSH's preauth child allows little
 * beyond read, write and poll), so the dispatcher's optional calls (the
 * urgent-byte tidying of connections that stayed on TCP, the log's look
 * at stderr) are left out from then on. Set once with a relaxed store,
 * inherited by fork children like the filter itself, never cleared. */
extern _Atomic int g_fw_confined;
#define FW_CONFINED() __builtin_expect(__atomic_load_n(&g_fw_confined, __ATOMIC_RELAXED), 0)

/* Starts the framework once (config, module registration); safe from any
 * thread, cheap after the first call. Never fails: problems are logged and
 * the kernel stack serves everything. */
void fw_start(void);
int fw_is_started(void);
/* Calls the module's init() once; 0 when the stack can carry sockets. */
int fw_stack_ready(int stack);
/* The routing decision for a socket: the stack that carries it (after
 * every fallback: unloaded/failed module -> default -> kernel; capability
 * mismatch -> kernel; key may be NULL: listen), and what else the one
 * lookup says: whether the connection is TCP-anchored (anchor.h: stream,
 * module with anchor(), the rule's "anchor" not false, NSTACK_ANCHOR not
 * 0), and its long-lived policy. */
struct route {
    int stack;
    int anchor;
    int ll;          /* anchored with "upgrade_after_bytes": log2(N) + 1; else 0 */
};
struct route fw_route_ex(const struct file *f, const struct sockaddr *key);
const struct nstack_fw_api *fw_api(void);
/* The loaded configuration (NULL: not started, none, or unusable). */
struct nstack_config;
const struct nstack_config *fw_config(void);
/* The stacks a wildcard stream listener listens on (doc/framework.md,
 * "Listeners on several stacks"): the listener's own route first, then
 * every usable module an ip_route sends a local address to. Returns the
 * count (1: a plain listener); logs the plan once per listener at INF. */
int fw_listen_stacks(const struct file *f, int fd, int *stacks, int max);
/* The anchoring stack whose clients reach wildcard listener f (the
 * default route's, else the first ip_route covering a local address; the
 * listen plan's rules: "multi_stack_listen": false turns it off), or -1.
 * Listen time only (lists the interfaces). */
int fw_wild_anchor_stack(const struct file *f);
/* The stack a failed module connect to `key` may retry on (an ip_route's
 * "fallback"), or -1. */
int fw_connect_fallback(const struct file *f, const struct sockaddr *key);
/* Called from the fork wrapper. */
void fw_fork_prepare(void);
void fw_fork_parent(void);
void fw_fork_child(void);

#define MOD_ENTER() (t_in_module++)
#define MOD_LEAVE() (t_in_module--)

#endif
