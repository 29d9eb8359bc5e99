#!/usr/bin/env bash
# squid with Debian's stock /etc/squid/squid.conf (adapted in its port,
# pid/log/coredump paths, and "http_access allow localnet" in place of the
# conf.d include), started as its unit does (`squid -f CONF`: a master
# that forks a worker kid, both running as proxy): curl from the other
# host fetches a 3 MiB file through it from a web server on host A,
# twice, sha256 checked, and squid logs both as 200.
# Squid's master keeps real uid proxy and effective uid root, so its
# worker is exec'd in secure-execution mode, where the loader ignores
# LD_PRELOAD: under the preload the master says so in one WAR line
# (doc/fork.md), which this test asserts; the worker's connections are
# kernel TCP on every route (the client's report names the reason).
# Usage: squid.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.squid
. "$NSTACK_SRC/test/lib/servers.sh"

command -v squid >/dev/null && [ -r /etc/squid/squid.conf ] ||
    prog_fail "squid not installed (tools/deps.sh: squid)"
srv_setup "$1" 18312
D=$PROG_TMP/squid
mkdir -p "$D/www" "$D/log" "$D/spool" || prog_fail "cannot make $D"
chown -R proxy: "$D/log" "$D/spool" || prog_fail "cannot hand $D to proxy"
prog_random_file "$D/www/big.bin" $((3 * 1024 * 1024))
chmod -R a+rX "$D/www"
grep -q '^include /etc/squid/conf.d/\*.conf' /etc/squid/squid.conf && grep -q '^http_port 3128' /etc/squid/squid.conf ||
    prog_fail "/etc/squid/squid.conf not in the expected form"
sed -e "s|^http_port 3128|http_port $PROG_PORT|" -e "s|^coredump_dir .*|coredump_dir $D/spool|" \
    -e 's|^include /etc/squid/conf.d/\*.conf|http_access allow localnet|' \
    /etc/squid/squid.conf >"$D/squid.conf" || prog_fail "cannot copy squid.conf"
printf '%s\n' "pid_filename $D/squid.pid" "access_log $D/log/access.log" "cache_log $D/log/cache.log" \
    "cache_store_log none" >>"$D/squid.conf"
WEB_PORT=$((PROG_PORT + 1))
prog_server web python3 -m http.server --bind "$PROG_ADDR" --directory "$D/www" "$WEB_PORT"
prog_wait_listen "$WEB_PORT"
sq_log() { tail -n 5 "$D/log/cache.log" "$PROG_TMP/squid.err" 2>/dev/null | tr '\n' ' '; }
srv_on_exit srv_stop_pidfile "$D/squid.pid"
srv_server_env squid -f "$D/squid.conf" -z -N >"$PROG_TMP/squid-z.err" 2>&1 ||
    prog_fail "squid -z: $(cat "$PROG_TMP/squid-z.err")"
# squid points its stderr at /dev/null once it runs: the dispatcher's lines
# go to a file
srv_server_env env NSTACK_LOG_FILE="$PROG_TMP/nstack-squid.log" squid -f "$D/squid.conf" \
    >"$PROG_TMP/squid.out" 2>"$PROG_TMP/squid.err" ||
    prog_fail "squid did not start: $(sq_log)"
sq_up() { ip netns exec "$NS_A" ss -Hltn "sport = :$PROG_PORT" | grep -q .; }
wait_until 30 sq_up || prog_fail "squid does not listen on $PROG_PORT: $(sq_log)"
want=$(prog_sha256 "$D/www/big.bin")
for i in 1 2; do
    srv_client timeout 60 curl -sS --max-time 50 -x "http://$PROG_ADDR:$PROG_PORT" -o "$PROG_TMP/got.bin" \
        "http://$PROG_ADDR:$WEB_PORT/big.bin" 2>"$PROG_TMP/curl.err" ||
        prog_fail "fetch $i through squid: $(cat "$PROG_TMP/curl.err") $(sq_log)"
    [ "$(prog_sha256 "$PROG_TMP/got.bin")" = "$want" ] || prog_fail "fetch $i through squid differs"
done
n=$(grep -c 'TCP_[A-Z_]*/200 .* GET http://.*/big.bin' "$D/log/access.log")
[ "$n" -eq 2 ] || prog_fail "squid logged $n of 2 fetches: $(cat "$D/log/access.log")"
kid=""
for p in $(ip netns pids "$NS_A"); do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- '--kid squid-1' && kid=$p
done
[ -n "$kid" ] && [ "$(srv_user_of "$kid")" = proxy ] || prog_fail "squid's worker (${kid:-none}) does not run as proxy"
if [ "$1" != plain ]; then
    grep -q 'secure-execution mode' "$PROG_TMP/nstack-squid.log" ||
        prog_fail "no notice that squid's worker runs without the preload: $(cat "$PROG_TMP/nstack-squid.log")"
fi
prog_note "OK: 2 x 3 MiB through squid's worker (proxy), sha256 intact, both logged 200"
