# shellcheck shell=bash
# Connection set-up cost, kernel route vs rsocket route (issue 8):
#   nginx_connrate   new connections per second: ab without keep-alive
#                    (one connection per request, 8 at a time) against
#                    nginx (one process, test/lib/nginx.sh), 4 KiB page
#   server_fds_per_conn / client_fds_per_conn
#                    descriptors per connection: /proc/PID/fd of the nginx
#                    server and of one client process (python3) holding
#                    CONNRATE_IDLE idle connections, minus the count before
# Sourced by tools/bench.sh after bench_measure.sh and bench_rstream.sh
# (bench_next_port); needs the test hosts.

CONNRATE_IDLE=${CONNRATE_IDLE:-100}

# _connrate_nginx: a fresh nginx on a new port; NGINX_PORT, BENCH_SERVER.
_connrate_nginx() {
    NGINX_PORT=$(bench_next_port 29080)
    rm -rf "$BENCH_TMP/nginx-c"
    nginx_prepare "$BENCH_TMP/nginx-c" "$BENCH_ADDR" "$NGINX_PORT"
    head -c 4096 /dev/urandom >"$BENCH_TMP/nginx-c/www/page.bin"
    # shellcheck disable=SC2046
    bench_server "$BENCH_TMP/nginx-c.srv" $(nginx_cmd "$BENCH_TMP/nginx-c")
    bench_wait_ready "$NGINX_PORT" "$BENCH_TMP/nginx-c.srv" '^$never'
}

# Requests (= connections) per second; failed requests are reported.
measure_nginx_connrate() {
    local out=$BENCH_TMP/ab.out
    _connrate_nginx || return 1
    bench_client timeout $((BENCH_SECS + 60)) ab -q -c 8 -t "$BENCH_SECS" -n 1000000 \
        "http://$BENCH_ADDR:$NGINX_PORT/page.bin" >"$out" 2>&1
    bench_stop_server
    local failed; failed=$(sed -n 's/^Failed requests: *\([0-9]*\).*/\1/p' "$out")
    [ "${failed:-0}" = 0 ] || echo "bench: ab: $failed failed requests on $BENCH_ADDR" >&2
    sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$out"
}

_fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
_fds_reach() { [ "$(_fd_count "$1")" -ge "$2" ]; }

# _idle_conns_run: nginx, then a python3 client (under BENCH_ENV) opening
# CONNRATE_IDLE connections and holding them until a file appears; prints
# "SERVER_FDS_PER_CONN CLIENT_FDS_PER_CONN".
_idle_conns_run() {
    local n=$CONNRATE_IDLE go=$BENCH_TMP/idle.go up=$BENCH_TMP/idle.up srv s0 s1 c0 c1 cli
    rm -f "$go" "$up"
    _connrate_nginx || return 1
    srv=$(ps -o pid= -g "$BENCH_SERVER" | head -n 1 | tr -d ' ')
    s0=$(_fd_count "$srv")
    bench_client timeout 120 python3 -c '
import os, socket, sys, time
addr, port, n, up, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
before = len(os.listdir("/proc/self/fd"))
conns = [socket.create_connection((addr, port), timeout=30) for _ in range(n)]
open(up, "w").write("%d %d %d\n" % (os.getpid(), before, len(os.listdir("/proc/self/fd"))))
deadline = time.monotonic() + 100
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.02)
' "$BENCH_ADDR" "$NGINX_PORT" "$n" "$up" "$go" >"$BENCH_TMP/idle.cli" 2>&1 &
    cli=$!
    wait_until 60 test -s "$up" && wait_until 30 _fds_reach "$srv" $((s0 + n)) ||
        { echo "bench: idle connections not up: $(tail -n 2 "$BENCH_TMP/idle.cli")" >&2; touch "$go"; wait "$cli"; bench_stop_server; return 1; }
    s1=$(_fd_count "$srv")
    read -r _ c0 c1 <"$up"
    touch "$go"; wait "$cli"
    bench_stop_server
    awk -v n="$n" -v s0="$s0" -v s1="$s1" -v c0="$c0" -v c1="$c1" \
        'BEGIN { printf "%.2f %.2f\n", (s1 - s0) / n, (c1 - c0) / n }'
}
measure_server_fds_per_conn() { _idle_conns_run | awk '{ print $1 }'; }
measure_client_fds_per_conn() { _idle_conns_run | awk '{ print $2 }'; }
