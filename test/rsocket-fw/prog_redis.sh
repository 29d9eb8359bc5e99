#!/bin/bash
# prog_redis.sh: redis-server bound to 192.168.21.180 (host A) under the
# preload over rsocket; from host B: a 256 KiB SET/GET with a sha256 check,
# redis-benchmark SET/GET, and the server's own call count.
. "$(dirname "$0")/rsfw_lib.sh"
REQUESTS=${REDIS_REQUESTS:-20000}
rsfw_setup
bg_a "${RS_ENV[@]}" redis-server --bind "$IP_A" --port 6379 --save '' --appendonly no \
    --dir "$WORK" --protected-mode no --daemonize no >"$WORK/server.out" 2>&1
srv=$BG_PID
cli=(rs_b timeout 60 redis-cli -h "$IP_A" -p 6379)
wait_server_up "$srv" 60 "${cli[@]}" PING || { cat "$WORK/server.out"; fail "redis-server did not answer PING"; }

head -c $((128 * 1024)) /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$WORK/value"
"${cli[@]}" -x SET nstack:value <"$WORK/value" >"$WORK/set.out" 2>&1
grep -qx OK "$WORK/set.out" || fail "SET failed: $(head -c 300 "$WORK/set.out")"
"${cli[@]}" --raw GET nstack:value >"$WORK/got.raw" 2>"$WORK/get.err" || fail "GET failed: $(cat "$WORK/get.err")"
head -c -1 "$WORK/got.raw" >"$WORK/got"
want=$(sha256sum <"$WORK/value" | cut -d' ' -f1); got=$(sha256sum <"$WORK/got" | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "GET returned a different value (sha256 $got, want $want)"

rs_b timeout 240 redis-benchmark -h "$IP_A" -p 6379 -n "$REQUESTS" -c 10 -t set,get --csv \
    >"$WORK/bench.csv" 2>"$WORK/bench.err" || fail "redis-benchmark failed: $(tail -3 "$WORK/bench.err")"
rates=""
for t in SET GET; do
    rps=$(awk -F'"' -v t="$t" '$2 == t { print $4 }' "$WORK/bench.csv")
    [ -n "$rps" ] || fail "redis-benchmark printed no $t result: $(cat "$WORK/bench.csv")"
    awk -v r="$rps" 'BEGIN { exit !(r > 0) }' || fail "$t rate is $rps"
    rates="$rates $t=${rps%.*}/s"
done
calls=$("${cli[@]}" INFO commandstats 2>/dev/null | tr -d '\r' |
        awk -F'[:=,]' '$1 == "cmdstat_get" || $1 == "cmdstat_set" { n += $3 } END { print n + 0 }')
[ "$calls" -ge $((2 * REQUESTS + 2)) ] || fail "server counted $calls GET/SET calls, expected >= $((2 * REQUESTS + 2))"
expect_stack "$WORK/bench.err" rsocket connect 10 "redis-benchmark"
expect_stack_zero "$WORK/bench.err" kernel tx_bytes "redis-benchmark"
"${cli[@]}" SHUTDOWN NOSAVE >/dev/null 2>&1
wait_exit "$srv" 30 >/dev/null
expect_stack "$WORK/server.out" rsocket accept 10 "redis-server"
echo "PASS: redis over rsocket: 256 KiB value intact (sha256 ${want:0:16}...), $calls calls,$rates"
