/*
 * vc_serv_file - file-transfer receiver (DMM's TCP and UDP forms):
 *   vc_serv_file [serv] tcp BIND_IP PORT [OUTFILE]   (OUTFILE: receive_file.txt)
 *   vc_serv_file [serv] udp BIND_IP PORT OUTFILE CHUNK   (file_udp_recv.c)
 * Accepts one connection, receives a file framed as in file_proto.h into
 * OUTFILE, checks that exactly the announced length arrived and that the
 * FNV-1a-64 digest matches, answers the sender with the verdict and prints
 * "Result = Success" (exit 0) or "Result = Fail" (exit 1, reason on
 * stderr); usage errors exit 2. Waits are bounded by VS_TIMEOUT.
 */
#include "app_fail.h"
#include "app_listen.h"
#include "app_timeout.h"
#include "file_proto.h"
#include "file_udp.h"
#include "fnv1a64.h"
#include "net_addr.h"
#include "num_parse.h"
#include "sock_io.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_OUTFILE "receive_file.txt"

static int listen_on(const char *ip, const char *port_text)
{
    long port;
    struct net_addr local;
    if (!num_parse_long(port_text, 1, 65535, &port))
        app_die(APP_EXIT_USAGE, "port \"%s\": expected 1..65535", port_text);
    if (!net_addr_parse(ip, (int)port, &local))
        app_die(APP_EXIT_USAGE, "bind IP \"%s\": not an IPv4 or IPv6 address", ip);
    struct io_error err;
    int lfd = app_listen_announce(&local, true, &err);
    if (lfd < 0)
        app_fail_result("%s", err.text);
    return lfd;
}

static int accept_sender(int lfd)
{
    struct io_error err;
    int fd = sock_accept_within(lfd, SOCK_NONBLOCK, app_timeout_ms,
                                "accept the sender", NULL, &err);
    if (fd < 0)
        app_fail_result("%s", err.text);
    return fd;
}

static uint64_t read_header(int sock)
{
    unsigned char h[FILE_PROTO_HEADER_LEN];
    struct io_error err;
    if (!io_recv_all(sock, h, sizeof(h), app_timeout_ms, &err))
        app_fail_result("reading the header: %s", err.text);
    if (memcmp(h, FILE_PROTO_MAGIC, 4) != 0 ||
        file_proto_get_be(h + 4, 4) != FILE_PROTO_VERSION)
        app_fail_result("bad header: not a vc_cli_file version %u stream",
                    FILE_PROTO_VERSION);
    return file_proto_get_be(h + 8, 8);
}

/* Receive `length` bytes into `out`; returns their digest. */
static uint64_t receive_body(int sock, int out, const char *path, uint64_t length)
{
    static unsigned char chunk[FILE_PROTO_CHUNK];
    uint64_t digest = FNV1A64_INIT, got = 0;
    struct io_error err;
    while (got < length) {
        size_t want = length - got < sizeof(chunk) ? (size_t)(length - got)
                                                   : sizeof(chunk);
        if (!io_recv_all(sock, chunk, want, app_timeout_ms, &err))
            app_fail_result("file shorter than the announced %" PRIu64
                        " bytes (chunk at byte %" PRIu64 ": %s)", length, got,
                        err.text);
        if (write(out, chunk, want) != (ssize_t)want)
            app_fail_result("%s: write: %s", path, strerror(errno));
        digest = fnv1a64_update(digest, chunk, want);
        got += want;
    }
    return digest;
}

static bool check_digest(int sock, uint64_t digest)
{
    unsigned char t[FILE_PROTO_TRAILER_LEN];
    struct io_error err;
    if (!io_recv_all(sock, t, sizeof(t), app_timeout_ms, &err))
        app_fail_result("reading the digest: %s", err.text);
    uint64_t want = file_proto_get_be(t, FILE_PROTO_TRAILER_LEN);
    if (want == digest)
        return true;
    app_warn("FAIL: digest mismatch: sender fnv1a64=%016" PRIx64
             ", received data fnv1a64=%016" PRIx64, want, digest);
    return false;
}

static void send_verdict(int sock, bool ok)
{
    unsigned char v = ok ? FILE_PROTO_OK : FILE_PROTO_BAD;
    struct io_error err;
    if (!io_send_all(sock, &v, 1, app_timeout_ms, &err))
        app_warn("could not send the verdict: %s", err.text);
}

int main(int argc, char **argv)
{
    app_start(argv[0]);
    if (argc >= 2 && strcmp(argv[1], "serv") == 0) {   /* DMM's leading word */
        argv[1] = argv[0];
        argc--, argv++;
    }
    if (argc >= 2 && strcmp(argv[1], "udp") == 0)
        return fu_serve(argc, argv);
    if (argc < 4 || argc > 5 || strcmp(argv[1], "tcp") != 0)
        app_die(APP_EXIT_USAGE, "usage: vc_serv_file [serv] tcp BIND_IP PORT [OUTFILE] | "
                "[serv] udp BIND_IP PORT OUTFILE CHUNK");
    app_timeout_init(NULL);
    const char *path = argc == 5 ? argv[4] : DEFAULT_OUTFILE;
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0)
        app_die(APP_EXIT_USAGE, "outfile \"%s\": %s", path, strerror(errno));
    int lfd = listen_on(argv[2], argv[3]);
    int sock = accept_sender(lfd);
    close(lfd);
    uint64_t length = read_header(sock);
    uint64_t digest = receive_body(sock, out, path, length);
    if (close(out) != 0)
        app_fail_result("%s: close: %s", path, strerror(errno));
    bool ok = check_digest(sock, digest);
    send_verdict(sock, ok);
    close(sock);
    if (!ok)
        app_fail_result("%s: received data differs from what was sent", path);
    printf("received %" PRIu64 " bytes into %s, fnv1a64=%016" PRIx64 "\n",
           length, path, digest);
    printf("Result = Success\n");
    return APP_EXIT_OK;
}
