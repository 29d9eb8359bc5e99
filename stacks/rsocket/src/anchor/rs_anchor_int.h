/*
 * rs_anchor_int.h - the anchor's state, shared by rs_anchor.c (the
 * upgrade-first handshake) and rs_anchor_late.c (the long-lived policy's
 * switch). Not part of the module's interface.
 */
#ifndef RS_ANCHOR_INT_H
#define RS_ANCHOR_INT_H

#include "rs_anchor.h"

enum anc_phase {
    ANC_TCPCONN = 1,      /* active: the nonblocking TCP connect is not done */
    ANC_A_HELLO,          /* active: hello sent, the passive's awaited */
    ANC_A_OFFER,          /* active: KICK sent (committed), OFFER awaited */
    ANC_A_RCONN,          /* active: rconnect to the offered port */
    ANC_P_HELLO,          /* passive: the active's hello awaited */
    ANC_P_KICK,           /* passive: hellos exchanged, KICK awaited */
    ANC_P_OFFERING,       /* passive: KICK read (committed), listener made */
    ANC_P_LISTEN,         /* passive: OFFER sent, connect request awaited */
    ANC_P_ACCEPTING,      /* passive: accepted on the wire, not established */
    /* the long-lived policy's switch (rs_anchor_late.c) */
    ANC_A_ANSWER,         /* active: crossed before the passive's answer came;
                           * both directions pass through until it does */
    ANC_A_KICK,           /* active: crossed; KICK waits for room in the send buffer
                           * (reads wait too, up to RS_ANCHOR_HELLO_MS) */
    ANC_A_LATE,           /* active: KICK sent (committed); the passive's TCP data
                           * passes through until its MARK */
    ANC_P_LATE,           /* passive: both directions pass through; KICK awaited */
    ANC_P_MARK,           /* passive: KICK read; MARK waits for room */
    ANC_LOSING,           /* a step failed: RS_ANCHOR_LOST_MS for the TCP end to
                           * tell whether the peer left (then FALLBACK), else FAILED */
    ANC_UPGRADED = RS_ANC_PHASE_UPGRADED,
    ANC_FALLBACK,
    ANC_FAILED,
};

struct rs_anchor {
    int kfd, role;
    int hello_sent;
    int write_wanted;             /* passive: the app tried to send first */
    int tcp_eof;                  /* passive after OFFER: the active closed the TCP side */
    int busy;                     /* a thread serves the listener unlocked */
    int timer_fd;                 /* handshake deadlines, -1 until needed */
    int64_t timer_at;             /* its expiry as last set (ms), 0: disarmed */
    int kfd_in;                   /* kfd is in the wait fd, with kfd_ev */
    uint32_t kfd_ev;
    int64_t hello_deadline;       /* 0: not running */
    int64_t deadline;             /* once committed; 0: none */
    int err;                      /* ANC_FAILED: errno of every call */
    int lost_err;                 /* ANC_LOSING: the failure, if the peer stays */
    const char *lost_why;         /* ... and its description (a literal) */
    int fb_err;                   /* ANC_FALLBACK: the local errno behind it, EREMOTEIO: the
                                   * peer's RDMA side failed, 0: no framework (nstack-stat) */
    struct rsock *listener;       /* passive: P_LISTEN */
    struct rsock *dead_listener;  /* closed once the socket lock is dropped */
    struct rs_anc_link link;      /* the other end in this process (rs_anchor_pair.c) */
    int out_wanted;               /* P_LATE: a pass-through send found no room */
    uint64_t seen_rcv, seen_ack;  /* late phases: TCP_INFO byte counts at the last
                                   * poll_events (new ones are a new edge) */
    int answer_late;              /* A_ANSWER: no answer within RS_ANCHOR_HELLO_MS:
                                   * sends pass through meanwhile */
    int kick_late;                /* A_KICK: no room for KICK within RS_ANCHOR_HELLO_MS:
                                   * reads pass through meanwhile */
    int own_code;                 /* A_ANSWER: the policy code this end crossed
                                   * (NSTACK_ANCHOR_LL_CODE_OF; 0: not told) */
    int kick_hold;                /* P_LATE: 1 once the peer's KICK arrived (not reached
                                   * by the reads yet): sends wait up to RS_ANCHOR_HELLO_MS
                                   * (hello_deadline) so that the reads reach it; 2: that
                                   * time is over, sends pass through again */
};

/* rs_anchor.c; socket lock held */
void rs_anc_set_phase(struct rsock *s, int p);
void rs_anc_fallback(struct rsock *s, const char *why);
/* rs_anchor_linger.c: keep the TCP socket of a passive end closed before
 * the peer's handshake bytes came open a while (its FIN sent), so that
 * they do not draw a reset; and close those whose time is up. */
void rs_anc_linger(int kfd);
void rs_anc_linger_reap(void);
void rs_anc_fail(struct rsock *s, int err, const char *why);
void rs_anc_passive_commit(struct rsock *s);
/* The wait fd watches kfd for what the phase needs now, and the timer is
 * armed for the nearest deadline. */
void rs_anc_rewatch(struct rsock *s);

/* rs_anchor_late.c; socket lock held */
void rs_anc_late_open(struct rsock *s, int flags);
void rs_anc_late_step(struct rsock *s);
uint32_t rs_anc_late_interest(const struct rsock *s);
uint32_t rs_anc_late_mask(struct rsock *s);
static inline int rs_anc_is_late(int p)
{
    return p >= ANC_A_ANSWER && p <= ANC_P_MARK;
}

#endif
