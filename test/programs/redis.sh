#!/usr/bin/env bash
# redis-server with redis-benchmark (every request answered, a positive rate)
# and a redis-cli SET/GET round trip of a generated value (digest equal).
# Usage: redis.sh plain|preload
set -uo pipefail
PROG_NAME=redis
. "$NSTACK_SRC/test/lib/programs.sh"

base=16379; [ "$1" = preload ] && base=16479
prog_setup "$1" "$base"
REQUESTS=20000

# No persistence, no config file: nothing is written outside $PROG_TMP.
prog_server server redis-server --bind "$PROG_ADDR" --port "$PROG_PORT" \
    --save '' --appendonly no --dir "$PROG_TMP" --protected-mode no --daemonize no
prog_wait_listen "$PROG_PORT"
prog_check_framework

# --- SET/GET of a 256 KiB hex value (128 KiB random) (hex, so redis-cli prints it verbatim) ----
head -c $((128 * 1024)) /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$PROG_TMP/value"
prog_client_in "$PROG_TMP/value" timeout 60 redis-cli -h "$PROG_ADDR" -p "$PROG_PORT" \
    -x SET nstack:value >"$PROG_TMP/set.out" 2>&1 || true
grep -qx OK "$PROG_TMP/set.out" || prog_fail "SET failed: $(head -c 300 "$PROG_TMP/set.out")"
prog_client timeout 60 redis-cli -h "$PROG_ADDR" -p "$PROG_PORT" --raw GET nstack:value \
    >"$PROG_TMP/got.raw" 2>"$PROG_TMP/get.err" || prog_fail "GET failed: $(cat "$PROG_TMP/get.err")"
# redis-cli ends the printed value with a newline; the stored value has none.
head -c -1 "$PROG_TMP/got.raw" >"$PROG_TMP/got"
want=$(prog_sha256 "$PROG_TMP/value"); got=$(prog_sha256 "$PROG_TMP/got")
[ "$want" = "$got" ] || prog_fail "GET returned a different value (sha256 $got, want $want)"

# --- redis-benchmark: SET and GET, every request answered -----------------
prog_client timeout 120 redis-benchmark -h "$PROG_ADDR" -p "$PROG_PORT" -n "$REQUESTS" \
    -c 10 -t set,get --csv >"$PROG_TMP/bench.csv" 2>"$PROG_TMP/bench.err" ||
    prog_fail "redis-benchmark failed: $(tail -3 "$PROG_TMP/bench.err")"
# CSV: "test","rps",...  one row per test; both must have a positive rate.
rates=""
for t in SET GET; do
    rps=$(awk -F'"' -v t="$t" '$2 == t { print $4 }' "$PROG_TMP/bench.csv")
    [ -n "$rps" ] || prog_fail "redis-benchmark printed no $t result: $(cat "$PROG_TMP/bench.csv")"
    awk -v r="$rps" 'BEGIN { exit !(r > 0) }' || prog_fail "$t rate is $rps"
    rates="$rates $t=${rps%.*}/s"
done
# The server counted every benchmark request (plus our SET and GET).
calls=$(prog_client timeout 30 redis-cli -h "$PROG_ADDR" -p "$PROG_PORT" INFO commandstats |
        tr -d '\r' | awk -F'[:=,]' '$1 == "cmdstat_get" || $1 == "cmdstat_set" { n += $3 } END { print n + 0 }')
[ "$calls" -ge $((2 * REQUESTS + 2)) ] ||
    prog_fail "server counted $calls GET/SET calls, expected at least $((2 * REQUESTS + 2))"
prog_note "OK: 256 KiB value intact (sha256 ${want:0:16}...), $calls calls,$rates"
