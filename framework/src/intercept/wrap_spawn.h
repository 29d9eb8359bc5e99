/* wrap_spawn.h - posix_spawn and friends (wrap_spawn.c, wrap_system.c). */
#ifndef WRAP_SPAWN_H
#define WRAP_SPAWN_H

#include "anchor.h"

/* The sockets a started program gets (map: its numbers there; NULL: every
 * fd without FD_CLOEXEC) are no longer this process's alone: their close
 * here reads no hello and sends no FIN (anchor.c, as after SCM_RIGHTS). */
void spawn_note_inherited(anchor_fdmap_fn *map, void *arg);

/* anchor_fdmap_fn for system/popen's release: every fd without
 * FD_CLOEXEC, except a connection whose other end is in this process. */
int spawn_release_map(int fd, int *out, int max, void *arg);

#endif
