#!/usr/bin/env bash
# redis-server with Debian's /etc/redis/redis.conf (redis_start.sh) forks
# for BGSAVE while it holds connections of pooled clients that sit idle
# between requests (redis_idle_client.py: no call on the socket while
# idle). The fork must not stall the server per connection: on the rsocket
# route an upgraded connection goes back to TCP before a fork, and an idle
# peer answers only at its next call, so each one used to hold the fork
# for 2 s (4 clients: 8 s in which redis served nobody). Now a fork waits
# ANCHOR_RELEASE_FORK_MS (1 s) in all (framework/src/anchor/anchor_fork.c).
# Checks: redis's latest_fork_usec under 2.5 s, the save done, and every
# idle client answered after the fork.
# Usage: redis_bgsave.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.redis_bgsave
. "$NSTACK_SRC/test/lib/servers.sh"

. "$NSTACK_SRC/test/servers/redis_start.sh"
redis_start "$1" 16389 no
RC=(redis-cli -h "$PROG_ADDR" -p "$PROG_PORT")
rc() { srv_client timeout 10 "${RC[@]}" "$@" 2>/dev/null | grep -v '^nstack'; }
pong() { [ "$(rc ping)" = PONG ]; }
wait_until 30 pong || prog_fail "redis does not answer on $PROG_ADDR:$PROG_PORT: $(rlog)"
N=4
CLI_PIDS=()
for i in $(seq 1 $N); do
    mkfifo "$PROG_TMP/go.$i" || prog_fail "mkfifo"
    # as srv_client, but with the fifo as stdin (srv_client closes it)
    ns=$NS_B; [ "$PROG_MODE" = plain ] && ns=$NS_A
    ip netns exec "$ns" env "${SRV_CLIENT_ENV[@]}" timeout 120 python3 "$NSTACK_SRC/test/servers/redis_idle_client.py" \
        "$PROG_ADDR" "$PROG_PORT" <>"$PROG_TMP/go.$i" >"$PROG_TMP/idle.$i" 2>&1 &
    CLI_PIDS+=($!)
done
all_ready() { [ "$(cat "$PROG_TMP"/idle.* 2>/dev/null | grep -c '^ready')" -eq $N ]; }
wait_until 60 all_ready || prog_fail "the idle clients did not connect: $(cat "$PROG_TMP"/idle.* | tail -n 4)"
[ "$(rc bgsave)" = "Background saving started" ] || prog_fail "BGSAVE was refused: $(rlog)"
saved() { rc info persistence | grep -q '^rdb_bgsave_in_progress:0'; }
wait_until 60 saved || prog_fail "the background save did not end: $(rlog)"
rc info persistence | grep -q '^rdb_last_bgsave_status:ok' || prog_fail "the background save failed: $(rlog)"
fork_us=$(rc info stats | tr -d '\r' | awk -F: '$1 == "latest_fork_usec" { print $2 }')
[ -n "$fork_us" ] && [ "$fork_us" -lt 2500000 ] ||
    prog_fail "fork() held redis for ${fork_us:-?} us with $N idle clients (want < 2.5 s)"
for i in $(seq 1 $N); do echo go >"$PROG_TMP/go.$i"; done
for p in "${CLI_PIDS[@]}"; do wait "$p" || prog_fail "an idle client failed: $(cat "$PROG_TMP"/idle.* | grep -v '^nstack' | tail -n 4)"; done
[ "$(cat "$PROG_TMP"/idle.* | grep -c '^pong')" -eq $N ] ||
    prog_fail "not every idle client was answered after the fork: $(cat "$PROG_TMP"/idle.* | grep -v '^nstack')"
# on rsocket the clients' connections must have been upgraded when the fork
# came (else the bound above proves nothing): their PINGs went over
# rsocket, and the fork sent each back to TCP
if [ "$PROG_MODE" = rsocket ]; then
    for i in $(seq 1 $N); do
        [ "$(stats_exit_bytes "$PROG_TMP/idle.$i" rsocket)" -gt 0 ] && grep -q 'fork/exec limitation' "$PROG_TMP/idle.$i" ||
            prog_fail "idle client $i was not upgraded before the fork: $(grep 'report\|stats: stack rsocket' "$PROG_TMP/idle.$i")"
    done
fi
prog_note "OK: BGSAVE with $N idle clients: fork held redis $((fork_us / 1000)) ms; every client answered afterwards"
