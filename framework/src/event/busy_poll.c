/* busy_poll.c - looking at module sockets before a wait sleeps (see
 * busy_poll.h). The hit/miss state is per thread: one thread's waits
 * follow one pattern (an echo loop, an event loop), and no lock is
 * needed. */
#include "busy_poll.h"

#include "file.h"
#include "fw.h"
#include "sig_track.h"
#include "timeutil.h"

#define BUSY_POLL_MISSES_MAX 8
#define BUSY_POLL_RETRY_EVERY 64

static __thread unsigned t_misses, t_skipped;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

uint64_t busy_poll_budget(const struct file *f)
{
    const struct nstack_module *m = f->mod;
    if (m == NULL || m->busy_poll_ns == NULL)
        return 0;
    MOD_ENTER();
    uint64_t ns = m->busy_poll_ns(f->sock);
    MOD_LEAVE();
    return ns;
}

/* Whether this thread spins now (the adaptive skip). */
static int spin_allowed(void)
{
    if (t_misses < BUSY_POLL_MISSES_MAX)
        return 1;
    if (++t_skipped < BUSY_POLL_RETRY_EVERY)
        return 0;
    t_skipped = 0;
    return 1;
}

int busy_poll_run(uint64_t budget_ns, int64_t deadline, busy_look_fn look, void *ctx)
{
    if (budget_ns == 0 || !spin_allowed())
        return 0;
    int64_t end = now_ns() + (int64_t)(budget_ns > INT32_MAX ? INT32_MAX : budget_ns);
    if (deadline >= 0 && deadline < end)
        end = deadline;
    uint64_t mark = sig_mark();
    do {
        int n = look(ctx);
        if (n != 0) {
            t_misses = 0;
            return n;
        }
        if (sig_mark() != mark)
            return BUSY_POLL_INTR;
        cpu_relax();
    } while (now_ns() < end);
    if (t_misses < BUSY_POLL_MISSES_MAX)
        t_misses++;
    return 0;
}
