/* fw_log.c - levelled logging. Lines are formatted into a stack buffer and
 * written with one write() so lines of concurrent threads never interleave. */
#include "fw_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fw.h"
#include "libc_api.h"

/* Written only by log_init(), which runs once (g_log_once) and publishes
 * them with the release store of g_log_ready; read without locks after an
 * acquire load of g_log_ready saw 1. */
static pthread_once_t g_log_once = PTHREAD_ONCE_INIT;
static int g_log_level = NSTACK_LOG_WAR;
static int g_log_fd = 2;
static int g_log_ready;

static const char *const g_level_names[] = { "DBG", "INF", "WAR", "ERR", "EMG" };

int fw_log_parse_level(const char *text)
{
    if (text == NULL)
        return -1;
    for (int i = 0; i <= NSTACK_LOG_EMG; i++)
        if (strcasecmp(text, g_level_names[i]) == 0)
            return i;
    return -1;
}

/* The first log call may come from any thread, also before fw_start (a
 * module's or a wrapper's early warning): two threads setting up at once
 * would both open NSTACK_LOG_FILE (one fd leaked) and write the globals
 * while a third already reads them, so the setup runs exactly once. */
static void log_init(void)
{
    const char *lvl = getenv("NSTACK_LOG_ON");
    int parsed = fw_log_parse_level(lvl);
    const char *path = getenv("NSTACK_LOG_FILE");
    if (path != NULL && *path != '\0') {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
            g_log_fd = fd;
    }
    if (parsed >= 0)
        g_log_level = parsed;
    __atomic_store_n(&g_log_ready, 1, __ATOMIC_RELEASE);
    if (lvl != NULL && *lvl != '\0' && parsed < 0)
        fw_log(NSTACK_LOG_WAR, NULL, "NSTACK_LOG_ON=\"%s\": unknown level (use DBG|INF|WAR|ERR|EMG); using WAR", lvl);
}

void fw_log_setup(void)
{
    if (!__atomic_load_n(&g_log_ready, __ATOMIC_ACQUIRE))
        pthread_once(&g_log_once, log_init);
}

int fw_log_enabled(enum nstack_log_level level)
{
    if (!__atomic_load_n(&g_log_ready, __ATOMIC_ACQUIRE))
        fw_log_setup();
    return (int)level >= g_log_level;
}

/* stderr can be the application's connection: an inetd-style service, or
 * a vsftpd session, whose fds 0-2 are the client's socket. A line written
 * there would reach the client in the middle of its protocol (curl read
 * one as the FTP server's answer), so a socket on fd 2 gets none; the
 * lines are kept only with NSTACK_LOG_FILE. */
static int log_fd_usable(int fd)
{
    struct stat st;
    return fd != 2 || FW_CONFINED() || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode);
}

void fw_vlog(enum nstack_log_level level, const char *module, const char *fmt, va_list ap)
{
    if (!fw_log_enabled(level) || !log_fd_usable(g_log_fd))
        return;
    int saved = errno;
    char line[1024];
    int lvl = level <= NSTACK_LOG_EMG ? (int)level : NSTACK_LOG_EMG;
    int n = snprintf(line, sizeof(line), "nstack[%d]: %s: %s%s", (int)getpid(),
                     g_level_names[lvl], module ? module : "", module ? ": " : "");
    if (n < 0)
        n = 0;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = LIBC(write)(g_log_fd, line, len);
    (void)w;
    errno = saved;
}

void fw_log(enum nstack_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fw_vlog(level, module, fmt, ap);
    va_end(ap);
}
