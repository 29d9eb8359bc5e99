/* fw_log.h - levelled logging of the dispatcher (NSTACK_LOG_ON, NSTACK_LOG_FILE). */
#ifndef FW_LOG_H
#define FW_LOG_H

#include <stdarg.h>
#include "nstack/nstack_module.h"

/* Reads NSTACK_LOG_ON / NSTACK_LOG_FILE once; safe to call repeatedly. */
void fw_log_setup(void);
int fw_log_enabled(enum nstack_log_level level);
/* One line "nstack[pid]: LEVEL: [module: ]message". module may be NULL. */
void fw_log(enum nstack_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fw_vlog(enum nstack_log_level level, const char *module, const char *fmt, va_list ap);
/* Parses "DBG".."EMG"; returns -1 for anything else. */
int fw_log_parse_level(const char *text);

#define LOG_DBG(...) do { if (fw_log_enabled(NSTACK_LOG_DBG)) fw_log(NSTACK_LOG_DBG, NULL, __VA_ARGS__); } while (0)
#define LOG_INF(...) fw_log(NSTACK_LOG_INF, NULL, __VA_ARGS__)
#define LOG_WAR(...) fw_log(NSTACK_LOG_WAR, NULL, __VA_ARGS__)
#define LOG_ERR(...) fw_log(NSTACK_LOG_ERR, NULL, __VA_ARGS__)

#endif
