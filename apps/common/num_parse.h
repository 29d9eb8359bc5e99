/* num_parse.h - strict decimal parsing for command-line numbers: the whole
 * string must be a number inside [min, max]; "12abc", "" and overflow are
 * rejected (atoi would quietly accept them). */
#ifndef NUM_PARSE_H
#define NUM_PARSE_H

#include <stdbool.h>

bool num_parse_long(const char *text, long min, long max, long *out);

#endif /* NUM_PARSE_H */
