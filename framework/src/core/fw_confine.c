/* fw_confine.c - whether the process confined itself with seccomp (fw.h:
 * g_fw_confined). Apart from fw_start.c because the log reads it too, and
 * the unit tests link the log alone. */
#include "fw.h"

_Atomic int g_fw_confined;
