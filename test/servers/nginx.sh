#!/usr/bin/env bash
# nginx with Debian's stock nginx.conf (test/lib/nginx.sh: paths, port and
# worker count adapted only), started as Debian's unit starts it: a daemon,
# master (root) + 2 workers (www-data), sendfile on, tcp_nopush on, wildcard
# listen. From the other host: curl of an 8 MiB file (sha256), wrk
# keep-alive, then wrk while `nginx -s reload` replaces the workers, each
# with no socket error and no non-2xx answer, and the wire and counters
# say which route carried the bytes.
# Usage: nginx.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.nginx
. "$NSTACK_SRC/test/lib/servers.sh"
. "$NSTACK_SRC/test/lib/nginx.sh"

srv_setup "$1" 18480
D=$PROG_TMP/nginx
nginx_debian_prepare "$D" "$PROG_PORT" 2 || prog_fail "could not write the nginx configuration"
prog_random_file "$D/www/big.bin" $((8 * 1024 * 1024))
prog_random_file "$D/www/page.bin" 4096
chmod a+r "$D/www/"*.bin
URL=http://$PROG_ADDR:$PROG_PORT
nginx_debian_start "$D" 2
master() { nginx_master "$D"; }
workers() { nginx_workers "$D"; }
two_workers() { nginx_has_workers "$D" 2; }
wait_until 30 srv_http_answers "$URL/index.html" || prog_fail "nginx does not answer on $URL: $(nginx_log "$D")"
# Workers as Debian runs them: www-data, the master as root.
# shellcheck disable=SC2046
check_users() { srv_check_users "$(master)" root www-data $(workers); }
check_users
srv_http_fetch_checked "$URL/big.bin" "$D/www/big.bin" "nginx_log $D"

# Keep-alive load: 8 connections, 4 s.
srv_client timeout 60 wrk -t 2 -c 8 -d 4s "$URL/page.bin" >"$PROG_TMP/wrk.out" 2>&1 ||
    prog_fail "wrk failed: $(cat "$PROG_TMP/wrk.out")"
keepalive=$(srv_wrk_check "$PROG_TMP/wrk.out" "keep-alive load") || exit 1

# A reload replaces both workers while wrk runs for 8 s. "Connection: close":
# an old worker that exits closes its idle keep-alive connections, and a
# request the client sent at that moment is lost on any kernel (wrk counts
# a read error, without the framework too): only a connection per request
# makes "no error across a reload" a property of the server.
old=$(workers | tr '\n' ' ')
srv_client timeout 60 wrk -t 2 -c 8 -d 8s -H 'Connection: close' "$URL/page.bin" \
    >"$PROG_TMP/wrk-reload.out" 2>&1 &
wrk_pid=$!
# (wrk's output is buffered until it exits: the access log shows it runs.)
marks=$(grep -c 'GET /page.bin' "$D/logs/access.log")
served_some() { [ "$(grep -c 'GET /page.bin' "$D/logs/access.log")" -gt $((marks + 100)) ]; }
wait_until 10 served_some || prog_fail "no request served under wrk: $(nginx_log "$D") $(cat "$PROG_TMP/wrk-reload.out")"
srv_server_env "${NGINX_ARGS[@]}" -s reload || prog_fail "nginx -s reload failed: $(nginx_log "$D")"
# New workers serve while the old ones finish their requests and exit.
new_workers() { local w n=0; for w in $(workers); do [[ " $old " == *" $w "* ]] || n=$((n + 1)); done; [ "$n" -eq 2 ]; }
old_gone() { local w; for w in $old; do kill -0 "$w" 2>/dev/null && return 1; done; return 0; }
wait_until 20 new_workers || prog_fail "the reload started no new workers ($old -> $(workers | tr '\n' ' '))"
kill -0 "$wrk_pid" 2>/dev/null || prog_fail "wrk ended before the new workers were up: the reload was not under load: $(cat "$PROG_TMP/wrk-reload.out")"
wait "$wrk_pid" || prog_fail "wrk failed: $(cat "$PROG_TMP/wrk-reload.out")"
wait_until 20 old_gone || prog_fail "the old workers ($old) did not exit after the reload"
two_workers || prog_fail "after the reload: workers $(workers | tr '\n' ' '), want 2"
check_users
reload=$(srv_wrk_check "$PROG_TMP/wrk-reload.out" "across the reload") || exit 1
grep -q "\[alert\]\|\[emerg\]\|\[crit\]" "$D/logs/error.log" &&
    prog_fail "error log: $(grep -m3 "\[alert\]\|\[emerg\]\|\[crit\]" "$D/logs/error.log")"

srv_client timeout 30 curl -sS --fail --max-time 20 -o "$PROG_TMP/page.got" "$URL/page.bin" ||
    prog_fail "page fetch after the reload failed: $(nginx_log "$D")"
cmp -s "$D/www/page.bin" "$PROG_TMP/page.got" || prog_fail "page differs after the reload"
prog_note "OK: 8 MiB sha256 ${SRV_SHA:0:16}... intact; wrk $keepalive keep-alive requests, $reload requests across a reload, all 2xx, no socket error; workers www-data"
