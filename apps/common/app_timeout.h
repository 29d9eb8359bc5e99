/*
 * app_timeout.h - the idle timeout that bounds every wait of a regression
 * app (connect, accept, each recv/send wait), so a dead peer makes the app
 * fail with "timeout" instead of hanging forever.
 *
 * Source, first match wins: --timeout=SEC on the command line, the
 * environment variable VS_TIMEOUT=SEC, else APP_TIMEOUT_DEFAULT_S.
 * 0 means wait forever (the DMM behaviour).
 */
#ifndef APP_TIMEOUT_H
#define APP_TIMEOUT_H

#include <stdbool.h>

#define APP_TIMEOUT_DEFAULT_S 120
#define APP_TIMEOUT_ENV "VS_TIMEOUT"

/* Set from main() before any thread starts; read-only afterwards.
 * In milliseconds; -1 means "no limit" (poll()'s convention). */
extern int app_timeout_ms;

/* Set the timeout from --timeout's value `cli_text`, or, when it is NULL,
 * from VS_TIMEOUT or the default. An invalid value (seconds must be
 * 0..86400) prints one line naming its source and exits 2. */
void app_timeout_init(const char *cli_text);

#endif /* APP_TIMEOUT_H */
