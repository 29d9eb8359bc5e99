/*
 * cfg_diag.c - one diagnostic line per problem: "<file>: <key>: <reason>".
 * The parser never prints; the caller's callback decides where lines go.
 * Each line is escaped (cfg_escape.c), and at most CFG_DIAG_SHOWN lines per
 * file are passed on; the rest are counted and summed up by
 * cfg_diag_flush(), so a broken file cannot flood a log.
 */
#include <stdarg.h>
#include <stdio.h>

#include "cfg_internal.h"

#define CFG_LINE_MAX 1024

static void cfg_emit(struct cfg_ctx *ctx, enum nstack_diag_severity sev,
                     const char *key, const char *fmt, va_list ap)
{
    char line[CFG_LINE_MAX];
    char safe[CFG_LINE_MAX];
    int n;

    if (key && *key)
        n = snprintf(line, sizeof(line), "%s: %s: ", ctx->file, key);
    else
        n = snprintf(line, sizeof(line), "%s: ", ctx->file);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    cfg_escape(safe, sizeof(safe), line);
    ctx->diag(ctx->diag_arg, sev, safe);
}

static void cfg_report(struct cfg_ctx *ctx, enum nstack_diag_severity sev,
                       const char *key, const char *fmt, va_list ap)
{
    int is_error = sev == NSTACK_DIAG_ERROR;

    if (is_error)
        ctx->errors++;
    else
        ctx->warnings++;
    if (!ctx->diag)
        return;
    if (ctx->shown >= CFG_DIAG_SHOWN) {
        if (is_error)
            ctx->hidden_errors++;
        else
            ctx->hidden_warnings++;
        return;
    }
    ctx->shown++;
    cfg_emit(ctx, sev, key, fmt, ap);
}

static void cfg_summary(struct cfg_ctx *ctx, enum nstack_diag_severity sev,
                        const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cfg_emit(ctx, sev, NULL, fmt, ap);
    va_end(ap);
}

void cfg_diag_flush(struct cfg_ctx *ctx)
{
    int hidden = ctx->hidden_errors + ctx->hidden_warnings;

    if (!ctx->diag || hidden == 0)
        return;
    cfg_summary(ctx, ctx->hidden_errors ? NSTACK_DIAG_ERROR : NSTACK_DIAG_WARNING,
                "and %d more problem%s not shown (%d error%s, %d warning%s)",
                hidden, hidden == 1 ? "" : "s",
                ctx->hidden_errors, ctx->hidden_errors == 1 ? "" : "s",
                ctx->hidden_warnings, ctx->hidden_warnings == 1 ? "" : "s");
    ctx->hidden_errors = ctx->hidden_warnings = 0;
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
