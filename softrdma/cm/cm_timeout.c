/* softrdma librdmacm: handshake timeouts. An active side whose REQ gets
 * neither REP nor REJ, or a passive side whose REP gets no RTU, while the
 * peer process stays alive would wait forever; the IB CM gives up after
 * its REQ (or REP) retries and rdma_cm reports RDMA_CM_EVENT_UNREACHABLE
 * with status -ETIMEDOUT (IB_CM_REQ_ERROR / IB_CM_REP_ERROR in the
 * kernel's cma.c). Each waiting id holds a timerfd watched by the device
 * thread. */
#include "cm_internal.h"
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* The kernel's default: a CM response timeout of 2^20 x 4.096 us (about
 * 4.3 s) per try, 16 tries. */
#define CM_CONNECT_TIMEOUT_MS 68719

/* SOFTRDMA_CM_TIMEOUT_MS, read once under sr_lock (first connect). */
static int cm_timeout_value_ms(void)
{
    static int ms;     /* guarded by sr_lock; 0 until read */
    if (!ms) {
        ms = sr_env_int("SOFTRDMA_CM_TIMEOUT_MS", CM_CONNECT_TIMEOUT_MS);
        if (ms <= 0) {
            sr_log("SOFTRDMA_CM_TIMEOUT_MS=%d: must be > 0; using %d", ms, CM_CONNECT_TIMEOUT_MS);
            ms = CM_CONNECT_TIMEOUT_MS;
        }
    }
    return ms;
}

static void cm_timeout_cb(struct sr_watch *w, uint32_t events)
{
    struct cm_id *id = (struct cm_id *)((char *)w - offsetof(struct cm_id, timer));
    (void)events;
    cm_timeout_disarm(id);
    if (id->state == CM_CONNECTING) {
        sr_log("rdma_connect: no answer to the connection request within %d ms; unreachable",
               cm_timeout_value_ms());
        cm_conn_close(id);     /* the passive side sees its pending request go */
        id->state = CM_IDLE;
        cm_event_push(id, NULL, RDMA_CM_EVENT_UNREACHABLE, -ETIMEDOUT, NULL);
    } else if (id->state == CM_ACCEPTING) {
        sr_log("rdma_accept: the active side did not complete the connection within %d ms; unreachable",
               cm_timeout_value_ms());
        cm_conn_close(id);     /* the active side gets CONNECT_ERROR */
        cm_qp_error(id);
        id->state = CM_DISCONNECTED;
        cm_event_push(id, NULL, RDMA_CM_EVENT_UNREACHABLE, -ETIMEDOUT, NULL);
    }
}

void cm_timeout_arm(struct cm_id *id)
{
    cm_timeout_disarm(id);
    int ms = cm_timeout_value_ms();
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec t = { .it_value = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L } };
    if (fd >= 0 && timerfd_settime(fd, 0, &t, NULL)) {
        close(fd);
        fd = -1;
    }
    if (fd < 0 || sr_watch_add(&id->timer, fd, EPOLLIN, cm_timeout_cb)) {
        /* no timer: the connect still completes, it just cannot time out */
        sr_log("no CM handshake timer (%s); the handshake waits without a timeout",
               strerror(errno));
        id->timer.fd = -1;
    }
}

void cm_timeout_disarm(struct cm_id *id)
{
    if (id->timer.fd >= 0)
        sr_watch_del(&id->timer);
}
