/* app_timeout.c - idle timeout configuration (see app_timeout.h). */
#include "app_timeout.h"

#include "app_fail.h"
#include "num_parse.h"

#include <stdlib.h>

int app_timeout_ms = APP_TIMEOUT_DEFAULT_S * 1000;

/* false after one line naming `where` when `text` is not 0..86400. */
static bool set_seconds(const char *text, const char *where)
{
    long seconds;
    if (!num_parse_long(text, 0, 86400, &seconds)) {
        app_warn("%s: \"%s\": timeout must be seconds in 0..86400", where, text);
        return false;
    }
    app_timeout_ms = seconds == 0 ? -1 : (int)(seconds * 1000);
    return true;
}

void app_timeout_init(const char *cli_text)
{
    bool ok;
    if (cli_text != NULL) {
        ok = set_seconds(cli_text, "--timeout");
    } else {
        const char *env = getenv(APP_TIMEOUT_ENV);
        ok = env == NULL || *env == '\0' || set_seconds(env, APP_TIMEOUT_ENV);
    }
    if (!ok)
        exit(APP_EXIT_USAGE);
}
