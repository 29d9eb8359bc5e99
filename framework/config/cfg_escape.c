/*
 * cfg_escape.c - make a diagnostic line safe for a log: a config file (or
 * the path of one) may hold control bytes or invalid UTF-8, which must not
 * reach a terminal or a log file raw (escape sequences, broken lines).
 * Valid UTF-8 of printable characters passes unchanged; every other byte
 * becomes "\xNN".
 */
#include <stdio.h>

#include "cfg_internal.h"

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n, i;

    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0;
    if (p[0] == 0xe0)
        lo = 0xa0;              /* overlong */
    else if (p[0] == 0xed)
        hi = 0x9f;              /* surrogates */
    else if (p[0] == 0xf0)
        lo = 0x90;              /* overlong */
    else if (p[0] == 0xf4)
        hi = 0x8f;              /* past U+10FFFF */
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;           /* also stops at the terminating NUL */
    return n;
}

/* C1 controls (U+0080..U+009F) are terminal commands too. */
static int is_c1(const unsigned char *p)
{
    return p[0] == 0xc2 && p[1] < 0xa0;
}

size_t cfg_escape(char *out, size_t cap, const char *in)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0, n;

    if (cap == 0)
        return 0;
    while (*p) {
        n = *p >= 0x20 && *p < 0x7f ? 1 : utf8_len(p);
        if (n > 1 && is_c1(p))
            n = 0;
        if (n == 0) {           /* one byte, escaped */
            if (o + 4 >= cap)
                break;
            snprintf(out + o, cap - o, "\\x%02x", *p);
            o += 4;
            p++;
            continue;
        }
        if (o + n >= cap)
            break;              /* never cut a character in half */
        for (size_t i = 0; i < n; i++)
            out[o++] = (char)*p++;
    }
    out[o] = '\0';
    return o;
}
