/* One fabric, several users: an rdma_cm server and client that may run as
 * different users, and a server that drops its privileges after the device
 * started (as nginx, Apache and PostgreSQL workers do).
 *
 *   sr_user_test server ADDR PORT [USER]   USER: setuid to it once the
 *                                           device is up and the id bound
 *   sr_user_test client ADDR PORT
 *   sr_user_test bind ADDR PORT            rdma_bind_addr only; prints
 *                                           "bind: 0" or "bind: <errno name>"
 *
 * The client SENDs a message; the server answers with it reversed and the
 * address, rkey and length of a buffer it registered for remote READ. The
 * client checks the answer, READs the buffer and checks it, then READs one
 * byte past it, which must fail with REM_ACCESS_ERR: across users a peer
 * reaches registered memory and nothing else. The server ends when its QP
 * is flushed (the responder's QP goes to ERR with the bad READ).
 * Every wait has a deadline; exit status 0 on success. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <rdma/rdma_cma.h>
#include <rdma/rdma_verbs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MSG_LEN 64
#define REGION_LEN 4096
#define DEADLINE_S 30

struct answer {
    char text[MSG_LEN];
    uint64_t addr;
    uint32_t rkey, len;
};

static void die(const char *what)
{
    fprintf(stderr, "sr_user_test[uid %d]: %s: %s\n", (int)getuid(), what, strerror(errno));
    exit(1);
}

/* One completion from cq (busy poll with a deadline: no channel needed). */
static struct ibv_wc wait_wc(struct ibv_cq *cq)
{
    struct ibv_wc wc;
    time_t end = time(NULL) + DEADLINE_S;
    for (;;) {
        int n = ibv_poll_cq(cq, 1, &wc);
        if (n == 1)
            return wc;
        if (n < 0 || time(NULL) > end) {
            errno = n < 0 ? -n : ETIMEDOUT;
            die("ibv_poll_cq");
        }
        usleep(200);
    }
}

static void expect_ok(struct ibv_cq *cq, const char *what)
{
    struct ibv_wc wc = wait_wc(cq);
    if (wc.status != IBV_WC_SUCCESS) {
        fprintf(stderr, "sr_user_test: %s completed with %s\n", what, ibv_wc_status_str(wc.status));
        exit(1);
    }
}

static void drop_to(const char *user)
{
    struct passwd *pw = getpwnam(user);
    if (!pw)
        die(user);
    if (setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid))
        die("dropping privileges");
    printf("server: running as uid %d\n", (int)getuid());
}

static struct rdma_cm_id *make_ep(const char *addr, const char *port, int passive)
{
    struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP,
                                   .ai_flags = passive ? RAI_PASSIVE : 0 }, *res;
    struct ibv_qp_init_attr attr = { .qp_type = IBV_QPT_RC, .sq_sig_all = 1,
                                     .cap = { .max_send_wr = 4, .max_recv_wr = 4,
                                              .max_send_sge = 1, .max_recv_sge = 1 } };
    struct rdma_cm_id *id;
    if (rdma_getaddrinfo(addr, port, &hints, &res))
        die("rdma_getaddrinfo");
    if (rdma_create_ep(&id, res, NULL, &attr))
        die("rdma_create_ep");
    rdma_freeaddrinfo(res);
    return id;
}

static int server(const char *addr, const char *port, const char *user)
{
    struct rdma_cm_id *lid = make_ep(addr, port, 1), *id;
    if (user)
        drop_to(user);
    if (rdma_listen(lid, 1))
        die("listen");
    printf("server: listening\n");
    if (rdma_get_request(lid, &id))
        die("rdma_get_request");
    static char msg[MSG_LEN], region[REGION_LEN], spare[MSG_LEN];
    static struct answer ans;
    for (int i = 0; i < REGION_LEN; i++)
        region[i] = (char)(i * 7 + 3);
    struct ibv_mr *mmsg = rdma_reg_msgs(id, msg, sizeof msg);
    struct ibv_mr *mspare = rdma_reg_msgs(id, spare, sizeof spare);
    struct ibv_mr *mans = rdma_reg_msgs(id, &ans, sizeof ans);
    struct ibv_mr *mreg = rdma_reg_read(id, region, sizeof region);
    if (!mmsg || !mspare || !mans || !mreg)
        die("register");
    if (rdma_post_recv(id, NULL, msg, sizeof msg, mmsg) ||
        rdma_post_recv(id, NULL, spare, sizeof spare, mspare) || rdma_accept(id, NULL))
        die("accept");
    expect_ok(id->recv_cq, "server receive");
    for (int i = 0; i < MSG_LEN - 1; i++)
        ans.text[i] = msg[MSG_LEN - 2 - i];
    ans.addr = (uintptr_t)region;
    ans.rkey = mreg->rkey;
    ans.len = REGION_LEN;
    if (rdma_post_send(id, NULL, &ans, sizeof ans, mans, 0))
        die("post answer");
    expect_ok(id->send_cq, "server answer");
    /* the client's out-of-bounds READ puts our QP in ERR: the spare
     * receive is flushed */
    struct ibv_wc wc = wait_wc(id->recv_cq);
    printf("server: spare receive ended with %s\n", ibv_wc_status_str(wc.status));
    rdma_disconnect(id);
    return wc.status == IBV_WC_WR_FLUSH_ERR ? 0 : 1;
}

static int client(const char *addr, const char *port)
{
    struct rdma_cm_id *id = make_ep(addr, port, 0);
    static char msg[MSG_LEN], copy[REGION_LEN + 1];
    static struct answer ans;
    snprintf(msg, sizeof msg, "from uid %d to the server, checked on return", (int)getuid());
    struct ibv_mr *mmsg = rdma_reg_msgs(id, msg, sizeof msg);
    struct ibv_mr *mans = rdma_reg_msgs(id, &ans, sizeof ans);
    struct ibv_mr *mcopy = rdma_reg_msgs(id, copy, sizeof copy);
    if (!mmsg || !mans || !mcopy)
        die("register");
    if (rdma_post_recv(id, NULL, &ans, sizeof ans, mans) || rdma_connect(id, NULL))
        die("connect");
    if (rdma_post_send(id, NULL, msg, sizeof msg, mmsg, 0))
        die("send");
    expect_ok(id->send_cq, "client send");
    expect_ok(id->recv_cq, "client receive");
    for (int i = 0; i < MSG_LEN - 1; i++)
        if (ans.text[i] != msg[MSG_LEN - 2 - i]) {
            fprintf(stderr, "sr_user_test: answer differs at byte %d\n", i);
            return 1;
        }
    if (rdma_post_read(id, NULL, copy, ans.len, mcopy, 0, ans.addr, ans.rkey))
        die("read");
    expect_ok(id->send_cq, "client READ of the registered region");
    for (int i = 0; i < REGION_LEN; i++)
        if (copy[i] != (char)(i * 7 + 3)) {
            fprintf(stderr, "sr_user_test: READ data differs at byte %d\n", i);
            return 1;
        }
    if (rdma_post_read(id, NULL, copy, ans.len + 1, mcopy, 0, ans.addr, ans.rkey))
        die("read past the region");
    struct ibv_wc wc = wait_wc(id->send_cq);
    if (wc.status != IBV_WC_REM_ACCESS_ERR) {
        fprintf(stderr, "sr_user_test: READ past the region: %s, want REM_ACCESS_ERR\n",
                ibv_wc_status_str(wc.status));
        return 1;
    }
    printf("client (uid %d): echo, READ and the refused READ past the region all as expected\n",
           (int)getuid());
    return 0;
}

static int bind_only(const char *addr, const char *port)
{
    struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP, .ai_flags = RAI_PASSIVE }, *res;
    struct rdma_cm_id *id;
    if (rdma_getaddrinfo(addr, port, &hints, &res) ||
        rdma_create_id(NULL, &id, NULL, RDMA_PS_TCP))
        die("rdma_create_id");
    int rc = rdma_bind_addr(id, res->ai_src_addr);
    printf("bind: %s\n", rc ? strerrorname_np(errno) : "0");
    rdma_destroy_id(id);
    rdma_freeaddrinfo(res);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && !strcmp(argv[1], "server"))
        return server(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
    if (argc == 4 && !strcmp(argv[1], "client"))
        return client(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "bind"))
        return bind_only(argv[2], argv[3]);
    fprintf(stderr, "usage: %s server ADDR PORT [USER] | client ADDR PORT | bind ADDR PORT\n",
            argv[0]);
    return 2;
}
