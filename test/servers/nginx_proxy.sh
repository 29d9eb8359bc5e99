#!/usr/bin/env bash
# nginx as a reverse proxy, both legs routed: Debian's stock nginx.conf
# (test/lib/nginx.sh) on host A, a daemon with 2 workers as www-data,
# whose default site gets one location that proxies to an upstream nginx
# on host B with an upstream keepalive pool (proxy_http_version 1.1, as
# the nginx documentation configures it). The workers are clients of the
# upstream (their connects are routed like any other) and servers of the
# clients. From host B: curl of a 6 MiB object through the proxy (sha256),
# ab -k and ab with a connection per request through the proxy; on the
# rsocket route both legs' bulk must be on rsocket (the client's wire and
# counters, the upstream's counters).
# Usage: nginx_proxy.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.nginx_proxy
. "$NSTACK_SRC/test/lib/servers.sh"
. "$NSTACK_SRC/test/lib/nginx.sh"

srv_setup "$1" 18490
UP_PORT=18491 UP_NS=$NS_B UP_ADDR=$IP_B
[ "$PROG_MODE" = preload ] && UP_ADDR=$IP2_B
[ "$PROG_MODE" = plain ] && { UP_NS=$NS_A; UP_ADDR=127.0.0.1; }
SIZE=$((6 * 1024 * 1024))

# The upstream: one nginx process (test/lib/nginx.sh), under the preload.
U=$PROG_TMP/upstream
nginx_prepare "$U" "$UP_ADDR" "$UP_PORT"
prog_random_file "$U/www/big.bin" "$SIZE"
prog_random_file "$U/www/mid.bin" $((256 * 1024))
# shellcheck disable=SC2046
prog_server_in "$UP_NS" upstream env NSTACK_STATS=1 $(nginx_cmd "$U")
UP_PID=$PROG_SERVER_PID
up_log() { tail -n 3 "$U/logs/error.log" 2>/dev/null | tr '\n' ' '; }
up_answers() { ip netns exec "$UP_NS" timeout 5 curl -sS --fail --max-time 4 -o /dev/null "http://$UP_ADDR:$UP_PORT/index.html" 2>/dev/null; }
wait_until 30 up_answers || prog_fail "the upstream nginx does not answer: $(up_log) $(cat "$PROG_TMP/upstream.out")"

# The proxy: Debian's configuration, one location added.
D=$PROG_TMP/nginx
nginx_debian_prepare "$D" "$PROG_PORT" 2 || prog_fail "could not write the nginx configuration"
cat >"$D/conf.d/upstream.conf" <<CONF
upstream backend {
    server $UP_ADDR:$UP_PORT;
    keepalive 8;
}
CONF
sed -i 's|^\(\s*\)location / {|\1location /up/ {\n\1\tproxy_pass http://backend/;\n\1\tproxy_http_version 1.1;\n\1\tproxy_set_header Connection "";\n\1}\n\n&|' \
    "$D/sites-enabled/default"
grep -q 'proxy_pass http://backend/;' "$D/sites-enabled/default" || prog_fail "Debian's default site not in the expected form"
chmod -R a+rX "$D"
URL=http://$PROG_ADDR:$PROG_PORT
nginx_debian_start "$D" 2
wait_until 30 srv_http_answers "$URL/up/index.html" || prog_fail "the proxy does not answer on $URL/up/: $(nginx_log "$D") $(up_log)"
# shellcheck disable=SC2046
srv_check_users "$(nginx_master "$D")" root www-data $(nginx_workers "$D")

up_bytes() { _prog_preloaded && stats_live_bytes "$PROG_STACK" "$UP_PID"; }
up0=$(up_bytes)
srv_http_fetch_checked "$URL/up/big.bin" "$U/www/big.bin" "nginx_log $D"
if _prog_preloaded; then
    # the upstream leg: the upstream's bytes on the route's stack grew by the object
    expect_bulk_on "$PROG_STACK" "$SIZE" "$(( $(up_bytes) - up0 ))" "upstream leg"
fi

srv_ab_both "$URL/up/mid.bin"
ka=$(sed -n 's/^Keep-Alive requests: *\([0-9]*\)/\1/p' "$PROG_TMP/ab.keepalive")
[ "${ka:-0}" -gt 0 ] || prog_fail "ab -k: no keep-alive request"
grep -q "\[alert\]\|\[emerg\]\|\[crit\]" "$D/logs/error.log" "$U/logs/error.log" &&
    prog_fail "error log: $(grep -h -m3 "\[alert\]\|\[emerg\]\|\[crit\]" "$D/logs/error.log" "$U/logs/error.log")"
grep -q "upstream prematurely closed\|upstream timed out\|recv() failed\|writev() failed" "$D/logs/error.log" &&
    prog_fail "proxy error log: $(grep -m3 "upstream\|failed" "$D/logs/error.log")"
prog_note "OK: 6 MiB sha256 ${SRV_SHA:0:16}... intact through the proxy; ab 1000 x 256 KiB keep-alive and per connection, 0 failed; workers www-data"
