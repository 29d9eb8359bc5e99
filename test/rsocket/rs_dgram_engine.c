/*
 * rs_dgram_engine IP - datagram rsockets through the module contract
 * alone (no dispatcher, so the sanitizer builds run it directly): two
 * sockets bound to IP exchange 400 datagrams of 1..2032 bytes each way,
 * waiting only through poll_events() and the wait fd, every byte and the
 * source port checked; malformed first-contact datagrams from a plain UDP
 * socket in between never reach the receiver; EMSGSIZE above the limit;
 * a blocking receive with SO_RCVTIMEO times out with EAGAIN; two threads
 * blocked in recv on one socket share 200 datagrams (each arrives once,
 * both wake for their stop datagram: one polls the wait fd, the other
 * waits on the socket's condition, and each wakes the other). Exit 0 and
 * "PASS", or one line naming the failed step.
 */
#include "rs_test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <unistd.h>

static int open_bound(const char *ip, struct tsock *t, struct sockaddr_storage *a, socklen_t *l)
{
    if (tu_parse_addr(ip, 0, a, l))
        return tu_failf("address %s", ip);
    t->fd = M->socket(a->ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0, &t->s);
    if (t->fd < 0 || M->bind(t->s, (struct sockaddr *)a, *l))
        return tu_fail("socket/bind");
    socklen_t n = sizeof(*a);
    if (M->getsockname(t->s, (struct sockaddr *)a, &n))
        return tu_fail("getsockname");
    return 0;
}

static int one(struct tsock *from, struct tsock *to, const struct sockaddr_storage *from_a,
               const struct sockaddr_storage *to_a, socklen_t l, size_t len, uint32_t seed)
{
    uint8_t out[2048], in[4096];
    tu_fill(out, len, 0, seed);
    struct iovec iov = { out, len };
    struct msghdr m = { .msg_name = (void *)to_a, .msg_namelen = l, .msg_iov = &iov, .msg_iovlen = 1 };
    if (M->sendmsg(from->s, &m, 0) != (ssize_t)len)
        return tu_failf("sendmsg of %zu bytes: %s", len, strerror(errno));
    if (!(tu_wait_mask(to, EPOLLIN, 10000) & EPOLLIN))
        return tu_failf("datagram %u of %zu bytes not readable within 10 s", seed, len);
    struct sockaddr_storage src;
    struct iovec riov = { in, sizeof(in) };
    struct msghdr r = { .msg_name = &src, .msg_namelen = sizeof(src), .msg_iov = &riov, .msg_iovlen = 1 };
    ssize_t n = M->recvmsg(to->s, &r, 0);
    if (n != (ssize_t)len || tu_check(in, len, 0, seed) >= 0)
        return tu_failf("datagram %u: got %zd bytes of %zu (first bad byte %ld)", seed, n, len,
                        n > 0 ? tu_check(in, (size_t)n, 0, seed) : -1);
    if (((struct sockaddr_in *)&src)->sin_port != ((const struct sockaddr_in *)from_a)->sin_port)
        return tu_failf("datagram %u: wrong source port", seed);
    return 0;
}

static int malformed(const struct sockaddr_storage *to, socklen_t l)
{
    int k = socket(to->ss_family, SOCK_DGRAM, 0);
    uint8_t bad[40] = { 0x55, 0x55, 0x55, 0x55, 9, 0, 16 };   /* version 9 */
    sendto(k, bad, sizeof(bad), 0, (const struct sockaddr *)to, l);
    bad[4] = 4;
    bad[6] = 99;                                            /* wrong length */
    sendto(k, bad, sizeof(bad), 0, (const struct sockaddr *)to, l);
    sendto(k, "no header at all", 16, 0, (const struct sockaddr *)to, l);
    close(k);
    return 0;
}

struct rx_thread {
    struct tsock *t;
    int count;
    pthread_t tid;
};

static void *rx_loop(void *arg)
{
    struct rx_thread *r = arg;
    uint8_t buf[64];
    for (int i = 0; i < 100000; i++) {
        ssize_t n = M->recv(r->t->s, buf, sizeof(buf), 0);
        if (n == 4 && memcmp(buf, "STOP", 4) == 0)
            break;
        if (n > 0)
            r->count++;
    }
    return NULL;
}

/* Two blocked receivers on b, 200 datagrams from a (fewer than b's receive
 * slots: none can be dropped), then a STOP each. */
static int two_receivers(struct tsock *a, struct tsock *b, struct sockaddr_storage *ba, socklen_t l)
{
    struct rx_thread r[2] = { { .t = b }, { .t = b } };
    struct timeval none = { 0, 0 };
    if (M->setsockopt(b->s, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none)))
        return tu_fail("SO_RCVTIMEO off");
    for (int i = 0; i < 2; i++)
        if (pthread_create(&r[i].tid, NULL, rx_loop, &r[i]))
            return tu_fail("pthread_create");
    for (int i = 0; i < 200; i++) {
        struct iovec iov = { "data", 4 };
        struct msghdr m = { .msg_name = ba, .msg_namelen = l, .msg_iov = &iov, .msg_iovlen = 1 };
        if (M->sendmsg(a->s, &m, 0) != 4)
            return tu_fail("send to the receivers");
    }
    /* in order behind the data (one sender, one UD path), so a thread takes
     * its STOP only when every datagram before it was taken */
    for (int i = 0; i < 2; i++) {
        struct iovec iov = { "STOP", 4 };
        struct msghdr m = { .msg_name = ba, .msg_namelen = l, .msg_iov = &iov, .msg_iovlen = 1 };
        if (M->sendmsg(a->s, &m, 0) != 4)
            return tu_fail("send STOP");
    }
    for (int i = 0; i < 2; i++)
        pthread_join(r[i].tid, NULL);
    if (r[0].count + r[1].count != 200)
        return tu_failf("two receivers got %d + %d datagrams, expected 200", r[0].count, r[1].count);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2 || tu_module_init())
        return 2;
    struct tsock a, b;
    struct sockaddr_storage aa, ba;
    socklen_t l;
    if (open_bound(argv[1], &a, &aa, &l) || open_bound(argv[1], &b, &ba, &l))
        return 1;
    size_t max = aa.ss_family == AF_INET6 ? 2020 : 2032;
    for (uint32_t i = 0; i < 400; i++) {
        size_t len = i == 0 ? max : 1 + (i * 37) % max;
        if (one(&a, &b, &aa, &ba, l, len, i) || one(&b, &a, &ba, &aa, l, len, i + 1000))
            return 1;
        if (i == 200 && malformed(&ba, l))
            return 1;
    }
    uint8_t big[2100] = { 0 };
    struct iovec iov = { big, max + 1 };
    struct msghdr m = { .msg_name = &ba, .msg_namelen = l, .msg_iov = &iov, .msg_iovlen = 1 };
    if (M->sendmsg(a.s, &m, 0) != -1 || errno != EMSGSIZE)
        return tu_failf("%zu bytes not refused with EMSGSIZE", max + 1);
    struct timeval tv = { 0, 200000 };
    if (M->set_nonblock(b.s, 0) || M->setsockopt(b.s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
        return tu_fail("blocking with SO_RCVTIMEO");
    int64_t t0 = tu_now_ms();
    if (M->recv(b.s, big, sizeof(big), 0) != -1 || errno != EAGAIN || tu_now_ms() - t0 < 150)
        return tu_failf("blocking recv on an empty socket did not time out (malformed data delivered?)");
    if (two_receivers(&a, &b, &ba, l))
        return 1;
    M->close(a.s);
    M->close(b.s);
    printf("PASS: 800 datagrams checked, malformed ones dropped, EMSGSIZE, SO_RCVTIMEO, "
           "two blocked receivers\n");
    return 0;
}
