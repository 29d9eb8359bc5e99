#!/bin/bash
# Accepted TCP-anchored connections that are never used still have records,
# so accepts and records add up: a server on host A (rsocket route) accepts
# 3 connections and leaves them alone, and accepts 2 more and closes each at
# once; plain clients on host B. `nstack-stat -c -j` shows the 3 open ones
# as anchored-pending and conn_recorded == accepts == 5; at exit the report
# says all 5 were never used ("closed before first use"), and the record of
# each said so before it was freed.
. "$NSTACK_SRC/test/ops/ops_lib.sh"
rsfw_setup

# plain clients: 3 to :7010 and 2 to :7011, each retried until its listener
# is up, held until stdin ends
mkfifo "$WORK/cli.in"
in_b python3 -c '
import socket, sys, time
held, deadline = [], time.time() + 20
for port, n in ((7010, 3), (7011, 2)):
    for _ in range(n):
        while True:
            try:
                held.append(socket.create_connection(("192.168.21.180", port), timeout=5)); break
            except OSError:
                if time.time() > deadline: sys.exit(f"connect :{port} failed")
                time.sleep(0.05)
print("connected", flush=True)
sys.stdin.read()
' <"$WORK/cli.in" >"$WORK/cli.out" 2>&1 &
CLI_JOB=$!
bg_track "$CLI_JOB"
exec {CLI_FD}>"$WORK/cli.in"

mkfifo "$WORK/srv.in"
in_a "${RS_ENV[@]}" "$CONNS" accept:192.168.21.180:7010:3 accept:192.168.21.180:7011:2:close \
    <"$WORK/srv.in" >"$WORK/srv.out" 2>"$WORK/srv.err" &
SRV_JOB=$!
bg_track "$SRV_JOB"
exec {SRV_FD}>"$WORK/srv.in"
wait_until 30 grep -q '^ready pid' "$WORK/srv.out" || { cat "$WORK/srv.err" "$WORK/cli.out"; fail "server not ready"; }
SRV_PID=$(awk '/^ready pid/ { print $3 }' "$WORK/srv.out")

stat_json "$SRV_PID" "$WORK/srv.json"
python3 - "$WORK/srv.json" <<'PY' || fail "records of never-used accepted connections"
import json, sys
p = json.load(open(sys.argv[1]))["processes"][0]
accepts = sum(s["accept"] for s in p["stacks"])
assert accepts == 5, f"accepts {accepts}, expected 5: {p['stacks']}"
assert p["conn_recorded"] == accepts, f"conn_recorded {p['conn_recorded']} != accepts {accepts}"
open_ = [c for c in p["connections"] if c["direction"] == "in"]
assert len(open_) == 3, json.dumps(p["connections"], indent=1)
for c in open_:
    assert c["state"] == "anchored-pending" and c["reason_code"] == "none", c
    assert c["local"] == "192.168.21.180:7010" and c["peer"].startswith("192.168.21.181:"), c
    assert c["route"] == "ip_route[0] 192.168.21.0/24 -> rsocket", c
    assert c["tx_bytes"] == 0 and c["rx_bytes"] == 0, c
print("ok: 5 accepted, 5 recorded, 3 open and anchored-pending")
PY
"$STAT" -c "$SRV_PID" >"$WORK/srv.txt" || fail "nstack-stat -c"
expect_line "$WORK/srv.txt" "connections recorded since start: 5, open now: 3" "text view: recorded and open counts"

exec {SRV_FD}>&-
wait_exit "$SRV_JOB" 20 || fail "ops_conns: $(cat "$WORK/srv.err")"
expect_line "$WORK/srv.err" "stats: report: 5 connections to 192.168.21.0/24 never used: closed before first use \(no data call" \
    "exit report: never-used connections"
! grep -q "WAR: report" "$WORK/srv.err" || { cat "$WORK/srv.err"; fail "never-used connections reported as an anomaly"; }
exec {CLI_FD}>&-
wait_exit "$CLI_JOB" 20 || fail "clients: $(cat "$WORK/cli.out")"
echo "ops.unused: ok"
