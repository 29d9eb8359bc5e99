/* libc_api.c - resolution of the libc originals (see libc_api.h). */
#include "libc_api.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

struct libc_api g_libc;

void libc_resolve_all(void)
{
#define LIBC_RESOLVE(name) \
    if (__atomic_load_n(&g_libc.name, __ATOMIC_RELAXED) == NULL) \
        __atomic_store_n(&g_libc.name, (__typeof__(name) *)dlsym(RTLD_NEXT, #name), __ATOMIC_RELAXED);
    LIBC_QUIET_BEGIN
    LIBC_FUNCS(LIBC_RESOLVE)
    LIBC_QUIET_END
#undef LIBC_RESOLVE
    /* Without the originals nothing can work; say so rather than crash. */
    if (g_libc.close == NULL || g_libc.read == NULL) {
        static const char msg[] = "nstack: EMG: dlsym(RTLD_NEXT) cannot find libc; aborting\n";
        (void)!syscall(SYS_write, 2, msg, sizeof(msg) - 1);
        abort();
    }
}

__attribute__((constructor(101))) static void libc_api_ctor(void)
{
    libc_resolve_all();
}
