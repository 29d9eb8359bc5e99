/*
 * app_fail.h - one-line diagnostics and exit codes shared by every
 * regression app. A failing app prints exactly one line naming what went
 * wrong and where, then exits with one of the codes below, so a test (or a
 * person) can tell a usage mistake from a failed run.
 */
#ifndef APP_FAIL_H
#define APP_FAIL_H

#define APP_EXIT_OK      0   /* every check passed */
#define APP_EXIT_FAIL    1   /* the run failed: refused, timeout, mismatch, ... */
#define APP_EXIT_USAGE   2   /* bad command line */

/* Program name used as the prefix of every diagnostic; set once in main()
 * before any thread starts, read-only afterwards. */
extern const char *app_name;

void app_set_name(const char *argv0);

/* Print "<app>: <message>" to stderr and exit(code). */
void app_die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* Print "<app>: <message>" to stderr and continue. */
void app_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* APP_FAIL_H */
