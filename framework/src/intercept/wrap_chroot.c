/* wrap_chroot.c - chroot(): the dispatcher reads its configuration
 * (fw_start) before the process confines itself to a directory where the
 * configuration files are not. dovecot's imap-login chroots at start and
 * makes its first socket after: without this its dispatcher found no
 * configuration and served everything on the kernel ("configuration
 * unusable"). The modules are not started here (fw_warm.c does that
 * before RLIMIT_NPROC is lowered): OpenSSH's preauth child chroots and
 * then installs a seccomp filter, which a device thread started now would
 * run into. */
#include <unistd.h>

#include "fw.h"
#include "libc_api.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT int chroot(const char *path)
{
    if (!t_in_module)
        fw_start();
    return LIBC(chroot)(path);
}
