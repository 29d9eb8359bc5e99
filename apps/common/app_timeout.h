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

/* Parse `text` (seconds, 0..86400, may be NULL = use the environment or
 * the default). `where` names the source for the diagnostic. Returns
 * false after printing one line when the value is invalid. */
bool app_timeout_set(const char *text, const char *where);

/* Apply the environment/default; call when no --timeout was given. */
bool app_timeout_from_env(void);

#endif /* APP_TIMEOUT_H */
