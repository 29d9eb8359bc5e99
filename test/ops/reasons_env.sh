#!/bin/bash
# Why-not-accelerated reasons that need their own process environment,
# each provoked on host B against a plain echo server on host A and checked
# in `nstack-stat -c -j` and in the exit report:
#   no software RDMA device on the library path   -> RDMA device missing
#   descriptors exhausted before the connection   -> descriptor limit
#   16 KiB RLIMIT_MEMLOCK without CAP_IPC_LOCK,
#   against a framework server                    -> locked-memory limit
#   unparsable rd_config.json                     -> configuration error
#   "anchor": false + "fallback": "kernel", the
#   module's connect refused                      -> connect refused with fallback
#   "anchor": false, a direct rsocket connection
#   inherited by a fork child                     -> fork/exec limitation
. "$NSTACK_SRC/test/ops/ops_lib.sh"
rsfw_setup
plain_echo a 192.168.21.180 7002
P=192.168.21.180:7002

# check_one NAME STATE REASON_CODE REPORT_REGEX ENV_CMD...
check_one() {
    local name=$1 state=$2 code=$3 report=$4
    shift 4
    hold "$name" "$@"
    wait_until 15 sh -c "'$STAT' -c -j $HOLD_PID | grep -q '\"$code\"'" || true
    stat_json "$HOLD_PID" "$WORK/$name.json"
    expect_conn "$WORK/$name.json" "$P" "$state" "$code"
    release "$name"
    wait_exit "$HOLD_JOB" 20 || fail "$name: ops_conns: $(cat "$WORK/$name.err")"
    expect_line "$WORK/$name.err" "$report" "$name: exit report"
}

HOLD_SPECS=(tcp:$P)
check_one nodev stayed-on-TCP no_rdma_device \
    "WAR: report: 1 connection to 192.168.21.0/24 stayed on TCP: RDMA device missing \(check the RDMA device" \
    rs_b env NSTACK_STATS=0 "LD_LIBRARY_PATH=$NSTACK_RELEASE/lib64"

# 64 descriptors, all but 5 taken: the socket and the dispatcher's dup fit,
# the module's socket (4 module + 3 device descriptors) does not.
HOLD_SPECS=(fill:5 tcp:$P)
check_one fdlimit stayed-on-TCP fd_limit \
    "report: 1 connection to 192.168.21.0/24 stayed on TCP: descriptor limit \(raise the descriptor limit" \
    rs_b bash -c 'ulimit -n 64 && exec "$@"' fdlimit

# 16 KiB of locked memory (less than one connection's smallest buffers,
# rs_memlock.c) and no CAP_IPC_LOCK (root has it), on a NIC without
# on-demand paging (SOFTRDMA_ODP=0: with it nothing is pinned), against a
# framework server: registering the module's buffers fails as on an HCA
# (the software device enforces RLIMIT_MEMLOCK as the kernel's
# ib_umem_get does); the module says why it stays on TCP (module ABI 1.3
# NSTACK_SO_FALLBACK_ERRNO: ENOMEM).
bg_a "${RS_ENV[@]}" "$CHECK" --serve 7003
wait_tcp_listen "$NS_A" 0.0.0.0 7003 10 || fail "framework server on 7003 did not start"
P=192.168.21.180:7003
HOLD_SPECS=(tcp:$P)
check_one memlock stayed-on-TCP memlock_limit \
    "report: 1 connection to 192.168.21.0/24 stayed on TCP: locked-memory limit \(raise the locked-memory limit" \
    rs_b env SOFTRDMA_ODP=0 setpriv --bounding-set -ipc_lock bash -c 'ulimit -l 16 && exec "$@"' memlock
python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['processes'][0]['connections'][0]; assert c['errno']==12, c" \
    "$WORK/memlock.json" || fail "memlock: the record names ENOMEM"
P=192.168.21.180:7002

printf '{ "ip_route": [ { "subnet": ' >"$WORK/bad_rd.json"
HOLD_SPECS=(tcp:$P)
check_one config kernel config_error \
    "report: 1 connection \(rule: no configuration\) used the kernel: configuration error \(check the files with nstack-route --check\)" \
    rs_b env "NSTACK_MOD_CFG_RD=$WORK/bad_rd.json"

cat >"$WORK/fb_rd.json" <<'JSON'
{ "ip_route": [ { "subnet": "192.168.21.0/24", "stack_name": "rsocket", "anchor": false, "fallback": "kernel" } ],
  "prot_route": [] }
JSON
"$BIN/nstack-route" -m "$NSTACK_SRC/stacks/rsocket/config/module_config.json" -r "$WORK/fb_rd.json" --check >/dev/null ||
    fail "fallback config rejected"
check_one fallback kernel connect_fallback \
    "report: 1 connection to 192.168.21.0/24 used the kernel: connect refused with fallback" \
    rs_b env "NSTACK_MOD_CFG_RD=$WORK/fb_rd.json"
# A direct module connection (no TCP anchor) to a framework server with the
# same configuration; the child of a fork holds it, its record says the
# module's resources did not come along.
cat >"$WORK/direct_rd.json" <<'JSON'
{ "ip_route": [ { "subnet": "192.168.21.0/24", "stack_name": "rsocket", "anchor": false } ], "prot_route": [] }
JSON
bg_a "${RS_ENV[@]}" "NSTACK_MOD_CFG_RD=$WORK/direct_rd.json" "$CHECK" --serve 7001
wait_tcp_listen "$NS_A" 0.0.0.0 7001 10 || fail "direct framework server did not start"   # kernel + rsocket listener
P=192.168.21.180:7001
HOLD_SPECS=(tcp:$P)
hold fork rs_b env OPS_FORK=1 "NSTACK_MOD_CFG_RD=$WORK/direct_rd.json"
stat_json "$HOLD_PID" "$WORK/fork.json"
expect_conn "$WORK/fork.json" "$P" direct fork_exec "ip_route[0] 192.168.21.0/24 -> rsocket"
python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['processes'][0]['connections'][0]; assert c['stack']=='rsocket' and c['errno']==130, c" \
    "$WORK/fork.json" || fail "fork: the record names rsocket and EOWNERDEAD"
release fork
wait_exit "$HOLD_JOB" 20 || fail "fork: ops_conns: $(cat "$WORK/fork.err")"
echo "ops.reasons_env: ok"
