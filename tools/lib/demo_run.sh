# shellcheck shell=bash
# One demo run: vs_epoll on host A, vc_common on host B over one subnet,
# both under libnStackAPI.so (when built) with NSTACK_STATS=1, and the
# verdict. Sourced by tools/demo.sh after netns_setup.
#
#   demo_run_subnet LABEL IP_A IP_B EXPECTED_STACK OUTDIR
# sets DEMO_RESULT (a summary line) and returns 0 when the run passed.

DEMO_PORT=20000          # server port (-r, and the client's -p)
DEMO_SRC_PORT=10000      # client source port base (-a)

# _demo_flags SELF PEER: DMM's documented perf-test flags. Both apps bind
# -s (self) and the client connects to -d (peer); the DMM docs name the
# server's -d/-s the other way round, the apps here use self/peer on both.
_demo_flags() {
    echo "-p $DEMO_PORT -d $2 -a $DEMO_SRC_PORT -s $1 -l $DEMO_MSG_LEN -t $DEMO_MESSAGES" \
         "-i 0 -f 1 -r $DEMO_PORT -n 1 -w 10 -u 50000 -e 10 -x 1 --timeout=120"
}

# _demo_stack_of FILE: the stacks that carried bytes, from the framework's
# NSTACK_STATS=1 exit lines ("... stack NAME: ... tx_bytes N rx_bytes M").
_demo_stack_of() {
    sed -n 's/.*stats: stack \([A-Za-z0-9_-]*\):.*tx_bytes \([0-9]*\) rx_bytes \([0-9]*\).*/\1 \2 \3/p' "$1" |
        awk '$2 + $3 > 0 { printf "%s%s", sep, $1; sep = "+" }'
}

_demo_exec() {   # _demo_exec NS CMD...: run with the README's environment
    local ns=$1; shift
    ip netns exec "$ns" env "${DEMO_ENV[@]}" "$@"
}

demo_run_subnet() {
    local label=$1 ip_a=$2 ip_b=$3 expect=$4 out=$5
    local tag=${label//\//_}
    local srv="$out/$tag.server.log" cli="$out/$tag.client.log"
    # shellcheck disable=SC2046
    _demo_exec "$NS_A" timeout 900 "$DEMO_BIN/vs_epoll" $(_demo_flags "$ip_a" "$ip_b") \
        >"$srv" 2>&1 </dev/null &
    local spid=$!; bg_track "$spid"
    if ! wait_until 60 grep -qs '^listening on' "$srv"; then
        DEMO_RESULT=$(printf '%-16s %-8s FAIL: server did not start: %s' "$label" "$expect" "$(tail -1 "$srv")")
        return 1
    fi
    say "$label: vc_common on host B ($ip_b) -> vs_epoll on host A ($ip_a:$DEMO_PORT), $DEMO_MESSAGES x $DEMO_MSG_LEN B"
    # shellcheck disable=SC2046
    _demo_exec "$NS_B" timeout 900 "$DEMO_BIN/vc_common" $(_demo_flags "$ip_b" "$ip_a") \
        >"$cli" 2>&1 </dev/null &
    local cjob=$!; bg_track "$cjob"
    _demo_watch "$label" "$out/$tag.conns.txt"
    wait "$cjob"; local crc=$?
    wait "$spid"; local src=$?
    _demo_verdict "$label" "$expect" "$srv" "$cli" "$crc" "$src"
}

# _demo_app_pid NS COMM: sets DEMO_PID to the process COMM in namespace NS
# (the apps run under ip netns exec, env and timeout, so $! is not theirs).
_demo_app_pid() {
    local p
    DEMO_PID=""
    for p in $(ip netns pids "$1" 2>/dev/null); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && { DEMO_PID=$p; return 0; }
    done
    return 1
}

# _demo_watch LABEL CONNS_FILE: live progress of the running client (a line
# a second: messages/s and stack, from nstack-stat) and its latest
# per-connection view with the server's, kept in CONNS_FILE for the summary.
# Without the framework (no nstack-stat counters) the run is just awaited.
_demo_watch() {
    local cpid spid
    [ -x "$DEMO_BIN/nstack-stat" ] && has_lib libnStackAPI.so || return 0
    wait_until 30 _demo_app_pid "$NS_B" vc_common || return 0
    cpid=$DEMO_PID
    _demo_app_pid "$NS_A" vs_epoll; spid=$DEMO_PID
    # shellcheck disable=SC2086
    python3 "$NSTACK_SRC/tools/lib/demo_watch.py" "$1" "$DEMO_BIN/nstack-stat" \
        "$DEMO_MSG_LEN" "$2" "$cpid" $spid
}

# _demo_verdict: messages and rate from the client's final line, the stack
# from the counters of both processes, PASS when both apps passed and the
# traffic went where the configuration says.
_demo_verdict() {
    local label=$1 expect=$2 srv=$3 cli=$4 crc=$5 src=$6 seen msgs pps mbit why=""
    seen=$( { _demo_stack_of "$cli"; echo; _demo_stack_of "$srv"; } | sort -u | paste -sd/ | sed 's#^/##; s#/$##')
    msgs=$(sed -n 's/^client 0 send \([0-9]*\) .*/\1/p' "$cli")
    pps=$(sed -n 's/^client 0 send .*pps=\([0-9]*\).*/\1/p' "$cli")
    mbit=$(awk -v p="${pps:-0}" -v l="$DEMO_MSG_LEN" 'BEGIN { printf "%.1f", p * l * 8 / 1e6 }')
    [ "$crc" -eq 0 ] && grep -q 'PASS' "$cli" || why="client: $(grep -m1 -E 'FAIL|error' "$cli" || tail -1 "$cli")"
    [ -z "$why" ] && { [ "$src" -eq 0 ] && grep -q 'result=PASS' "$srv" || why="server: $(grep -m1 FAIL "$srv" || tail -1 "$srv")"; }
    if [ -z "$seen" ]; then
        seen="($expect per config)"     # framework not built or no counters
    elif [ -z "$why" ] && [ "$seen" != "$expect" ]; then
        why="traffic went to '$seen', config says '$expect'"
    fi
    local verdict=PASS; [ -n "$why" ] && verdict="FAIL: $why"
    DEMO_RESULT=$(printf '%-16s %-10s %-20s %9s msgs %9s msg/s %8s Mbit/s  %s' \
        "$label" "$expect" "$seen" "${msgs:-0}" "${pps:-0}" "$mbit" "$verdict")
    [ "$verdict" = PASS ]
}
