/* softrdma: the host's interface addresses, listed once per process and
 * network namespace and kept until the kernel reports a change.
 *
 * Every connection asks for them several times (source selection, the
 * GID of an address, the link state at resolve and connect, the port
 * count of ibv_query_device); getifaddrs costs a netlink socket and a
 * dump each time (~25 system calls), ~110 per connection in all. Here a
 * netlink route socket subscribed to link and address changes
 * (RTMGRP_LINK, RTMGRP_*_IFADDR) says when the copy is out of date: the
 * kernel queues the notification before the change's own system call
 * returns, so an address added or a link taken down is seen by the next
 * lookup, as with getifaddrs. A lookup costs a zero-timeout ppoll on that
 * socket and a stat of the netns (a process may setns elsewhere).
 *
 * The watch socket is internal (moved high, sr_fd_internal); a program
 * that closes descriptors it does not own may close it and reuse the
 * number: it is recognised by its inode before it is read, and a stranger
 * is never read nor closed, only forgotten. After fork the child opens
 * its own (a shared one would let one process eat the other's news).
 * Without a watch socket (descriptor limit) every lookup lists again, and
 * if that fails too the last list of the namespace answers.
 * Everything here is guarded by sr_ifc_lock. */
#include "sr_internal.h"
#include "sr_sys.h"
#include <errno.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SR_IFC_DRAIN_MAX 64

static pthread_mutex_t sr_ifc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sr_ifaddr sr_ifc[SR_MAX_IFADDRS];
static int sr_ifc_n = -1;           /* entries, -1: never listed */
static int sr_ifc_fresh;            /* 1: up to date as far as the watch knows */
static unsigned long sr_ifc_ns;     /* netns inode of the list */
static int sr_watch_fd = -1;
static unsigned sr_watch_epoch;
static dev_t sr_watch_dev;
static ino_t sr_watch_ino;
static unsigned long sr_watch_ns;

/* The device thread's own network namespace, read once as it starts (0:
 * not that thread, or unknown). The thread never changes namespace, and
 * getifaddrs lists the calling thread's, so its lookups need no stat: two
 * per connection and end (the REP's RTR, a stream's hello), each a walk
 * to a /proc magic link of about 1 us, 2-4% of a connection's CPU. (It
 * used to compare the main thread's, /proc/self, and after a setns there
 * listed its own namespace under the other's inode.) */
static __thread unsigned long sr_ifc_fixed_ns;

static unsigned long sr_ifc_netns(void)
{
    if (sr_ifc_fixed_ns)
        return sr_ifc_fixed_ns;
    struct stat st;     /* stat needs no descriptor: works at the fd limit */
    return stat("/proc/self/ns/net", &st) ? 0ul : (unsigned long)st.st_ino;
}

void sr_ifc_thread_fixed(void)
{
    struct stat st;
    sr_ifc_fixed_ns = stat("/proc/thread-self/ns/net", &st) ? 0ul : (unsigned long)st.st_ino;
}

/* Is sr_watch_fd still the socket we opened? */
static int sr_watch_ours(void)
{
    struct stat st;
    return !fstat(sr_watch_fd, &st) && st.st_dev == sr_watch_dev && st.st_ino == sr_watch_ino;
}

static void sr_watch_drop(void)
{
    if (sr_watch_fd >= 0 && sr_watch_ours())
        sr_sys_close(sr_watch_fd);
    sr_watch_fd = -1;
}

static void sr_watch_open(unsigned long ns)
{
    int fd = sr_sys_socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return;
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
                              .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR };
    struct stat st;
    fd = sr_fd_internal(fd);
    if (syscall(SYS_bind, fd, (struct sockaddr *)&sa, sizeof sa) || fstat(fd, &st)) {
        sr_sys_close(fd);
        return;
    }
    sr_watch_fd = fd;
    sr_watch_dev = st.st_dev;
    sr_watch_ino = st.st_ino;
    sr_watch_ns = ns;
    sr_watch_epoch = sr_epoch;
}

/* 1 if nothing changed since the watch was last drained. Any news (or an
 * overflowed queue, or a watch that is gone) empties it and says 0. */
static int sr_watch_quiet(void)
{
    struct pollfd p = { .fd = sr_watch_fd, .events = POLLIN };
    struct timespec zero = { 0, 0 };
    if (syscall(SYS_ppoll, &p, 1, &zero, NULL, 8) == 0)
        return 1;
    if (!sr_watch_ours()) {
        sr_watch_fd = -1;
        return 0;
    }
    char buf[8192];
    for (int i = 0; i < SR_IFC_DRAIN_MAX; i++)
        if (syscall(SYS_recvfrom, sr_watch_fd, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL) < 0 &&
            errno != ENOBUFS && errno != EINTR)
            break;
    return 0;
}

static int sr_ifc_read(struct sr_ifaddr *out, int max)
{
    struct ifaddrs *ifa0, *ifa;
    int n = 0;
    if (getifaddrs(&ifa0))
        return -1;
    for (ifa = ifa0; ifa && n < max; ifa = ifa->ifa_next) {
        if (!ifa->ifa_addr || (ifa->ifa_addr->sa_family != AF_INET &&
                               ifa->ifa_addr->sa_family != AF_INET6))
            continue;
        struct sr_ifaddr *a = &out[n++];
        memset(a, 0, sizeof *a);
        snprintf(a->ifname, sizeof a->ifname, "%s", ifa->ifa_name);
        a->flags = ifa->ifa_flags;
        size_t len = ifa->ifa_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                          : sizeof(struct sockaddr_in);
        /* the netmask's sa_family is not always set: the address's is */
        memcpy(&a->addr, ifa->ifa_addr, len);
        if (ifa->ifa_netmask) {
            memcpy(&a->mask, ifa->ifa_netmask, len);
            a->mask.sin6_family = ifa->ifa_addr->sa_family;
        }
    }
    freeifaddrs(ifa0);
    return n;
}

/* Brings sr_ifc up to date (under sr_ifc_lock); 0, or -1 (errno) when the
 * list cannot be read and none of this namespace is at hand. */
static int sr_ifc_refresh(void)
{
    unsigned long ns = sr_ifc_netns();
    if (sr_watch_fd >= 0 && (sr_watch_epoch != sr_epoch || sr_watch_ns != ns)) {
        sr_watch_drop();
        sr_ifc_fresh = 0;
    }
    if (sr_watch_fd < 0) {
        sr_ifc_fresh = 0;
        sr_watch_open(ns);      /* before the dump: no change falls between */
    }
    if (sr_ifc_fresh && sr_ifc_ns == ns && sr_watch_fd >= 0 && sr_watch_quiet())
        return 0;
    struct sr_ifaddr fresh[SR_MAX_IFADDRS];
    int n = sr_ifc_read(fresh, SR_MAX_IFADDRS), e = errno;
    if (n >= 0) {
        memcpy(sr_ifc, fresh, (size_t)n * sizeof *fresh);
        sr_ifc_n = n;
        sr_ifc_ns = ns;
        sr_ifc_fresh = sr_watch_fd >= 0;
        return 0;
    }
    sr_ifc_fresh = 0;
    if (sr_ifc_n >= 0 && sr_ifc_ns == ns)
        return 0;
    sr_log("cannot list the host's interfaces (getifaddrs: %s) and none were listed "
           "before in this network namespace", strerror(e));
    errno = e;
    return -1;
}

/* Another thread may have held sr_ifc_lock, mid-update, at fork: the
 * child gets a fresh lock and lists again. Its copy of the watch socket
 * is dropped by the epoch check (sr_fork_child starts a new epoch). */
static void sr_ifc_after_fork(void)
{
    pthread_mutex_init(&sr_ifc_lock, NULL);
    sr_ifc_fresh = 0;
    sr_ifc_n = -1;
}

__attribute__((constructor)) static void sr_ifc_init(void)
{
    pthread_atfork(NULL, NULL, sr_ifc_after_fork);
}

/* One call that asks several questions of the list (rdma_resolve_addr:
 * the source address, its link, its port, the port space's namespace)
 * asks them of one look: the list is brought up to date at the first
 * question of the scope only, as a kernel resolves with one view of its
 * tables. Per thread; scopes nest. Each API call is its own scope, so a
 * change made before a call is seen by it, as before. */
static __thread int sr_ifc_scope;           /* depth */
static __thread int sr_ifc_scope_fresh;     /* refreshed in this scope */
static __thread unsigned long sr_ifc_scope_ns;

void sr_ifc_scope_begin(void)
{
    if (!sr_ifc_scope++)
        sr_ifc_scope_fresh = 0;
}

void sr_ifc_scope_end(void)
{
    sr_ifc_scope--;
}

unsigned long sr_ifc_netns_now(void)
{
    return sr_ifc_scope && sr_ifc_scope_fresh ? sr_ifc_scope_ns : sr_ifc_netns();
}

/* Lists once per namespace while descriptors are at hand (device open,
 * rdma_create_id), so that a later lookup at the descriptor limit has a
 * table to answer from; whether it is current is the lookup's business. */
void sr_ifc_prime(void)
{
    unsigned long ns = sr_ifc_netns();
    pthread_mutex_lock(&sr_ifc_lock);
    if (sr_ifc_n < 0 || sr_ifc_ns != ns || sr_watch_epoch != sr_epoch)
        sr_ifc_refresh();
    pthread_mutex_unlock(&sr_ifc_lock);
}

/* The kernel hands one notification to its subscribed sockets one after
 * the other: the link watch's reader (sr_link.c, the device thread) can
 * list the interfaces before this copy's watch has the news that woke it,
 * and would get the list from before the change, and no second wake-up
 * when this watch gets it. So the link watch says it had news. */
void sr_ifc_invalidate(void)
{
    pthread_mutex_lock(&sr_ifc_lock);
    sr_ifc_fresh = 0;
    pthread_mutex_unlock(&sr_ifc_lock);
}

int sr_ifaddrs(struct sr_ifaddr *out, int max)
{
    pthread_mutex_lock(&sr_ifc_lock);
    int n = 0;
    if (!sr_ifc_scope || !sr_ifc_scope_fresh) {
        n = sr_ifc_refresh();
        if (!n && sr_ifc_scope) {
            sr_ifc_scope_fresh = 1;
            sr_ifc_scope_ns = sr_ifc_ns;
        }
    }
    if (!n) {
        n = sr_ifc_n < max ? sr_ifc_n : max;
        memcpy(out, sr_ifc, (size_t)n * sizeof *out);
    }
    int e = errno;
    pthread_mutex_unlock(&sr_ifc_lock);
    errno = e;
    return n;
}
