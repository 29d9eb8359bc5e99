# shellcheck shell=bash
# Shared helpers of the observability tests (sourced): the rsocket test
# environment of test/rsocket-fw plus plain echo servers, held-open
# connections and nstack-stat's JSON checked with expect_conn.py.
set -u
# shellcheck source=../rsocket-fw/rsfw_lib.sh
. "$NSTACK_SRC/test/rsocket-fw/rsfw_lib.sh"
OPS_DIR=$NSTACK_SRC/test/ops
CONNS=$NSTACK_BUILD/test/ops/ops_conns
STAT=$BIN/nstack-stat
CHECK=$BIN/nstack-check
[ -x "$CONNS" ] || fail "$CONNS is not built"

# plain_echo a|b IP PORT: a kernel echo server without the preload, in the
# background (every connection echoed on its own thread).
plain_echo() {
    local host=$1 ip=$2 port=$3
    "bg_$host" python3 -c '
import socket, sys, threading
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2]))); l.listen(64)
def echo(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = l.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
' "$ip" "$port"
    local ns=$NS_A
    [ "$host" = b ] && ns=$NS_B
    wait_tcp_listen "$ns" "$ip" "$port" 10 || fail "plain echo server on $ip:$port did not start"
}

# hold NAME ENV_CMD... -- SPECS...: runs ops_conns on host B with the given
# environment command (e.g. rs_b), holding its connections until release
# NAME; sets HOLD_PID to its pid once it printed "ready" (HOLD_JOB: the
# shell's background job, for wait_exit).
hold() {
    local name=$1
    shift
    mkfifo "$WORK/$name.in"
    "$@" "$CONNS" "${HOLD_SPECS[@]}" <"$WORK/$name.in" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    HOLD_JOB=$!
    bg_track "$HOLD_JOB"
    eval "exec {HOLD_FD}>\"\$WORK/\$name.in\""
    eval "HOLD_FD_$name=\$HOLD_FD"
    wait_until 30 grep -q '^ready pid' "$WORK/$name.out" ||
        { cat "$WORK/$name.err"; fail "$name: connections not ready"; }
    HOLD_PID=$(awk '/^ready pid/ { print $3 }' "$WORK/$name.out")
}

# release NAME: ends the held connections (ops_conns exits at end of stdin).
release() {
    local v="HOLD_FD_$1"
    eval "exec ${!v}>&-"
}

# stat_json PID FILE: nstack-stat -c -j PID into FILE, checked to be JSON.
stat_json() {
    "$STAT" -c -j "$1" >"$2" || fail "nstack-stat -c -j $1 failed"
    python3 -m json.tool "$2" >/dev/null || { cat "$2"; fail "nstack-stat -j output does not parse"; }
}

expect_conn() {
    python3 "$OPS_DIR/expect_conn.py" "$@" || fail "connection record: $*"
}
