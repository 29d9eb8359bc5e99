# shellcheck shell=bash
# Shared helpers of the rsocket-through-the-framework tests (sourced).
#
# The README environment, literally: the dispatcher preloaded, the release
# libraries and the software RDMA device on the library path, the module
# and route configs of stacks/rsocket/config (192.168.21.0/24 and fd21::/64
# -> rsocket, 192.168.22.0/24 -> kernel). Each test gets its own two hosts
# (test/lib/netns.sh) and so its own private RDMA fabric.
set -u
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}" "${NSTACK_BUILD:?}"
# shellcheck source=../lib/netns.sh
. "$NSTACK_SRC/test/lib/netns.sh"

BIN=$NSTACK_RELEASE/bin
RSFW_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d /tmp/rsfw-test.XXXXXX)
export VS_TIMEOUT=${VS_TIMEOUT:-60}

fail() { echo "FAIL: $*" >&2; exit 1; }

# The four exports of the README, plus the per-stack counters at exit.
RS_ENV=(env
    "LD_LIBRARY_PATH=$NSTACK_RELEASE/lib64:$NSTACK_RELEASE/lib64/softrdma"
    "LD_PRELOAD=$NSTACK_RELEASE/lib64/libnStackAPI.so"
    "NSTACK_MOD_CFG_FILE=$NSTACK_SRC/stacks/rsocket/config/module_config.json"
    "NSTACK_MOD_CFG_RD=$NSTACK_SRC/stacks/rsocket/config/rd_config.json"
    "NSTACK_STATS=1")

for f in libnStackAPI.so libdmm_rsocket.so softrdma/libibverbs.so.1 softrdma/librdmacm.so.1; do
    [ -e "$NSTACK_RELEASE/lib64/$f" ] || fail "$NSTACK_RELEASE/lib64/$f is not built"
done

rsfw_cleanup() { netns_cleanup; rm -rf "$WORK"; }

rsfw_setup() {
    netns_setup || fail "netns_setup"
    trap rsfw_cleanup EXIT
}

# expect_line FILE REGEX WHAT: FILE has a line matching REGEX.
expect_line() {
    grep -qE -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "$3"; }
}

# stack_count FILE STACK FIELD: the value of FIELD (sockets, connect, accept,
# tx_bytes, rx_bytes) in the NSTACK_STATS=1 exit line for STACK, summed over
# every process that wrote to FILE; 0 when the stack never appeared.
stack_count() {
    awk -v st="$2" -v f="$3" '
        /nstack\[[0-9]+\]: stats: stack / {
            if ($3 != "stack" || $4 != st ":") next
            for (i = 5; i < NF; i++) if ($i == f) s += $(i + 1)
        }
        END { print s + 0 }' "$1"
}

# expect_stack FILE STACK FIELD MIN WHAT: the counter is at least MIN.
expect_stack() {
    local v
    v=$(stack_count "$1" "$2" "$3")
    [ "$v" -ge "$4" ] || { echo "--- $1:"; grep 'stats:' "$1"; fail "$5: stack $2 $3=$v, expected >= $4"; }
}

# expect_stack_zero FILE STACK FIELD WHAT: the counter is 0.
expect_stack_zero() {
    local v
    v=$(stack_count "$1" "$2" "$3")
    [ "$v" -eq 0 ] || { echo "--- $1:"; grep 'stats:' "$1"; fail "$4: stack $2 $3=$v, expected 0"; }
}

# wait_exit PID SECONDS: wait for a background process, return its status.
wait_exit() {
    wait_until "$2" sh -c "! kill -0 $1 2>/dev/null" || { echo "pid $1 still running after $2 s" >&2; return 124; }
    wait "$1"
}

# rs_a / rs_b CMD...: run CMD on a host in the README environment.
rs_a() { in_a "${RS_ENV[@]}" "$@"; }
rs_b() { in_b "${RS_ENV[@]}" "$@"; }

# wait_server_up PID SECONDS CMD...: an rsocket listener is invisible to ss,
# so retry a harmless client command until it succeeds; fails early if the
# server process died.
wait_server_up() {
    local pid=$1 secs=$2; shift 2
    wait_until "$secs" _server_up_or_dead "$pid" "$@" || return 1
    kill -0 "$pid" 2>/dev/null
}
_server_up_or_dead() { local pid=$1; shift; ! kill -0 "$pid" 2>/dev/null || "$@" >/dev/null 2>&1; }

# iperf3_client ARGS...: iperf3 -c on host B (README environment) into
# $WORK/client.json / client.err, retried (up to 60 times, 1 s apart) while
# the connect is refused: an rsocket listener is invisible to ss and
# `iperf3 -s --json` prints nothing before a test. iperf3 3.12 with --json
# exits 0 even when it could not connect (the reason is only in the JSON's
# "error"), so success is exit status 0 and no "error": on a loaded machine
# the first try is often refused, and counting it as a run left the server
# waiting for a test forever. Fails the test naming the reason.
iperf3_client() {
    local ok=0 rc err try
    for try in $(seq 1 60); do
        rc=0
        in_b "${RS_ENV[@]}" timeout 120 iperf3 "$@" --json >"$WORK/client.json" 2>"$WORK/client.err" || rc=$?
        err=$(jq -r '.error // empty' "$WORK/client.json" 2>/dev/null)
        [ "$rc" = 0 ] && [ -z "$err" ] && { ok=1; break; }
        grep -q "Connection refused" "$WORK/client.json" "$WORK/client.err" || break
        wait_until 1 false
    done
    [ $ok = 1 ] || { cat "$WORK/client.json" "$WORK/client.err"; fail "iperf3 $* failed (exit $rc${err:+, error: $err})"; }
}

# strace -f -c summaries of two runs, SMALL and BIG requests, subtracted so
# start-up, connect and exit cancel (syscalls_*.sh).
# strace_count FILE SYSCALL: calls of SYSCALL in a summary (0 if absent).
strace_count() { awk -v s="$2" '$NF == s { print $4; f = 1 } END { if (!f) print 0 }' "$1"; }
# strace_per SMALL_FILE BIG_FILE N SYSCALL: calls per request between the
# two runs (N requests apart), to 3 decimals ("total": all of them).
strace_per() {
    local a b
    a=$(strace_count "$1" "$4"); b=$(strace_count "$2" "$4")
    awk -v a="$a" -v b="$b" -v n="$3" 'BEGIN { printf "%.3f", (b - a) / n }'
}
# strace_line LABEL SMALL_FILE BIG_FILE N SYSCALL...: "LABEL: sc n sc n ...".
strace_line() {
    local label=$1 a=$2 b=$3 n=$4 line sc; shift 4
    line="$label:"
    for sc in "$@"; do line="$line $sc $(strace_per "$a" "$b" "$n" "$sc")"; done
    echo "$line"
}
# num_above V MAX: V > MAX (decimal numbers).
num_above() { awk -v v="$1" -v m="$2" 'BEGIN { exit !(v > m) }'; }
