/* fw_pid.h - this process's pid without a system call each time. */
#ifndef FW_PID_H
#define FW_PID_H

#include <sys/types.h>

/* getpid(), remembered; a fork child (any fork through glibc: a
 * pthread_atfork handler forgets it) asks again. */
pid_t fw_pid(void);

#endif
