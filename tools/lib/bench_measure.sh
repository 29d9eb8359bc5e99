# shellcheck shell=bash
# One measurement each: start a fresh server, drive it with its client, print
# one number. Both sides run with the words of BENCH_ENV (empty: plain;
# the libnStackAPI.so environment: preloaded) and talk to BENCH_ADDR, on the
# host selected by BENCH_NS_SRV / BENCH_NS_CLI (empty: this host).
# Sourced by tools/bench.sh; needs test/lib/netns.sh and test/lib/nginx.sh.

BENCH_ENV=(); BENCH_ADDR=127.0.0.1; BENCH_NS_SRV=""; BENCH_NS_CLI=""
# Words run before the server's / client's command: e.g. setpriv to run it
# as another user (tools/bench.sh, "users").
BENCH_SRV_AS=(); BENCH_CLI_AS=()
BENCH_SECS=${BENCH_SECS:-3}
_BENCH_GROUPS=()


# bench_group_in NS LOG CMD...: CMD in its own process group on host NS
# (empty: this host), with BENCH_ENV; BENCH_GROUP gets its pid (the
# subshell and setsid both exec, so $! is the group).
bench_group_in() {
    local ns=$1 log=$2; shift 2
    local in_ns=()
    [ -n "$ns" ] && in_ns=(ip netns exec "$ns")
    (exec setsid "${in_ns[@]}" env "${BENCH_ENV[@]}" "$@" >"$log" 2>&1 </dev/null) &
    BENCH_GROUP=$!; _BENCH_GROUPS+=("$BENCH_GROUP")
}

# bench_server LOG CMD...: the measured server, on the server host.
bench_server() {
    local log=$1; shift
    bench_group_in "$BENCH_NS_SRV" "$log" "${BENCH_SRV_AS[@]}" "$@"
    BENCH_SERVER=$BENCH_GROUP
}

# bench_client CMD...: the client, with BENCH_ENV, on the client host.
bench_client() {
    local in_ns=()
    [ -n "$BENCH_NS_CLI" ] && in_ns=(ip netns exec "$BENCH_NS_CLI")
    "${in_ns[@]}" env "${BENCH_ENV[@]}" "${BENCH_CLI_AS[@]}" "$@" </dev/null
}

_group_gone() { [ -z "$(ps -o pid= -g "$1" 2>/dev/null)" ]; }
bench_stop_group() {
    kill -TERM -- "-$1" 2>/dev/null
    wait_until 10 _group_gone "$1" || kill -KILL -- "-$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}
bench_stop_server() { bench_stop_group "$BENCH_SERVER"; }
bench_stop_all() {
    local g
    for g in "${_BENCH_GROUPS[@]}"; do kill -KILL -- "-$g" 2>/dev/null; done
    return 0
}

_listening() {
    # an rsocket listener is named in the software device's fabric
    [ -n "${SOFTRDMA_FABRIC:-}" ] && [ -L "$SOFTRDMA_FABRIC/cm/${BENCH_ADDR}_$1" ] && return 0
    if [ -n "$BENCH_NS_SRV" ]; then ip netns exec "$BENCH_NS_SRV" ss -Hltn "sport = :$1" | grep -q .
    else ss -Hltn "src $BENCH_ADDR and sport = :$1" | grep -q .; fi
}
# bench_wait_ready PORT LOG REGEX: a kernel listener on PORT, or (for a
# module socket, which ss cannot see) the server's banner REGEX in LOG.
# A server that died (redis-server crashes under librspreload) ends the
# wait at once and is reported as such, with its first error-looking line.
_ready() { _listening "$1" || grep -qE "$3" "$2"; }
_ready_or_gone() { _ready "$@" || _group_gone "$BENCH_SERVER"; }
bench_wait_ready() {
    wait_until 30 _ready_or_gone "$@" && _ready "$@" && return 0
    if _group_gone "$BENCH_SERVER"; then
        echo "bench: server for port $1 exited before it was ready: $(grep -m1 -iwE 'crashed|crash|error|failed|signal' "$2" || tail -n 1 "$2")" >&2
    else
        echo "bench: server on port $1 not ready: $(tail -n 2 "$2")" >&2
        bench_stop_server
    fi
    return 1
}

# A free loopback port from BASE on.
bench_port() {
    local p=$1
    while ss -Hltn "sport = :$p" | grep -q . && [ "$p" -lt $(($1 + 100)) ]; do p=$((p + 1)); done
    echo "$p"
}

# ---- the measurements ----------------------------------------------------

# Median one-way latency (usec) of a sockperf TCP ping-pong, 64 B messages.
measure_sockperf_latency() {
    local port out; port=$(bench_port 21111); out=$BENCH_TMP/sockperf.out
    bench_server "$BENCH_TMP/sockperf.srv" sockperf sr --tcp -i "$BENCH_ADDR" -p "$port"
    bench_wait_ready "$port" "$BENCH_TMP/sockperf.srv" 'to block on socket' || return 1
    bench_client timeout 60 sockperf pp --tcp -i "$BENCH_ADDR" -p "$port" -t "$BENCH_SECS" -m 64 >"$out" 2>&1
    bench_stop_server
    sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p' "$out"
}

# iperf3 between users: the server, or the client, as a worker that
# dropped privileges runs (www-data, RLIMIT_MEMLOCK 8 MiB, no capabilities).
BENCH_AS_WWW=(prlimit --memlock=8388608 setpriv --reuid=www-data --regid=www-data --clear-groups --inh-caps=-all)
# _iperf3_as VAR: iperf3 with BENCH_SRV_AS or BENCH_CLI_AS set to www-data's
_iperf3_as() {
    local -n as=$1
    as=("${BENCH_AS_WWW[@]}")
    measure_iperf3_throughput; local rc=$?
    as=(); return $rc
}
measure_iperf3_server_www() { _iperf3_as BENCH_SRV_AS; }
measure_iperf3_client_www() { _iperf3_as BENCH_CLI_AS; }

# iperf3 TCP throughput (Gbit/s) received by the server, one stream.
measure_iperf3_throughput() {
    local port; port=$(bench_port 25201)
    bench_server "$BENCH_TMP/iperf3.srv" iperf3 -s -1 --forceflush -B "$BENCH_ADDR" -p "$port"
    bench_wait_ready "$port" "$BENCH_TMP/iperf3.srv" 'Server listening' || return 1
    # stderr apart: a log line of the preload in the JSON made jq fail
    bench_client timeout 60 iperf3 -c "$BENCH_ADDR" -p "$port" -t "$BENCH_SECS" --json \
        >"$BENCH_TMP/iperf3.json" 2>"$BENCH_TMP/iperf3.err"
    bench_stop_server
    jq -r ".end.sum_received.bits_per_second / 1e9 * 1000 | round / 1000" "$BENCH_TMP/iperf3.json" 2>/dev/null ||
        { echo "bench: iperf3: no result: $(jq -r '.error // empty' "$BENCH_TMP/iperf3.json" 2>/dev/null) $(tail -n 1 "$BENCH_TMP/iperf3.err")" >&2; return 1; }
}

# redis-benchmark GET requests/s (10 clients, no pipelining).
measure_redis_rps() {
    local port; port=$(bench_port 26379)
    bench_server "$BENCH_TMP/redis.srv" redis-server --bind "$BENCH_ADDR" --port "$port" \
        --save '' --appendonly no --dir "$BENCH_TMP" --protected-mode no
    bench_wait_ready "$port" "$BENCH_TMP/redis.srv" 'Ready to accept connections' || return 1
    bench_client timeout 120 redis-benchmark -h "$BENCH_ADDR" -p "$port" -n 100000 -c 10 \
        -t get --csv >"$BENCH_TMP/redis.csv" 2>&1
    bench_stop_server
    awk -F'"' '$2 == "GET" { print $4 }' "$BENCH_TMP/redis.csv"
}

# _nginx_wrk DIR PORT [USER]: nginx (one worker) in DIR under wrk,
# requests/s for a 4 KiB file; with USER its worker runs as USER
# (master_process on, "user USER" as Debian's nginx.conf).
_nginx_wrk() {
    local dir=$1 port=$2 user=${3:-}
    nginx_prepare "$dir" "$BENCH_ADDR" "$port"
    [ -n "$user" ] && sed -i "s/^master_process off;\$/master_process on;\nuser $user;/" "$dir/nginx.conf"
    head -c 4096 /dev/urandom >"$dir/www/page.bin"
    chmod -R a+rX "$dir"
    # shellcheck disable=SC2046
    bench_server "$dir.srv" $(nginx_cmd "$dir")
    bench_wait_ready "$port" "$dir.srv" '^$never' || return 1
    bench_client timeout 60 wrk -t 1 -c 8 -d "${BENCH_SECS}s" "http://$BENCH_ADDR:$port/page.bin" \
        >"$dir.wrk" 2>&1
    bench_stop_server
    sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$dir.wrk"
}

# nginx (one process) under wrk: requests/s for a 4 KiB file.
measure_nginx_rps() { _nginx_wrk "$BENCH_TMP/nginx" "$(bench_port 28080)"; }

# The same with its worker as www-data: the responses cross from a
# process of another user to wrk (root), as with any stock nginx.
measure_nginx_www_rps() { _nginx_wrk "$BENCH_TMP/nginx-www" "$(bench_port 28090)" www-data; }

_up_listening() { ip netns exec "$BENCH_NS_CLI" ss -Hltn "sport = :$1" | grep -q .; }

# nginx as a reverse proxy (one worker, on the server host) to an
# upstream nginx on the client host (keepalive pool, HTTP/1.1), both legs
# on the side's route: wrk through the proxy, requests/s for 256 KiB.
measure_nginx_proxy_rps() {
    local port uport dir=$BENCH_TMP/nginx-px up=$BENCH_TMP/nginx-up uaddr=$IP2_B upid
    [ "$BENCH_ADDR" = "$IP_A" ] && uaddr=$IP_B
    port=$(bench_port 28100); uport=$((port + 1))
    rm -rf "$dir" "$up"
    nginx_prepare "$up" "$uaddr" "$uport"
    head -c 262144 /dev/urandom >"$up/www/obj.bin"
    # shellcheck disable=SC2046
    bench_group_in "$BENCH_NS_CLI" "$up.srv" $(nginx_cmd "$up")
    upid=$BENCH_GROUP
    wait_until 30 _up_listening "$uport" || { bench_stop_group "$upid"; echo "bench: upstream nginx did not listen" >&2; return 1; }
    nginx_prepare "$dir" "$BENCH_ADDR" "$port"
    sed -i -e "s|^    server {|    upstream up { server $uaddr:$uport; keepalive 8; }\n    server {|" \
        -e "s|^        root |        location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }\n        root |" \
        "$dir/nginx.conf"
    # shellcheck disable=SC2046
    bench_server "$dir.srv" $(nginx_cmd "$dir")
    bench_wait_ready "$port" "$dir.srv" '^$never' || { bench_stop_group "$upid"; return 1; }
    bench_client timeout 60 wrk -t 1 -c 8 -d "${BENCH_SECS}s" "http://$BENCH_ADDR:$port/obj.bin" \
        >"$dir.wrk" 2>&1
    bench_stop_server
    bench_stop_group "$upid"
    grep -q 'Non-2xx' "$dir.wrk" && { echo "bench: nginx proxy: $(grep Non-2xx "$dir.wrk")" >&2; return 1; }
    sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$dir.wrk"
}

# _nginx_syscalls_total N: system calls of an nginx server (strace -c -f,
# from start to exit) that served N keep-alive requests from one curl.
_nginx_syscalls_total() {
    local n=$1 port i urls=() dir=$BENCH_TMP/nginx-s; port=$(bench_port 28180)
    rm -rf "$dir"; nginx_prepare "$dir" "$BENCH_ADDR" "$port"
    for ((i = 0; i < n; i++)); do urls+=("http://$BENCH_ADDR:$port/index.html"); done
    # shellcheck disable=SC2046
    bench_server "$dir.srv" strace -f -c -o "$dir.strace" $(nginx_cmd "$dir")
    bench_wait_ready "$port" "$dir.srv" '^$never' || return 1
    # The client runs plainly in both modes: only the server is measured.
    local in_ns=()
    [ -n "$BENCH_NS_CLI" ] && in_ns=(ip netns exec "$BENCH_NS_CLI")
    "${in_ns[@]}" timeout 120 curl -s "${urls[@]}" </dev/null >/dev/null || return 1
    bench_stop_server
    # "% time  seconds  usecs/call  calls  [errors]  total": calls is field 4.
    awk '$NF == "total" { print $4 }' "$dir.strace"
}

# System calls per request made by the nginx server: the difference between
# a run of 2500 and one of 500 requests, so start-up and exit (the
# framework's one-time set-up included) cancel out.
measure_nginx_syscalls() {
    local small big
    small=$(_nginx_syscalls_total 500) && big=$(_nginx_syscalls_total 2500) || return 1
    awk -v s="$small" -v b="$big" 'BEGIN { printf "%.3f", (b - s) / 2000 }'
}
