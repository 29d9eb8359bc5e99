/* anchor_fd.h - the TCP socket of an anchored connection at the app's own
 * number (module ABI 1.5, anchor_kfd).
 *
 * An anchored module socket watches its TCP socket (kfd). With a module
 * that implements anchor_kfd(), kfd is the application's fd number itself
 * rather than a dup of it (issue 8: one descriptor less per connection).
 * That number is the app's: it may close it, dup2 over it, or close it
 * after giving the file a second number. So before the kernel lets go of
 * that number while the module socket lives on, the dispatcher makes its
 * own high dup and hands it to the module (anchor_fd_own then 1, the dup
 * closed with the file). Until then file->anchor_fd is the app's number
 * and nothing closes it but the app. */
#ifndef ANCHOR_FD_H
#define ANCHOR_FD_H

#include "file.h"

/* At anchor(): the kfd to hand the module for the app's number fd of
 * candidate kf (its own dup when the module cannot take the app's number
 * or kf already has other numbers); *own: 1 when it is the dispatcher's
 * dup. -1/errno when the dup cannot be made. */
int anchor_fd_for_module(int fd, const struct file *kf, int st, int *own);

/* Before f gets another app number (dup, dup2, dup3, F_DUPFD): the module
 * moves to the dispatcher's own dup. 0, or -1/errno (then fail the dup). */
int anchor_fd_share(struct file *f);

/* The kernel is about to release app number fd of f (a dup2/dup3 onto it,
 * close_range), which the caller took out of the table: when f lives on
 * (another reference), the module moves to the dispatcher's own dup
 * first (without a descriptor for it, one line: the connection then fails
 * once the number is gone). */
void anchor_fd_replacing(int fd, struct file *f);

/* close(fd) took f out of the table and will drop its reference: when
 * another thread still holds f (so the module socket outlives the close),
 * the module moves to the dispatcher's dup first. 1 when that dup could
 * not be made (EMFILE): the kernel number must then stay open, owned by
 * the file from now on (closed with it); 0 otherwise. */
int anchor_fd_closing(int fd, struct file *f);

#endif
