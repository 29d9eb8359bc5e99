/* sr_log.h - the device's one-line messages (sr_common.c): stderr, unless
 * stderr is a socket - an application's connection (an inetd-style
 * service), where a line would reach its client. */
#ifndef SR_LOG_H
#define SR_LOG_H

void sr_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
