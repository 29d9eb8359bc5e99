/* kernel_stack.h - the built-in kernel stack as a struct nstack_module.
 *
 * The dispatcher never moves a kernel-routed socket: the app fd already is
 * the kernel socket, and calls go to libc directly. This module structure
 * describes the kernel stack in the same terms as any other module (name,
 * caps) and implements every op with the libc originals, so tools and tests
 * can drive the kernel through the module contract. */
#ifndef KERNEL_STACK_H
#define KERNEL_STACK_H

#include "nstack/nstack_module.h"

const struct nstack_module *kernel_stack_module(void);

#endif
