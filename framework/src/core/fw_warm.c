/* fw_warm.c - start the modules' lazy resources ahead of a restriction.
 * A module socket made and closed at once: the module's init() and its
 * device's start-up (rsocket: an rdma_cm event channel and id, which
 * start the device's thread) run while the process still may. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "fw.h"
#include "fw_log.h"
#include "fw_warm.h"

void fw_warm_stacks(const char *why)
{
    int saved = errno;
    fw_start();
    for (int i = 0; i < g_n_stacks; i++) {
        if (g_stacks[i].is_kernel || !g_stacks[i].mod || fw_stack_ready(i) != 0)
            continue;
        const struct nstack_module *m = g_stacks[i].mod;
        nstack_sock *s = NULL;
        MOD_ENTER();
        int r = m->socket(AF_INET, SOCK_STREAM, 0, &s);
        int err = errno;
        if (r == 0 && s)
            m->close(s);
        MOD_LEAVE();
        fw_log(NSTACK_LOG_DBG, g_stacks[i].name, "started ahead of %s%s%s%s", why,
               r == 0 ? "" : " (its socket failed: ", r == 0 ? "" : strerror(err), r == 0 ? "" : ")");
    }
    errno = saved;
}
