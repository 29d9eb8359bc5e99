/*
 * app_opts.h - command-line pieces shared by the apps that take flags
 * (the perf-test and fork apps): numbers checked against a range, and the
 * long option --timeout=SEC. A bad value exits 2 after one line naming the
 * flag, the value and the accepted range.
 */
#ifndef APP_OPTS_H
#define APP_OPTS_H

#include <getopt.h>

/* getopt_long() returns this for --timeout=SEC. */
#define APP_OPT_TIMEOUT 'T'

/* getopt_long()'s table: { "timeout", required_argument } and the end. */
extern const struct option app_long_opts[];

/* "-<flag>: "<text>": expected a number in <min>..<max>", exit 2. */
void app_die_bad_number(int flag, const char *text, long min, long max)
    __attribute__((noreturn));

/* The value of -<flag>, or app_die_bad_number(). */
long app_opt_num(int flag, const char *text, long min, long max);

#endif /* APP_OPTS_H */
