/* migrate.c - see migrate.h. */
#include "migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>

#include "fd_table.h"
#include "fw_log.h"
#include "libc_api.h"

int fd_migrate_one(int fd, int src)
{
    int fdflags = LIBC(fcntl)(fd, F_GETFD);
    if (fdflags < 0)
        return -1;
    return LIBC(dup3)(src, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0 ? -1 : 0;
}

struct migration {
    struct file *from, *to;
    int src, skip;
    const char *what;
    int first;          /* the lowest number moved, -1: none */
};

static void migrate_one(int fd, struct file *f, void *arg)
{
    struct migration *m = arg;
    if (f != m->from || fd == m->skip)
        return;
    if (m->src >= 0 && fd_migrate_one(fd, m->src) < 0) {
        LOG_ERR("fd %d: cannot move onto %s: %s; it keeps its socket", fd, m->what, strerror(errno));
        return;
    }
    file_hold(m->to);
    if (!fd_table_cas(fd, m->from, m->to)) {
        file_put(m->to);            /* closed meanwhile */
        return;
    }
    file_put(m->from);
    if (m->first < 0 || fd < m->first)
        m->first = fd;
}

int fd_migrate(struct file *from, struct file *to, int src, int skip, const char *what)
{
    struct migration m = { .from = from, .to = to, .src = src, .skip = skip, .what = what, .first = -1 };
    fd_table_each(0, -1, migrate_one, &m);
    return m.first;
}

void ev_reregister(struct file *to, const struct pre_reg *regs, int n)
{
    for (int i = 0; i < n; i++) {
        struct epoll_event ev = regs[i].ev;
        if (fd_table_get(regs[i].fd) != to)
            continue;               /* that number was closed meanwhile */
        if (LIBC(epoll_ctl)(regs[i].epfd, EPOLL_CTL_ADD, regs[i].fd, &ev) < 0 && errno != EEXIST)
            LOG_WAR("fd %d: cannot register it in epoll fd %d again after its socket changed: %s",
                    regs[i].fd, regs[i].epfd, strerror(errno));
    }
}
