/* The device's copy of the host's addresses (sr_ifcache.c) inside one
 * running process, on a namespace test host: an address added after the
 * copy was made can be bound at once, a link taken down is DOWN at once,
 * and back up when its carrier returns; a program that closes the
 * device's watch socket and puts its own pipe on that number loses no
 * data to the device. Run as
 *     sr_ifcache_test IFACE NEWADDR
 * in a host where NEWADDR (IPv4) is not yet assigned; the test script
 * counts the netlink sockets opened (one per address dump) under strace. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <linux/netlink.h>
#include <rdma/rdma_cma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOOKUPS 200

static const char *iface, *newaddr;

#define CHECK(c, ...) do { if (!(c)) { printf("FAIL: " __VA_ARGS__); printf("\n"); exit(1); } } while (0)

static int bind_ok(const char *ip)
{
    struct rdma_event_channel *ch = rdma_create_event_channel();
    struct rdma_cm_id *id = NULL;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    CHECK(ch && !rdma_create_id(ch, &id, NULL, RDMA_PS_TCP), "rdma_create_id: %s", strerror(errno));
    inet_pton(AF_INET, ip, &sa.sin_addr);
    int ok = !rdma_bind_addr(id, (struct sockaddr *)&sa);
    rdma_destroy_id(id);
    rdma_destroy_event_channel(ch);
    return ok;
}

/* State of the port whose GID table holds ip's GID; -1 if none does. */
static int port_state(struct ibv_context *ctx, const char *ip)
{
    union ibv_gid want = { .raw = { [10] = 0xff, [11] = 0xff } }, g;
    struct ibv_device_attr da;
    inet_pton(AF_INET, ip, &want.raw[12]);
    CHECK(!ibv_query_device(ctx, &da), "ibv_query_device");
    for (int p = 1; p <= da.phys_port_cnt; p++) {
        struct ibv_port_attr pa;
        CHECK(!ibv_query_port(ctx, (uint8_t)p, &pa), "ibv_query_port %d", p);
        for (int i = 0; i < pa.gid_tbl_len; i++)
            if (!ibv_query_gid(ctx, (uint8_t)p, i, &g) && !memcmp(&g, &want, sizeof g))
                return pa.state;
    }
    return -1;
}

/* The descriptor of a NETLINK_ROUTE socket in this process (the device's
 * watch: the test itself opens none); -1 if there is none. */
static int find_watch(void)
{
    for (int fd = 0; fd < 65536; fd++) {
        int dom = 0, proto = 0;
        socklen_t l = sizeof dom;
        if (fcntl(fd, F_GETFD) < 0 || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l))
            continue;
        l = sizeof proto;
        if (dom == AF_NETLINK && !getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) &&
            proto == NETLINK_ROUTE)
            return fd;
    }
    return -1;
}

static void run(const char *fmt, const char *a)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, fmt, a, iface);
    CHECK(system(cmd) == 0, "%s", cmd);
}

int main(int argc, char **argv)
{
    CHECK(argc == 3, "usage: sr_ifcache_test IFACE NEWADDR");
    iface = argv[1];
    newaddr = argv[2];
    int n;
    struct ibv_device **devs = ibv_get_device_list(&n);
    CHECK(devs && n > 0, "no device");
    struct ibv_context *ctx = ibv_open_device(devs[0]);
    CHECK(ctx, "ibv_open_device");

    for (int i = 0; i < LOOKUPS; i++)
        CHECK(!bind_ok(newaddr), "%s bound before it was assigned", newaddr);
    CHECK(port_state(ctx, newaddr) == -1, "a port carries %s before it was assigned", newaddr);

    /* the program reuses the watch's number for its own pipe */
    int w = find_watch(), p[2];
    CHECK(w >= 0, "no netlink watch socket in the process");
    CHECK(!close(w) && !pipe(p) && dup2(p[0], w) == w && write(p[1], "x", 1) == 1, "pipe on %d", w);

    run("ip addr add %s/24 dev %s", newaddr);
    CHECK(bind_ok(newaddr), "%s not bindable right after it was added", newaddr);
    CHECK(port_state(ctx, newaddr) == IBV_PORT_ACTIVE, "port of %s not ACTIVE", newaddr);
    char c = 0;
    fcntl(w, F_SETFL, O_NONBLOCK);
    CHECK(read(w, &c, 1) == 1 && c == 'x', "the program's pipe lost its byte");

    run("ip link set %.0s%s down", "");
    CHECK(port_state(ctx, newaddr) == IBV_PORT_DOWN, "port not DOWN right after the link went down");
    run("ip link set %.0s%s up", "");
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st;
    do {
        usleep(10000);      /* a poll interval: the deadline bounds the wait */
        st = port_state(ctx, newaddr);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (st != IBV_PORT_ACTIVE && t.tv_sec - t0.tv_sec < 10);
    CHECK(st == IBV_PORT_ACTIVE, "port not ACTIVE 10 s after the link came back (%d)", st);

    run("ip addr del %s/24 dev %s", newaddr);
    CHECK(!bind_ok(newaddr), "%s still bindable right after it was removed", newaddr);
    ibv_close_device(ctx);
    ibv_free_device_list(devs);
    printf("sr_ifcache_test: PASS (%d lookups)\n", LOOKUPS);
    return 0;
}
