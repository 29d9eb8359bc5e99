/* Helpers shared by the RDMA example programs.
 *
 * The examples are meant to be read as documentation of verbs/rdma_cm
 * programming, so the helpers only hide the parts that are the same in every
 * program: command line options, failure reporting, waiting with a deadline,
 * and the data patterns used to check every transfer. Everything specific to
 * an example (which verbs it posts, how it connects) stays in the example. */
#ifndef EX_COMMON_H
#define EX_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

/* ---- options (ex_opts.c) ------------------------------------------------ */

struct ex_opts {
    bool server;            /* -s: server mode, else client mode (-c ADDR) */
    const char *addr;       /* -a ADDR (server bind) or -c ADDR (server to reach) */
    const char *port;       /* -p PORT */
    int iterations;         /* -n N: transfers/messages per connection */
    size_t size;            /* -S BYTES: largest transfer */
    int timeout_s;          /* -t SECONDS: deadline for the whole run */
    int clients;            /* -k N: connections a server serves before exiting */
    int window;             /* -w N: messages in flight (rdma_async_msg client) */
};

/* Parses -s | -c ADDR, -a ADDR, -p PORT, -n N, -S BYTES, -t SECONDS, -k N, -w N.
 * `defaults` supplies the per-program defaults; `usage` is printed on error
 * (exit status 2). */
void ex_parse_opts(int argc, char **argv, const struct ex_opts *defaults,
                   const char *usage, struct ex_opts *out);

/* Prints "<program>: <reason>" on stderr and exits with status 1. */
void ex_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Like ex_fail, with ": <strerror(errno)>" appended. */
void ex_fail_errno(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Resolves a numeric IPv4/IPv6 address and port into `ss`. NULL addr means
 * the IPv4 wildcard. Fails the program with a reason on bad input. */
void ex_sockaddr(const char *addr, const char *port, struct sockaddr_storage *ss);

/* ---- deadlines (ex_time.c) ---------------------------------------------- */

/* Monotonic milliseconds. */
int64_t ex_now_ms(void);

/* Milliseconds left until `deadline_ms` (0 when passed, capped for poll()). */
int ex_remaining_ms(int64_t deadline_ms);

/* ---- rdma_cm with deadlines (ex_cm.c) ----------------------------------- */

/* A hint for a failed connection's event, e.g. REJECTED: "nobody listens
 * there, or the server refused"; "" when there is nothing to add. */
const char *ex_cm_failure_hint(enum rdma_cm_event_type type);

/* Waits for the next CM event on `ch` until the deadline. Returns it
 * (the caller acks it with rdma_ack_cm_event) or fails with `what`. */
struct rdma_cm_event *ex_next_cm_event(struct rdma_event_channel *ch,
                                       int64_t deadline_ms, const char *what);

/* Waits for an event of type `expected`; any other event fails the program
 * with its name and status (e.g. REJECTED when no server listens). */
struct rdma_cm_event *ex_expect_cm_event(struct rdma_event_channel *ch,
                                         enum rdma_cm_event_type expected,
                                         int64_t deadline_ms);

/* Client side: resolves address and route of the server for `id`. */
void ex_resolve_server(struct rdma_cm_id *id, struct rdma_event_channel *ch,
                       const char *addr, const char *port, int64_t deadline_ms);

/* Server side: binds `id` to addr:port and listens. Prints the
 * "listening on" banner that tests wait for. */
void ex_listen(struct rdma_cm_id *id, const char *addr, const char *port,
               const char *progname);

/* ---- one RC endpoint on an rdma_cm id (ex_endpoint.c) ------------------ */

/* The verbs objects every connected example needs: a protection domain, a
 * completion channel (to sleep on), one CQ shared by sends and receives, and
 * the RC queue pair that rdma_cm attaches to the id. */
struct ex_endpoint {
    struct ibv_pd *pd;
    struct ibv_comp_channel *cc;
    struct ibv_cq *cq;
    struct ibv_qp *qp;
};

/* Creates the endpoint on id->verbs (known once the address is resolved or
 * the connect request arrived) with `depth` send and receive slots. */
void ex_endpoint_create(struct rdma_cm_id *id, int depth, struct ex_endpoint *ep);

/* Registers `len` bytes at `buf` with `access`; fails with `what` on error. */
struct ibv_mr *ex_reg_mr(struct ex_endpoint *ep, void *buf, size_t len, int access,
                         const char *what);

/* Destroys the QP (through rdma_cm), CQ, channel and PD; NULL members are skipped. */
void ex_endpoint_destroy(struct rdma_cm_id *id, struct ex_endpoint *ep);

/* The active side's orderly close: rdma_disconnect, wait (bounded) for our
 * own DISCONNECTED, then destroy the endpoint, the id and its channel.
 * Memory regions must be deregistered first (the PD goes with the endpoint). */
void ex_client_close(struct rdma_cm_id *id, struct rdma_event_channel *ch,
                     struct ex_endpoint *ep, int64_t deadline_ms);

/* Page-aligned zeroed buffer (registered memory is best page-aligned);
 * fails the program when out of memory. */
void *ex_alloc_buf(size_t len);

/* ---- completions with deadlines (ex_cq.c) ------------------------------- */

/* Waits for one work completion on `cq` until the deadline, sleeping on the
 * completion channel `cc` (the CQ must have been created with it).
 * Fails the program if the deadline passes. */
void ex_wait_wc(struct ibv_cq *cq, struct ibv_comp_channel *cc,
                int64_t deadline_ms, struct ibv_wc *wc);

/* Fails the program unless `wc` succeeded with opcode `opcode`. */
void ex_check_wc(const struct ibv_wc *wc, enum ibv_wc_opcode opcode, const char *what);

/* ---- data patterns (ex_pattern.c) --------------------------------------- */

/* Fills buf with bytes derived from `seed` and the offset, so that a
 * misplaced, stale or truncated transfer is detected. */
void ex_fill_pattern(void *buf, size_t len, uint32_t seed);

/* Returns the offset of the first byte that differs from the pattern, or
 * -1 when the whole buffer matches. */
long ex_find_mismatch(const void *buf, size_t len, uint32_t seed);

#endif
