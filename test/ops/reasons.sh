#!/bin/bash
# Why-not-accelerated, per connection: one process on host B holds a
# connection of each kind, `nstack-stat -c -j PID` must show each with its
# state and reason code, and the exit report must name the anomalies with
# the setting that changes them (NSTACK_STATS=1: every line; without it:
# only the notable ones, as warnings).
#   192.168.21.180:7001  framework server (nstack-check --serve) -> upgraded
#   192.168.21.180:7002  plain server      -> stayed-on-TCP, peer does not run the framework
#   192.168.22.180:7003  plain server      -> kernel, route says kernel (ip_route[2])
#   udp 192.168.21.180   rsocket route     -> rsocket (datagram rsocket, direct);
#                        "socket type not carried" is covered by sem_gaps (shadow)
#   192.168.23.181:7005  (B's own, no rule) -> kernel, no route
. "$NSTACK_SRC/test/ops/ops_lib.sh"
rsfw_setup
in_b ip addr add 192.168.23.181/32 dev lo || fail "extra address on host B"

bg_a "${RS_ENV[@]}" "$CHECK" --serve 7001
wait_tcp_listen "$NS_A" 0.0.0.0 7001 10 || fail "framework server did not start"
plain_echo a 192.168.21.180 7002
plain_echo a 192.168.22.180 7003
plain_echo b 192.168.23.181 7005

HOLD_SPECS=(tcp:192.168.21.180:7001 tcp:192.168.21.180:7002 tcp:192.168.22.180:7003
            udp:192.168.21.180:7004 tcp:192.168.23.181:7005)
hold one rs_b
# The plain peer's fallback comes after the module's hello wait: poll for it.
wait_until 15 sh -c "'$STAT' -c -j $HOLD_PID | grep -q peer_no_framework" || true
stat_json "$HOLD_PID" "$WORK/one.json"
expect_conn "$WORK/one.json" 192.168.21.180:7001 upgraded none "ip_route[0] 192.168.21.0/24 -> rsocket"
expect_conn "$WORK/one.json" 192.168.21.180:7002 stayed-on-TCP peer_no_framework "ip_route[0] 192.168.21.0/24"
expect_conn "$WORK/one.json" 192.168.22.180:7003 kernel route_kernel "ip_route[2] 192.168.22.0/24 -> kernel"
expect_conn "$WORK/one.json" 192.168.21.180:7004 direct none "ip_route[0] 192.168.21.0/24 -> rsocket"
expect_conn "$WORK/one.json" 192.168.23.181:7005 kernel no_route
# traffic per connection: 64 bytes each way on the TCP ones, 16 out on UDP
python3 - "$WORK/one.json" <<'PY' || fail "per-connection byte counters"
import json, sys
c = {x["peer"]: x for x in json.load(open(sys.argv[1]))["processes"][0]["connections"]}
for p in ("192.168.21.180:7001", "192.168.21.180:7002", "192.168.22.180:7003", "192.168.23.181:7005"):
    assert c[p]["tx_bytes"] == 64 and c[p]["rx_bytes"] == 64 and c[p]["tx_msgs"] >= 1, (p, c[p])
assert c["192.168.21.180:7004"]["tx_bytes"] == 16, c["192.168.21.180:7004"]
PY
# the text view says the same, in words
"$STAT" -c "$HOLD_PID" >"$WORK/one.txt" || fail "nstack-stat -c"
expect_line "$WORK/one.txt" "192.168.21.180:7002 .*stayed-on-TCP.*peer does not run the framework" "text view, plain peer"
expect_line "$WORK/one.txt" "192.168.21.180:7004 .*rsocket" "text view, UDP on rsocket"
# the list of processes (no PID) includes it
"$STAT" -j >"$WORK/all.json" || fail "nstack-stat -j (all)"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert any(p['pid']==$HOLD_PID for p in d['processes'])" \
    "$WORK/all.json" || fail "nstack-stat without PID does not list $HOLD_PID"
release one
wait_exit "$HOLD_JOB" 20 || fail "ops_conns: $(cat "$WORK/one.err")"
expect_line "$WORK/one.err" "stats: report: 1 connection to 192.168.21.0/24 stayed on TCP: peer does not run the framework \(run the framework on the peer, or route the subnet to kernel\)" "exit report: plain peer"
! grep -q "socket type not carried" "$WORK/one.err" || fail "exit report: UDP on the rsocket route reported as not carried"
expect_line "$WORK/one.err" "stats: report: 1 connection to 192.168.22.0/24 used the kernel: route says kernel" "exit report (verbose): route kernel"
expect_line "$WORK/one.err" "stats: report: 1 connection \(rule: default_stack_name -> kernel\) used the kernel: no route" "exit report (verbose): no route"

# Without NSTACK_STATS: only the notable lines, at WAR; a PID not running
# the framework: exit 1 and one line.
HOLD_SPECS=(tcp:192.168.21.180:7002 tcp:192.168.22.180:7003)
hold two rs_b env NSTACK_STATS=0
wait_until 15 sh -c "'$STAT' -c -j $HOLD_PID | grep -q peer_no_framework" || fail "plain peer never stayed on TCP"
release two
wait_exit "$HOLD_JOB" 20 || fail "ops_conns: $(cat "$WORK/two.err")"
expect_line "$WORK/two.err" "WAR: report: 1 connection to 192.168.21.0/24 stayed on TCP: peer does not run the framework" "exit report at WAR"
! grep -q "route says kernel\|stats: stack" "$WORK/two.err" || { cat "$WORK/two.err"; fail "benign lines without NSTACK_STATS=1"; }
out=$("$STAT" -c $$ 2>&1) && fail "nstack-stat of a process without the framework succeeded: $out"
[ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "pid $$ does not run the framework" ||
    fail "expected one line naming pid $$: $out"
echo "ops.reasons: ok"
