#!/usr/bin/env bash
# Redis replication between the test hosts, both ends with a copy of
# Debian's /etc/redis/redis.conf (redis_start.sh) as Debian's unit runs
# them (user redis, daemonised): a master holding 100,000 keys, then a
# replica on the other host (`replicaof`), which syncs in full - Debian's
# config syncs diskless: the master forks a child that writes the RDB to
# the replica's connection itself while the parent holds it - then 20,000
# writes of redis-benchmark streamed live. Checks: the link up, the
# replication offsets equal, and key count and a SHA-1 over every value
# equal on both. On the rsocket route the fork returns the connection to
# TCP (doc/fork.md): what matters is that nothing is lost, duplicated or
# reordered across that switch, and that the replica's commands before it
# went over rsocket.
# Usage: redis_replica.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.redis_replica
. "$NSTACK_SRC/test/lib/servers.sh"
. "$NSTACK_SRC/test/servers/redis_start.sh"
redis_start "$1" 16489 no
M=(redis-cli -h "$PROG_ADDR" -p "$PROG_PORT")
mc() { srv_client timeout 30 "${M[@]}" "$@" 2>/dev/null | grep -v '^nstack' | tr -d '\r'; }
pong() { [ "$(mc ping)" = PONG ]; }
wait_until 30 pong || prog_fail "the master does not answer on $PROG_ADDR:$PROG_PORT: $(rlog)"
N=100000
[ "$(mc eval "for i=1,$N do redis.call('set','k'..i,string.rep(string.char(65+i%26),100)..i) end return 1" 0)" = 1 ] ||
    prog_fail "could not fill the master: $(rlog)"

# The replica: the same stock config on the client host (the loopback
# host in plain mode), pointed at the master.
R=$PROG_TMP/replica
RPORT=$((PROG_PORT + 1))
case $PROG_MODE in plain) RADDR=127.0.0.1 ;; preload) RADDR=$IP2_B ;; *) RADDR=$IP_B ;; esac
mkdir -p "$R" && chown redis: "$R" || prog_fail "cannot make $R"
sed -e "s|^port .*|port $RPORT|" -e "s|^pidfile .*|pidfile $R/redis.pid|" \
    -e "s|^logfile .*|logfile $R/redis.log|" -e "s|^dir .*|dir $R|" "$D/redis.conf" >"$R/redis.conf" &&
    echo "replicaof $PROG_ADDR $PROG_PORT" >>"$R/redis.conf" && chown redis: "$R/redis.conf" ||
    prog_fail "cannot write the replica's config"
srv_on_exit srv_stop_pidfile "$R/redis.pid"
srv_client runuser -u redis -- redis-server "$R/redis.conf" >"$PROG_TMP/replica.start" 2>&1 ||
    prog_fail "the replica did not start: $(cat "$PROG_TMP/replica.start")"
RC=(redis-cli -h "$RADDR" -p "$RPORT")
rcl() { srv_client timeout 30 "${RC[@]}" "$@" 2>/dev/null | grep -v '^nstack' | tr -d '\r'; }
rlog_r() { tail -n 5 "$R/redis.log" 2>/dev/null | tr '\n' ' '; }
linked() { rcl info replication | grep -q '^master_link_status:up'; }
wait_until 60 linked || prog_fail "the replica did not sync: $(rlog_r) master: $(rlog)"

srv_client timeout 60 redis-benchmark -h "$PROG_ADDR" -p "$PROG_PORT" -t set -n 20000 -r 100000 -c 8 -q \
    >"$PROG_TMP/bench.out" 2>&1 || prog_fail "redis-benchmark: $(tail -n 3 "$PROG_TMP/bench.out")"
offset() { "$@" info replication | awk -F: '$1 == "master_repl_offset" { print $2 }'; }
caught_up() { [ "$(offset mc)" = "$(offset rcl)" ] && [ -n "$(offset rcl)" ]; }
wait_until 60 caught_up || prog_fail "the replica is behind: master $(offset mc), replica $(offset rcl)"
SUM="local t={} for i=1,$N do t[#t+1]=redis.call('get','k'..i) or '-' end
local ks=redis.call('keys','key:*') table.sort(ks)
for _,k in ipairs(ks) do t[#t+1]=k..'='..redis.call('get',k) end
return redis.sha1hex(table.concat(t,','))..' '..redis.call('dbsize')"
want=$(mc eval "$SUM" 0); got=$(rcl eval_ro "$SUM" 0)
[ -n "$want" ] && [ "$want" = "$got" ] || prog_fail "the replica differs: master $want, replica $got"
if [ "$PROG_MODE" = rsocket ]; then
    rb=$(for p in $(pgrep -u redis -f "redis-server.*:$RPORT"); do "$NSTACK_RELEASE/bin/nstack-stat" "$p" 2>/dev/null; done |
         awk '$1 == "rsocket" { s += $5 + $6 } END { print s + 0 }')
    [ "$rb" -gt 0 ] || prog_fail "the replica's connection never carried a byte over rsocket"
fi
prog_note "OK: 100,000 keys synced and 20,000 writes streamed; offsets $(offset mc) equal, checksum ${want:0:12}... and key count equal"
