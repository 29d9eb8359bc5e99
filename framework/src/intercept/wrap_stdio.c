/* wrap_stdio.c - libc calls that write a descriptor by themselves.
 *
 * fdopen(): the stream's own reads and writes bypass every preload
 * (glibc calls its internal read/write), so a connection the module
 * carries goes back to TCP first (anchor_stdio.c). dprintf()/vdprintf():
 * glibc formats into a stream on the fd and writes it the same way; on a
 * socket whose bytes the dispatcher carries (anchor_bytes_interposed) the
 * text is formatted here and written with the interposed write(), whole,
 * as glibc's would. Every other descriptor gets libc's call unchanged. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anchor.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"

#define EXPORT __attribute__((visibility("default")))
#define DPRINTF_STACK 1024     /* most lines fit: no allocation */

EXPORT FILE *fdopen(int fd, const char *mode)
{
    struct file *f;
    if (t_in_module || (f = fd_table_get(fd)) == NULL || mode == NULL)
        return LIBC(fdopen)(fd, mode);
    if (file_is_direct_msock(f)) {
        /* its number is the module's wait fd, not a socket: stdio's own
         * calls on it could only fail, later and without a reason */
        LOG_WAR("fdopen(%d): a module socket without a TCP anchor cannot be used by stdio "
                "(EOPNOTSUPP; route it with \"anchor\": true)", fd);
        errno = EOPNOTSUPP;
        return NULL;
    }
    if (anchor_note_stdio(fd, strchr(mode, 'r') != NULL || strchr(mode, '+') != NULL) < 0)
        return NULL;
    return LIBC(fdopen)(fd, mode);
}

static int write_whole(int fd, const char *buf, int len)
{
    for (int done = 0, i = 0; done < len && i < 1 << 20; i++) {
        ssize_t w = write(fd, buf + done, (size_t)(len - done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        done += (int)w;
    }
    return len;
}

static int format_and_write(int fd, const char *fmt, va_list ap)
{
    char small[DPRINTF_STACK];
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(small, sizeof small, fmt, aq);
    va_end(aq);
    if (n < 0 || (size_t)n < sizeof small)
        return n < 0 ? n : write_whole(fd, small, n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return -1;
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    int r = write_whole(fd, big, n);
    int err = errno;
    free(big);
    errno = err;
    return r;
}

EXPORT int vdprintf(int fd, const char *fmt, va_list ap)
{
    return fd_bytes_interposed(fd) ? format_and_write(fd, fmt, ap) : LIBC(vdprintf)(fd, fmt, ap);
}

EXPORT int dprintf(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vdprintf(fd, fmt, ap);
    va_end(ap);
    return r;
}

/* _FORTIFY_SOURCE builds (Debian's packages) call these instead; flag
 * (refuse %n in a writable format) is libc's to check on its own path,
 * the compiler's on ours. */
EXPORT int __vdprintf_chk(int fd, int flag, const char *fmt, va_list ap)
{
    return fd_bytes_interposed(fd) ? format_and_write(fd, fmt, ap) : LIBC(__vdprintf_chk)(fd, flag, fmt, ap);
}

EXPORT int __dprintf_chk(int fd, int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = __vdprintf_chk(fd, flag, fmt, ap);
    va_end(ap);
    return r;
}
