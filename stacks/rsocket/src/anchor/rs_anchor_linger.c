/*
 * rs_anchor_linger.c - the TCP socket of a passive end that closed before
 * the peer's handshake bytes arrived.
 *
 * A framework client sends its hello (an urgent byte) once its connect
 * completes, and its first connect in a process also starts the device,
 * so the hello may leave milliseconds later. A server that answers at
 * once and closes (redis refusing a client in protected mode) closed a
 * kernel socket whose peer then sent a byte: the kernel answers data for
 * a closed socket with a reset, and the client's next call failed with
 * EPIPE/ECONNRESET before it could read the reply - where on kernel TCP,
 * whose client sent nothing yet, it reads the reply and EOF
 * (redis-benchmark then spun at 100% CPU). So such a socket, its FIN
 * already sent, is kept open here for a while: what the peer still sends
 * is read and dropped, and it is closed once the peer closes too, after
 * RS_LINGER_MS at most, or when RS_LINGER_MAX newer ones push it out.
 * No thread: the list is looked at whenever an anchored connection of
 * the process opens or closes (cheap while it is empty).
 *
 * Locking: linger_lock guards the list; n_linger is also read without it
 * (atomic) to skip the lock while nothing lingers.
 */
#include "rs_anchor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#define RS_LINGER_MAX 64
#define RS_LINGER_MS 2000

struct lingering {
    int fd;
    int64_t until_ms;
};

static pthread_mutex_t linger_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lingering lingering[RS_LINGER_MAX];
static int n_linger;

/* Reads and drops what the peer sent; 1 once it closed (or the socket
 * failed): nothing more can come that would need an answer. */
static int peer_finished(int fd)
{
    char sink[512];
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n == 0)
            return 1;
        if (n < 0)
            return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
    return 0;
}

static void drop_locked(int i)
{
    close(lingering[i].fd);
    lingering[i] = lingering[n_linger - 1];
    __atomic_store_n(&n_linger, n_linger - 1, __ATOMIC_RELEASE);
}

static void reap_locked(int64_t now)
{
    for (int i = 0; i < n_linger;) {
        if (now >= lingering[i].until_ms || peer_finished(lingering[i].fd))
            drop_locked(i);
        else
            i++;
    }
}

void rs_anc_linger(int kfd)
{
    int base = rs_high_fd_base();
    int fd = fcntl(kfd, F_DUPFD_CLOEXEC, base);
    if (fd < 0)
        fd = fcntl(kfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return;                 /* out of descriptors: closes as before */
    int64_t now = rs_now_ms();
    pthread_mutex_lock(&linger_lock);
    reap_locked(now);
    if (n_linger == RS_LINGER_MAX) {
        int oldest = 0;
        for (int i = 1; i < n_linger; i++)
            if (lingering[i].until_ms < lingering[oldest].until_ms)
                oldest = i;
        drop_locked(oldest);
    }
    lingering[n_linger] = (struct lingering){ fd, now + RS_LINGER_MS };
    __atomic_store_n(&n_linger, n_linger + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&linger_lock);
}

void rs_anc_linger_reap(void)
{
    if (__atomic_load_n(&n_linger, __ATOMIC_ACQUIRE) == 0)
        return;
    int64_t now = rs_now_ms();
    pthread_mutex_lock(&linger_lock);
    reap_locked(now);
    pthread_mutex_unlock(&linger_lock);
}
