/* rsbug_disc.c - a DISCONNECT landing in the same completion batch as the
 * data before it: the reader, which only starts once the writer has closed
 * and exited, gets every byte in order and then EOF. */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <stdlib.h>

#define DISC_MSGS 120   /* within the default 384 receive credits */

static size_t disc_total(void)
{
    return (size_t)DISC_MSGS * (DISC_MSGS + 1) / 2;
}

/* Many small sends (1, 2, ..., DISC_MSGS bytes), then close at once. */
void discbatch_server(const struct rb_args *a)
{
    int fd = rb_serve_one(a);
    char hello[4];
    rb_recv_all(fd, hello, 4);
    uint8_t *b = malloc(disc_total());
    CHECK(b, "malloc");
    rb_fill(b, disc_total(), 0);
    for (size_t i = 1, off = 0; i <= DISC_MSGS; off += i, i++)
        rb_send_all(fd, b + off, i);
    free(b);
    rb_close(fd, "connection with unread data at the peer");
    rb_say("SERVER OK");
}

/* Reads nothing until the driver says the server is gone. */
void discbatch_client(const struct rb_args *a)
{
    int fd = rb_connect(a);
    rb_send_all(fd, "HELO", 4);
    rb_wait_file(a->go, 240);
    rb_recv_pattern(fd, disc_total(), 0);
    rb_expect_eof(fd);
    rb_expect_eof(fd);
    rb_close(fd, "connection");
    rb_say("CLIENT OK");
}
