/* module_load.c - dlopen + <stack_name>_stack_register + ABI checks. */
#include "module_load.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "fw.h"
#include "fw_log.h"
#include "module_ops.h"

/* The smallest module structure a 1.x dispatcher accepts: ABI 1.0 ends
 * with poll_events. */
#define MODULE_MIN_SIZE (offsetof(struct nstack_module, poll_events) + sizeof(void *))

/* dlopen(libname); if that fails and libname has no '/', try the directory
 * holding libnStackAPI.so (found with dladdr on one of our own symbols). */
static void *open_library(const char *libname, char *why, size_t whylen)
{
    void *h = dlopen(libname, RTLD_NOW | RTLD_LOCAL);
    if (h != NULL)
        return h;
    snprintf(why, whylen, "%s", dlerror());
    Dl_info info;
    if (strchr(libname, '/') != NULL || dladdr((void *)open_library, &info) == 0 ||
        info.dli_fname == NULL)
        return NULL;
    char path[4096];
    const char *slash = strrchr(info.dli_fname, '/');
    int dirlen = slash ? (int)(slash - info.dli_fname) : 1;
    snprintf(path, sizeof(path), "%.*s/%s", dirlen, slash ? info.dli_fname : ".", libname);
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        snprintf(why, whylen, "%s", dlerror());
    return h;
}

static const struct nstack_module *check_module(const char *cfg_file, const char *name,
                                                const struct nstack_module *m)
{
    if (m == NULL) {
        fw_log(NSTACK_LOG_ERR, NULL, "%s: module \"%s\": register returned no module", cfg_file, name);
        return NULL;
    }
    if ((m->abi_version >> 16) != NSTACK_MODULE_ABI_MAJOR) {
        fw_log(NSTACK_LOG_ERR, NULL, "%s: module \"%s\": ABI major %u, dispatcher needs %u; skipped",
               cfg_file, name, m->abi_version >> 16, NSTACK_MODULE_ABI_MAJOR);
        return NULL;
    }
    if (m->struct_size < MODULE_MIN_SIZE) {
        fw_log(NSTACK_LOG_ERR, NULL, "%s: module \"%s\": struct_size %u is smaller than ABI 1.0 (%zu); skipped",
               cfg_file, name, m->struct_size, (size_t)MODULE_MIN_SIZE);
        return NULL;
    }
    if (m->socket == NULL || m->close == NULL || m->poll_events == NULL) {
        fw_log(NSTACK_LOG_ERR, NULL, "%s: module \"%s\": socket/close/poll_events missing; skipped",
               cfg_file, name);
        return NULL;
    }
    return m;
}

const struct nstack_module *module_load(const char *cfg_file, const char *name,
                                        const char *libname, int is_static)
{
    char sym[FW_NAME_MAX + 32];
    snprintf(sym, sizeof(sym), "%s_stack_register", name);
    void *handle = RTLD_DEFAULT;
    if (!is_static) {
        char why[512] = "";
        if (libname == NULL || libname[0] == '\0') {
            fw_log(NSTACK_LOG_ERR, NULL, "%s: module \"%s\": no libname; skipped", cfg_file, name);
            return NULL;
        }
        handle = open_library(libname, why, sizeof(why));
        if (handle == NULL) {
            fw_log(NSTACK_LOG_ERR, NULL, "%s: module \"%s\": cannot load %s: %s; skipped",
                   cfg_file, name, libname, why);
            return NULL;
        }
    }
    nstack_stack_register_fn reg = (nstack_stack_register_fn)dlsym(handle, sym);
    if (reg == NULL) {
        fw_log(NSTACK_LOG_ERR, NULL, "%s: module \"%s\": symbol %s not found in %s; skipped",
               cfg_file, name, sym, is_static ? "the process" : libname);
        return NULL;
    }
    const struct nstack_module *m = NULL;
    MOD_ENTER();
    int r = reg(fw_api(), &m);
    MOD_LEAVE();
    if (r != 0) {
        fw_log(NSTACK_LOG_ERR, NULL, "%s: module \"%s\": %s failed (%d); skipped", cfg_file, name, sym, r);
        return NULL;
    }
    if (check_module(cfg_file, name, m) == NULL)
        return NULL;
    const struct nstack_module *ops = module_ops_fill(m);
    if (ops == NULL)
        fw_log(NSTACK_LOG_ERR, NULL, "%s: module \"%s\": out of memory; skipped", cfg_file, name);
    return ops;
}
