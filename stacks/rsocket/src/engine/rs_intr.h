/* rs_intr.h - may a sleep inside the engine that a signal interrupted be
 * restarted (signal(7))? Under the dispatcher it knows which signal it was
 * (fw->intr_mark/intr_restarts, ABI 1.4); used alone (the rsocket API with
 * rstream, or an older dispatcher) the engine scans every handler
 * (nstack_intr_scan, include/nstack/nstack_sigrestart.h). */
#ifndef RS_INTR_H
#define RS_INTR_H

#include <stdint.h>

/* The dispatcher's pair; set once from the module's init(), before any
 * socket exists. */
void rs_intr_use(uint64_t (*mark)(void), int (*restarts)(uint64_t mark, int timed));
/* This thread's mark, right before the sleep. */
uint64_t rs_intr_mark(void);
/* After the sleep failed with EINTR: 1 restart, 0 EINTR. timed: the call
 * has a socket timeout for its direction. */
int rs_intr_restarts(uint64_t mark, int timed);

#endif
