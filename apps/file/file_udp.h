/*
 * file_udp.h - the UDP form of the file-transfer pair (DMM's arguments):
 *   vc_serv_file [serv] udp BIND_IP PORT OUTFILE CHUNK
 *   vc_cli_file  [cli]  udp SERVER_IP PORT CLIENT_IP FILE TARGET CHUNK
 *
 * UDP may drop, duplicate and reorder, so the pair makes it reliable with
 * sequence numbers, cumulative + selective acknowledgements and bounded
 * retransmission (doc/regression-apps.md, "UDP form"). Every packet starts
 * with a 16-byte header, integers big-endian:
 *
 *   0  4  magic "NSTU"
 *   4  1  type (FU_*)
 *   5  3  reserved, 0
 *   8  4  seq   START/START_ACK: 0; DATA: chunk index; ACK: next chunk
 *               expected (all below arrived); END: number of chunks
 *  12  4  aux   START: sender's chunk size; START_ACK: 0 (accepted) or an
 *               errno-like refusal code; ACK: selective bits, bit i = chunk
 *               seq+1+i arrived; VERDICT: 'K' or 'F'
 *
 * START carries u64 file length + the TARGET name (up to 255 bytes);
 * DATA carries the chunk (the last one may be short); END carries the u64
 * FNV-1a-64 digest of the whole file.
 */
#ifndef FILE_UDP_H
#define FILE_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FU_MAGIC "NSTU"
#define FU_HDR 16
#define FU_START 1
#define FU_START_ACK 2
#define FU_DATA 3
#define FU_ACK 4
#define FU_END 5
#define FU_VERDICT 6

#define FU_WINDOW 32            /* chunks in flight; the receiver buffers as many */
#define FU_RTO_MS 20            /* first retransmission timeout */
#define FU_RTO_MAX_MS 400       /* doubled per retry up to this */
#define FU_MAX_TRIES 100        /* sends of one packet before giving up */
#define FU_LINGER_MS 1000       /* receiver: silence that ends the run */
#define FU_TARGET_MAX 255
#define FU_CHUNK_MAX 65000      /* fits a UDP datagram with the header */
#define FU_REFUSE_CHUNK 1       /* START_ACK aux: chunk larger than ours */

struct fu_hdr {
    uint8_t type;
    uint32_t seq, aux;
};

void fu_put(uint8_t *p, const struct fu_hdr *h);
/* false unless the magic matches and len >= FU_HDR */
bool fu_get(const uint8_t *p, size_t len, struct fu_hdr *h);
void fu_be64(uint8_t *p, uint64_t v);
uint64_t fu_get64(const uint8_t *p);

/* Milliseconds of the monotonic clock. */
int64_t fu_now_ms(void);

/* Parse CHUNK (1..FU_CHUNK_MAX) or exit 2 naming it. */
uint32_t fu_chunk_arg(const char *text);

/* Receive one datagram within timeout_ms (0: poll once). Returns its
 * length, 0 on timeout (FU_TEST_DROP=PERCENT: tests make it lose that
 * share of datagrams), or exits with "Result = Fail" on a socket error. */
size_t fu_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms);
/* Send one datagram; a full socket buffer (EAGAIN, ENOBUFS) counts as a
 * loss that retransmission repairs. Other errors fail the run. */
void fu_send(int fd, const void *buf, size_t len);

/* Open the file to send (both forms; before any socket, so a bad path is
 * a usage error: exit 2 naming it); its length in *length. */
int file_open_regular(const char *path, uint64_t *length);

int fu_serve(int argc, char **argv);   /* vc_serv_file's UDP form */
int fu_send_file(int argc, char **argv); /* vc_cli_file's UDP form */

#endif /* FILE_UDP_H */
