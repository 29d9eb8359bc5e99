#!/usr/bin/env bash
# memcached as Debian runs it: /etc/memcached.conf's options (daemon, -m 64,
# -u memcache; only port, listen address and pid file adapted), 4 worker
# threads. From the other host: 4 connections of the text protocol, 400
# keys up to 200 KB set and read back byte by byte, incr and delete; the
# wire and counters say which route carried the bytes.
# Usage: memcached.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.memcached
. "$NSTACK_SRC/test/lib/servers.sh"
command -v memcached >/dev/null && [ -r /etc/memcached.conf ] ||
    prog_fail "memcached not installed (tools/deps.sh: memcached)"
id memcache >/dev/null 2>&1 || prog_fail "no memcache user (Debian's memcached package makes it)"
srv_setup "$1" 11311
D=$PROG_TMP/memcached
mkdir -p "$D" && chown memcache: "$D" || prog_fail "cannot make $D"
# Debian's start-memcached turns each non-comment line into an option.
mapfile -t OPTS < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' -e '/^logfile/d' \
    -e "s|^-p .*|-p $PROG_PORT|" -e "s|^-l .*|-l 0.0.0.0|" -e "s|^-P .*|-P $D/memcached.pid|" \
    /etc/memcached.conf | tr ' ' '\n')
printf '%s\n' "${OPTS[@]}" | grep -qx -- "-d" && printf '%s\n' "${OPTS[@]}" | grep -qx -- memcache ||
    prog_fail "/etc/memcached.conf not in the expected form: ${OPTS[*]}"
srv_on_exit srv_stop_pidfile "$D/memcached.pid"
srv_server_env memcached "${OPTS[@]}" >"$PROG_TMP/start.out" 2>&1 ||
    prog_fail "memcached did not start: $(cat "$PROG_TMP/start.out")"
up() { [ -s "$D/memcached.pid" ] && srv_client timeout 5 python3 -c "import socket; socket.create_connection(('$PROG_ADDR', $PROG_PORT), timeout=3)" 2>/dev/null; }
wait_until 30 up || prog_fail "memcached does not answer on $PROG_ADDR:$PROG_PORT"
pid=$(cat "$D/memcached.pid")
[ "$(srv_user_of "$pid")" = memcache ] || prog_fail "memcached runs as $(srv_user_of "$pid"), want memcache"

srv_wire_start "$PROG_PORT"
srv_client timeout 120 python3 "$NSTACK_SRC/test/servers/memcached_client.py" "$PROG_ADDR" "$PROG_PORT" \
    >"$PROG_TMP/client.out" 2>&1 || prog_fail "client: $(grep -v '^nstack' "$PROG_TMP/client.out" | tail -n 3)"
grep -q '^PASS: 400 keys' "$PROG_TMP/client.out" || prog_fail "no client verdict: $(cat "$PROG_TMP/client.out")"
srv_wire_verdict "memcached" "$PROG_TMP/client.out" $((2 * 1024 * 1024)) "$(srv_server_bytes)"
prog_note "OK: memcached as user memcache, daemonised: $(grep '^PASS' "$PROG_TMP/client.out")"
