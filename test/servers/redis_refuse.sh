#!/usr/bin/env bash
# redis-server with Debian's /etc/redis/redis.conf, protected mode on as
# shipped (adapted only in port, bind address, directories and pid/log
# files), as the redis user, daemonised. A client on the other host is
# refused: redis writes its DENIED error with one nonblocking write right
# after accept() and closes. On kernel TCP the client reads that error and
# EOF; so it must on every route (doc/rsocket-framework.md, "A reply
# written right after accept()"). Scenarios, each 8 runs from fresh client
# processes (the first connection of a process also starts its RDMA
# device, which delays its handshake bytes):
#   benchmark: redis-benchmark (which writes its request before it reads)
#              exits within 20 s with the DENIED error (over rsocket it
#              used to get EPIPE, then spin at 100% CPU about 1 run in 6);
#   cli:       redis-cli ping prints the DENIED error.
# Usage: redis_refuse.sh preload|rsocket benchmark|cli
set -uo pipefail
PROG_NAME=servers.redis_refuse
. "$NSTACK_SRC/test/lib/servers.sh"

SCENARIO=${2:?scenario: benchmark or cli}
. "$NSTACK_SRC/test/servers/redis_start.sh"
redis_start "$1" 16380 yes
RC=(redis-cli -h "$PROG_ADDR" -p "$PROG_PORT")
denied() { srv_client timeout 5 "${RC[@]}" ping 2>&1 | grep -q DENIED; }
wait_until 30 denied || prog_fail "redis does not refuse on $PROG_ADDR:$PROG_PORT: $(srv_client timeout 5 "${RC[@]}" ping 2>&1 | tail -n 2) $(rlog)"

for i in 1 2 3 4 5 6 7 8; do
    out=$PROG_TMP/run$i.out
    case $SCENARIO in
    benchmark)
        srv_client timeout 20 redis-benchmark -h "$PROG_ADDR" -p "$PROG_PORT" -n 200 -c 2 -t get >"$out" 2>&1
        rc=$?
        [ $rc -ne 124 ] || prog_fail "run $i: redis-benchmark still running after 20 s: $(grep -v '^nstack' "$out" | tail -n 2 | cut -c1-200)"
        ;;
    cli)
        srv_client timeout 10 "${RC[@]}" ping >"$out" 2>&1
        rc=$?
        ;;
    *) prog_fail "unknown scenario $SCENARIO" ;;
    esac
    grep -q 'DENIED Redis is running in protected mode' "$out" ||
        prog_fail "run $i: no DENIED error (rc $rc): $(grep -v '^nstack' "$out" | tail -n 2 | cut -c1-200)"
done
prog_note "OK: 8 refused $SCENARIO clients read redis's DENIED error and ended"
