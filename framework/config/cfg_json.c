/*
 * cfg_json.c - reading JSON the way DMM did (json-c without
 * JSON_TOKENER_STRICT: comments and trailing commas accepted) and typed
 * access to values that reports every mismatch with its key path.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_internal.h"

/* 1-based line and column of byte `off`, for "line 3, column 7". */
static void cfg_position(const char *text, size_t off, int *line, int *col)
{
    size_t i, line_start = 0;

    *line = 1;
    for (i = 0; i < off; i++) {
        if (text[i] == '\n') {
            (*line)++;
            line_start = i + 1;
        }
    }
    *col = (int)(off - line_start) + 1;
}

/* Offset of the first byte after whitespace and comments, starting at `i`.
 * An unterminated block comment skips to the end. */
static size_t cfg_skip_blank(const char *text, size_t len, size_t i)
{
    while (i < len) {
        if (isspace((unsigned char)text[i])) {
            i++;
        } else if (i + 1 < len && text[i] == '/' && text[i + 1] == '*') {
            const char *end = strstr(text + i + 2, "*/");
            i = end ? (size_t)(end - text) + 2 : len;
        } else if (i + 1 < len && text[i] == '/' && text[i + 1] == '/') {
            while (i < len && text[i] != '\n')
                i++;
        } else {
            break;
        }
    }
    return i;
}

static void cfg_error_at(struct cfg_ctx *ctx, const char *text, size_t off,
                         const char *reason)
{
    char where[64];
    int line, col;

    cfg_position(text, off, &line, &col);
    snprintf(where, sizeof(where), "line %d, column %d", line, col);
    cfg_error(ctx, where, "%s", reason);
}

/* Checks json-c cannot make for us: binary data, a non-object top level. */
static int cfg_json_precheck(struct cfg_ctx *ctx, const char *text, size_t len)
{
    const char *nul = memchr(text, '\0', len);
    size_t first;

    if (nul) {
        cfg_error_at(ctx, text, (size_t)(nul - text),
                     "malformed JSON: NUL byte (binary data?)");
        return -1;
    }
    first = cfg_skip_blank(text, len, 0);
    if (first >= len) {
        cfg_error(ctx, NULL, "file is empty (expected a JSON object)");
        return -1;
    }
    if (text[first] != '{') {
        cfg_error_at(ctx, text, first,
                     "malformed JSON: top level must be an object '{...}'");
        return -1;
    }
    return 0;
}

json_object *cfg_json_parse(struct cfg_ctx *ctx, const char *text, size_t len)
{
    struct json_tokener *tok;
    json_object *root;
    enum json_tokener_error err;
    size_t end;
    char reason[160];

    if (len > NSTACK_CFG_FILE_MAX) {
        cfg_error(ctx, NULL, "file too large (%zu bytes, at most %d)", len,
                  NSTACK_CFG_FILE_MAX);
        return NULL;
    }
    if (cfg_json_precheck(ctx, text, len) < 0)
        return NULL;
    tok = json_tokener_new();       /* default depth 32; not strict */
    if (!tok) {
        cfg_error(ctx, NULL, "out of memory");
        return NULL;
    }
    root = json_tokener_parse_ex(tok, text, (int)len);
    err = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root) {
        if (err == json_tokener_continue)
            snprintf(reason, sizeof(reason),
                     "malformed JSON: unexpected end of file");
        else
            snprintf(reason, sizeof(reason), "malformed JSON: %s",
                     json_tokener_error_desc(err));
        cfg_error_at(ctx, text, end < len ? end : len, reason);
        return NULL;
    }
    end = cfg_skip_blank(text, len, end);
    if (end < len) {
        cfg_error_at(ctx, text, end,
                     "malformed JSON: unexpected text after the top-level object");
        json_object_put(root);
        return NULL;
    }
    return root;
}

void cfg_key_index(char *out, const char *parent, int i)
{
    snprintf(out, CFG_KEY_MAX, "%s[%d]", parent, i);
}

void cfg_key_member(char *out, const char *parent, const char *name)
{
    if (parent && *parent)
        snprintf(out, CFG_KEY_MAX, "%s.%s", parent, name);
    else
        snprintf(out, CFG_KEY_MAX, "%s", name);
}

static const char *cfg_type_name(json_object *v)
{
    return json_type_to_name(json_object_get_type(v));
}

/* A decimal string such as "1" (DMM wrote numbers as strings). */
static int cfg_decimal_string(const char *s, long long *out)
{
    char *end;

    if (!isdigit((unsigned char)s[0]) || strlen(s) > 18)
        return -1;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return (errno || *end) ? -1 : 0;
}

int cfg_json_uint(struct cfg_ctx *ctx, const char *key, json_object *v,
                  int max, int *out)
{
    long long n;

    switch (json_object_get_type(v)) {
    case json_type_int:
        n = json_object_get_int64(v);
        break;
    case json_type_string:
        if (cfg_decimal_string(json_object_get_string(v), &n) < 0) {
            cfg_error(ctx, key, "\"%.40s\": not a non-negative decimal integer",
                      json_object_get_string(v));
            return -1;
        }
        break;
    default:
        cfg_error(ctx, key, "expected an integer (or a string like \"1\"), got %s",
                  cfg_type_name(v));
        return -1;
    }
    if (n < 0 || n > max) {
        cfg_error(ctx, key, "%lld: out of range 0..%d", n, max);
        return -1;
    }
    *out = (int)n;
    return 0;
}

int cfg_json_string(struct cfg_ctx *ctx, const char *key, json_object *v,
                    char *out, size_t cap)
{
    const char *s;
    size_t len;

    if (!json_object_is_type(v, json_type_string)) {
        cfg_error(ctx, key, "expected a string, got %s", cfg_type_name(v));
        return -1;
    }
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    if (len == 0) {
        cfg_error(ctx, key, "must not be empty");
        return -1;
    }
    if (strlen(s) != len) {
        cfg_error(ctx, key, "contains a NUL character");
        return -1;
    }
    if (len >= cap) {
        cfg_error(ctx, key, "too long (%zu bytes, at most %zu)", len, cap - 1);
        return -1;
    }
    memcpy(out, s, len + 1);
    return 0;
}

void cfg_warn_unknown_keys(struct cfg_ctx *ctx, const char *key,
                           json_object *obj, const char *const *known)
{
    char path[CFG_KEY_MAX];
    const char *const *k;

    json_object_object_foreach(obj, name, val) {
        (void)val;
        for (k = known; *k; k++)
            if (strcmp(*k, name) == 0)
                break;
        if (!*k) {
            cfg_key_member(path, key, name);
            cfg_warn(ctx, path, "unknown key, ignored");
        }
    }
}
