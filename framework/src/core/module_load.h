/* module_load.h - finding and checking a stack module's register function. */
#ifndef MODULE_LOAD_H
#define MODULE_LOAD_H

#include <stddef.h>

#include "nstack/nstack_module.h"

/* An optional op appended after ABI 1.0 is read only when the module's
 * struct_size covers it (older modules keep loading). */
#define MODULE_HAS_OP(m, op) \
    ((m)->struct_size >= offsetof(struct nstack_module, op) + sizeof((m)->op) && (m)->op != NULL)

/* Loads stack `name` (dlopen(libname), then the directory holding
 * libnStackAPI.so; or dlsym(RTLD_DEFAULT) when is_static), calls
 * <name>_stack_register and checks the ABI. Returns the module or NULL after
 * one log line naming cfg_file, the module and the reason. */
const struct nstack_module *module_load(const char *cfg_file, const char *name,
                                        const char *libname, int is_static);

#endif
