/* stats_settings.c - the modules' tunables that differ from their defaults
 * (module ABI 1.3, fw->publish_setting), kept for nstack-stat in the stats
 * segment's settings[] and named in the exit report (NSTACK_STATS=1).
 *
 * Modules publish at init(), which may run before the segment exists (or
 * a fork child replaces it), so the list lives in private memory and is
 * copied into each segment as it is attached. g_set_lock guards the
 * private list and the attached segment's settings[]; slow path only. */
#include "stats_settings.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fw_log.h"
#include "libc_api.h"

static struct nstat_setting g_set[NSTAT_SETTINGS];
static unsigned g_n_set, g_set_lost;
static struct nstat_shm *g_set_shm;   /* the attached segment, NULL before stats_start */
static pthread_mutex_t g_set_lock = PTHREAD_MUTEX_INITIALIZER;

/* Entry i into the segment: the entry, then the count (release). */
static void put_shm(unsigned i)
{
    struct nstat_shm *s = g_set_shm;
    if (s == NULL)
        return;
    memcpy(&s->settings[i], &g_set[i], sizeof(g_set[i]));
    __atomic_store_n(&s->settings_lost, g_set_lost, __ATOMIC_RELAXED);
    __atomic_store_n(&s->n_settings, i + 1, __ATOMIC_RELEASE);
}

static int known(const char *module, const char *key)
{
    for (unsigned i = 0; i < g_n_set; i++)
        if (strcmp(g_set[i].module, module) == 0 && strcmp(g_set[i].key, key) == 0)
            return 1;
    return 0;
}

int stats_publish_setting(const char *module, const char *key, const char *value, const char *dflt,
                          const char *source)
{
    if (module == NULL || key == NULL || value == NULL || dflt == NULL || source == NULL || !*module || !*key) {
        fw_log(NSTACK_LOG_WAR, module, "publish_setting: a NULL or empty argument (key \"%s\"); ignored",
               key != NULL ? key : "(null)");
        errno = EINVAL;
        return -1;
    }
    if (strcmp(value, dflt) == 0)
        return 0;                        /* only what differs is shown */
    int r = 0;
    pthread_mutex_lock(&g_set_lock);
    if (known(module, key)) {
        /* once per key: the first value stays */
    } else if (g_n_set == NSTAT_SETTINGS) {
        g_set_lost++;
        if (g_set_shm != NULL)
            __atomic_store_n(&g_set_shm->settings_lost, g_set_lost, __ATOMIC_RELAXED);
        r = -1;
    } else {
        struct nstat_setting *e = &g_set[g_n_set];
        snprintf(e->module, sizeof(e->module), "%s", module);
        snprintf(e->key, sizeof(e->key), "%s", key);
        snprintf(e->value, sizeof(e->value), "%s", value);
        snprintf(e->dflt, sizeof(e->dflt), "%s", dflt);
        snprintf(e->source, sizeof(e->source), "%s", source);
        put_shm(g_n_set++);
    }
    pthread_mutex_unlock(&g_set_lock);
    if (r < 0) {
        fw_log(NSTACK_LOG_WAR, module, "setting %s=%s not shown in nstack-stat: all %d entries in use", key, value,
               NSTAT_SETTINGS);
        errno = ENOSPC;
    }
    return r;
}

void stats_settings_attach(struct nstat_shm *s, int fork_child)
{
    if (fork_child)
        pthread_mutex_init(&g_set_lock, NULL);   /* only the forking thread exists */
    pthread_mutex_lock(&g_set_lock);
    g_set_shm = s;
    for (unsigned i = 0; i < g_n_set; i++)
        put_shm(i);
    if (s != NULL)
        __atomic_store_n(&s->settings_lost, g_set_lost, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&g_set_lock);
}

void stats_settings_report(void)
{
    pthread_mutex_lock(&g_set_lock);
    for (unsigned i = 0; i < g_n_set; i++) {
        const struct nstat_setting *e = &g_set[i];
        char line[400];
        int n = snprintf(line, sizeof(line), "nstack[%d]: stats: setting %s %s=%s (default %s; from %s)\n",
                         (int)getpid(), e->module, e->key, e->value, e->dflt, e->source);
        if (n > (int)sizeof(line) - 1)
            n = (int)sizeof(line) - 1;
        (void)!LIBC(write)(2, line, (size_t)n);
    }
    pthread_mutex_unlock(&g_set_lock);
}
