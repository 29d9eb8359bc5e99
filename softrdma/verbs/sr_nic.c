/* softrdma: the device thread, standing in for the NIC's hardware.
 * It owns an epoll set of stream fds (QP streams, CM connections, the
 * device's own listening socket) and runs their callbacks with sr_lock
 * held, so data lands in registered memory without the application. */
#include "sr_internal.h"
#include <malloc.h>
#include "sr_sys.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Guarded by sr_lock. */
static int sr_epfd = -1;
static unsigned sr_nic_epoch;
static struct sr_watch sr_listen_w;
static char sr_path[108];
void sr_nic_forget(void);
/* Watches to call again without an epoll event (sr_watch_again), FIFO,
 * and an eventfd that wakes the device thread when the first is queued
 * by another thread. Guarded by sr_lock. */
static struct sr_watch *sr_again_head, *sr_again_tail;
static struct sr_watch sr_wake_w = { .fd = -1 };
/* Objects released during a batch; freed when the batch ends (a later
 * event of the same batch may still point at them). Guarded by sr_lock. */
static struct sr_grave { void (*fn)(void *); void *p; } *sr_graveyard;
static size_t sr_grave_n, sr_grave_cap;

void sr_defer_call(void (*fn)(void *), void *p)
{
    if (!p)
        return;
    if (sr_grave_n == sr_grave_cap) {
        size_t cap = sr_grave_cap ? sr_grave_cap * 2 : 64;
        struct sr_grave *g = realloc(sr_graveyard, cap * sizeof *g);
        if (!g)
            return;     /* leak rather than risk a use after free */
        sr_graveyard = g;
        sr_grave_cap = cap;
    }
    sr_graveyard[sr_grave_n++] = (struct sr_grave){ fn, p };
}

void sr_defer_free(void *p)
{
    sr_defer_call(free, p);
}

/* Frees since the heap was last given back, and when the last came
 * (device thread only). */
static size_t sr_grave_untrimmed;
static uint64_t sr_grave_last_ms;
#define SR_TRIM_BATCH 256
#define SR_TRIM_QUIET_MS 200

/* Returns 1 when the heap should be given back to the system now: the
 * frees of a burst of closed QPs have stopped (none for SR_TRIM_QUIET_MS;
 * the thread wakes at least every 100 ms), or many piled up. glibc keeps
 * freed memory in its arenas until malloc_trim; the application's own
 * frees are trimmed by the engine (rs_sock.c), but these come later, on
 * this thread. It used to trim at the first round that freed nothing,
 * which under one connection per request was nearly every connection: a
 * malloc_trim walking the arenas, its madvise calls and the page faults
 * of the next connection's allocations. */
static int sr_graveyard_empty(void)
{
    size_t n = sr_grave_n;
    for (size_t i = 0; i < n; i++)
        sr_graveyard[i].fn(sr_graveyard[i].p);
    sr_grave_n = 0;
    uint64_t now = sr_now_ms();
    if (n) {
        sr_grave_untrimmed += n;
        sr_grave_last_ms = now;
    }
    if (sr_grave_untrimmed == 0 ||
        (sr_grave_untrimmed < SR_TRIM_BATCH && now - sr_grave_last_ms < SR_TRIM_QUIET_MS))
        return 0;
    sr_grave_untrimmed = 0;
    return 1;
}

uint64_t sr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *sr_nic_path(void) { return sr_path; }

int sr_watch_add(struct sr_watch *w, int fd, uint32_t events, sr_watch_cb cb)
{
    struct epoll_event ev = { .events = events, .data.ptr = w };
    w->fd = fd = sr_fd_internal(fd);
    w->events = events;
    w->cb = cb;
    if (sr_sys_epoll_ctl(sr_epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
        return 0;
    int e = errno;
    sr_sys_close(fd);
    w->fd = -1;
    errno = e;
    return -1;
}

void sr_watch_mod(struct sr_watch *w, uint32_t events)
{
    if (w->events == events)
        return;
    struct epoll_event ev = { .events = events, .data.ptr = w };
    w->events = events;
    sr_sys_epoll_ctl(sr_epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

static void sr_again_unlink(struct sr_watch *w)
{
    struct sr_watch *prev = NULL;
    for (struct sr_watch *p = sr_again_head; p; prev = p, p = p->again_next) {
        if (p != w)
            continue;
        if (prev)
            prev->again_next = p->again_next;
        else
            sr_again_head = p->again_next;
        if (sr_again_tail == p)
            sr_again_tail = prev;
        break;
    }
    w->again = 0;
    w->again_next = NULL;
}

void sr_watch_again(struct sr_watch *w)
{
    if (w->again || w->fd < 0)
        return;
    w->again = 1;
    w->again_next = NULL;
    int was_empty = !sr_again_head;
    if (sr_again_tail)
        sr_again_tail->again_next = w;
    else
        sr_again_head = w;
    sr_again_tail = w;
    if (was_empty && sr_wake_w.fd >= 0) {
        /* the device thread may sleep in epoll_wait with a 100 ms timeout */
        uint64_t one = 1;
        if (sr_sys_write(sr_wake_w.fd, &one, sizeof one) < 0) {
            /* counter full: a wake-up is pending anyway */
        }
    }
}

/* Runs the watches queued before this call (those queued meanwhile wait
 * for the next round, so a watch re-queuing itself cannot spin here).
 * Returns 1 if some are still queued. */
static int sr_again_run(void)
{
    int n = 0;
    for (struct sr_watch *p = sr_again_head; p; p = p->again_next)
        n++;
    while (n-- > 0 && sr_again_head) {
        struct sr_watch *w = sr_again_head;
        sr_again_unlink(w);
        if (w->fd >= 0 && w->cb)
            w->cb(w, 0);
    }
    return sr_again_head != NULL;
}

static void sr_wake_cb(struct sr_watch *w, uint32_t events)
{
    (void)events;
    uint64_t v;
    if (sr_sys_read(w->fd, &v, sizeof v) < 0) {
        /* EAGAIN: another thread's progress call took it */
    }
}

void sr_watch_del(struct sr_watch *w)
{
    if (w->again)
        sr_again_unlink(w);
    if (w->fd < 0)
        return;
    sr_sys_epoll_ctl(sr_epfd, EPOLL_CTL_DEL, w->fd, NULL);
    sr_sys_close(w->fd);
    w->fd = -1;
}

/* At the descriptor limit a peer's stream cannot be accepted, and the
 * listener stays readable: level-triggered epoll would spin the device
 * thread. The listener is left unwatched for SR_ACCEPT_BACKOFF_MS instead
 * (one line per episode); the peer's stream waits in the backlog, its
 * requests held as by a slow NIC, until a descriptor is free. Guarded by
 * sr_lock. */
#define SR_ACCEPT_BACKOFF_MS 100
static uint64_t sr_accept_retry_at;
static int sr_accept_starved;

static void sr_listen_cb(struct sr_watch *w, uint32_t events)
{
    /* one per epoll wake-up (level-triggered: more come back next round),
     * so that a lone peer's stream is not followed by an accept finding
     * nothing; all there is, up to the bound, when called otherwise */
    for (int i = 0; i < (events ? 1 : 64); i++) {
        int fd = sr_sys_accept4(w->fd, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (!sr_errno_is_shortage(e))
                return;
            if (!sr_accept_starved++)
                sr_log("cannot accept a peer's stream: %s; retrying every %d ms",
                       strerror(e), SR_ACCEPT_BACKOFF_MS);
            sr_watch_mod(w, 0);
            sr_accept_retry_at = sr_now_ms() + SR_ACCEPT_BACKOFF_MS;
            return;
        }
        sr_accept_starved = 0;
        sr_resp_accept(fd);
    }
}

/* Watches the listener again once the back-off is over; shortens the
 * device thread's sleep to it. */
static void sr_accept_timer(uint64_t now, int *timeout)
{
    if (!sr_accept_retry_at)
        return;
    if (now >= sr_accept_retry_at) {
        sr_accept_retry_at = 0;
        sr_watch_mod(&sr_listen_w, EPOLLIN);
        return;
    }
    int left = (int)(sr_accept_retry_at - now);
    if (left < *timeout)
        *timeout = left;
}

/* librdmacm's timer list (sr_nic_set_timers); written under sr_lock. */
static void (*sr_cm_timers)(uint64_t now, int *timeout);

void sr_nic_set_timers(void (*fn)(uint64_t now, int *timeout))
{
    sr_cm_timers = fn;
}

/* Runs the callbacks of a batch of events; sr_lock held. */
static void sr_nic_dispatch(struct epoll_event *evs, int n)
{
    for (int i = 0; i < n; i++) {
        struct sr_watch *w = evs[i].data.ptr;
        /* a callback may have closed a later watch of this batch */
        if (w->fd >= 0 && w->cb)
            w->cb(w, evs[i].events);
    }
}

/* Called by an application thread that polls an empty CQ: if the device
 * is idle (sr_lock free), it handles what has already arrived, so that a
 * busy-polling program does not wait for the device thread to be
 * scheduled. Never blocks: trylock and a zero-timeout epoll_wait. Only the
 * device thread empties the graveyard (it may hold events of objects freed
 * here, collected before it took the lock). */
void sr_nic_progress(void)
{
    struct epoll_event evs[16];
    if (sr_epfd < 0 || !sr_knobs.poll_progress || pthread_mutex_trylock(&sr_lock))
        return;
    if (sr_nic_epoch == sr_epoch) {
        int n = sr_sys_epoll_wait(sr_epfd, evs, 16, 0);
        if (n > 0)
            sr_nic_dispatch(evs, n);
    }
    pthread_mutex_unlock(&sr_lock);
}

/* Posted by the device thread once it has its own root (sr_reach.c):
 * sr_nic_start waits for it, so no chroot of the caller after the device
 * started can come first. */
static sem_t sr_nic_rooted;

/* Bounded: a thread that is not scheduled within 2 s only loses the
 * guarantee for a chroot made meanwhile. */
static void sr_nic_wait_rooted(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 2;
    while (sem_timedwait(&sr_nic_rooted, &ts) && errno == EINTR)
        ;
}

/* Tests only (sr_test_device_pause, found with dlsym): the device thread
 * handles nothing while paused, as when the scheduler does not run it on
 * a loaded host, but it still stamps the process alive (a stopped process
 * is another case). Guarded by sr_lock. */
static int sr_nic_paused;
static pthread_cond_t sr_nic_pause_cv = PTHREAD_COND_INITIALIZER;

/* On return the device thread is not in a round and starts none (on) or
 * runs again (off). */
SR_API void sr_test_device_pause(int on)
{
    pthread_mutex_lock(&sr_lock);
    sr_nic_paused = on;
    if (!on)
        pthread_cond_broadcast(&sr_nic_pause_cv);
    pthread_mutex_unlock(&sr_lock);
}

/* sr_lock held; returns once not paused (the events of the round are
 * dropped by the caller: level-triggered, they come again). */
static int sr_nic_hold(void)
{
    if (!sr_nic_paused)
        return 0;
    while (sr_nic_paused) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&sr_nic_pause_cv, &sr_lock, &ts);
        struct sr_seg_hdr *seg = sr_seg();
        if (seg)
            __atomic_store_n(&seg->alive_ms, sr_now_ms(), __ATOMIC_RELAXED);
    }
    return 1;
}

static void *sr_nic_main(void *arg)
{
    unsigned epoch = (unsigned)(uintptr_t)arg;
    struct epoll_event evs[64];
    int timeout = 100;
    sr_reach_thread_start(epoch);
    sr_ifc_thread_fixed();
    sem_post(&sr_nic_rooted);
    for (;;) {
        int n = sr_sys_epoll_wait(sr_epfd, evs, 64, timeout);
        struct sr_seg_hdr *seg = sr_seg();
        if (seg)
            __atomic_store_n(&seg->alive_ms, sr_now_ms(), __ATOMIC_RELAXED);
        pthread_mutex_lock(&sr_lock);
        if (epoch != sr_epoch) {
            pthread_mutex_unlock(&sr_lock);
            return NULL;
        }
        if (sr_nic_hold()) {
            pthread_mutex_unlock(&sr_lock);
            timeout = 0;
            continue;
        }
        sr_wake_defer_begin();
        sr_nic_dispatch(evs, n);
        timeout = sr_again_run() ? 0 : 100;
        sr_resp_timers(sr_now_ms(), &timeout);
        sr_link_timers(sr_now_ms(), &timeout);
        sr_req_timers(sr_now_ms(), &timeout);
        sr_accept_timer(sr_now_ms(), &timeout);
        if (sr_cm_timers)
            sr_cm_timers(sr_now_ms(), &timeout);
        int trim = sr_graveyard_empty();
        pthread_mutex_unlock(&sr_lock);
        sr_wake_defer_end();            /* the woken threads find sr_lock free */
        if (trim)
            malloc_trim(0);
    }
    return NULL;
}

static int sr_listen_socket(void)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/nic", sr_fabric_dir());
    if (sr_mkdir_p(dir)) {
        sr_log("cannot create fabric directory %s: %s", dir, strerror(errno));
        return -1;
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%d.%u", dir, (int)getpid(), sr_epoch);
    if (n >= (int)sizeof sa.sun_path) {
        sr_log("SOFTRDMA_FABRIC path too long: %s", dir);
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(sa.sun_path);
    int fd = sr_sys_socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 512)) {
        sr_log("cannot listen on %s: %s", sa.sun_path, strerror(errno));
        if (fd >= 0)
            sr_sys_close(fd);
        return -1;
    }
    sr_fabric_share(sa.sun_path);   /* peers of every user connect to it */
    snprintf(sr_path, sizeof sr_path, "%s", sa.sun_path);
    return fd;
}

/* The NIC's name goes at the very end of the process: a library
 * destructor runs after every atexit handler, and those may still close
 * connections gracefully (an exiting program's close of stdout, the
 * framework's exit handler). A peer's QP whose stream is closed while idle
 * reopens it through this name to deliver what cannot go directly (a
 * credit update the exiting side has no receive posted for): had the name
 * gone first (an atexit handler registered at device start runs before
 * those registered earlier), the peer would get ENOENT and fail the send
 * with RETRY_EXC_ERR while the exiting side was still closing (one of the
 * two causes of rsfw.sem_anchor accept_fork_exec's ECONNRESET instead of
 * EOF: doc/softrdma.md "Streams open only while used"). */
__attribute__((destructor)) static void sr_nic_cleanup(void)
{
    if (sr_path[0] && sr_nic_epoch == sr_epoch) {
        /* the QP number blocks name this NIC: they go with it (a block
         * left behind is taken over by the next claimer, as its owner is
         * gone); not while another thread is inside the device */
        if (!pthread_mutex_trylock(&sr_lock)) {
            sr_qpn_release_all();
            pthread_mutex_unlock(&sr_lock);
        }
        unlink(sr_path);
    }
}

/* Starts the device thread of this process (epoch) once. */
int sr_nic_start(void)
{
    int rc = 0;
    pthread_mutex_lock(&sr_lock);
    if (sr_epfd >= 0 && sr_nic_epoch == sr_epoch)
        goto out;
    sr_epfd = sr_fd_internal(sr_sys_epoll_create1(EPOLL_CLOEXEC));
    int lfd = sr_epfd >= 0 ? sr_listen_socket() : -1;
    if (lfd < 0) {
        /* the next call tries again from scratch: no epoll fd left behind */
        if (sr_epfd >= 0)
            sr_sys_close(sr_epfd);
        sr_epfd = -1;
        rc = -1;
        goto out;
    }
    sr_nic_epoch = sr_epoch;
    sr_knobs.delay_ms = sr_env_int("SOFTRDMA_DELAY_MS", 0);
    sr_knobs.drop_after = sr_env_int("SOFTRDMA_DROP_AFTER", 0);
    sr_knobs.force_rnr = sr_env_int("SOFTRDMA_FORCE_RNR", 0);
    sr_knobs.poll_progress = sr_env_int("SOFTRDMA_POLL_PROGRESS", 0);
    sr_knobs.ack_delay_ms = sr_env_int("SOFTRDMA_ACK_DELAY_MS", 0);
    sr_knobs.strict_wq = sr_env_int("SOFTRDMA_STRICT_SQ", 1);
    sr_knobs.odp = sr_env_int("SOFTRDMA_ODP", 1);
    sr_knobs.idle_close = sr_env_int("SOFTRDMA_IDLE_CLOSE", 2);   /* 1: not where it may chroot (sr_reach.c) */
    sr_watch_add(&sr_listen_w, lfd, EPOLLIN, sr_listen_cb);
    sr_wake_w.fd = -1;
    int wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wfd < 0 || sr_watch_add(&sr_wake_w, wfd, EPOLLIN, sr_wake_cb))
        sr_log("cannot create the device's wake-up eventfd: %s", strerror(errno));
    sr_link_watch_open();       /* link state of connections (sr_link.c) */
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    sem_init(&sr_nic_rooted, 0, 0);
    int e = pthread_create(&t, &a, sr_nic_main, (void *)(uintptr_t)sr_epoch);
    pthread_attr_destroy(&a);
    if (!e)
        sr_nic_wait_rooted();
    if (e) {
        /* e.g. RLIMIT_NPROC 0 as an unprivileged user: undo it all, so that
         * this call and the next fail cleanly instead of leaving a device
         * that looks started but that no thread ever runs */
        sr_log("cannot start the device thread: %s", strerror(e));
        unlink(sr_path);
        sr_nic_forget();
        errno = EAGAIN;
        rc = -1;
        goto out;
    }
out:
    pthread_mutex_unlock(&sr_lock);
    return rc;
}

/* In a forked child: the parent's epoll set and sockets are not ours. */
void sr_nic_forget(void)
{
    if (sr_epfd >= 0)
        sr_sys_close(sr_epfd);
    if (sr_listen_w.fd > 0)
        sr_sys_close(sr_listen_w.fd);
    if (sr_wake_w.fd >= 0)
        sr_sys_close(sr_wake_w.fd);
    sr_wake_w.fd = -1;
    sr_again_head = sr_again_tail = NULL;
    sr_epfd = -1;
    sr_path[0] = 0;
}
