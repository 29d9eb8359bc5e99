/* busy_poll.c - looking at module sockets before a wait sleeps (see
 * busy_poll.h). The hit/miss state is per thread: one thread's waits
 * follow one pattern (an echo loop, an event loop), and no lock is
 * needed. */
#include "busy_poll.h"

#include <nstack/nstack_spin.h>

#include "file.h"
#include "fw.h"
#include "sig_track.h"
#include "timeutil.h"

static __thread unsigned t_misses, t_skipped;
/* What this thread's answers took lately (nstack_spin.h). */
static __thread struct nstack_spin_learn t_learn;

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
    nstack_spin_start(&t_learn);
    if (budget_ns == 0 || !spin_allowed())
        return 0;
    budget_ns = nstack_spin_budget(&t_learn, budget_ns);
    int64_t start = now_ns();
    int64_t end = start + (int64_t)(budget_ns > INT32_MAX ? INT32_MAX : budget_ns);
    if (deadline >= 0 && deadline < end)
        end = deadline;
    uint64_t mark = sig_mark();
    do {
        int n = look(ctx);
        if (n != 0) {
            t_misses = 0;
            nstack_spin_hit(&t_learn, start, now_ns());
            return n;
        }
        if (sig_mark() != mark)
            return BUSY_POLL_INTR;
        cpu_relax();
    } while (now_ns() < end);
    if (t_misses < BUSY_POLL_MISSES_MAX)
        t_misses++;
    nstack_spin_missed(&t_learn, start);
    return 0;
}

void busy_poll_woke(int found)
{
    if (nstack_spin_woke(&t_learn, found > 0, now_ns()))
        t_misses = 0;
}
