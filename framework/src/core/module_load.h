/* module_load.h - finding and checking a stack module's register function. */
#ifndef MODULE_LOAD_H
#define MODULE_LOAD_H

#include <stddef.h>

#include "nstack/nstack_module.h"

/* An optional feature op (anchor_hello, anchor, anchor_release,
 * anchor_policy) the module implements. Every table the dispatcher holds
 * is its full-size copy (module_ops.c), so past-the-end ops read NULL. */
#define MODULE_HAS_OP(m, op) ((m)->op != NULL)

/* Loads stack `name` (dlopen(libname), then the directory holding
 * libnStackAPI.so; or dlsym(RTLD_DEFAULT) when is_static), calls
 * <name>_stack_register and checks the ABI. Returns the dispatcher's filled
 * copy of the module's table (module_ops.h) or NULL after one log line
 * naming cfg_file, the module and the reason. */
const struct nstack_module *module_load(const char *cfg_file, const char *name,
                                        const char *libname, int is_static);

#endif
