/*
 * rs_resolve_fault.so - a test-only LD_PRELOAD in front of librdmacm that
 * makes address or route resolutions time out, as ARP or an SA path query
 * on a busy fabric can:
 *
 *   RS_FAULT_ADDR_TIMEOUTS=N   the first N rdma_resolve_addr calls of the
 *   RS_FAULT_ROUTE_TIMEOUTS=N  process (rdma_resolve_route calls) report
 *                              ADDR_ERROR (ROUTE_ERROR), status -ETIMEDOUT
 *
 * A faulted call returns 0 and its error event arrives once the timeout
 * the caller gave has passed, like a real resolution that gets no answer.
 * (The software device resolves locally at once; its own files are not
 * ours to change, so the fault is modelled here.) The event is made by a
 * timer thread that runs a real address resolution when the time is up
 * (it only re-resolves the same destination: the id stays in a state
 * from which the caller may retry either stage), and rdma_get_cm_event
 * turns that event into the error.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <rdma/rdma_cma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PENDING 16

struct pending {
    struct rdma_cm_id *id;
    enum rdma_cm_event_type as;  /* the error to report */
    int running;                 /* its timer thread has not ended */
    int fired;                   /* the real event is queued */
    int cancelled;               /* the id is gone */
    int timeout_ms;
    struct sockaddr_storage dst;
};

/* All below under `lock`. The timer thread holds it across its real
 * resolution, and rdma_destroy_id across the real destroy, so a timer
 * never touches a destroyed id. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pending pend[MAX_PENDING];
static int addr_faults = -1, route_faults = -1;      /* -1: not read yet */

static int (*real_resolve_addr)(struct rdma_cm_id *, struct sockaddr *, struct sockaddr *, int);
static int (*real_resolve_route)(struct rdma_cm_id *, int);
static int (*real_get_cm_event)(struct rdma_event_channel *, struct rdma_cm_event **);
static int (*real_destroy_id)(struct rdma_cm_id *);

static int env_count(const char *name)
{
    const char *v = getenv(name);
    return v ? atoi(v) : 0;
}

static void load_locked(void)
{
    if (addr_faults >= 0)
        return;
    addr_faults = env_count("RS_FAULT_ADDR_TIMEOUTS");
    route_faults = env_count("RS_FAULT_ROUTE_TIMEOUTS");
    real_resolve_addr = dlsym(RTLD_NEXT, "rdma_resolve_addr");
    real_resolve_route = dlsym(RTLD_NEXT, "rdma_resolve_route");
    real_get_cm_event = dlsym(RTLD_NEXT, "rdma_get_cm_event");
    real_destroy_id = dlsym(RTLD_NEXT, "rdma_destroy_id");
    if (!real_resolve_addr || !real_resolve_route || !real_get_cm_event || !real_destroy_id) {
        fprintf(stderr, "rs_resolve_fault: librdmacm symbols not found\n");
        abort();
    }
}

static void *timer_thread(void *arg)
{
    struct pending *p = arg;
    struct timespec t = { p->timeout_ms / 1000, (long)(p->timeout_ms % 1000) * 1000000L };
    nanosleep(&t, NULL);         /* the modelled resolution time itself */
    pthread_mutex_lock(&lock);
    if (p->cancelled || real_resolve_addr(p->id, NULL, (struct sockaddr *)&p->dst, 1000))
        p->id = NULL;            /* the slot is free again */
    else
        p->fired = 1;            /* free once rdma_get_cm_event took it */
    p->running = 0;
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* Arm a fault for `id`; lock held. 0, or -1 when no slot/thread. */
static int fault_locked(struct rdma_cm_id *id, enum rdma_cm_event_type as,
                        const struct sockaddr *dst, int timeout_ms)
{
    for (int i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &pend[i];
        if (p->id || p->running)
            continue;
        *p = (struct pending){ .id = id, .as = as, .timeout_ms = timeout_ms, .running = 1 };
        memcpy(&p->dst, dst, dst->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                         : sizeof(struct sockaddr_in));
        pthread_t th;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&th, &a, timer_thread, p);
        pthread_attr_destroy(&a);
        if (r) {
            p->id = NULL;
            p->running = 0;
            return -1;
        }
        fprintf(stderr, "rs_resolve_fault: %s resolution will time out after %d ms\n",
                as == RDMA_CM_EVENT_ADDR_ERROR ? "address" : "route", timeout_ms);
        return 0;
    }
    return -1;
}

int rdma_resolve_addr(struct rdma_cm_id *id, struct sockaddr *src, struct sockaddr *dst,
                      int timeout_ms)
{
    pthread_mutex_lock(&lock);
    load_locked();
    int faulted = addr_faults > 0 && !src && dst &&
                  fault_locked(id, RDMA_CM_EVENT_ADDR_ERROR, dst, timeout_ms) == 0;
    if (faulted)
        addr_faults--;
    pthread_mutex_unlock(&lock);
    return faulted ? 0 : real_resolve_addr(id, src, dst, timeout_ms);
}

int rdma_resolve_route(struct rdma_cm_id *id, int timeout_ms)
{
    pthread_mutex_lock(&lock);
    load_locked();
    int faulted = route_faults > 0 &&
                  fault_locked(id, RDMA_CM_EVENT_ROUTE_ERROR, &id->route.addr.dst_addr,
                               timeout_ms) == 0;
    if (faulted)
        route_faults--;
    pthread_mutex_unlock(&lock);
    return faulted ? 0 : real_resolve_route(id, timeout_ms);
}

int rdma_get_cm_event(struct rdma_event_channel *ch, struct rdma_cm_event **ev)
{
    pthread_mutex_lock(&lock);
    load_locked();
    pthread_mutex_unlock(&lock);
    int r = real_get_cm_event(ch, ev);
    if (r || (*ev)->event != RDMA_CM_EVENT_ADDR_RESOLVED)
        return r;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &pend[i];
        if (p->id == (*ev)->id && p->fired) {
            (*ev)->event = p->as;
            (*ev)->status = -ETIMEDOUT;
            p->id = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int rdma_destroy_id(struct rdma_cm_id *id)
{
    pthread_mutex_lock(&lock);
    load_locked();
    for (int i = 0; i < MAX_PENDING; i++)
        if (pend[i].id == id) {
            pend[i].cancelled = 1;   /* a running timer frees the slot */
            if (!pend[i].running)
                pend[i].id = NULL;
        }
    int r = real_destroy_id(id);
    pthread_mutex_unlock(&lock);
    return r;
}
