/* softrdma: QP numbers, unique in the fabric, claimed in blocks.
 *
 * A process claims SR_QPN_BLOCK numbers at a time: $FABRIC/qp/b<block> is
 * a symlink to its NIC socket, and QP number (block << 8 | i) belongs to
 * whoever holds the block. A peer finds the NIC that owns a QPN by
 * reading that link (sr_qpn_owner_link). One symlink per 256 QPs instead
 * of a symlink and an unlink per QP (and the peer's readlink then hits a
 * name it has seen before): three file system calls less per connection
 * and end.
 *
 * Each number of a block is handed out once; a used-up block is let go
 * (unlinked) when its last QP is destroyed, and the next block claimed is
 * a new one, so a number comes back only after the fabric's 65,535 blocks
 * went round, as with one link per QP. A claim whose owner is gone (its
 * NIC socket no longer exists) is taken over; one of another user cannot
 * be (sticky directory) and is skipped. A forked child claims its own.
 * Guarded by sr_lock. */
#include "sr_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SR_QPN_SHIFT 8
#define SR_QPN_BLOCK (1u << SR_QPN_SHIFT)
#define SR_QPN_BLOCKS (1u << (24 - SR_QPN_SHIFT))   /* QPNs are 24 bits */

struct sr_qpn_blk {
    unsigned no;                   /* block number, >= 1 (QPNs below 0x100 stay free) */
    unsigned used;                 /* numbers handed out */
    unsigned live;                 /* QPs holding one */
    unsigned epoch;
    struct sr_qpn_blk *next;       /* in sr_qpn_blks */
};

static struct sr_qpn_blk *sr_qpn_cur;      /* numbers come from here */
static struct sr_qpn_blk *sr_qpn_blks;     /* every block of this epoch held */
static unsigned sr_qpn_next_blk;
static int sr_qpn_dir_made;

static void sr_qpn_link(unsigned blk, char *buf, size_t len)
{
    snprintf(buf, len, "%s/qp/b%u", sr_fabric_dir(), blk);
}

void sr_qpn_owner_link(uint32_t qpn, char *buf, size_t len)
{
    sr_qpn_link(qpn >> SR_QPN_SHIFT, buf, len);
}

/* Claims a free block: its link made, or taken over from a dead owner. */
static int sr_qpn_claim(unsigned *no)
{
    char path[512];
    if (!sr_qpn_next_blk)
        sr_qpn_next_blk = (unsigned)getpid() * 97u;
    for (unsigned i = 0; i < 4096; i++) {
        unsigned b = sr_qpn_next_blk++ % SR_QPN_BLOCKS;
        if (!b)
            continue;
        sr_qpn_link(b, path, sizeof path);
        if (symlink(sr_nic_path(), path) == 0) {
            *no = b;
            return 0;
        }
        if (errno != EEXIST)
            return -1;
        struct stat st;     /* owner gone: its NIC socket no longer exists */
        if (stat(path, &st) && errno == ENOENT && !unlink(path))
            sr_qpn_next_blk--;
    }
    errno = EAGAIN;
    return -1;
}

static void sr_qpn_release(struct sr_qpn_blk *b)
{
    char path[512];
    for (struct sr_qpn_blk **pp = &sr_qpn_blks; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    sr_qpn_link(b->no, path, sizeof path);
    unlink(path);
    free(b);
}

static struct sr_qpn_blk *sr_qpn_new_blk(void)
{
    if (!sr_qpn_dir_made) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/qp", sr_fabric_dir());
        if (sr_mkdir_p(dir))
            return NULL;
        sr_qpn_dir_made = 1;
    }
    struct sr_qpn_blk *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    if (sr_qpn_claim(&b->no)) {
        int e = errno;
        free(b);
        errno = e;
        return NULL;
    }
    b->epoch = sr_epoch;
    b->next = sr_qpn_blks;
    sr_qpn_blks = b;
    return b;
}

int sr_qpn_alloc(struct sr_qp *qp)
{
    struct sr_qpn_blk *c = sr_qpn_cur;
    if (c && c->epoch != sr_epoch) {
        /* a forked child: the parent's blocks are the parent's */
        c = sr_qpn_cur = NULL;
        sr_qpn_blks = NULL;
        sr_qpn_dir_made = 0;
        sr_qpn_next_blk = 0;
    }
    if (!c || c->used == SR_QPN_BLOCK) {
        struct sr_qpn_blk *n = sr_qpn_new_blk();
        if (!n)
            return -1;
        if (c && !c->live)
            sr_qpn_release(c);
        c = sr_qpn_cur = n;
    }
    /* block 0 is never claimed, so no QPN is below 0x100 */
    qp->pub.qp_num = c->no << SR_QPN_SHIFT | c->used++;
    c->live++;
    qp->qpn_blk = c;
    return 0;
}

void sr_qpn_free(struct sr_qp *qp)
{
    struct sr_qpn_blk *b = qp->qpn_blk;
    qp->qpn_blk = NULL;
    if (!b || b->epoch != sr_epoch)
        return;
    if (--b->live == 0 && b != sr_qpn_cur)
        sr_qpn_release(b);
}

/* At exit: the blocks still held go with the NIC's name. */
void sr_qpn_release_all(void)
{
    while (sr_qpn_blks && sr_qpn_blks->epoch == sr_epoch)
        sr_qpn_release(sr_qpn_blks);
    sr_qpn_cur = NULL;
}
