#!/usr/bin/env bash
# haproxy as Debian's init script runs it: the stock /etc/haproxy/haproxy.cfg
# (daemon, chroot /var/lib/haproxy, user/group haproxy, nbthread default: one
# thread per core), adapted only in the stats socket (path, listeners
# exposed for -x) and with a
# frontend/backend appended, started with -D -p PIDFILE and reloaded as
# `reload` does (-sf OLD). It proxies HTTP to an nginx on host A, on the
# same route as the frontend (rsocket mode: both legs on rsocket). From the
# other host: curl of an 8 MiB file (sha256) with each leg's wire captured,
# wrk keep-alive, then wrk across a -sf soft restart (listeners handed over with -x); no socket error, no
# non-2xx answer.
# Usage: haproxy.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.haproxy
. "$NSTACK_SRC/test/lib/servers.sh"
. "$NSTACK_SRC/test/lib/nginx.sh"
CFG=/etc/haproxy/haproxy.cfg
command -v haproxy >/dev/null && [ -r "$CFG" ] || prog_fail "haproxy not installed (tools/deps.sh: haproxy)"
id haproxy >/dev/null 2>&1 || prog_fail "no haproxy user (Debian's haproxy package makes it)"

srv_setup "$1" 18580
D=$PROG_TMP/haproxy
BACK_PORT=$((PROG_PORT + 1))
mkdir -p "$D" || prog_fail "cannot make $D"

# The backend: a private nginx on the frontend's address (loopback in
# plain mode), so the second leg takes the same route as the first.
nginx_prepare "$D/backend" "$PROG_ADDR" "$BACK_PORT"
prog_random_file "$D/backend/www/big.bin" $((8 * 1024 * 1024))
prog_random_file "$D/backend/www/page.bin" 4096
chmod -R a+rX "$D/backend"
# shellcheck disable=SC2046
prog_server backend $(nginx_cmd "$D/backend")
prog_wait_listen "$BACK_PORT"

# Debian's file with the stats socket moved into the test's directory (two
# modes of this test may run at once) and exposing the listeners for a
# seamless reload (-x: the new process takes the old one's listening
# sockets over that socket, SCM_RIGHTS; without it the kernel resets the
# connections still queued on the old listener when it closes, on any
# kernel, a race haproxy documents), and the proxy appended.
grep -q '^\s*stats socket /run/haproxy/admin.sock' "$CFG" && grep -q '^\s*daemon' "$CFG" &&
    grep -q '^\s*user haproxy' "$CFG" && grep -q '^\s*chroot /var/lib/haproxy' "$CFG" || prog_fail "$CFG not in the expected form"
sed -e "s|/run/haproxy/admin.sock\(.*\)$|$D/admin.sock\1 expose-fd listeners|" "$CFG" >"$D/haproxy.cfg"
grep -q "expose-fd listeners" "$D/haproxy.cfg" || prog_fail "could not adapt the stats socket line of $CFG"
cat >>"$D/haproxy.cfg" <<CONF

frontend web
	bind *:$PROG_PORT
	default_backend nginx

backend nginx
	server nginx1 $PROG_ADDR:$BACK_PORT
CONF
HAPROXY=(haproxy -f "$D/haproxy.cfg" -p "$D/haproxy.pid")
srv_on_exit srv_stop_pidfile "$D/haproxy.pid"
srv_server_env "${HAPROXY[@]}" -c -q >"$PROG_TMP/check.out" 2>&1 || prog_fail "haproxy -c: $(cat "$PROG_TMP/check.out")"
srv_server_env_chroot /var/lib/haproxy "${HAPROXY[@]}" -D >"$PROG_TMP/start.out" 2>&1 ||
    prog_fail "haproxy did not start: $(cat "$PROG_TMP/start.out")"

URL=http://$PROG_ADDR:$PROG_PORT
hap_pid() { cat "$D/haproxy.pid" 2>/dev/null; }
hap_log() { tail -n 3 "$PROG_TMP/start.out" "$PROG_TMP/backend.out" 2>/dev/null | tr '\n' ' '; }
wait_until 30 srv_http_answers "$URL/index.html" || prog_fail "haproxy does not answer on $URL: $(hap_log)"
pid=$(hap_pid)
srv_check_users "$pid" haproxy haproxy
# nbthread's default, one per core (on rsocket the device's own thread too)
threads=$(ls "/proc/$pid/task" | wc -l)
[ "$threads" -ge "$(nproc)" ] || prog_fail "haproxy runs $threads threads, want nbthread's default $(nproc)"

# The client's leg (host B to haproxy), then the backend leg (haproxy to
# nginx, both on host A: the loopback interface carries it).
srv_http_fetch_checked "$URL/big.bin" "$D/backend/www/big.bin" hap_log
front=$WIRE_BIG
wire_capture_start "$NS_A" lo "$BACK_PORT" "$PROG_TMP"
srv_client timeout 60 curl -sS --fail --max-time 50 -o "$PROG_TMP/fetched2" "$URL/big.bin" ||
    prog_fail "second curl failed: $(hap_log)"
cmp -s "$PROG_TMP/fetched2" "$D/backend/www/big.bin" || prog_fail "second fetch differs"
wire_capture_stop
if [ "$PROG_MODE" = rsocket ]; then wire_expect_no_payload "backend leg"
else wire_expect_payload "backend leg"; fi
back=$WIRE_BIG

srv_client timeout 60 wrk -t 2 -c 8 -d 4s "$URL/page.bin" >"$PROG_TMP/wrk.out" 2>&1 ||
    prog_fail "wrk failed: $(cat "$PROG_TMP/wrk.out")"
keepalive=$(srv_wrk_check "$PROG_TMP/wrk.out" "keep-alive load") || exit 1

# Soft restart under load, as /etc/init.d/haproxy reload (-sf) with the
# listeners handed over (-x): a new daemon takes the port, the old one
# finishes its connections and exits. A
# connection per request (as in nginx.sh): an idle keep-alive connection
# the old process closes can meet a request in flight on any kernel.
# (--timeout 5s, not 2: on a loaded machine the new process may take
# seconds to start taking the handed-over listeners - seen with and
# without the preload; a request stuck for good, which the reload starts
# about a second into the run, still counts as a timeout)
srv_client timeout 60 wrk -t 2 -c 8 -d 8s --timeout 5s -H 'Connection: close' "$URL/page.bin" \
    >"$PROG_TMP/wrk-reload.out" 2>&1 &
wrk_pid=$!
# (wrk's output is buffered until it exits: its connections show it runs.)
wrk_connected() { [ "$(ip netns exec "$NS_A" ss -Htn state established "sport = :$PROG_PORT" | wc -l)" -gt 0 ]; }
wait_until 10 wrk_connected || prog_fail "wrk made no connection: $(cat "$PROG_TMP/wrk-reload.out")"
srv_server_env_chroot /var/lib/haproxy "${HAPROXY[@]}" -D -x "$D/admin.sock" -sf "$pid" >"$PROG_TMP/reload.out" 2>&1 ||
    prog_fail "haproxy -sf failed: $(cat "$PROG_TMP/reload.out")"
new_up() { [ -n "$(hap_pid)" ] && [ "$(hap_pid)" != "$pid" ] && kill -0 "$(hap_pid)" 2>/dev/null; }
wait_until 20 new_up || prog_fail "the reload started no new haproxy ($pid -> $(hap_pid))"
kill -0 "$wrk_pid" 2>/dev/null || prog_fail "wrk ended before the new haproxy was up: the reload was not under load"
srv_wait_gone "$pid" 30 || prog_fail "the old haproxy $pid did not exit after -sf"
wait "$wrk_pid" || prog_fail "wrk failed: $(cat "$PROG_TMP/wrk-reload.out")"
reload=$(srv_wrk_check "$PROG_TMP/wrk-reload.out" "across the -sf reload") || exit 1
srv_check_users "$(hap_pid)" haproxy haproxy

srv_client timeout 30 curl -sS --fail --max-time 20 -o "$PROG_TMP/page.got" "$URL/page.bin" ||
    prog_fail "page fetch after the reload failed: $(hap_log)"
cmp -s "$D/backend/www/page.bin" "$PROG_TMP/page.got" || prog_fail "page differs after the reload"
prog_note "OK: 8 MiB sha256 ${SRV_SHA:0:16}... intact through haproxy (user haproxy, $threads threads); kernel TCP packets > 64 B: client leg $front, backend leg $back; wrk $keepalive keep-alive requests, $reload across haproxy -sf, all 2xx, no socket error"
