#!/bin/bash
# syscalls_demo.sh: the demo's pattern over rsocket (tools/demo.sh: DMM's
# vs_epoll on host A, vc_common on host B, one connection, 1000-byte echo;
# nonblocking sockets, the server's thread in an edge-triggered epoll, the
# client in poll()), per message on each end (doc/performance.md, issue 9):
#
# 1. system calls, with busy polling off (RS_POLLING_TIME=0: every wait
#    sleeps; strace -f -c, runs of SMALL and BIG messages subtracted so
#    start-up, connect and exit cancel): at most EPW_MAX epoll_wait on a
#    module wait fd (a nonblocking recv that finds nothing reads the wait
#    fd's other sources at most every 2 ms, and poll()'s first look is a
#    full one at most every 2 ms, its second a recheck: under strace a
#    message takes 0.1-0.5 ms, so a few per 2 ms; it was 2.0 on the server
#    and 2.4-2.9 on the client), at most SRV_MAX / CLI_MAX calls in
#    all (the data's process_vm_writev, the peer's eventfd write, the
#    sleep, our CQ event's read);
# 2. sleeps (voluntary context switches, wait4's rusage), with a busy-poll
#    budget no answer misses (RS_POLLING_TIME=100000: 100 ms): a wait
#    that finds nothing looks at its sockets before it sleeps, so neither
#    end sleeps per message (at most SLEEP_MAX); the same run with
#    RS_POLLING_TIME=0 sleeps once per message on the server and on about
#    half of them on the client (both together at least SLEEP_MIN: the
#    measure sees sleeps).
# Every echo is checked by vc_common; the counters show rsocket carried it.
. "$(dirname "$0")/rsfw_lib.sh"
SMALL=${SMALL:-1000}; BIG=${BIG:-6000}; N=${N:-20000}
SRV_MAX=${SRV_MAX:-5.0}; CLI_MAX=${CLI_MAX:-5.0}; EPW_MAX=${EPW_MAX:-0.5}
SLEEP_MAX=${SLEEP_MAX:-0.2}; SLEEP_MIN=${SLEEP_MIN:-0.5}
command -v strace >/dev/null || fail "strace not installed"
command -v python3 >/dev/null || fail "python3 not installed"
rsfw_setup

# flags SELF PEER N: tools/lib/demo_run.sh's (DMM's perf-test line).
flags() {
    echo "-p 20000 -d $2 -a 10000 -s $1 -l 1000 -t $3 -i 0 -f 1 -r 20000 -n 1 -w 10 -u 50000 -e 10 -x 1 --timeout=60"
}

# pair TAG N WRAP_A WRAP_B ENV...: one server and one client of N messages,
# each command prefixed by its WRAP (words; "-" for none) and run with the
# README environment plus ENV; logs $WORK/{srv,cli}.TAG.
pair() {
    local tag=$1 n=$2 wa=$3 wb=$4; shift 4
    [ "$wa" = - ] && wa=""; [ "$wb" = - ] && wb=""
    # shellcheck disable=SC2086,SC2046
    bg_a $wa "${RS_ENV[@]}" "$@" "$BIN/vs_epoll" $(flags "$IP_A" "$IP_B" "$n") >"$WORK/srv.$tag" 2>&1
    local srv=$BG_PID
    wait_file_match "$WORK/srv.$tag" "^listening" 30 || { cat "$WORK/srv.$tag"; fail "$tag: server did not listen"; }
    # shellcheck disable=SC2086,SC2046
    in_b timeout 120 $wb "${RS_ENV[@]}" "$@" "$BIN/vc_common" $(flags "$IP_B" "$IP_A" "$n") \
        >"$WORK/cli.$tag" 2>&1 || { cat "$WORK/cli.$tag"; fail "$tag: client failed"; }
    wait_exit "$srv" 60 || { cat "$WORK/srv.$tag"; fail "$tag: server failed"; }
    expect_line "$WORK/cli.$tag" "^vc_common: PASS: 1 connection\(s\) x $n message\(s\) of 1000 bytes" "$tag: client verdict"
    expect_line "$WORK/srv.$tag" "result=PASS$" "$tag: server verdict"
    expect_stack "$WORK/cli.$tag" rsocket tx_bytes $((n * 1000)) "$tag: client"
    expect_stack "$WORK/srv.$tag" rsocket tx_bytes $((n * 1000)) "$tag: server"
}

# per SIDE SYSCALL: calls per message between the two runs.
per() { strace_per "$WORK/$1.$SMALL.sc" "$WORK/$1.$BIG.sc" $((BIG - SMALL)) "$2"; }
above() { num_above "$@"; }

# 1. system calls per message, every wait sleeping
for n in "$SMALL" "$BIG"; do
    pair "sc$n" "$n" "strace -f -c -o $WORK/srv.$n.sc" "strace -f -c -o $WORK/cli.$n.sc" RS_POLLING_TIME=0
done
for side in srv cli; do
    strace_line "$side" "$WORK/$side.$SMALL.sc" "$WORK/$side.$BIG.sc" $((BIG - SMALL)) \
        epoll_wait epoll_pwait ppoll read write process_vm_writev total
done
above "$(per srv epoll_wait)" "$EPW_MAX" && fail "server: $(per srv epoll_wait) epoll_wait per message (a module wait fd asked on every EAGAIN or wait)"
above "$(per cli epoll_wait)" "$EPW_MAX" && fail "client: $(per cli epoll_wait) epoll_wait per message (a module wait fd asked on every EAGAIN or poll)"
above "$(per srv total)" "$SRV_MAX" && fail "server: $(per srv total) system calls per message, budget $SRV_MAX"
above "$(per cli total)" "$CLI_MAX" && fail "client: $(per cli total) system calls per message, budget $CLI_MAX"

# 2. sleeps per message: busy polling on (a budget no answer misses) and off
sleeps() {   # sleeps TAG SIDE: voluntary context switches per message
    awk -v n="$N" '{ printf "%.3f", $2 / n }' "$WORK/$2.$1.ru"
}
for mode in on off; do
    t=$([ $mode = on ] && echo 100000 || echo 0)
    pair "$mode" "$N" "python3 $RSFW_DIR/rusage_run.py $WORK/srv.$mode.ru" \
        "python3 $RSFW_DIR/rusage_run.py $WORK/cli.$mode.ru" RS_POLLING_TIME=$t
    echo "busy polling $mode: sleeps per message: server $(sleeps $mode srv), client $(sleeps $mode cli)"
done
for side in srv cli; do
    above "$(sleeps on $side)" "$SLEEP_MAX" &&
        fail "$side: $(sleeps on $side) sleeps per message with busy polling (RS_POLLING_TIME=100000), at most $SLEEP_MAX"
done
off=$(awk -v a="$(sleeps off srv)" -v b="$(sleeps off cli)" 'BEGIN { printf "%.3f", a + b }')
above "$SLEEP_MIN" "$off" && fail "$off sleeps per message on both ends without busy polling: the measure does not see the sleeps"
echo "PASS: demo pattern over rsocket: system calls per message server $(per srv total), client $(per cli total); sleeps per message with busy polling server $(sleeps on srv), client $(sleeps on cli)"
