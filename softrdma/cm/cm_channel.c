/* softrdma librdmacm: event channels and the events queued on them. The
 * pollable fd is one eventfd in semaphore mode (one count per queued
 * event), which the device writes itself: one descriptor per channel, the
 * application's (it was a pipe, whose write end the device kept). */
#include "cm_internal.h"
#include "sr_sys.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* A count big enough to wake every thread blocked on the channel, small
 * enough never to overflow the eventfd (its limit is 2^64 - 2). */
#define CM_WAKE_ALL ((uint64_t)1 << 32)

/* Adds n counts to the channel's eventfd (sr_lock held); on the device
 * thread once it lets go of sr_lock (sr_wake.c). A write can fail only on
 * overflow, which one count per event never reaches. */
static void cm_channel_count(struct cm_channel *ch, uint64_t n)
{
    sr_wake_fd(ch->pub.fd, n);
}

/* Takes one count without blocking (the application's fd may be a
 * blocking one); 1 if there was one. Direct system calls: a preloaded
 * library's poll or read never sees the device's own bookkeeping. */
static int cm_channel_take(struct cm_channel *ch)
{
    struct pollfd p = { .fd = ch->pub.fd, .events = POLLIN };
    struct timespec now = { 0, 0 };
    uint64_t v;
    if (sr_wake_take(ch->pub.fd))
        return 1;               /* its count was not written yet */
    return syscall(SYS_ppoll, &p, 1, &now, NULL, 8) == 1 && (p.revents & POLLIN) &&
           sr_sys_read(ch->pub.fd, &v, sizeof v) == (ssize_t)sizeof v;
}

struct cm_channel *cm_channel_new(void)
{
    struct cm_channel *ch = calloc(1, sizeof *ch);
    if (!ch)
        return errno = ENOMEM, NULL;
    int fd = eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
    if (fd < 0) {
        int e = errno;      /* EMFILE/ENFILE as the caller's limit says, not ENOMEM */
        sr_log("rdma_create_event_channel: no eventfd: %s", strerror(e));
        free(ch);
        return errno = e, NULL;
    }
    ch->pub.fd = fd;                    /* the application's: stays low */
    ch->epoch = sr_epoch;
    return ch;
}

CM_API struct rdma_event_channel *rdma_create_event_channel(void)
{
    if (sr_nic_start())
        return NULL;
    struct cm_channel *ch = cm_channel_new();
    return ch ? &ch->pub : NULL;
}

/* The calling thread's id, asked of the kernel once per thread (every
 * event taken notes its reader). A forked child's thread has a new one. */
static __thread pid_t cm_tid;
static void cm_tid_after_fork(void) { cm_tid = 0; }
__attribute__((constructor)) static void cm_tid_init(void)
{
    pthread_atfork(NULL, NULL, cm_tid_after_fork);
}
static pid_t cm_gettid(void)
{
    if (!cm_tid)
        cm_tid = gettid();
    return cm_tid;
}

/* A thread that took events from a blocking channel and is not inside
 * rdma_get_cm_event now is between two calls: an event loop like rping's
 * CM thread, about to come back while the main thread tears down. */
static pid_t cm_late_reader(const struct cm_channel *ch)
{
    if (!ch->last_reader || ch->last_reader == cm_gettid())
        return 0;
    int fl = fcntl(ch->pub.fd, F_GETFL);
    return (fl >= 0 && !(fl & O_NONBLOCK)) ? ch->last_reader : 0;
}

/* With the kernel's rdma_cm an event thread blocked in read() on the
 * channel stays blocked once the channel is gone, and the process ends
 * with main(). The device's event bytes outlive its events, so a reader
 * may wake after the destroy: it parks the same way instead of failing
 * (rping exits with -1 from its CM thread on any error). Such a channel
 * keeps its memory and read end: a parked or late reader still uses them. */
CM_API void rdma_destroy_event_channel(struct rdma_event_channel *pub)
{
    struct cm_channel *ch = (struct cm_channel *)pub;
    if (!pub || sr_stale(ch->epoch, "rdma_destroy_event_channel"))
        return;
    pthread_mutex_lock(&sr_lock);
    if (ch->closed) {
        pthread_mutex_unlock(&sr_lock);
        sr_log("rdma_destroy_event_channel: channel (fd %d) already destroyed", pub->fd);
        return;
    }
    while (ch->head) {
        struct cm_event *e = ch->head;
        ch->head = e->next;
        free(e);
    }
    ch->tail = NULL;
    /* before readers is looked at: a reader entering now either is
     * counted below or sees closed (cm_reader_enter) */
    __atomic_store_n(&ch->closed, 1, __ATOMIC_SEQ_CST);
    ch->late_reader = cm_late_reader(ch);
    sr_wake_forget(pub->fd);           /* its events are gone, and so their counts */
    uint64_t all = CM_WAKE_ALL;        /* readers blocked in read() wake, see closed: */
    if (sr_sys_write(pub->fd, &all, sizeof all) != (ssize_t)sizeof all)  /* now, before any close */
        sr_log("CM event channel %d: cannot wake its readers: %s", pub->fd, strerror(errno));
    if (!__atomic_load_n(&ch->readers, __ATOMIC_SEQ_CST) && !ch->late_reader) {
        close(pub->fd);
        sr_defer_free(ch);
    }
    pthread_mutex_unlock(&sr_lock);
}

/* A sync id's private channel: only calls on that id read it, so no
 * event thread can come back to it. */
void cm_channel_destroy_private(struct rdma_event_channel *pub)
{
    pthread_mutex_lock(&sr_lock);
    ((struct cm_channel *)pub)->last_reader = 0;
    pthread_mutex_unlock(&sr_lock);
    rdma_destroy_event_channel(pub);
}

void cm_event_push(struct cm_id *id, struct rdma_cm_id *listen, enum rdma_cm_event_type type,
                   int status, const struct cm_msg *m)
{
    struct cm_channel *ch = (struct cm_channel *)(listen ? listen->channel : id->pub.channel);
    struct cm_event *e = calloc(1, sizeof *e);
    if (!e || !ch) {
        sr_log("CM event %s lost: out of memory", rdma_event_str(type));
        free(e);
        return;
    }
    if (ch->closed) {               /* nobody can read it any more */
        free(e);
        return;
    }
    e->pub.id = &id->pub;
    e->pub.listen_id = listen;
    e->pub.event = type;
    e->pub.status = status;
    if (m && id->pub.qp_type == IBV_QPT_UD) {
        memcpy(e->pdata, m->pdata, m->pdata_len);
        cm_ud_event_param(id, &e->pub.param.ud, m, e->pdata);
    } else if (m) {
        struct rdma_conn_param *c = &e->pub.param.conn;
        memcpy(e->pdata, m->pdata, m->pdata_len);
        c->private_data = m->pdata_len ? e->pdata : NULL;
        c->private_data_len = m->pdata_len;
        c->responder_resources = m->responder_resources;
        c->initiator_depth = m->initiator_depth;
        c->flow_control = m->flow_control;
        c->retry_count = m->retry_count;
        c->rnr_retry_count = m->rnr_retry_count;
        c->srq = m->srq;
        c->qp_num = m->qpn;
    }
    if (ch->tail)
        ch->tail->next = e;
    else
        ch->head = e;
    ch->tail = e;
    cm_channel_count(ch, 1);
}

void cm_push_disconnected(struct cm_id *id)
{
    cm_event_push(id, NULL, RDMA_CM_EVENT_DISCONNECTED, 0, NULL);
    if (id->pub.qp)
        cm_event_push(id, NULL, RDMA_CM_EVENT_TIMEWAIT_EXIT, 0, NULL);
}

/* With no reader inside rdma_get_cm_event, each queued event's count is
 * still in the eventfd (counts are added under sr_lock, and only readers
 * take them): dead events and their counts go now, so the channel fd is
 * not left readable with nothing to read (the kernel drops a destroyed
 * id's events the same way). With a reader in flight, one of those counts
 * may be its own: dead events stay queued and readers skip them. */
static void cm_events_reap(struct cm_channel *ch)
{
    if (__atomic_load_n(&ch->readers, __ATOMIC_SEQ_CST) || ch->closed)
        return;
    struct cm_event **pp = &ch->head, *last = NULL;
    while (*pp) {
        struct cm_event *e = *pp;
        if (e->dead && cm_channel_take(ch)) {
            *pp = e->next;
            free(e);
            continue;
        }
        last = e;
        pp = &e->next;
    }
    ch->tail = last;
}

/* Marks the id's queued events dead and reaps them when it can (see
 * cm_events_reap); readers skip the rest. A connection request nobody
 * will see is dropped, which the active side sees as a connect error. */
void cm_events_forget(struct cm_id *id)
{
    struct cm_channel *ch = (struct cm_channel *)id->pub.channel;
    if (!ch || id->sync)
        return;     /* a private channel goes away with its events */
    for (struct cm_event *e = ch->head; e; e = e->next) {
        if (e->dead)
            continue;
        if (e->pub.listen_id == &id->pub && e->pub.event == RDMA_CM_EVENT_CONNECT_REQUEST) {
            struct cm_id *child = cm_of(e->pub.id);
            cm_conn_close(child);
            child->epoch = 0;
            sr_defer_free(child);
            e->dead = 1;
        } else if (e->pub.id == &id->pub) {
            e->dead = 1;
        }
    }
    cm_events_reap(ch);
}

/* A reader of a destroyed channel waits for the process to end (see
 * rdma_destroy_event_channel). */
static void cm_park_reader(void)
{
    for (;;)
        pause();
}

/* Next live event, or NULL (errno) if the read failed. Each event has one
 * count in the eventfd, so a blocking reader sleeps in read() until the
 * next; a destroy adds CM_WAKE_ALL counts and readers find it closed. */
static struct cm_event *cm_next_event(struct cm_channel *ch)
{
    for (;;) {
        uint64_t v;
        ssize_t n = read(ch->pub.fd, &v, sizeof v);
        if (n != (ssize_t)sizeof v)
            return NULL;
        pthread_mutex_lock(&sr_lock);
        if (ch->closed) {
            pthread_mutex_unlock(&sr_lock);
            cm_park_reader();       /* destroyed after our read() returned */
        }
        struct cm_event *e = ch->head;
        if (e) {
            ch->head = e->next;
            if (!ch->head)
                ch->tail = NULL;
            if (!e->dead) {
                cm_of(e->pub.id)->events_out++;
                ch->last_reader = cm_gettid();
            }
        }
        pthread_mutex_unlock(&sr_lock);
        if (!e) {
            errno = EAGAIN;
            return NULL;
        }
        if (!e->dead)
            return e;
        free(e);
    }
}

/* Counts the caller in as a reader, or handles a destroyed channel: the
 * late event thread parks, anybody else gets EBADF. Without sr_lock: an
 * event loop calls rdma_get_cm_event on a non-blocking channel at every
 * turn, mostly to find nothing, and took sr_lock twice for that, often
 * while the device thread held it (a futex wait and wake each time, the
 * larger part of a passive end's lock contention per connection). The
 * count and the destroy's closed flag are ordered (seq_cst) so that the
 * destroy either sees this reader or the reader sees closed. */
static int cm_reader_enter(struct cm_channel *ch)
{
    __atomic_add_fetch(&ch->readers, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&ch->closed, __ATOMIC_SEQ_CST))
        return 0;
    __atomic_sub_fetch(&ch->readers, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&sr_lock);
    int late = ch->late_reader == cm_gettid();
    pthread_mutex_unlock(&sr_lock);
    if (late)
        cm_park_reader();
    sr_log("rdma_get_cm_event: the event channel (fd %d) was destroyed", ch->pub.fd);
    errno = EBADF;
    return -1;
}

/* (The thread that took an event is noted by cm_next_event.) */
static void cm_reader_leave(struct cm_channel *ch)
{
    __atomic_sub_fetch(&ch->readers, 1, __ATOMIC_SEQ_CST);
}

CM_API int rdma_get_cm_event(struct rdma_event_channel *pub, struct rdma_cm_event **event)
{
    struct cm_channel *ch = (struct cm_channel *)pub;
    if (!pub || !event) {
        errno = EINVAL;
        return -1;
    }
    if (sr_stale(ch->epoch, "rdma_get_cm_event") || cm_reader_enter(ch))
        return -1;
    struct cm_event *e = cm_next_event(ch);
    cm_reader_leave(ch);
    if (!e)
        return -1;
    *event = &e->pub;
    return 0;
}

/* An id destroyed while the user still held its events is freed here, at
 * the last ack, so the event's id pointer stays valid until then. */
CM_API int rdma_ack_cm_event(struct rdma_cm_event *event)
{
    if (!event) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&sr_lock);
    struct cm_id *id = cm_of(event->id);
    if (id && id->events_out > 0 && --id->events_out == 0 && id->destroyed)
        sr_defer_free(id);
    pthread_mutex_unlock(&sr_lock);
    free(event);
    return 0;
}

int cm_sync_wait(struct cm_id *id, enum rdma_cm_event_type want)
{
    struct rdma_cm_event *e;
    if (id->pub.event) {
        rdma_ack_cm_event(id->pub.event);
        id->pub.event = NULL;
    }
    if (rdma_get_cm_event(id->pub.channel, &e))
        return -1;
    id->pub.event = e;
    if (e->event == want && !e->status)
        return 0;
    switch (e->event) {
    case RDMA_CM_EVENT_REJECTED: errno = ECONNREFUSED; break;
    case RDMA_CM_EVENT_UNREACHABLE: errno = EHOSTUNREACH; break;
    case RDMA_CM_EVENT_ADDR_ERROR: errno = EADDRNOTAVAIL; break;
    default: errno = e->status < 0 ? -e->status : ECONNRESET; break;
    }
    return -1;
}

CM_API const char *rdma_event_str(enum rdma_cm_event_type event)
{
    static const char *const n[] = {
        "RDMA_CM_EVENT_ADDR_RESOLVED", "RDMA_CM_EVENT_ADDR_ERROR",
        "RDMA_CM_EVENT_ROUTE_RESOLVED", "RDMA_CM_EVENT_ROUTE_ERROR",
        "RDMA_CM_EVENT_CONNECT_REQUEST", "RDMA_CM_EVENT_CONNECT_RESPONSE",
        "RDMA_CM_EVENT_CONNECT_ERROR", "RDMA_CM_EVENT_UNREACHABLE",
        "RDMA_CM_EVENT_REJECTED", "RDMA_CM_EVENT_ESTABLISHED",
        "RDMA_CM_EVENT_DISCONNECTED", "RDMA_CM_EVENT_DEVICE_REMOVAL",
        "RDMA_CM_EVENT_MULTICAST_JOIN", "RDMA_CM_EVENT_MULTICAST_ERROR",
        "RDMA_CM_EVENT_ADDR_CHANGE", "RDMA_CM_EVENT_TIMEWAIT_EXIT",
    };
    return (unsigned)event < sizeof n / sizeof n[0] ? n[event] : "UNKNOWN EVENT";
}
