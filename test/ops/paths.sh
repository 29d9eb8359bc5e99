#!/bin/bash
# Bytes and messages per path (module vs kernel) in each connection's
# record, and the exit report naming connections whose bytes went mostly
# over kernel TCP on an RDMA route, with the reason:
#   192.168.21.180:7001 framework server        -> upgraded: every byte on the module
#   192.168.21.180:7002 plain server (fallback)  -> stayed-on-TCP: every byte on the kernel,
#                                                  named in the report (peer does not run the framework)
#   192.168.21.180:7005 plain rsockets server    -> direct (TCP refused, module connect): on the module
#   7001 again, then fork: the connection returns to TCP before the fork, the
#   child keeps exchanging on it -> its record keeps the module bytes from before
#   the fork and counts the child's on the kernel; reason fork/exec; named at exit
. "$NSTACK_SRC/test/ops/ops_lib.sh"
rsfw_setup
bg_a "${RS_ENV[@]}" "$CHECK" --serve 7001
wait_tcp_listen "$NS_A" 0.0.0.0 7001 10 || fail "framework server did not start"
plain_echo a 192.168.21.180 7002

# path_check FILE PEER STATE MOD_TX MOD_RX KRN_TX KRN_RX: exact per-path byte
# counts (a number, or ">N" for more than N) and the totals are their sums.
path_check() {
    python3 - "$@" <<'PY' || fail "per-path counters of $2"
import json, sys
f, peer, state, *want = sys.argv[1:]
c = [x for x in json.load(open(f))["processes"][0]["connections"] if x["peer"] == peer]
assert len(c) == 1, c
c = c[0]
assert c["state"] == state, c
m, k = c["paths"]["module"], c["paths"]["kernel"]
got = [m["tx_bytes"], m["rx_bytes"], k["tx_bytes"], k["rx_bytes"]]
for g, w in zip(got, want):
    assert (g > int(w[1:])) if w.startswith(">") else g == int(w), (got, want, c)
for key in ("tx_bytes", "rx_bytes", "tx_msgs", "rx_msgs"):
    assert c[key] == m[key] + k[key], (key, c)
for p in (m, k):   # a path with bytes has messages, one without has none
    assert (p["tx_bytes"] > 0) == (p["tx_msgs"] > 0) and (p["rx_bytes"] > 0) == (p["rx_msgs"] > 0), c
print(f"ok: {peer}: {state}: module {got[0]}/{got[1]} B, kernel {got[2]}/{got[3]} B")
PY
}

HOLD_SPECS=(tcp:192.168.21.180:7001 tcp:192.168.21.180:7002)
hold one rs_b
wait_until 15 sh -c "'$STAT' -c -j $HOLD_PID | grep -q peer_no_framework" || true
stat_json "$HOLD_PID" "$WORK/one.json"
path_check "$WORK/one.json" 192.168.21.180:7001 upgraded 64 64 0 0
path_check "$WORK/one.json" 192.168.21.180:7002 stayed-on-TCP 0 0 64 64
"$STAT" -c "$HOLD_PID" >"$WORK/one.txt" || fail "nstack-stat -c"
# text: tx/rx totals, msgs, then mod_tx mod_rx krn_tx krn_rx, mod_msgs krn_msgs
expect_line "$WORK/one.txt" "192.168.21.180:7001 +rsocket +upgraded +64 +64 +[0-9]+ +[0-9]+ +64 +64 +0 +0 +[0-9]+/[0-9]+ +0/0 " \
    "text view: the upgraded connection's bytes on the module"
expect_line "$WORK/one.txt" "192.168.21.180:7002 +kernel +stayed-on-TCP +64 +64 +[0-9]+ +[0-9]+ +0 +0 +64 +64 +0/0 +[0-9]+/[0-9]+ " \
    "text view: the fallback connection's bytes on the kernel"
release one
wait_exit "$HOLD_JOB" 20 || fail "ops_conns: $(cat "$WORK/one.err")"
expect_line "$WORK/one.err" "stats: report: connection 192.168.21.181:[0-9]+ -> 192.168.21.180:7002 \(ip_route\[0\] 192.168.21.0/24 -> rsocket\): 128 of 128 bytes over kernel TCP, 0 over rsocket: peer does not run the framework \(run the framework on the peer" \
    "exit report names the fallback connection"
! grep -q "report: connection .*192.168.21.180:7001" "$WORK/one.err" || { cat "$WORK/one.err"; fail "the upgraded connection named in the report"; }

# A plain rsockets server (no TCP listener): the refused TCP connect
# connects on the module directly, and the record follows the connection
# onto the direct module socket (state direct, bytes on the module).
RSECHO=$NSTACK_BUILD/test/ops/ops_rsecho
bg_a env "LD_LIBRARY_PATH=$NSTACK_RELEASE/lib64/softrdma" "LD_PRELOAD=$NSTACK_RELEASE/lib64/libdmm_rsocket.so" \
    "$RSECHO" 192.168.21.180 7005 1 >"$WORK/rsecho.out" 2>&1
wait_file_match "$WORK/rsecho.out" "^listening" 20 || { cat "$WORK/rsecho.out"; fail "rsockets echo server did not start"; }
HOLD_SPECS=(tcp:192.168.21.180:7005)
hold direct rs_b
stat_json "$HOLD_PID" "$WORK/direct.json"
path_check "$WORK/direct.json" 192.168.21.180:7005 direct 64 64 0 0
expect_conn "$WORK/direct.json" 192.168.21.180:7005 direct none "ip_route[0] 192.168.21.0/24 -> rsocket"
python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['processes'][0]['connections'][0]; assert c['local'].startswith('192.168.21.181:') and c['stack']=='rsocket', c" \
    "$WORK/direct.json" || fail "direct: the record has the module socket's local address"
release direct
wait_exit "$HOLD_JOB" 20 || fail "direct: ops_conns: $(cat "$WORK/direct.err")"

# Returned to TCP for a fork: the child pumps echoes over TCP.
HOLD_SPECS=(tcp:192.168.21.180:7001)
hold fork rs_b env OPS_FORK=1 OPS_PUMP=1
wait_until 20 sh -c "'$STAT' -c -j $HOLD_PID | python3 -c 'import json,sys; c=json.load(sys.stdin)[\"processes\"][0][\"connections\"][0]; sys.exit(c[\"paths\"][\"kernel\"][\"tx_bytes\"] < 4096)'" ||
    fail "the child's echoes are not counted on the kernel path"
stat_json "$HOLD_PID" "$WORK/fork.json"
path_check "$WORK/fork.json" 192.168.21.180:7001 stayed-on-TCP 64 64 ">4095" ">4095"
expect_conn "$WORK/fork.json" 192.168.21.180:7001 stayed-on-TCP fork_exec "ip_route[0] 192.168.21.0/24 -> rsocket"
release fork
wait_exit "$HOLD_JOB" 20 || fail "fork: ops_conns: $(cat "$WORK/fork.err")"
expect_line "$WORK/fork.err" "nstack\[$HOLD_PID\]: stats: report: connection 192.168.21.181:[0-9]+ -> 192.168.21.180:7001 \(ip_route\[0\] 192.168.21.0/24 -> rsocket\): [0-9]+ of [0-9]+ bytes over kernel TCP, 128 over rsocket: fork/exec limitation \(an upgraded connection returns to TCP when its process forks" \
    "exit report names the connection returned to TCP by the fork"
echo "ops.paths: ok"
