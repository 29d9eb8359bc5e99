/* nstack_stats.h - layout of the shared stats segment /dev/shm/nstack-stat.<pid>
 * (public, versioned): written by libnStackAPI.so, read by nstack-stat,
 * nstack-check and any monitoring tool.
 *
 * A reader maps the file read-only, checks `magic` and `version` (a
 * different version is a different layout: refuse it) and never writes.
 *
 * Per-stack counters: each thread owns one counter slot (single writer,
 * relaxed atomic adds), so the hot path is a thread-local pointer and an
 * add; a reader sums all slots. Slot 0 is shared (atomic adds) for threads
 * beyond NSTAT_SLOTS.
 *
 * Per-connection records (conns[]): one per tracked connection, reused
 * once it is closed; when all are in use a new connection is not recorded
 * and `conn_overflow` grows. Publication is a sequence counter per record:
 * the writer makes `seq` odd (CAS from even, so two writers of one record
 * take turns), writes the descriptive fields, and makes it even again with
 * a release store. A reader copies the record between two acquire loads of
 * `seq` that are equal and even, else retries (bounded). The traffic
 * counters (bytes/msgs, per path) are outside that protocol: relaxed
 * atomic adds by the data path, relaxed loads by readers.
 *
 * Settings (settings[]): the stack modules' effective tunables that differ
 * from their defaults (module ABI 1.3, fw->publish_setting), e.g. rsocket's
 * RS_SQ_SIZE from the environment or /etc/rdma/rsocket/sqsize_default.
 * Written once each at module start: the entry first, then n_settings
 * with a release store; a reader loads n_settings (acquire) and copies
 * that many entries. Never changed afterwards.
 *
 * Versions: 4 added conns[]; 5 added per-path traffic in conns[]
 * (path[]), the state "failed", the reason "closed before first use" and
 * settings[]. A reader
 * of another version must refuse the segment with a line naming both
 * versions (the layout differs). */
#ifndef NSTACK_STATS_H
#define NSTACK_STATS_H

#include <stdint.h>

#define NSTAT_MAGIC 0x6e737431u    /* "nst1" */
#define NSTAT_VERSION 5            /* 4: conns[] added; 5: per-path traffic, settings[] */
#define NSTAT_STACKS 16
#define NSTAT_SLOTS 128
#define NSTAT_NAME 32
#define NSTAT_CONNS 1024   /* ~245 KiB; tmpfs pages are allocated as records are used */
#define NSTAT_RULE 96
#define NSTAT_SETTINGS 64
#define NSTAT_KEY 32
#define NSTAT_VALUE 32
#define NSTAT_SOURCE 96

enum nstat_counter {
    NSTAT_CONN_OUT,     /* connect() that routed to the stack */
    NSTAT_CONN_IN,      /* accepted connections */
    NSTAT_SOCKETS,      /* sockets placed on the stack */
    NSTAT_TX_BYTES,
    NSTAT_RX_BYTES,
    NSTAT_FALLBACK,     /* connects a module could not make, retried here */
    NSTAT_ANCHORED,     /* TCP-anchored connections the module carries: anchor()
                         * calls minus later fallbacks (a slot may wrap; the
                         * sum over slots is exact modulo 2^64) */
    NSTAT_ANCHOR_TCP,   /* anchored candidates that stayed on TCP: the peer does
                         * not run the framework (or the module declined) */
    NSTAT_N
};

struct nstat_slot {
    uint64_t owner;                            /* tid, 0 = free */
    uint64_t c[NSTAT_STACKS][NSTAT_N];
};

/* What carries a connection. */
enum nstat_conn_state {
    NSTAT_ST_FREE = 0,       /* record unused */
    NSTAT_ST_KERNEL,         /* kernel TCP/UDP by its route (see reason) */
    NSTAT_ST_PENDING,        /* TCP-anchored candidate: TCP until its first use,
                              * then the module's handshake */
    NSTAT_ST_UPGRADING,      /* anchored: the module's handshake runs */
    NSTAT_ST_UPGRADED,       /* anchored: data moves on the module */
    NSTAT_ST_STAYED_TCP,     /* anchored candidate that stayed on TCP (see reason) */
    NSTAT_ST_DIRECT,         /* a module socket (no TCP anchor) */
    NSTAT_ST_FAILED,         /* moving it to the module failed: unusable (reason, err);
                              * only the retired TCP-first mode produced it */
    NSTAT_ST_TCP_PHASE,      /* long-lived policy: on TCP until upgrade_after_bytes */
    NSTAT_ST_N
};

/* Why a connection is not accelerated (NSTAT_R_NONE: it is, or nothing to say). */
enum nstat_reason {
    NSTAT_R_NONE = 0,
    NSTAT_R_NO_ROUTE,        /* no rule matched: the default (kernel) stack */
    NSTAT_R_ROUTE_KERNEL,    /* a rule sends it to the kernel */
    NSTAT_R_TYPE,            /* the module does not carry this socket type/family */
    NSTAT_R_PEER,            /* the peer does not run the framework (or declined) */
    NSTAT_R_NO_DEVICE,       /* the module could not start (no RDMA device / library) */
    NSTAT_R_NOT_RDMA_ADDR,   /* the address is not on an RDMA port */
    NSTAT_R_MEMLOCK,         /* locked-memory limit (RLIMIT_MEMLOCK) */
    NSTAT_R_FD_LIMIT,        /* descriptor limit (RLIMIT_NOFILE) */
    NSTAT_R_CONNECT_FB,      /* module connect refused/unreachable; route's fallback used */
    NSTAT_R_FORK,            /* module resources are not inherited across fork/exec */
    NSTAT_R_CONFIG,          /* configuration unusable: the kernel serves everything */
    NSTAT_R_MODULE_ERR,      /* the module failed to make its socket (other errno) */
    NSTAT_R_UNUSED,          /* a TCP-anchored candidate closed (or left at exit)
                              * before its first use: never upgraded, nothing moved */
    NSTAT_R_N
};

/* Which path carried a connection's bytes. */
enum nstat_path {
    NSTAT_PATH_MODULE = 0,   /* the stack module (rsocket: RDMA) */
    NSTAT_PATH_KERNEL,       /* the kernel socket: a kernel connection, or the TCP anchor of
                              * one that stayed on TCP or went back to it (fork/exec) */
    NSTAT_PATHS
};

struct nstat_traffic {
    uint64_t tx_bytes, rx_bytes, tx_msgs, rx_msgs;
};

struct nstat_conn {
    uint32_t seq;            /* odd while being written; see above */
    uint32_t in_use;         /* 0 free, 1 claimed (CAS) */
    int32_t fd;              /* the app's fd number when recorded */
    int32_t stack;           /* index into names[] of the carrying stack, -1 none */
    int32_t route_stack;     /* the stack the route names, -1 none */
    int32_t route_index;     /* ip_route/prot_route entry, -1 built-in/default/none */
    uint8_t state;           /* enum nstat_conn_state */
    uint8_t reason;          /* enum nstat_reason */
    uint8_t family;          /* AF_INET / AF_INET6 */
    uint8_t type;            /* SOCK_STREAM / SOCK_DGRAM */
    uint8_t inbound;         /* 1 accepted, 0 connected */
    uint8_t pad[1];
    uint16_t lport, rport;   /* host order */
    uint8_t laddr[16], raddr[16];   /* network order; IPv4 in the first 4 bytes */
    int32_t err;             /* errno behind the reason, 0 none */
    char rule[NSTAT_RULE];   /* e.g. "ip_route[0] 192.168.21.0/24 -> rsocket" */
    uint64_t opened_ns;      /* CLOCK_REALTIME when recorded */
    /* traffic per path (enum nstat_path): relaxed atomic adds (data
     * path), not covered by seq; a connection's totals are the sums */
    struct nstat_traffic path[NSTAT_PATHS];
};

/* A module's setting whose effective value differs from its default. */
struct nstat_setting {
    char module[NSTAT_NAME];     /* the module's name, e.g. "rsocket" */
    char key[NSTAT_KEY];         /* what a user sets, e.g. "RS_SQ_SIZE" */
    char value[NSTAT_VALUE];     /* effective value, as text */
    char dflt[NSTAT_VALUE];      /* the module's default, as text */
    char source[NSTAT_SOURCE];   /* where the value came from, e.g. "environment" or a file */
};

struct nstat_shm {
    uint32_t magic, version;
    int32_t pid;
    int32_t n_stacks;
    char comm[NSTAT_NAME];
    char names[NSTAT_STACKS][NSTAT_NAME];
    struct nstat_slot slots[NSTAT_SLOTS];
    uint64_t conn_overflow;  /* connections not recorded: every record in use */
    uint64_t conn_recorded;  /* connections recorded since start */
    struct nstat_conn conns[NSTAT_CONNS];
    uint32_t n_settings;     /* entries of settings[] published (release store) */
    uint32_t settings_lost;  /* settings not published: settings[] full */
    struct nstat_setting settings[NSTAT_SETTINGS];
};

#define NSTAT_PATH_FMT "/dev/shm/nstack-stat.%d"

static inline const char *nstat_state_name(unsigned s)
{
    static const char *const n[NSTAT_ST_N] = { "free", "kernel", "anchored-pending", "upgrading",
                                               "upgraded", "stayed-on-TCP", "direct", "failed",
                                               "tcp-phase" };
    return s < NSTAT_ST_N ? n[s] : "?";
}

/* Short, stable identifiers (JSON "reason_code") and the text people read. */
static inline const char *nstat_reason_code(unsigned r)
{
    static const char *const n[NSTAT_R_N] = {
        "none", "no_route", "route_kernel", "socket_type", "peer_no_framework", "no_rdma_device",
        "not_rdma_address", "memlock_limit", "fd_limit", "connect_fallback", "fork_exec", "config_error",
        "module_error", "closed_before_use" };
    return r < NSTAT_R_N ? n[r] : "?";
}

static inline const char *nstat_reason_text(unsigned r)
{
    static const char *const n[NSTAT_R_N] = {
        "",
        "no route",
        "route says kernel",
        "socket type not carried",
        "peer does not run the framework",
        "RDMA device missing",
        "address not on an RDMA port",
        "locked-memory limit",
        "descriptor limit",
        "connect refused with fallback",
        "fork/exec limitation",
        "configuration error",
        "module error",
        "closed before first use" };
    return r < NSTAT_R_N ? n[r] : "?";
}

static inline const char *nstat_path_name(unsigned p)
{
    return p == NSTAT_PATH_MODULE ? "module" : p == NSTAT_PATH_KERNEL ? "kernel" : "?";
}

#endif
