#!/bin/bash
# Why-not-accelerated reasons that need their own process environment,
# each provoked on host B against a plain echo server on host A and checked
# in `nstack-stat -c -j` and in the exit report:
#   no software RDMA device on the library path   -> RDMA device missing
#   descriptors exhausted before the connection   -> descriptor limit
#   unparsable rd_config.json                     -> configuration error
#   "anchor": false + "fallback": "kernel", the
#   module's connect refused                      -> connect refused with fallback
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
echo "ops.reasons_env: ok"
