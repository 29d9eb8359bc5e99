/* num_parse.c - strict decimal parsing (see num_parse.h). */
#include "num_parse.h"

#include <errno.h>
#include <stdlib.h>

bool num_parse_long(const char *text, long min, long max, long *out)
{
    if (text == NULL || *text == '\0')
        return false;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}
