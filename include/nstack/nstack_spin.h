/*
 * nstack_spin.h - how long to busy-poll before sleeping, learnt from the
 * answers that came: one rule for the dispatcher's spin before a kernel
 * wait (per thread, framework/src/event/busy_poll.c) and a module's spin
 * before its own sleep (per socket: the rsocket engine's rs_wait.c).
 *
 * A spin starts with the caller's base budget (a module's busy_poll_ns,
 * rsockets' polling_time). On a VM whose wake-ups cost more than that
 * budget, a reply that takes just longer than it costs a sleep per
 * message, so the budget adapts, never beyond NSTACK_SPIN_LEARN_MAX_NS:
 *   - a hit after e ns asks for 2e next time (room for the next answer's
 *     jitter);
 *   - a spin that found nothing, whose sleep then ended with news of the
 *     sockets spun on within that bound of the spin's start, asks for 1.5
 *     times that (a little longer would have caught it);
 *   - anything slower, or a sleep that ended with other news, brings the
 *     base budget back.
 * Header-only, with no state of its own: not part of the module ABI
 * (nstack_module.h), usable by a module without the dispatcher.
 */
#ifndef NSTACK_SPIN_H
#define NSTACK_SPIN_H

#include <stdint.h>

#define NSTACK_SPIN_LEARN_MAX_NS 50000

struct nstack_spin_learn {
    uint64_t learnt_ns;     /* 0: the base budget */
    int64_t missed_at;      /* start of the last spin that found nothing, 0: none */
};

static inline uint64_t nstack_spin_clamp(uint64_t ns)
{
    return ns > NSTACK_SPIN_LEARN_MAX_NS ? NSTACK_SPIN_LEARN_MAX_NS : ns;
}

/* A wait begins: a missed spin it did not follow is forgotten. */
static inline void nstack_spin_start(struct nstack_spin_learn *l)
{
    l->missed_at = 0;
}

/* The budget of the next spin (ns). */
static inline uint64_t nstack_spin_budget(const struct nstack_spin_learn *l, uint64_t base_ns)
{
    return l->learnt_ns > base_ns ? l->learnt_ns : base_ns;
}

/* The spin that began at `start` (ns) found something at `now`. */
static inline void nstack_spin_hit(struct nstack_spin_learn *l, int64_t start, int64_t now)
{
    l->learnt_ns = nstack_spin_clamp(2 * (uint64_t)(now - start));
}

/* The spin that began at `start` found nothing: the caller sleeps next. */
static inline void nstack_spin_missed(struct nstack_spin_learn *l, int64_t start)
{
    l->missed_at = start;
}

/* The sleep after a missed spin ended at `now`; news: it ended with news
 * of the sockets spun on. 1 when the answer came soon enough to learn
 * from (a hit, for the caller's count of misses). */
static inline int nstack_spin_woke(struct nstack_spin_learn *l, int news, int64_t now)
{
    int64_t start = l->missed_at;
    if (start == 0)
        return 0;
    l->missed_at = 0;
    uint64_t took = news ? (uint64_t)(now - start) : UINT64_MAX;
    if (took > NSTACK_SPIN_LEARN_MAX_NS) {
        l->learnt_ns = 0;
        return 0;
    }
    l->learnt_ns = nstack_spin_clamp(took + took / 2);
    return 1;
}

#endif
