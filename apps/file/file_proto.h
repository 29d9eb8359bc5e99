/*
 * file_proto.h - wire format of the vc_cli_file -> vc_serv_file transfer.
 *
 *   header  16 bytes: "NSTF", u32 version (1), u64 file length
 *   data    `length` bytes of the file
 *   trailer  8 bytes: u64 FNV-1a-64 digest of the data
 *   verdict  1 byte back from the receiver: 'K' (length and digest match)
 *            or 'F'
 * Integers are big-endian. The receiver checks both the length (the data
 * must end exactly where the header said) and the digest.
 */
#ifndef FILE_PROTO_H
#define FILE_PROTO_H

#include <stdint.h>
#include <string.h>

#define FILE_PROTO_MAGIC "NSTF"
#define FILE_PROTO_VERSION 1u
#define FILE_PROTO_HEADER_LEN 16
#define FILE_PROTO_TRAILER_LEN 8
#define FILE_PROTO_OK 'K'
#define FILE_PROTO_BAD 'F'
#define FILE_PROTO_CHUNK 65536

static inline void file_proto_put_be(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static inline uint64_t file_proto_get_be(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

static inline void file_proto_header(unsigned char *h, uint64_t length)
{
    memcpy(h, FILE_PROTO_MAGIC, 4);
    file_proto_put_be(h + 4, FILE_PROTO_VERSION, 4);
    file_proto_put_be(h + 8, length, 8);
}

#endif /* FILE_PROTO_H */
