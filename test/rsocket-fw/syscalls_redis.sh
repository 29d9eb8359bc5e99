#!/bin/bash
# syscalls_redis.sh: system calls per redis GET on the rsocket route, both
# ends (doc/performance.md, issue 9). redis-server on host A and
# redis-benchmark (one client, GET) on host B run under the preload and
# `strace -f -c`; runs of SMALL and BIG requests are subtracted, so start-up,
# connect and exit cancel. Asserted budgets (per request):
#   server  epoll_wait 0 (a level-triggered re-check asks the module's
#           poll_recheck, which polls the CQ and asks no wait fd), at most
#           SRV_MAX calls in all (epoll_pwait, the CQ event's read, the
#           reply's process_vm_writev and the peer's eventfd write);
#   client  epoll_wait 0 as well (its epoll_ctl ADDs make no module call),
#           and no epoll_ctl: redis-benchmark deletes and re-adds its
#           socket twice per request, and an anchored socket's kernel
#           registration is kept across the DEL for the next ADD.
. "$(dirname "$0")/rsfw_lib.sh"
SMALL=${SMALL:-300}; BIG=${BIG:-1300}; SRV_MAX=${SRV_MAX:-4.3}
command -v strace >/dev/null || fail "strace not installed"
command -v redis-server >/dev/null || fail "redis-server not installed"
rsfw_setup

# run N: one server and one benchmark of N GETs, both traced; leaves
# $WORK/srv.N and $WORK/cli.N.
run() {
    local n=$1 port=$((6400 + $1 % 97))
    bg_a strace -f -c -o "$WORK/srv.$n" "${RS_ENV[@]}" redis-server --bind "$IP_A" --port "$port" \
        --save '' --appendonly no --dir "$WORK" --protected-mode no --daemonize no >"$WORK/server.$n" 2>&1
    local srv=$BG_PID cli=(rs_b timeout 60 redis-cli -h "$IP_A" -p "$port")
    wait_server_up "$srv" 60 "${cli[@]}" PING || { cat "$WORK/server.$n"; fail "redis-server did not answer PING"; }
    in_b timeout 120 strace -f -c -o "$WORK/cli.$n" "${RS_ENV[@]}" redis-benchmark -h "$IP_A" -p "$port" \
        -n "$n" -c 1 -t get --csv >"$WORK/bench.$n" 2>"$WORK/bench.err.$n" ||
        fail "redis-benchmark -n $n failed: $(tail -3 "$WORK/bench.err.$n")"
    grep -q '"GET"' "$WORK/bench.$n" || fail "redis-benchmark -n $n printed no GET result"
    expect_stack "$WORK/bench.err.$n" rsocket connect 1 "redis-benchmark"
    "${cli[@]}" SHUTDOWN NOSAVE >/dev/null 2>&1
    wait_exit "$srv" 30 >/dev/null
}
run "$SMALL"
run "$BIG"

# per SIDE SYSCALL: calls per request, to 3 decimals ("total": all of them).
per() { strace_per "$WORK/$1.$SMALL" "$WORK/$1.$BIG" $((BIG - SMALL)) "$2"; }
above() { num_above "$@"; }

for side in srv cli; do
    strace_line "$side" "$WORK/$side.$SMALL" "$WORK/$side.$BIG" $((BIG - SMALL)) \
        epoll_wait epoll_pwait epoll_ctl read write process_vm_writev total
done
[ "$(strace_count "$WORK/srv.$BIG" process_vm_writev)" -ge "$BIG" ] ||
    fail "server: fewer process_vm_writev than replies: the replies did not take the device's direct path"
above "$(per srv epoll_wait)" 0.05 && fail "server: $(per srv epoll_wait) epoll_wait per GET (the wait fd asked on every re-check)"
above "$(per cli epoll_wait)" 0.05 && fail "client: $(per cli epoll_wait) epoll_wait per GET (the wait fd asked on every re-check or ADD)"
above "$(per cli epoll_ctl)" 0.05 && fail "client: $(per cli epoll_ctl) epoll_ctl per GET (its DEL/ADD pairs reach the kernel)"
above "$(per srv total)" "$SRV_MAX" && fail "server: $(per srv total) system calls per GET, budget $SRV_MAX"
echo "PASS: system calls per GET over rsocket within budget (server $(per srv total), client $(per cli total))"
