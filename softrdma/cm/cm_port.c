/* softrdma librdmacm: the RDMA TCP port space of a host (network
 * namespace), separate from the kernel's TCP ports. rdma_bind_addr claims
 * (address, port) as a symlink
 *     $FABRIC/cm/port/<netns>_<port>/<family>_<address>@<pid>.<epoch>.<seq>
 *         ->  owner's NIC socket
 * Names are unique per claim: whether a claim conflicts is decided by
 * scanning the port's live claims (under the names lock), never by a name
 * being taken, so a stale claim that cannot be removed (another user's,
 * under the fabric's sticky bit: sr_fabric.c) blocks nobody. A claim whose
 * owner process is gone (its NIC socket refuses connections) is stale and
 * removed when possible. A REUSEADDR id's claim is named
 *     r<family>_<address>.<pid>.<epoch>.<seq>
 * (such ids share the port); binds to a given port ignore it,
 * but port 0 never picks a port that has any live claim, so two ids that
 * bound port 0 never meet on one port (and then on one listener name).
 * Every check-then-create on the fabric's port and listener names runs
 * under one fabric-wide flock (cm_names_lock), so two processes of a host
 * never both see a port free or a stale name reclaimable. Callers hold
 * sr_lock (taken before the flock). */
#include "cm_internal.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define CM_PORT_LO 32768
#define CM_PORT_SPAN 28232
#define CM_PORT_TRIES 128

/* "4_1.2.3.4", "6_fd21::180", "4_any", "6_any" */
static void cm_claim_key(const struct sockaddr *sa, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "any";
    int fam = sa->sa_family == AF_INET ? 4 : 6;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(a6)) {
        fam = 4;
        inet_ntop(AF_INET, &a6->s6_addr[12], ip, sizeof ip);
    } else if (!cm_is_any(sa)) {
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof ip);
        else
            inet_ntop(AF_INET6, a6, ip, sizeof ip);
    }
    snprintf(out, len, "%d_%s", fam, ip);
}

static unsigned long cm_netns(void)
{
    return sr_ifc_netns_now();      /* a stat, unless the call has looked already */
}

/* RDMA_PS_UDP ids have their own port space ("udp-port"), as UDP ports
 * are apart from TCP's. */
static int cm_port_dir(const struct cm_id *id, uint16_t port, char *out, size_t len)
{
    unsigned long ns = cm_netns();
    int n = snprintf(out, len, "%s/cm/%s/%lu_%u", sr_fabric_dir(),
                     id->pub.ps == RDMA_PS_UDP ? "udp-port" : "port", ns, port);
    if (n >= (int)len)
        return errno = ENAMETOOLONG, -1;
    return sr_mkdir_p(out);
}

/* 1 if the claim's owner still runs (its NIC socket accepts). */
static int cm_claim_live(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    ssize_t n = readlink(path, sa.sun_path, sizeof sa.sun_path - 1);
    if (n <= 0)
        return 0;
    return cm_sock_live(sa.sun_path, SOCK_STREAM);
}

int cm_sock_live(const char *path, int type)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path)
        return 0;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* non-blocking: a full backlog (EAGAIN) means alive, and the probe
     * never waits under the names lock */
    int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1;   /* cannot tell: never reclaim on doubt */
    /* only a refused or missing socket is dead; anything else (EACCES
     * from a socket of another user made before sockets were shared) is
     * doubt */
    int live = !connect(fd, (struct sockaddr *)&sa, sizeof sa) ||
               (errno != ECONNREFUSED && errno != ENOENT);
    close(fd);
    return live;
}

/* Guarded by sr_lock: the open lock file while held, else -1. */
static int cm_lock_fd = -1;

void cm_names_lock(void)
{
    char p[400];
    snprintf(p, sizeof p, "%s/cm/names.lock", sr_fabric_dir());
    /* it exists but for the fabric's first claim: then make it, shared */
    cm_lock_fd = open(p, O_RDWR | O_CLOEXEC);
    if (cm_lock_fd < 0 && errno == ENOENT) {
        char d[400];
        snprintf(d, sizeof d, "%s/cm", sr_fabric_dir());
        sr_mkdir_p(d);
        cm_lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (cm_lock_fd >= 0)
            sr_fabric_share(p);     /* every user takes this lock */
    }
    if (cm_lock_fd < 0) {
        sr_log("cannot open %s: %s; port and listener names are claimed unlocked",
               p, strerror(errno));
        return;
    }
    while (flock(cm_lock_fd, LOCK_EX) && errno == EINTR)
        continue;
}

void cm_names_unlock(void)
{
    if (cm_lock_fd >= 0)
        close(cm_lock_fd);     /* releases the flock */
    cm_lock_fd = -1;
}

/* The <family>_<address> key of a plain claim's name (up to '@'). */
static void cm_name_key(const char *name, char *key, size_t len)
{
    size_t n = strcspn(name, "@");
    if (n >= len)
        n = len - 1;
    memcpy(key, name, n);
    key[n] = 0;
}

/* Do two claims of one port overlap? "any" of a family covers the family;
 * an IPv6 wildcard without AFONLY also covers IPv4. */
static int cm_claims_overlap(const char *mine, int mine_afonly, const char *other_name)
{
    char other[64];
    cm_name_key(other_name, other, sizeof other);
    int mf = mine[0] - '0', of = other[0] - '0';
    int many = !strcmp(mine + 2, "any"), oany = !strcmp(other + 2, "any");
    if (mf == of)
        return many || oany || !strcmp(mine, other);
    if (many && mf == 6 && !mine_afonly)
        return 1;
    return oany && of == 6;     /* the other's AFONLY is not known: assume not */
}

/* Whether dir (one port's claims) holds a live claim that counts; stale
 * claims met on the way are removed (where the sticky bit allows). Self
 * (if not NULL) never counts. With key NULL every other claim counts (is
 * the port taken at all, REUSEADDR claims included); otherwise only plain
 * claims whose address overlaps key. */
static int cm_live_claim_in(const char *dir, const char *self, const char *key, int afonly)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    if (!d)
        return 0;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (self && !strcmp(e->d_name, self))
            continue;
        if (key && (e->d_name[0] == 'r' || !cm_claims_overlap(key, afonly, e->d_name)))
            continue;
        char p[700];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (cm_claim_live(p))
            found = 1;
        else
            unlink(p);
    }
    closedir(d);
    return found;
}

/* Creates this id's uniquely named claim dir/<prefix><key><sep><pid>...;
 * 0, or -1 (errno). */
static int cm_claim_make(struct cm_id *id, const char *dir, const char *prefix, const char *key,
                         char sep, char *name, size_t len)
{
    static unsigned seq;    /* guarded by sr_lock */
    char path[500];
    snprintf(name, len, "%s%s%c%d.%u.%u", prefix, key, sep, (int)getpid(), sr_epoch, ++seq);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = symlink(sr_nic_path(), path);
    if (rc && errno == EEXIST && !unlink(path))     /* a dead process with our pid left it */
        rc = symlink(sr_nic_path(), path);
    if (rc)
        return -1;
    snprintf(id->port_claim, sizeof id->port_claim, "%s", path);
    return 0;
}

/* Claims sa's address in dir (one port); 0 or -1 with EADDRINUSE. With
 * alone, any other live claim of the port conflicts (a port 0 pick). */
static int cm_claim_one(struct cm_id *id, const struct sockaddr *sa, const char *dir, int alone)
{
    char key[64], name[128];
    cm_claim_key(sa, key, sizeof key);
    if (cm_claim_make(id, dir, "", key, '@', name, sizeof name))
        return errno = EADDRINUSE, -1;
    if (cm_live_claim_in(dir, name, alone ? NULL : key, id->afonly)) {
        cm_port_release(id);
        return errno = EADDRINUSE, -1;
    }
    return 0;
}

static uint16_t cm_random_port(void)
{
    uint16_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
        r = (uint16_t)rand();
    return (uint16_t)(CM_PORT_LO + r % CM_PORT_SPAN);
}

/* A REUSEADDR id's claim: conflicts with nothing given a port, but keeps
 * port 0 picks away from the port; as a port 0 pick (alone) it backs off
 * from any other live claim. */
static int cm_claim_shared(struct cm_id *id, const struct sockaddr *sa, const char *dir, int alone)
{
    char key[64], name[128];
    cm_claim_key(sa, key, sizeof key);
    if (cm_claim_make(id, dir, "r", key, '.', name, sizeof name))
        return errno = EADDRINUSE, -1;
    if (alone && cm_live_claim_in(dir, name, NULL, 0)) {
        cm_port_release(id);
        return errno = EADDRINUSE, -1;
    }
    return 0;
}

static int cm_claim_port(struct cm_id *id, const struct sockaddr *sa, uint16_t port, int alone)
{
    char dir[400];
    if (cm_port_dir(id, port, dir, sizeof dir))
        return -1;
    return id->reuseaddr ? cm_claim_shared(id, sa, dir, alone) : cm_claim_one(id, sa, dir, alone);
}

/* Port 0: a port no other live claim holds. The claim is made first and
 * the port's directory read once after it (as for a given port): one scan
 * instead of a look before and another after. */
static int cm_claim_ephemeral(struct cm_id *id, struct sockaddr *sa)
{
    for (int i = 0; i < CM_PORT_TRIES; i++) {
        uint16_t port = cm_random_port();
        if (cm_claim_port(id, sa, port, 1))
            continue;
        cm_set_port(sa, port);
        return 0;
    }
    return errno = EADDRINUSE, -1;
}

/* A port-0 pick that cm_port_pool.c may keep at release; 0 if it took
 * one kept from before (nothing else to do). */
static int cm_claim_from_pool(struct cm_id *id, struct sockaddr *sa)
{
    if (id->reuseaddr)
        return -1;
    cm_claim_key(sa, id->claim_key, sizeof id->claim_key);
    id->claim_ns = cm_netns();
    int port = cm_pool_take(id, id->claim_key, id->claim_ns);
    if (!port)
        return -1;
    cm_set_port(sa, (uint16_t)port);
    id->claim_pooled = 1;
    return 0;
}

int cm_port_claim(struct cm_id *id, struct sockaddr *sa)
{
    uint16_t port = cm_port(sa);
    cm_port_release(id);
    if (!port && !cm_claim_from_pool(id, sa)) {
        cm_exit_track(id);
        return 0;
    }
    cm_names_lock();
    int rc = port ? cm_claim_port(id, sa, port, 0) : cm_claim_ephemeral(id, sa);
    int e = errno;
    cm_names_unlock();
    if (!rc)
        cm_exit_track(id);
    if (!rc && !port && !id->reuseaddr)
        id->claim_pooled = 1;       /* claim_key, claim_ns set by the pool look */
    if (rc)
        errno = e == EADDRINUSE ? e : EADDRINUSE;
    return rc;
}

void cm_port_release(struct cm_id *id)
{
    int keep = id->claim_pooled && id->port_claim[0] &&
               !cm_pool_put(id, id->claim_key, id->claim_ns,
                            cm_port(&id->pub.route.addr.src_addr));
    if (id->port_claim[0] && !keep)
        unlink(id->port_claim);
    id->port_claim[0] = 0;
    id->claim_pooled = 0;
}

/* As the kernel's rdma_cm (and TCP): ports below 1024 need
 * CAP_NET_BIND_SERVICE, so that on a fabric shared by all users nobody
 * but a privileged process serves a privileged port. */
int cm_port_allowed(uint16_t port)
{
    if (!port || port >= 1024)
        return 1;
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d))
        return geteuid() == 0;
    return (d[0].effective >> CAP_NET_BIND_SERVICE) & 1;
}
