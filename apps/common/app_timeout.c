/* app_timeout.c - idle timeout configuration (see app_timeout.h). */
#include "app_timeout.h"

#include "app_fail.h"
#include "num_parse.h"

#include <stdlib.h>

int app_timeout_ms = APP_TIMEOUT_DEFAULT_S * 1000;

bool app_timeout_set(const char *text, const char *where)
{
    long seconds;
    if (!num_parse_long(text, 0, 86400, &seconds)) {
        app_warn("%s: \"%s\": timeout must be seconds in 0..86400", where, text);
        return false;
    }
    app_timeout_ms = seconds == 0 ? -1 : (int)(seconds * 1000);
    return true;
}

bool app_timeout_from_env(void)
{
    const char *env = getenv(APP_TIMEOUT_ENV);
    if (env == NULL || *env == '\0')
        return true;
    return app_timeout_set(env, APP_TIMEOUT_ENV);
}
