/*
 * cfg_diag.c - one diagnostic line per problem: "<file>: <key>: <reason>".
 * The parser never prints; the caller's callback decides where lines go.
 */
#include <stdarg.h>
#include <stdio.h>

#include "cfg_internal.h"

#define CFG_LINE_MAX 1024

static void cfg_report(struct cfg_ctx *ctx, enum nstack_diag_severity sev,
                       const char *key, const char *fmt, va_list ap)
{
    char line[CFG_LINE_MAX];
    int n;

    if (sev == NSTACK_DIAG_ERROR)
        ctx->errors++;
    else
        ctx->warnings++;
    if (!ctx->diag)
        return;
    if (key && *key)
        n = snprintf(line, sizeof(line), "%s: %s: ", ctx->file, key);
    else
        n = snprintf(line, sizeof(line), "%s: ", ctx->file);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    ctx->diag(ctx->diag_arg, sev, line);
}

void cfg_error(struct cfg_ctx *ctx, const char *key, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cfg_report(ctx, NSTACK_DIAG_ERROR, key, fmt, ap);
    va_end(ap);
}

void cfg_warn(struct cfg_ctx *ctx, const char *key, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cfg_report(ctx, NSTACK_DIAG_WARNING, key, fmt, ap);
    va_end(ap);
}
