/* check_run.c - nstack-check runs itself under the preload: through
 * nstack-run (which validates the configuration and picks the software
 * device as it does for any program), found next to this binary, in the
 * source tree's tools/, or as $NSTACK_RUN. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define INNER_MARK "NSTACK_CHECK_INNER"

int check_under_preload(void)
{
    const char *p = getenv("LD_PRELOAD");
    if (p != NULL && strstr(p, "libnStackAPI.so") != NULL)
        return 1;
    if (getenv(INNER_MARK) != NULL) {
        fprintf(stderr, "nstack-check: started under nstack-run, yet libnStackAPI.so is not preloaded\n");
        exit(2);
    }
    return 0;
}

static int find_runner(char *out, size_t n)
{
    const char *env = getenv("NSTACK_RUN");
    if (env != NULL && *env) {
        snprintf(out, n, "%s", env);
        return access(out, X_OK);
    }
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0)
        return -1;
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    static const char *const rel[] = { "/nstack-run", "/../../tools/nstack-run" };
    for (unsigned i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        snprintf(out, n, "%s%s", self, rel[i]);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

int check_reexec(int argc, char **argv, const char *config)
{
    char runner[PATH_MAX + 32], self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0 || find_runner(runner, sizeof(runner)) < 0) {
        fprintf(stderr, "nstack-check: nstack-run not found next to nstack-check (set NSTACK_RUN, "
                        "or run nstack-check under LD_PRELOAD=libnStackAPI.so)\n");
        return 2;
    }
    self[len] = '\0';
    char **av = calloc((size_t)argc + 6, sizeof(char *));
    if (av == NULL)
        return 2;
    int k = 0;
    av[k++] = runner;
    if (config != NULL) {
        av[k++] = "--config";
        av[k++] = (char *)config;
    }
    av[k++] = "--";
    av[k++] = self;
    for (int i = 1; i < argc; i++)
        av[k++] = argv[i];
    av[k] = NULL;
    setenv(INNER_MARK, "1", 1);
    execv(runner, av);
    fprintf(stderr, "nstack-check: %s: %s\n", runner, strerror(errno));
    free(av);
    return 2;
}

/* Already under the preload: the library reads its configuration at the
 * first inet socket, so --config still applies when set before that. */
void check_config_env(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/module_config.json", dir);
    if (access(path, R_OK) == 0)
        setenv("NSTACK_MOD_CFG_FILE", path, 1);
    else
        fprintf(stderr, "nstack-check: %s: %s (keeping the current configuration)\n", path, strerror(errno));
    snprintf(path, sizeof(path), "%s/rd_config.json", dir);
    if (access(path, R_OK) == 0)
        setenv("NSTACK_MOD_CFG_RD", path, 1);
}
