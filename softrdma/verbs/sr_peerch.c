/* softrdma: the peers' completion channels that this process's direct
 * path signals (sr_fast.c). A sleeping receiver is woken through its
 * channel's eventfd, a descriptor of the receiver's process; the sender
 * needs its own copy. Keeping one copy per QP (or per peer channel, and
 * rsockets make one channel per connection) cost a descriptor per
 * connection. Instead the process keeps at most SR_PEERCH_SLOTS copies in
 * one cache, filled from the copy that comes with a QP's attach offer or
 * fetched from the peer with pidfd_getfd(2) (the same permission as the
 * process_vm_writev of the direct path), and evicted round-robin.
 *
 * Data path: a QP remembers the slot and its stamp (bumped whenever the
 * slot changes hands), so a hit is one comparison. Everything here runs
 * under sr_lock: a descriptor handed out stays open until the caller's
 * wake-up is done (eviction happens only inside sr_peerch_get).
 *
 * A peer process's pidfd is opened at its first fetch only (a process
 * whose peers' channels fit the cache never opens one) and kept with its
 * mapped segment. */
#include "sr_internal.h"
#include "sr_sys.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct sr_peerch_slot {
    const struct sr_peer_seg *seg;     /* NULL: free */
    uint32_t ch_id;
    uint32_t stamp;                    /* never 0 once used */
    int fd;
};
static struct sr_peerch_slot sr_slots[SR_PEERCH_SLOTS];   /* guarded by sr_lock */
static unsigned sr_victim;

static void sr_slot_clear(struct sr_peerch_slot *s)
{
    if (s->seg)
        sr_sys_close(s->fd);
    s->seg = NULL;
    s->ch_id = 0;               /* ids are never 0: a free slot matches none */
    s->fd = -1;
    if (!++s->stamp)
        s->stamp = 1;
}

static int sr_slot_bind(struct sr_fast *f, int i)
{
    f->ch_slot = i;
    f->ch_stamp = sr_slots[i].stamp;
    return sr_slots[i].fd;
}

static int sr_slot_find(const struct sr_peer_seg *seg, uint32_t ch_id)
{
    for (int i = 0; i < SR_PEERCH_SLOTS; i++)
        if (sr_slots[i].seg == seg && sr_slots[i].ch_id == ch_id)
            return i;
    return -1;
}

/* Takes fd into a slot (a free one, else the next victim's). */
static int sr_slot_fill(const struct sr_peer_seg *seg, uint32_t ch_id, int fd)
{
    int i = sr_slot_find(NULL, 0);
    if (i < 0)
        i = (int)(sr_victim++ % SR_PEERCH_SLOTS);
    sr_slot_clear(&sr_slots[i]);
    sr_slots[i].seg = seg;
    sr_slots[i].ch_id = ch_id;
    sr_slots[i].fd = sr_fd_internal(fd);
    return i;
}

/* Only an eventfd is ever written: a peer program that closed its
 * channel's descriptor behind the device's back may have that number on
 * a socket by now. */
static int sr_is_eventfd(int fd)
{
    static const char want[] = "anon_inode:[eventfd]";
    char path[40], link[sizeof want];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link);
    return n == (ssize_t)sizeof want - 1 && !memcmp(link, want, sizeof want - 1);
}

/* The peer's pidfd, opened at the first fetch and kept with its segment.
 * Opened before the token is read through the pid: a token found there
 * means the owner was alive at that pid after the open, so the pidfd
 * names the owner, never a later process that reused its pid. */
static int sr_peer_pidfd(struct sr_fast *f)
{
    struct sr_peer_seg *p = f->seg;
    if (p->pidfd >= 0)
        return p->pidfd;
    int fd = (int)syscall(SYS_pidfd_open, f->msg.pid, 0);
    if (fd < 0)
        return -1;
    if (!sr_fast_token_ok(f, p)) {
        sr_sys_close(fd);
        return -1;
    }
    return p->pidfd = sr_fd_internal(fd);
}

static int sr_peerch_fetch(struct sr_fast *f)
{
    static int said;
    int pidfd = sr_peer_pidfd(f);
    if (pidfd < 0)
        return -1;
    int fd = (int)syscall(SYS_pidfd_getfd, pidfd, f->msg.ch_fd, 0);
    if (fd < 0) {
        if (errno != EMFILE && errno != ENFILE && !said++)
            sr_log("pidfd_getfd of a peer's completion channel: %s; such wake-ups go by stream",
                   strerror(errno));
        return -1;
    }
    if (!sr_is_eventfd(fd)) {
        if (!said++)
            sr_log("a peer's completion channel (its fd %d) is not an eventfd; such wake-ups go by stream",
                   f->msg.ch_fd);
        sr_sys_close(fd);
        return -1;
    }
    return fd;
}

int sr_peerch_get(struct sr_fast *f, int offered)
{
    int i = f->ch_slot;
    if (f->ch_stamp && i >= 0 && i < SR_PEERCH_SLOTS && sr_slots[i].seg &&
        sr_slots[i].stamp == f->ch_stamp) {
        if (offered >= 0)
            sr_sys_close(offered);
        return sr_slots[i].fd;
    }
    i = sr_slot_find(f->seg, f->msg.ch_id);
    if (i >= 0) {
        if (offered >= 0)
            sr_sys_close(offered);
        return sr_slot_bind(f, i);
    }
    int fd = offered >= 0 ? offered : sr_peerch_fetch(f);
    if (fd < 0)
        return -1;
    return sr_slot_bind(f, sr_slot_fill(f->seg, f->msg.ch_id, fd));
}

void sr_peer_ch_forget(struct sr_peer_seg *p)
{
    for (int i = 0; i < SR_PEERCH_SLOTS; i++)
        if (sr_slots[i].seg == p)
            sr_slot_clear(&sr_slots[i]);
}
