#!/bin/bash
# conn_cpu.sh [N1 N2] [strace|perf]: CPU time and system calls per connection
# of both ends on the rsocket route, less sensitive to the shared machine's
# load than a rate. Runs rsfw_cycles (connect, 5 bytes echoed, close; client
# on test host A, server on host B, both under the preload) for N1 and for N2
# cycles and prints the difference per connection, so start-up and exit
# cancel:
#   cpu      user+system time of each process (all threads), us/connection,
#            and its voluntary context switches (sleeps) per connection
#   strace   system calls per connection of each end (strace -f -c), by call
#   perf     perf record --call-graph dwarf of both ends over N2 cycles
#            (the data files are left in $CONN_CPU_OUT, default /tmp)
#   nginx    the connrate benchmark's pair instead: ab -c 8 without
#            keep-alive (N1 and N2 requests) against one nginx process
#            serving 4 KiB; user+system CPU of nginx and of ab per connection
#   nginx-perf  the same pair (N2 requests) under perf record --call-graph
#            dwarf ($CONN_CPU_OUT/conn_cpu.{nginx,ab}.perf.data)
# Environment: NSTACK_SRC (default: this tree), NSTACK_RELEASE, NSTACK_BUILD,
# CONN_CPU_IP (default 192.168.21.181, the rsocket subnet; 192.168.22.181
# measures the kernel route). Needs root (network namespaces).
set -u
NSTACK_SRC=${NSTACK_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
NSTACK_RELEASE=${NSTACK_RELEASE:-$NSTACK_SRC/release}
NSTACK_BUILD=${NSTACK_BUILD:-$NSTACK_SRC/build}
N1=${1:-300}; N2=${2:-1300}; MODE=${3:-cpu}
OUT=${CONN_CPU_OUT:-/tmp}
PROG=$NSTACK_BUILD/test/rsocket-fw/rsfw_cycles
[ -x "$PROG" ] || { echo "conn_cpu: $PROG not built" >&2; exit 2; }
# shellcheck source=../../test/lib/netns.sh
. "$NSTACK_SRC/test/lib/netns.sh"
netns_setup || exit 2
IP=${CONN_CPU_IP:-$IP_B}
WORK=$(mktemp -d /tmp/conn_cpu.XXXXXX)
netns_remove_on_exit "$WORK"
ENV=(env "LD_LIBRARY_PATH=$NSTACK_RELEASE/lib64:$NSTACK_RELEASE/lib64/softrdma"
    "LD_PRELOAD=$NSTACK_RELEASE/lib64/libnStackAPI.so"
    "NSTACK_MOD_CFG_FILE=$NSTACK_SRC/stacks/rsocket/config/module_config.json"
    "NSTACK_MOD_CFG_RD=$NSTACK_SRC/stacks/rsocket/config/rd_config.json")
PORT=20400

# wrap SIDE N: the command prefix that measures one side of a run of N.
wrap() {
    case $MODE in
    cpu) echo /usr/bin/time -f %U:%S:%w -o "$WORK/$1.$2.time" ;;
    strace) echo strace -f -c -o "$WORK/$1.$2.strace" ;;
    perf) echo perf record -q -F 2000 --call-graph dwarf,16384 -o "$OUT/conn_cpu.$1.perf.data" ;;
    esac
}

# run N: one server and one client of N cycles.
run() {
    local n=$1 srv
    PORT=$((PORT + 1))
    # shellcheck disable=SC2046
    bg_b $(wrap server "$n") "${ENV[@]}" "$PROG" server "$IP" "$PORT" "$n" 5 >"$WORK/server.$n.out" 2>&1
    srv=$BG_PID
    wait_file_match "$WORK/server.$n.out" "^listening" 30 || { cat "$WORK/server.$n.out"; exit 1; }
    # shellcheck disable=SC2046
    in_a $(wrap client "$n") "${ENV[@]}" "$PROG" client "$IP" "$PORT" "$n" 5 >"$WORK/client.$n.out" 2>&1 ||
        { cat "$WORK/client.$n.out"; exit 1; }
    wait "$srv" || { cat "$WORK/server.$n.out"; exit 1; }
    grep -h "cycles in" "$WORK/client.$n.out"
}

# pwrap NAME: perf record's prefix for one process of the nginx pair.
pwrap() {
    [ "$MODE" = nginx-perf ] &&
        echo perf record -q -F 4000 --call-graph dwarf,16384 -o "$OUT/conn_cpu.$1.perf.data"
}

cpu_us() { awk -F: '{ printf "%.0f", ($1 + $2) * 1e6 }' "$1"; }
# sleeps FILE: voluntary context switches (the process's threads slept).
sleeps() { awk -F: '{ print $3 + 0 }' "$1"; }
# calls FILE: "name count" per system call of an strace -c summary.
calls() { awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { print $NF, $4 }' "$1"; }

# nginx_cpu N: "NGINX_US AB_US" CPU of a fresh nginx and of ab -n N.
nginx_cpu() {
    local n=$1 dir=$WORK/nginx.$1 pid t0 t1
    PORT=$((PORT + 1))
    # shellcheck source=../../test/lib/nginx.sh
    . "$NSTACK_SRC/test/lib/nginx.sh"
    nginx_prepare "$dir" "$IP" "$PORT"
    head -c 4096 /dev/urandom >"$dir/www/page.bin"
    # shellcheck disable=SC2046
    bg_b $(pwrap nginx) "${ENV[@]}" $(nginx_cmd "$dir") >"$dir/out" 2>&1
    wait_until 30 test -s "$dir/nginx.pid" || { cat "$dir/out"; exit 1; }
    pid=$(cat "$dir/nginx.pid")
    wait_until 30 sh -c "ip netns exec '$NS_B' ss -Hltn 'sport = :$PORT' | grep -q ." || exit 1
    t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    # shellcheck disable=SC2046
    in_a /usr/bin/time -f %U:%S -o "$WORK/ab.$n.time" $(pwrap ab) "${ENV[@]}" ab -q -c 8 -n "$n" \
        "http://$IP:$PORT/page.bin" >"$WORK/ab.$n.out" 2>&1 || { cat "$WORK/ab.$n.out"; exit 1; }
    t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    kill "$pid"; wait_until 10 sh -c "! kill -0 $pid 2>/dev/null"
    grep -q '^Failed requests: *0' "$WORK/ab.$n.out" || echo "conn_cpu: ab: $(grep '^Failed' "$WORK/ab.$n.out")" >&2
    echo "$(( (t1 - t0) * 1000000 / $(getconf CLK_TCK) )) $(cpu_us "$WORK/ab.$n.time")"
}

if [ "$MODE" = nginx-perf ]; then
    nginx_cpu "$N2" >/dev/null
    wait    # perf writes nginx's data after nginx exits
    echo "perf data: $OUT/conn_cpu.ab.perf.data $OUT/conn_cpu.nginx.perf.data"
    exit 0
fi
if [ "$MODE" = nginx ]; then
    read -r s1 c1 < <(nginx_cpu "$N1"); read -r s2 c2 < <(nginx_cpu "$N2")
    d=$((N2 - N1))
    echo "ab (client): $(( (c2 - c1) / d )) us CPU per connection; nginx (server): $(( (s2 - s1) / d )) us"
    exit 0
fi
if [ "$MODE" = perf ]; then
    run "$N2"
    echo "perf data: $OUT/conn_cpu.client.perf.data $OUT/conn_cpu.server.perf.data"
    exit 0
fi
run "$N1"; run "$N2"
d=$((N2 - N1))
for side in client server; do
    case $MODE in
    cpu)
        a=$(cpu_us "$WORK/$side.$N1.time"); b=$(cpu_us "$WORK/$side.$N2.time")
        w1=$(sleeps "$WORK/$side.$N1.time"); w2=$(sleeps "$WORK/$side.$N2.time")
        echo "$side: $(( (b - a) / d )) us CPU per connection ($a us at $N1, $b us at $N2)," \
            "$(awk -v a="$w1" -v b="$w2" -v d="$d" 'BEGIN { printf "%.1f", (b - a) / d }') sleeps (voluntary context switches)" ;;
    strace)
        join -a 2 -e 0 -o 0,1.2,2.2 <(calls "$WORK/$side.$N1.strace" | sort) \
            <(calls "$WORK/$side.$N2.strace" | sort) |
            awk -v d="$d" -v s="$side" '{ v = ($3 - $2) / d; t += v; if (v >= 0.05) l = l sprintf(" %s %.2f", $1, v) }
                END { printf "%s: %.1f system calls per connection:%s\n", s, t, l }' ;;
    esac
done
