#!/usr/bin/env bash
# curl downloads a generated file from a private nginx; sha256 must match.
# Usage: curl_nginx.sh plain|preload
set -uo pipefail
PROG_NAME=curl_nginx
. "$NSTACK_SRC/test/lib/programs.sh"
. "$NSTACK_SRC/test/lib/nginx.sh"

base=18080; [ "$1" = preload ] && base=18180
prog_setup "$1" "$base"

nginx_prepare "$PROG_TMP/nginx" "$PROG_ADDR" "$PROG_PORT"
prog_random_file "$PROG_TMP/nginx/www/blob.bin" $((8 * 1024 * 1024))
# shellcheck disable=SC2046
prog_server server $(nginx_cmd "$PROG_TMP/nginx")
prog_wait_listen "$PROG_PORT"
prog_check_framework

prog_client timeout 60 curl -sS --fail --max-time 50 -o "$PROG_TMP/got.bin" \
    "http://$PROG_ADDR:$PROG_PORT/blob.bin" 2>"$PROG_TMP/curl.err" ||
    prog_fail "curl failed: $(cat "$PROG_TMP/curl.err"; tail -3 "$PROG_TMP/nginx/logs/error.log")"

want=$(prog_sha256 "$PROG_TMP/nginx/www/blob.bin"); got=$(prog_sha256 "$PROG_TMP/got.bin")
[ "$want" = "$got" ] || prog_fail "downloaded file differs: sha256 $got, want $want ($(stat -c %s "$PROG_TMP/got.bin") bytes)"

# A missing file is a 404 and curl --fail must say so: the server answers for real.
if prog_client timeout 30 curl -sS --fail --max-time 20 -o /dev/null \
        "http://$PROG_ADDR:$PROG_PORT/missing" 2>/dev/null; then
    prog_fail "a missing file was served"
fi
prog_note "OK: 8 MiB file intact (sha256 ${want:0:16}...)"
