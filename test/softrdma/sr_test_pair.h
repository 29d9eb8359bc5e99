/* Helpers of the softrdma device tests: a pair of RC QPs in one process,
 * connected by hand (ibv_modify_qp with the peer's QPN), posting and
 * polling with deadlines. cmocka asserts. */
#ifndef SR_TEST_PAIR_H
#define SR_TEST_PAIR_H
#include <infiniband/verbs.h>
#include <stddef.h>
#include <stdint.h>

#define BUF 65536
#define DEADLINE_MS 10000

struct side {
    struct ibv_cq *scq, *rcq;
    struct ibv_qp *qp;
    struct ibv_mr *mr;
    char *buf;
};
struct pair {
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct side a, b;
};

long now_ms(void);
/* Polls until n completions arrived or the deadline passed; returns count. */
int poll_n(struct ibv_cq *cq, struct ibv_wc *wc, int n, long ms);
/* The channels of the send and the receive CQ (NULL: none). */
void side_init_chs(struct pair *p, struct side *s, int cqe, int sig_all, int access,
                   struct ibv_comp_channel *scq_ch, struct ibv_comp_channel *rcq_ch);
/* scq_ch: completion channel of the send CQ, or NULL */
void side_init_ch(struct pair *p, struct side *s, int cqe, int sig_all, int access,
                  struct ibv_comp_channel *scq_ch);
/* The three steps of qp_connect_gid; qp_to_rtr returns ibv_modify_qp's. */
void qp_to_init(struct ibv_qp *qp);
int qp_to_rtr(struct ibv_qp *qp, uint32_t dest, const union ibv_gid *dgid);
void qp_to_rts(struct ibv_qp *qp, int rnr_retry);
/* dgid NULL: the GID of port 1 (this host, where both QPs live). */
void qp_connect_gid(struct ibv_qp *qp, uint32_t dest, int rnr_retry, const union ibv_gid *dgid);
void side_init(struct pair *p, struct side *s, int cqe, int sig_all, int access);
void qp_connect(struct ibv_qp *qp, uint32_t dest, int rnr_retry);
struct pair *pair_open(void);
/* Two connected sides; a's send CQ reports to a_scq_ch (may be NULL). */
void pair_connect(struct pair *p, int cqe, int sig_all, int rnr_retry, int b_access,
                  struct ibv_comp_channel *a_scq_ch);
struct pair *pair_new(int cqe, int sig_all, int rnr_retry, int b_access);
void side_free(struct side *s);
void pair_free(struct pair *p);
void fill(char *b, size_t n, unsigned seed);
void post_recv(struct side *s, uint64_t id, int nsge, size_t off, uint32_t len);
int post_send(struct side *s, enum ibv_wr_opcode op, uint64_t id, size_t off, uint32_t len,
              unsigned flags, uint64_t raddr, uint32_t rkey, uint32_t lkey);
/* The SEND of a's first len bytes landed in b's buffer (receive
 * completion) and a's send completed, both successfully. */
void expect_delivered(struct pair *p, uint32_t len);
/* A SEND of len bytes (pattern seed) from a into a receive posted on b,
 * received intact; a's send completion is left to the caller. */
void send_verified(struct pair *p, uint64_t id, uint32_t len, unsigned seed);
#endif
