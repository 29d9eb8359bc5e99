#!/usr/bin/env bash
# wrk load against a private nginx: requests > 0, no non-2xx answers, no
# connect errors, and the page fetched afterwards is still the right one.
# Usage: nginx_wrk.sh plain|preload
set -uo pipefail
PROG_NAME=nginx_wrk
. "$NSTACK_SRC/test/lib/programs.sh"
. "$NSTACK_SRC/test/lib/nginx.sh"

base=18280; [ "$1" = preload ] && base=18380
prog_setup "$1" "$base"

nginx_prepare "$PROG_TMP/nginx" "$PROG_ADDR" "$PROG_PORT"
prog_random_file "$PROG_TMP/nginx/www/page.bin" 4096
# shellcheck disable=SC2046
prog_server server $(nginx_cmd "$PROG_TMP/nginx")
prog_wait_listen "$PROG_PORT"
prog_check_framework

out=$PROG_TMP/wrk.out
prog_client timeout 60 wrk -t 1 -c 8 -d 3s "http://$PROG_ADDR:$PROG_PORT/page.bin" \
    >"$out" 2>&1 || prog_fail "wrk failed: $(cat "$out")"

# "12345 requests in 3.00s, 1.23MB read"
requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$out")
[ -n "$requests" ] && [ "$requests" -gt 0 ] || prog_fail "no requests completed: $(cat "$out")"
# wrk prints these lines only when the count is not zero.
grep -q 'Non-2xx or 3xx responses' "$out" && prog_fail "$(grep 'Non-2xx' "$out")"
grep -qE 'Socket errors: connect [1-9]' "$out" && prog_fail "$(grep 'Socket errors' "$out")"
rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$out")

prog_client timeout 30 curl -sS --fail --max-time 20 -o "$PROG_TMP/page.got" \
    "http://$PROG_ADDR:$PROG_PORT/page.bin" || prog_fail "page fetch after the load failed"
cmp -s "$PROG_TMP/nginx/www/page.bin" "$PROG_TMP/page.got" || prog_fail "page differs after the load"
prog_note "OK: $requests requests, all 2xx, $rps requests/s"
