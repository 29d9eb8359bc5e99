/* fw_api.c - the services the dispatcher offers modules (struct nstack_fw_api). */
#include <stdarg.h>

#include "epoll_agg.h"
#include "fw.h"
#include "fw_log.h"
#include "sig_track.h"
#include "stats_settings.h"

static void api_log(enum nstack_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void api_log(enum nstack_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fw_vlog(level, module, fmt, ap);
    va_end(ap);
}

static int api_log_enabled(enum nstack_log_level level)
{
    return fw_log_enabled(level);
}

/* config_dir is filled by fw_start() before any module is registered. */
char g_config_dir[4096];

static const struct nstack_fw_api g_fw_api = {
    .abi_version = NSTACK_MODULE_ABI_VERSION,
    .struct_size = sizeof(struct nstack_fw_api),
    .log = api_log,
    .log_enabled = api_log_enabled,
    .notify = ev_notify,
    .config_dir = g_config_dir,
    .publish_setting = stats_publish_setting,
    .intr_mark = sig_mark,
    .intr_restarts = sig_restarts,
};

const struct nstack_fw_api *fw_api(void)
{
    return &g_fw_api;
}
