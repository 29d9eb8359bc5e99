/* softrdma: link state of established RC connections.
 *
 * A QP's path runs over the interface that carries its port (the local
 * address rdma_cm bound it to) at each end. Hardware stops delivering when
 * either end's interface is down or gone: the requester retries for
 * retry_cnt+1 local ACK timeouts and then completes with RETRY_EXC_ERR, or
 * carries on, nothing lost, when the link returns in time.
 *
 * Each process watches its own interfaces (it lives in its own network
 * namespace and cannot see the peer's) and publishes, per QP, one word in
 * the QP's shared block: link_down. The peer's sender reads that word in
 * the peer's segment it already maps, so it learns about the far end's link
 * without a system call and without knowing the far end's namespace.
 *
 * - Knowing the state: the device thread keeps one NETLINK_ROUTE socket
 *   subscribed to RTMGRP_LINK in its epoll set (opened when the device
 *   starts, while descriptors are at hand). On any news it lists the
 *   interfaces again (sr_ifaddrs, told to: its own watch has the same news,
 *   but perhaps not yet) and rewrites link_down of every
 *   connected QP: set when the QP's interface is down, has no carrier
 *   (IFF_RUNNING: a veth whose peer is down or deleted) or is gone (deleted
 *   with its namespace). No system call on the data path: sr_req_kick
 *   reads two words (its own block's and the peer's).
 * - Requester: while either word is set nothing is sent (neither directly
 *   nor by stream); the first held request starts the retry budget,
 *   (retry_cnt+1) x 4.096 us << timeout (at least 10 ms per try; timeout 0
 *   waits forever). Link back in time: the held requests go, in order.
 *   Budget spent: the head WR completes RETRY_EXC_ERR, the QP goes to ERR,
 *   the rest are flushed (sr_link_timers, from the device thread).
 * - Responder: a request arriving by stream while its own link is down is
 *   held as one to a QP not yet in RTR (sr_responder.c), with the
 *   requester's budget from the request header: executed when the link
 *   returns, else answered with a RETRY_EXC_ERR NAK. Nothing lands in
 *   memory while the port is down.
 *
 * Everything here is guarded by sr_lock. */
#include "sr_internal.h"
#include "sr_sys.h"
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/epoll.h>

#define SR_LINK_STEP_MS 10          /* as the responder's retry step */
#define SR_LINK_DRAIN_MAX 64

static struct sr_watch sr_link_w = { .fd = -1 };
static unsigned sr_link_epoch;
static int sr_link_nheld;           /* QPs with held_since set */


/* Up and with carrier: listed, IFF_UP and IFF_RUNNING. */
static int sr_link_if_up(const struct sr_ifaddr *a, int n, const char *ifname)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(a[i].ifname, ifname))
            return (a[i].flags & IFF_UP) && (a[i].flags & IFF_RUNNING);
    return 0;
}

static int sr_link_tracked(const struct sr_qp *qp)
{
    return qp->epoch == sr_epoch && !qp->ud && qp->link_if[0] &&
           qp->pub.state != IBV_QPS_RESET && qp->pub.state != IBV_QPS_INIT;
}

/* One line per interface and change, however many QPs use it. */
static void sr_link_note(char (*seen)[32], int *nseen, const char *ifname, uint32_t down)
{
    for (int i = 0; i < *nseen; i++)
        if (!strcmp(seen[i], ifname))
            return;
    if (*nseen < SR_MAX_PORTS)
        memcpy(seen[(*nseen)++], ifname, 32);
    sr_log("interface %s %s", ifname, down ? "down: connections over it hold their sends and retry"
                                             : "up again: connections over it resume");
}

/* Rewrites link_down of every connected QP from a fresh list. */
static void sr_link_update_all(void)
{
    struct sr_ifaddr a[SR_MAX_IFADDRS];
    char seen[SR_MAX_PORTS][32];
    int n = sr_ifaddrs(a, SR_MAX_IFADDRS), nseen = 0;
    if (n < 0)
        return;         /* cannot tell: leave the words as they are */
    for (struct sr_qp *q = sr_qp_all(); q; q = q->next) {
        if (!sr_link_tracked(q))
            continue;
        uint32_t down = !sr_link_if_up(a, n, q->link_if);
        uint32_t was = __atomic_exchange_n(&q->s->link_down, down, __ATOMIC_RELEASE);
        if (was != down)
            sr_link_note(seen, &nseen, q->link_if, down);
        if (!down && q->in && q->in->stalled)
            sr_resp_resume(q->in);      /* held requests of the peer */
    }
}

static void sr_link_cb(struct sr_watch *w, uint32_t events)
{
    (void)events;
    char buf[8192];
    for (int i = 0; i < SR_LINK_DRAIN_MAX; i++)
        if (syscall(SYS_recvfrom, w->fd, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL) < 0 &&
            errno != ENOBUFS && errno != EINTR)
            break;
    sr_ifc_invalidate();        /* the address copy's own watch may lag ours */
    sr_link_update_all();
    /* held requesters: their own timers run sr_link_timers; a link back
     * up lets them go at once */
    if (sr_link_nheld)
        sr_link_timers(sr_now_ms(), &(int){ 0 });
}

/* The device thread's link watch, once per process (epoch): opened when
 * the device starts (sr_nic_start), while descriptors are at hand. */
void sr_link_watch_open(void)
{
    if (sr_link_w.fd >= 0 && sr_link_epoch == sr_epoch)
        return;
    if (sr_link_epoch != sr_epoch) {
        /* a forked child: the parent's socket is not watched here */
        if (sr_link_w.fd >= 0)
            sr_sys_close(sr_link_w.fd);
        sr_link_w.fd = -1;
        sr_link_nheld = 0;
    }
    int fd = sr_sys_socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
                              .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR };
    if (fd < 0 || syscall(SYS_bind, fd, (struct sockaddr *)&sa, sizeof sa)) {
        static int told;
        if (!told++)
            sr_log("no link watch (%s): established connections ignore later link changes",
                   strerror(errno));
        if (fd >= 0)
            sr_sys_close(fd);
        return;
    }
    if (sr_watch_add(&sr_link_w, fd, EPOLLIN, sr_link_cb) == 0)
        sr_link_epoch = sr_epoch;
}

void sr_link_track(struct sr_qp *qp, int port)
{
    struct sr_port ports[SR_MAX_PORTS];
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    qp->link_if[0] = 0;
    qp->held_since = 0;
    if (port < 1 || port > n) {
        __atomic_store_n(&qp->s->link_down, 0, __ATOMIC_RELEASE);
        return;                 /* no interface known: never held */
    }
    memcpy(qp->link_if, ports[port - 1].ifname, sizeof qp->link_if);   /* both 32 */
    __atomic_store_n(&qp->s->link_down, (uint32_t)!ports[port - 1].up, __ATOMIC_RELEASE);
}

int sr_link_hold(struct sr_qp *qp)
{
    struct sr_shm_qp *peer = qp->fast.peer;
    int down = __atomic_load_n(&qp->s->link_down, __ATOMIC_ACQUIRE) ||
               (peer && __atomic_load_n(&peer->link_down, __ATOMIC_ACQUIRE));
    if (!down) {
        if (qp->held_since) {
            qp->held_since = 0;
            sr_link_nheld--;
        }
        return 0;
    }
    if (!qp->held_since) {
        qp->held_since = sr_now_ms();
        sr_link_nheld++;
        sr_watch_again(&sr_link_w);     /* the device thread times it */
    }
    return 1;
}

void sr_link_untrack(struct sr_qp *qp)
{
    if (qp->held_since)
        sr_link_nheld--;
    qp->held_since = 0;
}

/* Held requesters: link back (the held requests go) or budget spent. */
void sr_link_timers(uint64_t now, int *next_ms)
{
    if (!sr_link_nheld)
        return;
    for (struct sr_qp *q = sr_qp_all(); q; q = q->next) {
        if (!q->held_since || q->epoch != sr_epoch)
            continue;
        if (q->pub.state != IBV_QPS_RTS && q->pub.state != IBV_QPS_SQD) {
            sr_link_untrack(q);
            continue;
        }
        uint64_t budget = sr_retry_budget_ms(q->timeout, q->retry_cnt, SR_LINK_STEP_MS);
        if (budget && now - q->held_since >= budget) {
            int mine = sr_link_is_down(q);
            sr_log("QP %u: %s%s down for %llu ms: retries exhausted (RETRY_EXC_ERR)",
                   q->pub.qp_num, mine ? "link of interface " : "the peer's link",
                   mine ? q->link_if : "", (unsigned long long)(now - q->held_since));
            sr_link_untrack(q);
            sr_req_fail(q, IBV_WC_RETRY_EXC_ERR);
            continue;
        }
        sr_req_kick(q);         /* resumes if the link is back, else stays held */
        if (*next_ms > SR_LINK_STEP_MS)
            *next_ms = SR_LINK_STEP_MS;
    }
}
