/*
 * ds_wire.h - datagram rsockets on the wire (librdmacm's ds_* protocol,
 * doc/rsocket-framework.md "Datagram sockets"), as pure data: the UDP
 * first-contact header (ds_udp_header) and the header in front of every
 * UD message (ds_header), with the receiver's validation of both. No
 * verbs here, so every rule is unit-testable with byte vectors.
 */
#ifndef DS_WIRE_H
#define DS_WIRE_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DS_UDP_TAG      0x55555555u
#define DS_UDP_HDR4     16          /* tag, version, op, length, rsvd, qpn, IPv4 */
#define DS_UDP_HDR6     28          /* ... IPv6 */
#define DS_UDP_OP_DATA  0           /* user data follows; answer with a reply */
#define DS_UDP_OP_REPLY 7           /* no data; never answered */
#define DS_HDR4         8           /* version, length, port, IPv4 */
#define DS_HDR6         24          /* version, length, port, flowinfo, IPv6 */
#define DS_GRH          40          /* at the head of every UD receive buffer */
#define DS_SLOT         2048        /* send and receive slot: header + data */
#define DS_QKEY         0x01234567u /* RDMA_UDP_QKEY */
/* Largest datagram: it must fit a slot with either header, so that both
 * the first-contact path and the UD path carry it whole. */
#define DS_MAX_DATA4    (DS_SLOT - DS_UDP_HDR4)
#define DS_MAX_DATA6    (DS_SLOT - DS_UDP_HDR6)

/* The parts of a first-contact header the receiver uses. */
struct ds_udp_info {
    uint8_t version;             /* 4 or 6 */
    uint8_t op;
    uint8_t len;                 /* header length: 16 or 28 */
    uint32_t qpn;                /* sender's QP number */
};

/* Write a first-contact header for a QP of `family` (AF_INET/AF_INET6)
 * with address `ip` (4 or 16 bytes, network order); returns its length. */
size_t ds_udp_hdr_put(uint8_t *p, int family, uint8_t op, uint32_t qpn, const void *ip);
/* Validate a received first-contact datagram of n bytes that came from an
 * address of `src_family`. 0 and *out filled, or -1 when it must be
 * dropped: short, wrong tag, unknown version, version not matching the
 * source family, or a length that does not match the version. */
int ds_udp_hdr_get(const uint8_t *p, size_t n, int src_family, struct ds_udp_info *out);

/* Write the UD header naming our UDP socket's address (sin or sin6, port
 * and address in network order, flowinfo raw); returns its length. */
size_t ds_hdr_put(uint8_t *p, const struct sockaddr *self);
/* Validate the UD message of n bytes (after the GRH) received by a socket
 * of `family`: 0 with the sender's address in *src (port, address; IPv6
 * with flowinfo, scope 0) and the header length in *hlen, or -1 when it
 * must be dropped: shorter than its header, unknown version, a length that
 * does not match the version, or a family the socket cannot name. */
int ds_hdr_get(const uint8_t *p, size_t n, int family, struct sockaddr_storage *src,
               size_t *hlen);

/* Whether two socket addresses name the same peer (family, port, address;
 * IPv6 also scope). */
int ds_addr_equal(const struct sockaddr *a, const struct sockaddr *b);
/* A hash of the same fields. */
uint32_t ds_addr_hash(const struct sockaddr *a);

#endif /* DS_WIRE_H */
