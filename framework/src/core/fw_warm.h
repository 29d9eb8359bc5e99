/* fw_warm.h - start what the modules would otherwise start lazily. */
#ifndef FW_WARM_H
#define FW_WARM_H

/* Makes and closes one stream socket on every usable module stack, so that
 * whatever a module (and the device library under it) starts at its first
 * socket - helper threads, the device's own sockets - exists from now on.
 * Called before the process takes the means to start them away
 * (setrlimit(RLIMIT_NPROC) lowered: haproxy sets it to 0 after dropping
 * privileges, and a thread the device starts later then fails). Never
 * changes errno; one DBG line per stack. */
void fw_warm_stacks(const char *why);

#endif
