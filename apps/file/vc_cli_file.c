/*
 * vc_cli_file - file-transfer sender (DMM's TCP and UDP forms):
 *   vc_cli_file [cli] tcp SERVER_IP PORT FILE CLIENT_IP
 *   vc_cli_file [cli] udp SERVER_IP PORT CLIENT_IP FILE TARGET CHUNK
 *                                                    (file_udp_send.c)
 * Binds CLIENT_IP, connects to SERVER_IP:PORT, sends FILE framed as in
 * file_proto.h (length header, FNV-1a-64 trailer) and waits for the
 * receiver's verdict. Prints "Result = Success" (exit 0) or
 * "Result = Fail" (exit 1, reason on stderr); usage errors exit 2.
 * Waits are bounded by VS_TIMEOUT (see app_timeout.h).
 */
#include "app_fail.h"
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int connect_from(const char *srv, const char *port_text,
                        const char *cli_ip)
{
    long port;
    struct net_addr peer, local;
    if (!num_parse_long(port_text, 1, 65535, &port))
        app_die(APP_EXIT_USAGE, "port \"%s\": expected 1..65535", port_text);
    if (!net_addr_parse(srv, (int)port, &peer))
        app_die(APP_EXIT_USAGE, "server \"%s\": not an IPv4 or IPv6 address", srv);
    if (!net_addr_parse(cli_ip, 0, &local))
        app_die(APP_EXIT_USAGE, "client IP \"%s\": not an IPv4 or IPv6 address",
                cli_ip);
    struct io_error err;
    int fd = sock_connect_tcp(&local, &peer, app_timeout_ms, &err);
    if (fd < 0)
        app_fail_result("%s", err.text);
    return fd;
}

/* Stream the file body; returns its digest. */
static uint64_t send_body(int sock, int file, const char *path, uint64_t length)
{
    static unsigned char chunk[FILE_PROTO_CHUNK];
    uint64_t digest = FNV1A64_INIT, sent = 0;
    struct io_error err;
    while (sent < length) {
        ssize_t n = read(file, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            app_fail_result("%s: %s after %" PRIu64 " of %" PRIu64 " bytes", path,
                        n == 0 ? "file shrank" : strerror(errno), sent, length);
        if ((uint64_t)n > length - sent)
            n = (ssize_t)(length - sent);   /* the file grew: send what we announced */
        digest = fnv1a64_update(digest, chunk, (size_t)n);
        if (!io_send_all(sock, chunk, (size_t)n, app_timeout_ms, &err))
            app_fail_result("after %" PRIu64 " bytes: %s", sent, err.text);
        sent += (uint64_t)n;
    }
    return digest;
}

static void send_file(int sock, int file, const char *path, uint64_t length)
{
    unsigned char head[FILE_PROTO_HEADER_LEN], tail[FILE_PROTO_TRAILER_LEN];
    struct io_error err;
    file_proto_header(head, length);
    if (!io_send_all(sock, head, sizeof(head), app_timeout_ms, &err))
        app_fail_result("sending the header: %s", err.text);
    uint64_t digest = send_body(sock, file, path, length);
    file_proto_put_be(tail, digest, FILE_PROTO_TRAILER_LEN);
    if (!io_send_all(sock, tail, sizeof(tail), app_timeout_ms, &err))
        app_fail_result("sending the digest: %s", err.text);
    printf("sent %" PRIu64 " bytes of %s, fnv1a64=%016" PRIx64 "\n", length,
           path, digest);
}

static void read_verdict(int sock)
{
    unsigned char verdict;
    struct io_error err;
    if (!io_recv_all(sock, &verdict, 1, app_timeout_ms, &err))
        app_fail_result("waiting for the receiver's verdict: %s", err.text);
    if (verdict != FILE_PROTO_OK)
        app_fail_result("the receiver reports a length or digest mismatch");
    printf("receiver verified length and digest\n");
}

int main(int argc, char **argv)
{
    app_start(argv[0]);
    if (argc >= 2 && strcmp(argv[1], "cli") == 0) {    /* DMM's leading word */
        argv[1] = argv[0];
        argc--, argv++;
    }
    if (argc >= 2 && strcmp(argv[1], "udp") == 0)
        return fu_send_file(argc, argv);
    if (argc != 6 || strcmp(argv[1], "tcp") != 0)
        app_die(APP_EXIT_USAGE, "usage: vc_cli_file [cli] tcp SERVER_IP PORT FILE "
                "CLIENT_IP | [cli] udp SERVER_IP PORT CLIENT_IP FILE TARGET CHUNK");
    app_timeout_init(NULL);
    uint64_t length;
    int file = file_open_regular(argv[4], &length);
    int sock = connect_from(argv[2], argv[3], argv[5]);
    send_file(sock, file, argv[4], length);
    close(file);
    read_verdict(sock);
    close(sock);
    printf("Result = Success\n");
    return APP_EXIT_OK;
}
