/* app_fail.c - diagnostics prefix and exit helpers (see app_fail.h). */
#include "app_fail.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *app_name = "app";

void app_start(const char *argv0)
{
    const char *slash = strrchr(argv0, '/');
    app_name = slash ? slash + 1 : argv0;
    setvbuf(stdout, NULL, _IOLBF, 0);
}

/* Longest diagnostic; longer ones are cut, never split. */
#define APP_LINE_MAX 512

static void print_line(const char *fmt, va_list ap)
{
    char line[APP_LINE_MAX];
    vsnprintf(line, sizeof(line), fmt, ap);
    /* One fprintf so the line stays whole when threads print together. */
    fprintf(stderr, "%s: %s\n", app_name, line);
}

void app_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_line(fmt, ap);
    va_end(ap);
    fflush(stdout);
    exit(code);
}

void app_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_line(fmt, ap);
    va_end(ap);
}

void app_fail_result(const char *fmt, ...)
{
    char reason[APP_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    app_warn("FAIL: %s", reason);
    printf("Result = Fail\n");
    exit(APP_EXIT_FAIL);
}
