#!/bin/bash
# prog_nginx.sh: nginx (master_process off, daemon off, private paths;
# test/lib/nginx.sh) listening on 192.168.21.180 (host A) under the preload
# over rsocket. From host B: curl fetches a 4 MiB random file (sha256
# compared), wrk loads a 4 KiB page (requests > 0, no non-2xx, no socket
# errors), and a last curl checks the page afterwards.
. "$(dirname "$0")/rsfw_lib.sh"
# shellcheck source=../lib/nginx.sh
. "$NSTACK_SRC/test/lib/nginx.sh"
rsfw_setup
D=$WORK/nginx
nginx_prepare "$D" "$IP_A" 8080
# nginx empties its environment after startup (only TZ and "env" directives
# survive); the software device looks up its fabric directory lazily, so
# the variable must be kept or later QPs cannot find their peers (EIO).
sed -i '1i env SOFTRDMA_FABRIC;' "$D/nginx.conf"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$D/www/big.bin"
head -c 4096 /dev/urandom >"$D/www/page.bin"
# shellcheck disable=SC2046
bg_a "${RS_ENV[@]}" $(nginx_cmd "$D") >"$WORK/server.out" 2>&1
srv=$BG_PID
URL=http://$IP_A:8080
curl_b() { rs_b timeout 60 curl -sS --fail --max-time 50 "$@"; }
wait_server_up "$srv" 60 curl_b -o /dev/null "$URL/index.html" ||
    { cat "$WORK/server.out" "$D/logs/error.log"; fail "nginx did not answer"; }

curl_b -o "$WORK/big.got" "$URL/big.bin" 2>"$WORK/curl.err" || fail "curl of big.bin failed: $(cat "$WORK/curl.err")"
want=$(sha256sum <"$D/www/big.bin" | cut -d' ' -f1); got=$(sha256sum <"$WORK/big.got" | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "big.bin differs: sha256 $got, want $want"
expect_stack "$WORK/curl.err" rsocket rx_bytes $((4 * 1024 * 1024)) "curl"
expect_stack_zero "$WORK/curl.err" kernel rx_bytes "curl"

out=$WORK/wrk.out
# -c 1: wrk sizes its event loop for fds below 10 + 3 x connections and
# counts a "connect" socket error for a socket numbered above that; every
# rsocket connection also holds about 8 descriptors of the module and the
# software device, so a 2nd connection's fd (often 17) is already out of
# range for -c 2 (16). Not a connection failure: wrk closes and retries.
rs_b timeout 120 wrk -t 1 -c 1 -d 3s "$URL/page.bin" >"$out" 2>&1 || fail "wrk failed: $(cat "$out")"
requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$out")
[ -n "$requests" ] && [ "$requests" -gt 0 ] || fail "no requests completed: $(cat "$out")"
grep -q 'Non-2xx or 3xx responses' "$out" && fail "$(grep 'Non-2xx' "$out")"
grep -q 'Socket errors' "$out" && fail "$(grep 'Socket errors' "$out")"
rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$out")
expect_stack "$out" rsocket connect 1 "wrk"

curl_b -o "$WORK/page.got" "$URL/page.bin" || fail "page fetch after the load failed"
cmp -s "$D/www/page.bin" "$WORK/page.got" || fail "page differs after the load"
echo "PASS: nginx over rsocket: 4 MiB file sha256 ${want:0:16}... intact, wrk $requests requests all 2xx, $rps requests/s"
