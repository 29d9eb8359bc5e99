/* module_ops.h - the dispatcher's copy of a module's operation table. */
#ifndef MODULE_OPS_H
#define MODULE_OPS_H

#include <stddef.h>

#include "nstack/nstack_module.h"

/* A full-size copy of m (its fields up to m->struct_size, the rest zero)
 * in which every socket operation m leaves NULL is a stub failing as an
 * unsupported operation does (EOPNOTSUPP; ENOPROTOOPT for options) and
 * every hook a no-op, so callers call them without testing. The optional
 * features (adopt, anchor_hello, anchor, anchor_release, anchor_policy)
 * stay NULL when absent: their absence is a capability, tested with
 * MODULE_HAS_OP. A module without poll_recheck (ABI 1.5) gets its
 * poll_events in that slot. Called once per module at start-up; the copy lives as
 * long as the process. NULL with ENOMEM. */
const struct nstack_module *module_ops_fill(const struct nstack_module *m);

/* 1 when the module itself implements the socket operation at `offset`
 * (offsetof(struct nstack_module, op)) rather than the stub standing in
 * for it. */
int module_ops_implements(const struct nstack_module *m, size_t offset);
#define MODULE_IMPLEMENTS(m, op) module_ops_implements((m), offsetof(struct nstack_module, op))

#endif
