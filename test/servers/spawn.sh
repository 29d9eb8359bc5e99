#!/usr/bin/env bash
# A connection handed to a program started by posix_spawn, posix_spawnp,
# system or popen (srv_spawn.c) against the echo server srv_mtaccept: an
# upgraded connection goes back to TCP first and the program carries it
# (1 MiB each way, checked); a candidate (no data yet) is anchored by the
# program itself (its counters show the bulk on rsocket); bytes RDMA
# delivered and unread make the spawn or exec fail with EBUSY and the
# process reads them (the kernel route: the started program or the new
# image reads them). The kernel route (preload)
# and plain mode run the same program as the reference.
# Usage: spawn.sh plain|preload|rsocket spawn|spawnp|system|popen|cand|candsystem|candpopen|candfexec|candkeep|left|leftexec
set -uo pipefail
PROG_NAME=servers.spawn.$2
. "$NSTACK_SRC/test/lib/servers.sh"

B=$NSTACK_BUILD/test/servers
for p in srv_spawn srv_mtaccept; do [ -x "$B/$p" ] || prog_fail "$B/$p not built"; done
MORE=1048576
case $2 in
    spawn|spawnp|system|popen) TOTAL=$((4096 + MORE)) ;;
    cand|candsystem|candpopen|candfexec|candkeep) TOTAL=$MORE ;;
    left|leftexec) TOTAL=$((65536 + MORE)) ;;
    *) prog_fail "unknown scenario $2" ;;
esac
srv_setup "$1" 18800
prog_server server "$B/srv_mtaccept" "$PROG_ADDR" "$PROG_PORT" 1 "$TOTAL"
srv_wait_banner server
LOG_ENV=()
[ "$1" = rsocket ] && LOG_ENV=(NSTACK_LOG_ON=INF)
OUT=$PROG_TMP/client.out
srv_client timeout 90 env "${LOG_ENV[@]}" "$B/srv_spawn" "$PROG_ADDR" "$PROG_PORT" "$2" \
    >"$OUT" 2>&1 || prog_fail "client: $(cat "$OUT") server: $(tail -n 3 "$PROG_TMP/server.out")"
grep -q '^PASS: [a-z]' "$OUT" || prog_fail "the client's verdict is missing: $(cat "$OUT")"
srv_server_done
released=$(grep -c 'returning .* upgraded connection.* to TCP before exec' "$OUT")
if [ "$1" = rsocket ]; then
    case $2 in
        cand*)
            [ "$released" -eq 0 ] || prog_fail "a candidate was released: $(cat "$OUT")"
            # the started program anchored the connection itself and carried the bulk
            expect_bulk_on rsocket $((2 * MORE)) "$(stats_exit_bytes "$OUT" rsocket)" "the started program" ;;
        left*)
            grep -q '^\(spawn\|exec\): EBUSY' "$OUT" || prog_fail "the $2 with unread RDMA bytes was not refused: $(cat "$OUT")"
            grep -q 'cannot be handed to a new image' "$OUT" || prog_fail "no ERR line for the refused spawn: $(cat "$OUT")" ;;
        *)
            [ "$released" -eq 1 ] || prog_fail "no release logged before $2: $(cat "$OUT")"
            grep -q 'rsocket: anchor: connection returned to TCP' "$OUT" ||
                prog_fail "the connection was not released before $2: $(cat "$OUT")"
            grep -q 'could not return to TCP' "$OUT" && prog_fail "the release timed out: $(cat "$OUT")"
            # upgraded before the handover: the round trip on rsocket; the
            # program got a plain TCP socket (not counted: it is no candidate there)
            rs=$(stats_exit_bytes "$OUT" rsocket)
            expect_bulk_on rsocket $((2 * 4096)) "$rs" "before $2"
            [ "$rs" -lt "$MORE" ] || prog_fail "$rs bytes on rsocket: the bulk after $2 cannot be there" ;;
    esac
else
    [ "$released" -eq 0 ] || prog_fail "a release on the kernel route: $(cat "$OUT")"
    grep -q 'EBUSY' "$OUT" && prog_fail "the kernel route refused the $2: $(cat "$OUT")"
fi
prog_note "OK: $(grep '^PASS: [a-z]' "$OUT" | tail -n 1)"
