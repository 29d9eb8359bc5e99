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
/* The learnt budget (ns, 0: the module's): how long this thread's answers
 * took lately, when they came within BUSY_POLL_LEARN_MAX_NS. The start of
 * the last spin that found nothing (0: none), until its wait ends. */
static __thread uint64_t t_learnt_ns;
static __thread int64_t t_missed_at;

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

static uint64_t learn_clamp(uint64_t ns)
{
    return ns > BUSY_POLL_LEARN_MAX_NS ? BUSY_POLL_LEARN_MAX_NS : ns;
}

int busy_poll_run(uint64_t budget_ns, int64_t deadline, busy_look_fn look, void *ctx)
{
    t_missed_at = 0;
    if (budget_ns == 0 || !spin_allowed())
        return 0;
    if (t_learnt_ns > budget_ns)
        budget_ns = t_learnt_ns;
    int64_t start = now_ns();
    int64_t end = start + (int64_t)(budget_ns > INT32_MAX ? INT32_MAX : budget_ns);
    if (deadline >= 0 && deadline < end)
        end = deadline;
    uint64_t mark = sig_mark();
    do {
        int n = look(ctx);
        if (n != 0) {
            t_misses = 0;
            /* twice what it took: room for the next answer's jitter */
            t_learnt_ns = learn_clamp(2 * (uint64_t)(now_ns() - start));
            return n;
        }
        if (sig_mark() != mark)
            return BUSY_POLL_INTR;
        cpu_relax();
    } while (now_ns() < end);
    if (t_misses < BUSY_POLL_MISSES_MAX)
        t_misses++;
    t_missed_at = start;
    return 0;
}

void busy_poll_woke(int found)
{
    int64_t start = t_missed_at;
    if (start == 0)
        return;
    t_missed_at = 0;
    uint64_t took = found > 0 ? (uint64_t)(now_ns() - start) : UINT64_MAX;
    if (took > BUSY_POLL_LEARN_MAX_NS) {
        t_learnt_ns = 0;              /* a slow answer: the module's budget */
        return;
    }
    /* the answer came soon after the spin gave up: spinning a little
     * longer would have caught it (and spared this sleep) */
    t_learnt_ns = learn_clamp(took + took / 2);
    t_misses = 0;
}
