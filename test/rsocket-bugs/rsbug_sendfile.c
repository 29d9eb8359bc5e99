/* rsbug_sendfile.c - sendfile from a file to a socket routed to rsocket
 * (framework build only): unaligned offsets and chunk sizes, *offset
 * advanced and the file position untouched, then the NULL-offset form
 * advancing the file position; the receiver checks every byte. */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <stdlib.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define SF_SIZE (3 * 1024 * 1024 + 123)
#define SF_FIRST (SF_SIZE / 2 + 7)   /* sent with an offset pointer */
#define SF_CHUNK 100003              /* not a page multiple on purpose */

void sendfile_server(const struct rb_args *a)
{
    int fd = rb_serve_one(a);
    rb_recv_pattern(fd, SF_SIZE, 0);
    rb_send_all(fd, "K", 1);
    rb_expect_eof(fd);
    rb_close(fd, "connection");
    rb_say("SERVER OK");
}

static int pattern_file(void)
{
    char path[] = "/tmp/rsbug-sendfile.XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0, "mkstemp");
    unlink(path);
    uint8_t *b = malloc(SF_SIZE);
    CHECK(b, "malloc");
    rb_fill(b, SF_SIZE, 0);
    CHECK(write(f, b, SF_SIZE) == SF_SIZE, "write the file");
    free(b);
    CHECK(lseek(f, 0, SEEK_SET) == 0, "lseek");
    return f;
}

static void send_with_offset(int fd, int f)
{
    off_t off = 0;
    while (off < SF_FIRST) {
        off_t before = off;
        size_t n = SF_FIRST - off < SF_CHUNK ? (size_t)(SF_FIRST - off) : SF_CHUNK;
        ssize_t r = sendfile(fd, f, &off, n);
        CHECK(r > 0, "sendfile(offset %lld, %zu bytes) returned %zd", (long long)before, n, r);
        CHECK(off == before + r, "sendfile moved *offset by %lld for %zd bytes",
              (long long)(off - before), r);
        CHECK(lseek(f, 0, SEEK_CUR) == 0, "sendfile with an offset moved the file position");
    }
}

static void send_from_position(int fd, int f)
{
    CHECK(lseek(f, SF_FIRST, SEEK_SET) == SF_FIRST, "lseek");
    for (off_t pos = SF_FIRST; pos < SF_SIZE;) {
        ssize_t r = sendfile(fd, f, NULL, SF_CHUNK);
        CHECK(r > 0, "sendfile(NULL offset) at %lld returned %zd", (long long)pos, r);
        pos += r;
        CHECK(lseek(f, 0, SEEK_CUR) == pos, "file position not advanced by sendfile(NULL)");
    }
}

void sendfile_client(const struct rb_args *a)
{
    int fd = rb_connect(a);
    int f = pattern_file();
    send_with_offset(fd, f);
    send_from_position(fd, f);
    close(f);
    char ok;
    rb_recv_all(fd, &ok, 1);
    CHECK(ok == 'K', "server verdict");
    rb_close(fd, "connection");
    rb_say("CLIENT OK");
}
