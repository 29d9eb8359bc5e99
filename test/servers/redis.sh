#!/usr/bin/env bash
# redis-server with Debian's /etc/redis/redis.conf (adapted only in port,
# bind address, directories and pid/log files), started as Debian's unit
# starts it: as the redis user, daemonised (protected-mode off, as an
# administrator opening it to the network without a password must). From the other host:
# redis-benchmark SET/GET (every request answered), then a value of 1 MiB
# and 1000 keys written and read back byte for byte, and the wire and
# counters say which route carried the bytes.
# Usage: redis.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.redis
. "$NSTACK_SRC/test/lib/servers.sh"

. "$NSTACK_SRC/test/servers/redis_start.sh"
redis_start "$1" 16379 no
RC=(redis-cli -h "$PROG_ADDR" -p "$PROG_PORT")
pong() { [ "$(srv_client timeout 5 "${RC[@]}" ping 2>/dev/null | grep -v '^nstack')" = PONG ]; }
wait_until 30 pong || prog_fail "redis does not answer on $PROG_ADDR:$PROG_PORT: $(srv_client timeout 5 "${RC[@]}" ping 2>&1 | tail -n 2) $(rlog)"
pid=$(cat "$D/redis.pid")
[ "$(srv_user_of "$pid")" = redis ] || prog_fail "redis-server runs as $(srv_user_of "$pid"), want redis"

srv_wire_start "$PROG_PORT"
srv_client timeout 120 redis-benchmark -h "$PROG_ADDR" -p "$PROG_PORT" -t set,get -n 20000 -c 8 -d 512 -q \
    >"$PROG_TMP/bench.out" 2>&1 || prog_fail "redis-benchmark: $(tail -n 3 "$PROG_TMP/bench.out") $(rlog)"
grep -q 'SET: [0-9.]* requests per second' "$PROG_TMP/bench.out" &&
    grep -q 'GET: [0-9.]* requests per second' "$PROG_TMP/bench.out" ||
    prog_fail "redis-benchmark did not finish SET and GET: $(grep -v '^nstack' "$PROG_TMP/bench.out" | tail -n 3)"
# Data checked: one 1 MiB value (base64 of random bytes) and 1000 keys,
# fed on stdin (srv_client closes it).
rc_stdin() {
    local ns=$NS_B; [ "$PROG_MODE" = plain ] && ns=$NS_A
    ip netns exec "$ns" env "${SRV_CLIENT_ENV[@]}" timeout 60 "${RC[@]}" "$@"
}
head -c 786432 /dev/urandom | base64 -w0 >"$D/value"
rc_stdin -x set big <"$D/value" >"$PROG_TMP/set.out" 2>&1 ||
    prog_fail "SET big: $(cat "$PROG_TMP/set.out")"
srv_client timeout 60 "${RC[@]}" --raw get big 2>/dev/null | grep -v '^nstack' | tr -d '\n' >"$D/got"
cmp -s "$D/value" "$D/got" || prog_fail "GET big returned $(wc -c <"$D/got") bytes that differ from the $(wc -c <"$D/value") written"
for i in $(seq 1 1000); do echo "SET k$i v$i-$((i * 7919))"; done >"$D/cmds"
rc_stdin <"$D/cmds" >"$PROG_TMP/pipe.out" 2>&1 || prog_fail "SET pipeline: $(tail -n 3 "$PROG_TMP/pipe.out")"
for i in 1 500 1000; do
    v=$(srv_client timeout 5 "${RC[@]}" --raw get "k$i" 2>/dev/null | grep -v '^nstack')
    [ "$v" = "v$i-$((i * 7919))" ] || prog_fail "GET k$i = '$v', want v$i-$((i * 7919))"
done
srv_client timeout 5 "${RC[@]}" --raw dbsize 2>/dev/null | grep -v '^nstack' >"$PROG_TMP/dbsize"
[ "$(cat "$PROG_TMP/dbsize")" -ge 1001 ] || prog_fail "DBSIZE $(cat "$PROG_TMP/dbsize"), want >= 1001"
cat "$PROG_TMP/bench.out" "$PROG_TMP/set.out" "$PROG_TMP/pipe.out" >"$PROG_TMP/client.stats"
srv_wire_verdict "redis" "$PROG_TMP/client.stats" $((512 * 1024)) "$(srv_server_bytes)"
prog_note "OK: redis as user redis, daemonised: $(tr '\n' ' ' <"$PROG_TMP/bench.out" | grep -o 'SET: [0-9.]* requests per second\|GET: [0-9.]* requests per second' | tr '\n' ' ')1 MiB value and 1000 keys checked"
