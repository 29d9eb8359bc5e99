/* rsbug_rdma.c - rsocket-only options (API build only): RDMA_ROUTE
 * getsockopt either answers or refuses cleanly and never reads the caller's
 * buffer as input; many riomap publications (each one a send credit) do not
 * exhaust the credits. */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ROUTE_BUF 512
#define IOMAP_ROUNDS 1500   /* about four times the default credit window */
#define IOMAP_SIZE 4

void route_client(const struct rb_args *a)
{
    int fd = rb_connect(a);
    uint8_t buf[ROUTE_BUF];
    memset(buf, 0xa5, sizeof(buf));
    socklen_t len = sizeof(buf);
    int r = rgetsockopt(fd, SOL_RDMA, RDMA_ROUTE, buf, &len);
    if (r == 0) {
        CHECK(len > 0 && len <= ROUTE_BUF, "RDMA_ROUTE length %u", (unsigned)len);
    } else {
        CHECK(errno == ENOPROTOOPT || errno == EOPNOTSUPP, "RDMA_ROUTE refused with errno %d",
              errno);
        CHECK(len == sizeof(buf), "refused RDMA_ROUTE changed optlen to %u", (unsigned)len);
        for (size_t i = 0; i < sizeof(buf); i++)
            CHECK(buf[i] == 0xa5, "refused RDMA_ROUTE wrote byte %zu", i);
    }
    /* the connection is unharmed either way */
    rb_recv_pattern(fd, 100, 0);
    rb_send_all(fd, "K", 1);
    rb_expect_eof(fd);
    rb_close(fd, "connection");
    rb_say(r == 0 ? "CLIENT OK (route answered)" : "CLIENT OK (route refused)");
}

static void want_iomap(int fd)
{
    int v = IOMAP_SIZE;
    CHECK(rsetsockopt(fd, SOL_RDMA, RDMA_IOMAPSIZE, &v, sizeof(v)) == 0, "RDMA_IOMAPSIZE");
}

/* Echo single bytes until the client's 'E', then take 64 KiB. */
void iomap_server(const struct rb_args *a)
{
    int lfd = rb_listen(a, 0);
    want_iomap(lfd);
    rb_say("LISTENING");
    int fd = rb_accept(lfd);
    rb_close(lfd, "listener");
    for (int i = 0; i <= IOMAP_ROUNDS; i++) {
        char c;
        rb_recv_all(fd, &c, 1);
        if (c == 'E')
            break;
        rb_send_all(fd, &c, 1);
    }
    rb_recv_pattern(fd, 65536, 0);
    rb_send_all(fd, "K", 1);
    rb_expect_eof(fd);
    rb_close(fd, "connection");
    rb_say("SERVER OK");
}

void iomap_client(const struct rb_args *a)
{
    int fd = rb_socket(a);
    want_iomap(fd);
    rb_connect_fd(fd, a);
    void *buf;
    CHECK(posix_memalign(&buf, 4096, 4096) == 0, "posix_memalign");
    for (int i = 0; i < IOMAP_ROUNDS; i++) {
        off_t off = riomap(fd, buf, 4096, PROT_WRITE, 0, -1);
        CHECK(off >= 0, "riomap round %d", i);
        char c = (char)('a' + i % 26), back;
        rb_send_all(fd, &c, 1);   /* publishes the mapping: one credit */
        rb_recv_all(fd, &back, 1);
        CHECK(back == c, "echo round %d", i);
        if (i % 100 == 0)
            fprintf(stderr, "iomap round %d\n", i);
        CHECK(riounmap(fd, buf, 4096) == 0, "riounmap round %d", i);
    }
    rb_send_all(fd, "E", 1);
    rb_send_pattern(fd, 65536, 0);
    char ok;
    rb_recv_all(fd, &ok, 1);
    CHECK(ok == 'K', "server verdict");
    rb_close(fd, "connection");
    free(buf);
    rb_say("CLIENT OK");
}

/* No remote revoke (upstream): after the server's riounmap, the client's
 * riowrite to that offset must be refused - -1 with EINVAL, as for an
 * offset never mapped - with the connection intact and the server's
 * buffer untouched. */
void revoke_server(const struct rb_args *a)
{
    int lfd = rb_listen(a, 0);
    want_iomap(lfd);
    rb_say("LISTENING");
    int fd = rb_accept(lfd);
    rb_close(lfd, "listener");
    uint8_t *buf;
    CHECK(posix_memalign((void **)&buf, 4096, 4096) == 0, "posix_memalign");
    memset(buf, 0, 4096);
    CHECK(riomap(fd, buf, 4096, PROT_WRITE, 0, 0) == 0, "riomap at offset 0");
    rb_send_all(fd, "M", 1);   /* publishes the mapping */
    char c;
    rb_recv_all(fd, &c, 1);
    CHECK(c == 'W' && rb_mismatch(buf, 100, 0) < 0, "the client's riowrite did not land");
    CHECK(riounmap(fd, buf, 4096) == 0, "riounmap");
    memset(buf, 0, 4096);
    rb_send_all(fd, "U", 1);
    rb_recv_all(fd, &c, 1);
    CHECK(c == 'V', "client verdict byte after the unmap");
    for (int i = 0; i < 4096; i++)
        CHECK(buf[i] == 0, "byte %d written after riounmap", i);
    rb_send_all(fd, "K", 1);
    rb_expect_eof(fd);
    rb_close(fd, "connection");
    free(buf);
    rb_say("SERVER OK");
}

void revoke_client(const struct rb_args *a)
{
    int fd = rb_socket(a);
    want_iomap(fd);
    rb_connect_fd(fd, a);
    uint8_t data[100];
    rb_fill(data, sizeof(data), 0);
    char c;
    rb_recv_all(fd, &c, 1);
    CHECK(c == 'M', "mapping announcement");
    CHECK(riowrite(fd, data, sizeof(data), 0, 0) == sizeof(data), "riowrite to a live mapping");
    rb_send_all(fd, "W", 1);
    rb_recv_all(fd, &c, 1);
    CHECK(c == 'U', "unmap announcement");
    errno = 0;
    ssize_t r = (ssize_t)riowrite(fd, data, sizeof(data), 0, 0);
    int err = errno;
    rb_send_all(fd, "V", 1);
    rb_recv_all(fd, &c, 1);
    CHECK(c == 'K', "server verdict");
    CHECK(r == -1 && err == EINVAL, "riowrite after the peer's riounmap: %zd, errno %d "
          "(want -1, EINVAL: the mapping is revoked)", r, err);
    rb_close(fd, "connection");
    rb_say("CLIENT OK");
}
