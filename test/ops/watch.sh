#!/bin/bash
# nstack-stat -w SECONDS -n COUNT: live refresh with deltas. A process on
# host B keeps echoes running on one rsocket (upgraded) connection;
# `-c -j -w 1 -n 2` prints exactly two JSON samples, each parsing, taken
# about a second apart, and the second shows the bytes that moved between
# them (per connection and per stack). The text view shows rates.
. "$NSTACK_SRC/test/ops/ops_lib.sh"
rsfw_setup
bg_a "${RS_ENV[@]}" "$CHECK" --serve 7001
wait_tcp_listen "$NS_A" 0.0.0.0 7001 10 || fail "nstack-check --serve did not start"

HOLD_SPECS=(tcp:192.168.21.180:7001)
hold pump rs_b env OPS_PUMP=1
start=$(date +%s.%N)
"$STAT" -c -j -w 1 -n 2 "$HOLD_PID" >"$WORK/w.json" || fail "nstack-stat -w 1 -n 2"
end=$(date +%s.%N)
python3 - "$WORK/w.json" "$start" "$end" <<'PY' || fail "live refresh"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, f"expected 2 samples, got {len(lines)}"
docs = [json.loads(l) for l in lines]
assert [d["sample"] for d in docs] == [1, 2], docs
took = float(sys.argv[3]) - float(sys.argv[2])
assert 0.9 <= took < 30, f"two samples 1 s apart took {took:.2f} s"
c1, c2 = (d["processes"][0]["connections"][0] for d in docs)
assert "delta_tx_bytes" not in c1, c1
assert c2["state"] == "upgraded", c2
assert c2["delta_tx_bytes"] == c2["tx_bytes"] - c1["tx_bytes"] > 0, (c1, c2)
assert c2["delta_rx_bytes"] == c2["rx_bytes"] - c1["rx_bytes"] > 0, (c1, c2)
rs = [s for s in docs[1]["processes"][0]["stacks"] if s["name"] == "rsocket"][0]
assert rs["delta_tx_bytes"] >= c2["delta_tx_bytes"], rs
print(f"ok: {c2['delta_tx_bytes']} bytes out between samples {took:.2f} s apart")
PY
"$STAT" -c -w 1 -n 2 "$HOLD_PID" >"$WORK/w.txt" || fail "nstack-stat -c -w 1 -n 2 (text)"
[ "$(grep -c "^pid $HOLD_PID " "$WORK/w.txt")" = 2 ] || { cat "$WORK/w.txt"; fail "text: expected 2 samples"; }
expect_line "$WORK/w.txt" "^pid $HOLD_PID .*rates and deltas" "text: second sample with deltas"
expect_line "$WORK/w.txt" "192.168.21.180:7001 +rsocket +upgraded" "text: the upgraded connection"
release pump
wait_exit "$HOLD_JOB" 20 || fail "ops_conns: $(cat "$WORK/pump.err")"
echo "ops.watch: ok"
