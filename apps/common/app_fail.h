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

/* First call of every main(): take the diagnostic prefix from argv[0] and
 * line-buffer stdout, so progress lines reach a pipe (and a test waiting
 * on them) as they are printed and stay in order with stderr. */
void app_start(const char *argv0);

/* Print "<app>: <message>" to stderr and exit(code). */
void app_die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* Print "<app>: <message>" to stderr and continue. */
void app_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* For the apps whose verdict is a "Result = ..." line (fork_client, the
 * file pair): print "<app>: FAIL: <message>" to stderr and
 * "Result = Fail" to stdout, exit APP_EXIT_FAIL. */
void app_fail_result(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif /* APP_FAIL_H */
