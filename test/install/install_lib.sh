# shellcheck shell=bash
# Shared by the test/install scripts: a scratch directory, failure, polling
# with a deadline, and a loopback echo between two regression apps run
# under nstack-run (the server's and the client's stats checked).
set -euo pipefail
SRC=${NSTACK_SRC:?}
BUILD=${NSTACK_BUILD:?}
SCRATCH=$(mktemp -d /tmp/nstack-install.XXXXXX)
CLEANUPS=()
cleanup() {
    local c
    for c in "${CLEANUPS[@]}"; do eval "$c" || true; done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# wait_until SECONDS CMD...: retry CMD every 0.1 s until it succeeds.
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# Each run gets its own software-device fabric and nstack-run directory.
export SOFTRDMA_FABRIC=$SCRATCH/fabric XDG_RUNTIME_DIR=$SCRATCH/run
mkdir -p "$SOFTRDMA_FABRIC" "$XDG_RUNTIME_DIR"

# rsocket_echo RUN LIBEXEC: vs_epoll and vc_common, both under
# `RUN --stats --route 127.0.0.0/8=rsocket`, 2,000 messages of 1000 bytes
# echoed and verified; both ends must count the bytes on stack rsocket.
rsocket_echo() {
    local run=$1 libexec=$2 port=$((21000 + RANDOM % 8000)) spid rc=0
    VS_TIMEOUT=60 "$run" --stats --route 127.0.0.0/8=rsocket -- \
        "$libexec/vs_epoll" -s 127.0.0.1 -r "$port" -l 1000 -t 2000 -n 1 \
        >"$SCRATCH/server.log" 2>&1 &
    spid=$!
    CLEANUPS+=("kill $spid 2>/dev/null")
    wait_until 30 grep -q "listening on 127.0.0.1:$port" "$SCRATCH/server.log" ||
        { cat "$SCRATCH/server.log"; fail "server did not listen on $port"; }
    VS_TIMEOUT=60 timeout 120 "$run" --stats --route 127.0.0.0/8=rsocket -- \
        "$libexec/vc_common" -p "$port" -d 127.0.0.1 -s 127.0.0.1 -l 1000 -t 2000 -n 1 \
        >"$SCRATCH/client.log" 2>&1 || rc=$?
    wait "$spid" || rc=$((rc ? rc : $?))
    cat "$SCRATCH/server.log" "$SCRATCH/client.log"
    [ "$rc" = 0 ] || fail "echo over rsocket failed (status $rc)"
    grep -q 'vc_common: PASS' "$SCRATCH/client.log" || fail "client did not verify the echo"
    grep -Eq 'stack rsocket: sockets [0-9]+ connect 1 .*tx_bytes 2000000 rx_bytes 2000000' \
        "$SCRATCH/client.log" || fail "client's bytes not on stack rsocket"
    grep -Eq 'stack rsocket: .*accept 1 tx_bytes 2000000 rx_bytes 2000000' \
        "$SCRATCH/server.log" || fail "server's bytes not on stack rsocket"
}
