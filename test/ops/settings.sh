#!/bin/bash
# rsocket tunables that differ from their defaults, as nstack-stat and the
# exit report show them (module ABI 1.3 publish_setting -> settings[] of the
# stats segment). A client on host B with
#   RS_SQ_SIZE=1024 (environment, default 384)
#   mem_default=262144 in RS_CONFIG_DIR (a file, default 131072)
#   wmem_default in the file, overridden by RS_WMEM_DEFAULT=65536 (environment wins)
#   RS_INLINE=64 (equal to the default: not shown)
#   RS_RQ_SIZE=5 (out of range: kept at the default, not shown)
# upgrades a connection to a framework server (the values are in use) and
# `nstack-stat -j` / text / the exit report name exactly the three changed.
# A process without changes shows none. nstack-stat refuses a segment of
# another layout version with one line naming both versions.
. "$NSTACK_SRC/test/ops/ops_lib.sh"
rsfw_setup
bg_a "${RS_ENV[@]}" "$CHECK" --serve 7001
wait_tcp_listen "$NS_A" 0.0.0.0 7001 10 || fail "framework server did not start"

mkdir -p "$WORK/rscfg"
echo 262144 >"$WORK/rscfg/mem_default"
echo 262144 >"$WORK/rscfg/wmem_default"
HOLD_SPECS=(tcp:192.168.21.180:7001)
hold set rs_b env RS_CONFIG_DIR="$WORK/rscfg" RS_SQ_SIZE=1024 RS_WMEM_DEFAULT=65536 RS_INLINE=64 RS_RQ_SIZE=5
stat_json "$HOLD_PID" "$WORK/set.json"
expect_conn "$WORK/set.json" 192.168.21.180:7001 upgraded none
python3 - "$WORK/set.json" "$WORK/rscfg" <<'PY' || fail "settings in nstack-stat -j"
import json, sys
s = json.load(open(sys.argv[1]))["processes"][0]["settings"]
got = {e["key"]: e for e in s}
want = {
    "RS_SQ_SIZE": ("1024", "384", "environment RS_SQ_SIZE"),
    "RS_MEM_DEFAULT": ("262144", "131072", "file " + sys.argv[2] + "/mem_default"),
    "RS_WMEM_DEFAULT": ("65536", "131072", "environment RS_WMEM_DEFAULT"),
}
assert set(got) == set(want), f"settings shown: {sorted(got)}, expected {sorted(want)}"
for k, (v, d, src) in want.items():
    e = got[k]
    assert e["module"] == "rsocket" and (e["value"], e["default"], e["source"]) == (v, d, src), e
print("ok: " + ", ".join(f"{k}={got[k]['value']}" for k in sorted(got)))
PY
"$STAT" "$HOLD_PID" >"$WORK/set.txt" || fail "nstack-stat (text)"
expect_line "$WORK/set.txt" "^  settings that differ from the defaults:" "text view: settings heading"
expect_line "$WORK/set.txt" "^    rsocket: RS_SQ_SIZE=1024 \(default 384; from environment RS_SQ_SIZE\)" "text view: RS_SQ_SIZE"
expect_line "$WORK/set.txt" "^    rsocket: RS_MEM_DEFAULT=262144 \(default 131072; from file $WORK/rscfg/mem_default\)" "text view: file"
[ "$(grep -c '^    rsocket: ' "$WORK/set.txt")" = 3 ] || { cat "$WORK/set.txt"; fail "text view: expected 3 settings"; }
release set
wait_exit "$HOLD_JOB" 20 || fail "ops_conns: $(cat "$WORK/set.err")"
expect_line "$WORK/set.err" "stats: setting rsocket RS_SQ_SIZE=1024 \(default 384; from environment RS_SQ_SIZE\)" "exit report: RS_SQ_SIZE"
expect_line "$WORK/set.err" "stats: setting rsocket RS_WMEM_DEFAULT=65536 \(default 131072; from environment RS_WMEM_DEFAULT\)" \
    "exit report: environment over file"
expect_line "$WORK/set.err" "RS_RQ_SIZE=\"5\": not an integer in \[16, 65534\]; keeping 384" "bad value named"
! grep -q "setting rsocket RS_INLINE\|setting rsocket RS_RQ_SIZE" "$WORK/set.err" || { cat "$WORK/set.err"; fail "unchanged settings in the report"; }

# nothing changed: no settings, no heading
hold plain rs_b env RS_CONFIG_DIR="$WORK/none"
stat_json "$HOLD_PID" "$WORK/plain.json"
python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['processes'][0]; assert p['settings']==[] and p['settings_lost']==0, p['settings']" \
    "$WORK/plain.json" || fail "settings shown for a process without changes"
"$STAT" "$HOLD_PID" | grep -q "settings that differ" && fail "text view: settings heading without settings"
release plain
wait_exit "$HOLD_JOB" 20 || fail "ops_conns: $(cat "$WORK/plain.err")"

# a segment of layout version 4 (an older libnStackAPI.so) for a live pid (this shell)
OLD=$$
python3 -c "
import struct
open('/dev/shm/nstack-stat.$OLD', 'wb').write(struct.pack('<II', 0x6e737431, 4) + bytes(4096))"
out=$("$STAT" "$OLD" 2>&1) && { rm -f "/dev/shm/nstack-stat.$OLD"; fail "nstack-stat read a version 4 segment: $out"; }
rm -f "/dev/shm/nstack-stat.$OLD"
[ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "layout version 4, this nstack-stat reads version 5" ||
    fail "expected one line naming both versions: $out"
echo "ops.settings: ok"
