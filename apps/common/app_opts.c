/* app_opts.c - shared command-line helpers (see app_opts.h). */
#include "app_opts.h"

#include "app_fail.h"
#include "num_parse.h"

#include <stddef.h>

const struct option app_long_opts[] = {
    { "timeout", required_argument, NULL, APP_OPT_TIMEOUT },
    { NULL, 0, NULL, 0 },
};

void app_die_bad_number(int flag, const char *text, long min, long max)
{
    app_die(APP_EXIT_USAGE, "-%c: \"%s\": expected a number in %ld..%ld",
            flag, text, min, max);
}

long app_opt_num(int flag, const char *text, long min, long max)
{
    long v;
    if (!num_parse_long(text, min, max, &v))
        app_die_bad_number(flag, text, min, max);
    return v;
}
