/* stats_settings.h - modules' tunables that differ from their defaults
 * (fw->publish_setting, module ABI 1.3; segment layout: settings[] in
 * include/nstack/nstack_stats.h). Slow path only. */
#ifndef STATS_SETTINGS_H
#define STATS_SETTINGS_H

#include "stats.h"

/* fw->publish_setting (nstack_module.h): 0, or -1/EINVAL, ENOSPC. */
int stats_publish_setting(const char *module, const char *key, const char *value, const char *dflt,
                          const char *source);
/* The segment now in use (stats_start, or a fork child's new one): every
 * setting published so far is copied into it. */
void stats_settings_attach(struct nstat_shm *s, int fork_child);
/* Exit report (NSTACK_STATS=1): one line per setting. */
void stats_settings_report(void);

#endif
