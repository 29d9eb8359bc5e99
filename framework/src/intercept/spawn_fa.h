/* spawn_fa.h - what a posix_spawn file action list does to our fds
 * (spawn_fa.c). */
#ifndef SPAWN_FA_H
#define SPAWN_FA_H

#include <spawn.h>

#define SPAWN_FA_MAX 64           /* actions remembered per list */

struct spawn_fa_act {
    int op;                       /* SPAWN_FA_CLOSE ... */
    int fd, newfd;
};

struct spawn_fa_snap {
    int n;
    struct spawn_fa_act a[SPAWN_FA_MAX];
};

/* A copy of fa's fd actions, in order: 0, or -1 when they are not known
 * (a list not made through posix_spawn_file_actions_init under this
 * library, or longer than SPAWN_FA_MAX). fa NULL: no actions. */
int spawn_fa_snapshot(const posix_spawn_file_actions_t *fa, struct spawn_fa_snap *out);

/* The numbers in the child that refer to our fd after the actions and
 * the exec (cloexec: fd's FD_CLOEXEC now); at most max in out. */
int spawn_fa_child_fds(const struct spawn_fa_snap *s, int fd, int cloexec, int *out, int max);

#endif
