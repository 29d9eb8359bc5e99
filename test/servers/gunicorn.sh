#!/usr/bin/env bash
# gunicorn as its users run it: an arbiter that binds the listener, then
# pre-forks 2 sync workers (blocking sockets, accept in each worker),
# dropping to www-data, daemonised. From the other host: a 4 MiB GET three
# times (sha256), a 1 MiB POST (count and sum), ab with keep-alive and ab
# with a new connection per request, 0 failures each; the wire and counters
# say which route carried the bytes, and the workers' log holds no line of
# the framework or the device (a pre-forked worker asks for the listener's
# RDMA side that the arbiter holds: EADDRINUSE is an answer, not a fault).
# Usage: gunicorn.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.gunicorn
. "$NSTACK_SRC/test/lib/servers.sh"
command -v gunicorn >/dev/null || prog_fail "gunicorn not installed (tools/deps.sh: gunicorn)"
command -v ab >/dev/null || prog_fail "ab not installed (tools/deps.sh: apache2-utils)"
srv_setup "$1" 18580
D=$PROG_TMP/gunicorn
mkdir -p "$D" || prog_fail "cannot make $D"
cp "$NSTACK_SRC/test/servers/gunicorn_app.py" "$D/app.py" && chmod -R a+rX "$D" ||
    prog_fail "cannot copy the app"
gu_log() { tail -n 5 "$D/log" 2>/dev/null | tr '\n' ' '; }
srv_on_exit srv_stop_pidfile "$D/gunicorn.pid"
srv_server_env gunicorn --daemon --workers 2 --user www-data --group www-data --chdir "$D" \
    --pid "$D/gunicorn.pid" --error-logfile "$D/log" --capture-output \
    --bind "$PROG_ADDR:$PROG_PORT" app:app >"$PROG_TMP/start.out" 2>&1 ||
    prog_fail "gunicorn did not start: $(cat "$PROG_TMP/start.out") $(gu_log)"
URL=http://$PROG_ADDR:$PROG_PORT
wait_until 30 srv_http_answers "$URL/" || prog_fail "gunicorn does not answer on $URL: $(gu_log)"
workers() { pgrep -u www-data -f "gunicorn.*$PROG_PORT" | wc -l; }
wait_until 30 sh -c "[ \$(pgrep -u www-data -f 'gunicorn.*$PROG_PORT' | wc -l) -ge 2 ]" ||
    prog_fail "want 2 gunicorn workers as www-data, have $(workers): $(gu_log)"

srv_http_big_and_post "$URL"
srv_ab_both "$URL/"
srv_wire_verdict "gunicorn" "$PROG_TMP/curl.1.err" $((4 << 20)) "$(srv_server_bytes)"
acc=""
if [ "$PROG_MODE" = rsocket ]; then
    # ab's 2 x 1000 connections (sync workers close after each request,
    # keep-alive or not), each run from one process: upgraded, none sent to
    # TCP by a peer cache that took a busy worker for a plain server
    acc=0
    for p in $(pgrep -u www-data -f "gunicorn.*$PROG_PORT"); do
        n=$("$NSTACK_RELEASE/bin/nstack-stat" "$p" 2>/dev/null | awk '$1 == "rsocket" { print $4 + 0 }')
        acc=$((acc + ${n:-0}))
    done
    [ "$acc" -ge 1900 ] || prog_fail "the workers accepted $acc connections on rsocket, want >= 1900 of ab's 2000 and more"
fi
if grep -E '^(softrdma|nstack)' "$D/log" >"$PROG_TMP/noise"; then
    prog_fail "the framework or the device wrote into gunicorn's log: $(head -n 3 "$PROG_TMP/noise")"
fi
prog_note "OK: 3 x 4 MiB GET intact, 1 MiB POST, ab $(awk '/^Requests per second/ { printf "%s ", $4 }' "$PROG_TMP/ab.keepalive" "$PROG_TMP/ab.close")req/s (keep-alive, new connections); 2 workers as www-data${acc:+ (accepted $acc on rsocket)}, log clean"
