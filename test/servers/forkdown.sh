#!/usr/bin/env bash
# Fork after an upgraded connection carried data (srv_forkdown.c) against
# the echo server srv_mtaccept: a leftover of bytes RDMA delivered but
# nobody read at fork time, read once (child part, parent the rest); a
# child that writes while the parent reads; a fork with no upgraded
# connection (no release: the fork sends nothing and waits for nothing);
# an exec with an upgraded connection (the new image carries it on TCP);
# clonenodown and clonechildwrites: the same two forks made by the raw
# clone system call into a new IPC namespace (vsftpd's sessions).
# Usage: forkdown.sh plain|preload|rsocket leftover|childwrites|exec|nodown|clonenodown|clonechildwrites
set -uo pipefail
PROG_NAME=servers.forkdown.$2
. "$NSTACK_SRC/test/lib/servers.sh"

B=$NSTACK_BUILD/test/servers
for p in srv_forkdown srv_mtaccept; do [ -x "$B/$p" ] || prog_fail "$B/$p not built"; done
case $2 in
    leftover) TOTAL=$((65536 + 1048576)) ;;
    childwrites|clonechildwrites|exec) TOTAL=$((4096 + 1048576)) ;;
    nodown|clonenodown) TOTAL=4096 ;;
    *) prog_fail "unknown scenario $2" ;;
esac
srv_setup "$1" 18790
prog_server server "$B/srv_mtaccept" "$PROG_ADDR" "$PROG_PORT" 1 "$TOTAL"
srv_wait_banner server
LOG_ENV=()
[ "$1" = rsocket ] && LOG_ENV=(NSTACK_LOG_ON=INF)
srv_client timeout 90 env "${LOG_ENV[@]}" "$B/srv_forkdown" "$PROG_ADDR" "$PROG_PORT" "$2" \
    >"$PROG_TMP/client.out" 2>&1 || prog_fail "client: $(cat "$PROG_TMP/client.out") server: $(tail -n 3 "$PROG_TMP/server.out")"
grep -q '^PASS' "$PROG_TMP/client.out" || prog_fail "the client's verdict is missing: $(cat "$PROG_TMP/client.out")"
srv_server_done
FORK_US=$(sed -n 's/^fork: \([0-9]*\) us$/\1/p' "$PROG_TMP/client.out")
FORK_US=${FORK_US:-0}
if [ "$1" = rsocket ]; then
    released=$(grep -c 'returning .* upgraded connection.* to TCP before \(fork\|exec\)' "$PROG_TMP/client.out")
    if [ "${2#clone}" = nodown ]; then
        [ "$released" -eq 0 ] || prog_fail "a fork without upgraded connections released one: $(cat "$PROG_TMP/client.out")"
        # the child upgraded the connection it inherited and carried it
        expect_bulk_on rsocket $((2 * 4096)) "$(stats_exit_bytes "$PROG_TMP/client.out" rsocket)" "child"
        [ "$FORK_US" -lt 100000 ] || prog_fail "fork() took $FORK_US us with nothing to release"
    else
        [ "$released" -eq 1 ] || prog_fail "no release logged at fork: $(cat "$PROG_TMP/client.out")"
        grep -q 'could not return to TCP' "$PROG_TMP/client.out" && prog_fail "the release timed out: $(cat "$PROG_TMP/client.out")"
        # upgraded before: on rsocket in the counters (an exec prints none)
        if [ "$2" = exec ]; then
            grep -q 'rsocket: anchor: connection returned to TCP' "$PROG_TMP/client.out" ||
                prog_fail "the connection was not released before exec: $(cat "$PROG_TMP/client.out")"
        else
            expect_bulk_on rsocket 4096 "$(stats_exit_bytes "$PROG_TMP/client.out" rsocket)" "before fork"
        fi
        # the echo not read at fork time was kept for reading first
        [ "$2" != leftover ] || grep -q "returned to TCP ($((65536 - 1000)) bytes RDMA delivered" "$PROG_TMP/client.out" ||
            prog_fail "no leftover of $((65536 - 1000)) bytes at fork: $(cat "$PROG_TMP/client.out")"
    fi
fi
prog_note "OK: $(grep '^PASS' "$PROG_TMP/client.out"); fork() took $FORK_US us"
