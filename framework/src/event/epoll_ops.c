/* epoll_ops.c - the operations of an epoll fd (FILE_EPOLL): it is not a
 * socket, and every call the framework interposes on it is the kernel's
 * (socket calls fail there with ENOTSOCK; O_NONBLOCK is the epoll fd's).
 * Its own calls (epoll_ctl, epoll_wait) are in wrap_event.c. */
#include "epoll_agg.h"
#include "file_ops.h"

const struct file_ops epoll_file_ops = {
    .release = ev_set_gone,     /* its set of module registrations */
    .ep_ctl = ev_ctl_set,       /* added to another set: nested */
    /* every other slot: the libc pass-through (file_ops.c) */
};
