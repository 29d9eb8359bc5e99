#!/bin/bash
# Per-stack counters: a live process's segment is readable with
# nstack-stat (by pid and in the all-pids listing), NSTACK_STATS=1 dumps the
# totals at exit, the segment is removed at exit, and segments left by
# killed processes are swept by the next process that starts the framework.
set -u
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}"
LIB="$NSTACK_RELEASE/lib64/libnStackAPI.so"
STAT="$NSTACK_RELEASE/bin/nstack-stat"
HERE="$NSTACK_SRC/test/framework-unit"
fail() { echo "FAIL stats_test: $*" >&2; exit 1; }
[ -f "$LIB" ] && [ -x "$STAT" ] || fail "library or nstack-stat not built"
work=$(mktemp -d /tmp/nstack-fwstats.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
N=1000000

# a segment of a process that is surely gone (it exited and was reaped)
sh -c 'exit 0' & dead=$!
wait "$dead"
kill -0 "$dead" 2>/dev/null && fail "pid $dead still exists"
stale="/dev/shm/nstack-stat.$dead"
: >"$stale" || fail "cannot create $stale"

mkfifo "$work/in"
NSTACK_STATS=1 LD_PRELOAD="$LIB" timeout 120 python3 "$HERE/echo_check.py" $N wait \
    <"$work/in" >"$work/out" 2>"$work/err" &
pid=$!
exec 3>"$work/in"          # keeps the program waiting until we close it
ready() { grep -q '^ok ' "$work/out"; }
for _ in $(seq 1200); do ready && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
ready || fail "program did not finish its transfer: $(cat "$work/out" "$work/err")"
ppid=$(awk '/^ok /{print $3}' "$work/out")
[ ! -e "$stale" ] || { rm -f "$stale"; fail "stale segment of dead pid $dead not swept at start"; }

# echo both ways: at least N sent and N received on the kernel stack
line=$("$STAT" "$ppid" | awk '$1 == "kernel"') || fail "nstack-stat $ppid failed"
read -r _ socks conns accepts tx rx fallback <<<"$line"
[ "${fallback:-x}" = 0 ] || fail "kernel fallback counter should be 0: $line"
[ "${socks:-0}" -ge 3 ] && [ "${conns:-0}" -ge 1 ] && [ "${accepts:-0}" -ge 1 ] ||
    fail "kernel sockets/connect/accept counters wrong: $line"
[ "${tx:-0}" -ge $((2 * N)) ] && [ "${rx:-0}" -ge $((2 * N)) ] || fail "kernel byte counters too small: $line"
"$STAT" | grep -q "^pid $ppid " || fail "the all-pids listing does not show $ppid"
"$STAT" 1 >/dev/null 2>&1 && fail "nstack-stat succeeds for a pid without a segment"
"$STAT" notapid >/dev/null 2>&1; [ $? -eq 2 ] || fail "a bad argument is not a usage error"

exec 3>&-
wait "$pid" || fail "program failed: $(cat "$work/err")"
pid=""
grep -q "stats: stack kernel: sockets [0-9]* connect [0-9]* accept [0-9]* tx_bytes [0-9]* rx_bytes" "$work/err" ||
    fail "no NSTACK_STATS dump: $(cat "$work/err")"
[ ! -e "/dev/shm/nstack-stat.$ppid" ] || fail "segment of $ppid not removed at exit"
echo "stats_test: ok"
