/*
 * rs_cmdetach.c - an upgraded anchored connection gives its rdma_cm
 * connection back to the device (issue 8: descriptors per connection).
 *
 * On the software device every connected rdma_cm id holds one descriptor,
 * its CM connection, which after ESTABLISHED only tells of the peer's
 * disconnect or death. An upgraded anchored socket learns both otherwise:
 * the peer's close arrives in-band (the rsockets DISCONNECT message), its
 * death as the anchor's FIN or reset (rs_anchor_fin_step). So once its id
 * is on the shared channel (rs_cmshare.c), it asks the device to drop that
 * connection: softrdma's rdma_softrdma_detach() (doc/softrdma.md, "The
 * connection manager"), looked up once in the librdmacm the module runs
 * with; rdma-core has none, and a device that refuses keeps everything as
 * before. Both ends ask, each once upgraded; the device closes the
 * connection only when both have. Both also ask before connecting
 * (rs_cms_detach_early), which spares the DETACH messages.
 */
#include "rs_sock.h"

#include <dlfcn.h>
#include <pthread.h>

typedef int (*rs_detach_fn)(struct rdma_cm_id *id);
static rs_detach_fn detach_fn;        /* set once (detach_once) */
static pthread_once_t detach_once = PTHREAD_ONCE_INIT;

static void detach_lookup(void)
{
    /* the librdmacm this module is linked with, already loaded */
    void *h = dlopen("librdmacm.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (!h)
        return;
    detach_fn = (rs_detach_fn)(uintptr_t)dlsym(h, "rdma_softrdma_detach");
    dlclose(h);                       /* still loaded: the module needs it */
}

/* Lock held; s upgraded, its id on the shared channel. */
void rs_cms_detach(struct rsock *s)
{
    if (s->cm_detached || !s->id || s->anchor_fd < 0)
        return;                       /* without the anchor's word, keep the CM's */
    pthread_once(&detach_once, detach_lookup);
    if (detach_fn && detach_fn(s->id) == 0)
        s->cm_detached = 1;
}

/* Lock held; s anchored (its handshake under way), right before its
 * rdma_connect or rdma_accept: the device may close the CM connection at
 * ESTABLISHED already, with no DETACH exchange, when the peer asked the
 * same in its REQ or REP. rs_cms_detach, once upgraded, then finds it
 * closed; with a peer that did not ask it detaches as above. A device
 * that does not know the early form refuses it (EINVAL): nothing
 * changes. */
void rs_cms_detach_early(struct rsock *s)
{
    if (!s->anc || !s->id)
        return;
    pthread_once(&detach_once, detach_lookup);
    if (detach_fn)
        (void)detach_fn(s->id);
}
