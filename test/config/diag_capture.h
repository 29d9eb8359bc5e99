/*
 * diag_capture.h - collects the config parser's diagnostic lines so unit
 * tests can assert what was reported (file, key, reason) and how severely.
 */
#ifndef TEST_DIAG_CAPTURE_H
#define TEST_DIAG_CAPTURE_H

#include <stdio.h>
#include <string.h>

#include "nstack_config.h"

#define DIAG_MAX_LINES 64

struct diag_capture {
    char lines[DIAG_MAX_LINES][1024];
    enum nstack_diag_severity sev[DIAG_MAX_LINES];
    int n, errors, warnings;
};

static inline void diag_collect(void *arg, enum nstack_diag_severity sev,
                                const char *line)
{
    struct diag_capture *d = arg;

    if (sev == NSTACK_DIAG_ERROR)
        d->errors++;
    else
        d->warnings++;
    if (d->n < DIAG_MAX_LINES) {
        snprintf(d->lines[d->n], sizeof(d->lines[0]), "%s", line);
        d->sev[d->n++] = sev;
    }
}

/* Index of the first line of severity `sev` containing every one of the
 * given substrings (NULL-terminated), or -1. */
static inline int diag_find(const struct diag_capture *d,
                            enum nstack_diag_severity sev, const char *const *parts)
{
    int i, k;

    for (i = 0; i < d->n; i++) {
        if (d->sev[i] != sev)
            continue;
        for (k = 0; parts[k]; k++)
            if (!strstr(d->lines[i], parts[k]))
                break;
        if (!parts[k])
            return i;
    }
    return -1;
}

static inline void diag_print(const struct diag_capture *d)
{
    int i;

    for (i = 0; i < d->n; i++)
        fprintf(stderr, "  diag[%d] %s: %s\n", i,
                d->sev[i] == NSTACK_DIAG_ERROR ? "error" : "warning", d->lines[i]);
}

#define DIAG_HAS(d, sev, ...)                                                \
    do {                                                                     \
        const char *const parts_[] = { __VA_ARGS__, NULL };                  \
        if (diag_find((d), (sev), parts_) < 0) {                             \
            diag_print(d);                                                   \
            fail_msg("no diagnostic with: %s ...", parts_[0]);               \
        }                                                                    \
    } while (0)

/* Parses both documents, expecting a valid configuration with no error
 * lines; on failure prints what was reported. (Needs <cmocka.h> first.) */
static inline struct nstack_config *diag_parse_ok(struct diag_capture *d,
                                                  const char *mod, const char *rd)
{
    struct nstack_config *cfg = NULL;

    memset(d, 0, sizeof(*d));
    if (nstack_config_parse(mod, "module_config.json", rd, "rd_config.json",
                            diag_collect, d, &cfg) != 0) {
        diag_print(d);
        fail_msg("expected a valid configuration");
    }
    assert_non_null(cfg);
    assert_int_equal(d->errors, 0);
    return cfg;
}

#endif
