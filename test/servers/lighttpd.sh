#!/usr/bin/env bash
# lighttpd with Debian's stock /etc/lighttpd/lighttpd.conf (adapted only
# in port, document root, upload dir and pid/log files), started as
# Debian's unit starts it: `lighttpd -f CONF`, which daemonises and drops
# to www-data; a wildcard listen on IPv4 and IPv6 (Debian's use-ipv6.pl).
# From the other host: curl of an 8 MiB file (sha256), wrk keep-alive and
# wrk with a connection per request, each with no socket error and no
# non-2xx answer, and the wire and counters say which route carried the
# bytes.
# Usage: lighttpd.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.lighttpd
. "$NSTACK_SRC/test/lib/servers.sh"

command -v lighttpd >/dev/null && [ -r /etc/lighttpd/lighttpd.conf ] ||
    prog_fail "lighttpd not installed (tools/deps.sh: lighttpd)"
srv_setup "$1" 18481
D=$PROG_TMP/lighttpd
mkdir -p "$D/www" "$D/log" "$D/up" || prog_fail "cannot make $D"
prog_random_file "$D/www/big.bin" $((8 * 1024 * 1024))
prog_random_file "$D/www/page.bin" 4096
chmod a+r "$D/www/"*.bin
chown -R www-data: "$D/log" "$D/up" || prog_fail "cannot hand $D to www-data"
sed -e "s|^server.document-root .*|server.document-root = \"$D/www\"|" \
    -e "s|^server.upload-dirs .*|server.upload-dirs = ( \"$D/up\" )|" \
    -e "s|^server.errorlog .*|server.errorlog = \"$D/log/error.log\"|" \
    -e "s|^server.pid-file .*|server.pid-file = \"$D/lighttpd.pid\"|" \
    -e "s|^server.port .*|server.port = $PROG_PORT|" \
    /etc/lighttpd/lighttpd.conf >"$D/lighttpd.conf" || prog_fail "cannot copy lighttpd.conf"
grep -q "^server.port = $PROG_PORT" "$D/lighttpd.conf" && grep -q '^server.username *= *"www-data"' "$D/lighttpd.conf" ||
    prog_fail "/etc/lighttpd/lighttpd.conf not in the expected form"
lt_log() { tail -n 5 "$D/log/error.log" 2>/dev/null | tr '\n' ' '; }
srv_on_exit srv_stop_pidfile "$D/lighttpd.pid"
srv_server_env lighttpd -tt -f "$D/lighttpd.conf" >"$PROG_TMP/check.out" 2>&1 ||
    prog_fail "lighttpd -tt: $(cat "$PROG_TMP/check.out")"
srv_server_env lighttpd -f "$D/lighttpd.conf" >"$PROG_TMP/start.out" 2>&1 ||
    prog_fail "lighttpd did not start: $(cat "$PROG_TMP/start.out") $(lt_log)"
URL=http://$PROG_ADDR:$PROG_PORT
wait_until 30 srv_http_answers "$URL/page.bin" || prog_fail "lighttpd does not answer on $URL: $(lt_log)"
pid=$(cat "$D/lighttpd.pid")
[ "$(srv_user_of "$pid")" = www-data ] || prog_fail "lighttpd runs as $(srv_user_of "$pid"), want www-data"

srv_http_fetch_checked "$URL/big.bin" "$D/www/big.bin" lt_log
srv_client timeout 60 wrk -t 2 -c 8 -d 3s "$URL/page.bin" >"$PROG_TMP/wrk.out" 2>&1 ||
    prog_fail "wrk failed: $(cat "$PROG_TMP/wrk.out")"
keepalive=$(srv_wrk_check "$PROG_TMP/wrk.out" "keep-alive load") || exit 1
srv_client timeout 60 wrk -t 2 -c 8 -d 3s -H 'Connection: close' "$URL/page.bin" >"$PROG_TMP/wrk-close.out" 2>&1 ||
    prog_fail "wrk failed: $(cat "$PROG_TMP/wrk-close.out")"
perconn=$(srv_wrk_check "$PROG_TMP/wrk-close.out" "a connection per request") || exit 1
srv_client timeout 30 curl -sS --fail --max-time 20 -o "$PROG_TMP/page.got" "$URL/page.bin" ||
    prog_fail "page fetch after the load failed: $(lt_log)"
cmp -s "$D/www/page.bin" "$PROG_TMP/page.got" || prog_fail "page differs after the load"
prog_note "OK: 8 MiB sha256 ${SRV_SHA:0:16}... intact; wrk $keepalive keep-alive and $perconn one-per-connection requests, all 2xx, no socket error; lighttpd as www-data, daemonised"
