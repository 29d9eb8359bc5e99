#!/bin/bash
# Protocol cases of the engine through the standard rsocket API
# (rs_api_test with LD_PRELOAD=libdmm_rsocket.so), server on host A,
# client on host B:
#  iomap   both sides riomap, then only riowrite (each riowrite publishes
#          the writer's own pending mappings first); data verified by
#          pattern; unmapped offset, past-the-end, riounmap and riomap
#          argument errors with their errno.
#  close   the server closes each accepted socket at once, with SO_LINGER
#          {1,0} and with RS_CLOSE_TIMEOUT_MS=0: a raw verbs peer
#          (rs_bad_peer "disc", which never reads CM events) must get the
#          in-band DISCONNECT, and an engine peer blocked in rrecv gets 0.
#  iwarp   with the device reporting iWARP (SOFTRDMA_TRANSPORT=iwarp) the
#          engine refuses it: a listener rejects (the peer's connect gets
#          ECONNREFUSED), a connect fails with ENOTSUP; one log line each.
#  resolve address and route resolutions that time out (test preload
#          rs_resolve_fault.so) are retried with 1000<<n ms: one timeout
#          of each and the connection works (riomap session); endless
#          timeouts end in ETIMEDOUT within RS_CONNECT_TIMEOUT_MS.
set -u
BIN="$NSTACK_BUILD/test/rsocket/rs_api_test"
BAD="$NSTACK_BUILD/test/rsocket/rs_bad_peer"
FAULT="$NSTACK_BUILD/test/rsocket/rs_resolve_fault.so"
LIB="$NSTACK_RELEASE/lib64/libdmm_rsocket.so"
. "$NSTACK_SRC/test/rsocket/rs_test_env.sh"
port=7480

# start_server NAME MODE ARGS... [env settings via SRV_ENV]: server on A on
# the next port, waiting until it listens; SRV is its pid.
start_server() {
    local name=$1; shift
    port=$((port + 1))
    bg_a env LD_PRELOAD="$LIB" ${SRV_ENV:-} "$BIN" "$@" "$IP_A" "$port" ${SRV_ARGS:-} \
        >"$dir/$name.srv" 2>&1
    SRV=$BG_PID
    wait_file_match "$dir/$name.srv" LISTENING 30 || fail "$name: server did not listen"
}
# client NAME MODE ARGS...: client on B against the current port.
client() {
    local name=$1 mode=$2; shift 2
    timeout 120 ip netns exec "$NS_B" env LD_PRELOAD="$LIB" ${CLI_ENV:-} \
        "$BIN" "$mode" "$IP_A" "$port" "$@" >"$dir/$name.cli" 2>&1
}
server_ok() {
    timeout 60 tail --pid="$SRV" -f /dev/null
    wait "$SRV" || fail "$1: server exit status"
}

# riomap / riowrite
start_server iomap iomap-server
client iomap iomap-client || fail "iomap: client"
server_ok iomap
grep -q "IOMAP OK" "$dir/iomap.srv" && grep -q "IOMAP OK" "$dir/iomap.cli" ||
    fail "iomap: no verdict line"
echo "iomap: ok"

# close at once: the in-band DISCONNECT is still sent
for how in linger tunable; do
    if [ $how = linger ]; then SRV_ENV=; SRV_ARGS="2 linger"
    else SRV_ENV="RS_CLOSE_TIMEOUT_MS=0"; SRV_ARGS="2 plain"; fi
    start_server "close-$how" close-server
    timeout 120 ip netns exec "$NS_B" "$BAD" "$IP_A" "$port" disc \
        >"$dir/close-$how.bad" 2>&1 || fail "close ($how): no in-band DISCONNECT"
    client "close-$how" eof-client || fail "close ($how): rrecv did not see EOF"
    server_ok "close-$how"
    echo "close ($how): ok"
done
SRV_ENV=; SRV_ARGS=

# iWARP refused on both sides
SRV_ENV="SOFTRDMA_TRANSPORT=iwarp" start_server iwarp refuse-server
client iwarp-passive connect-expect ECONNREFUSED || fail "iwarp: listener did not refuse"
CLI_ENV="SOFTRDMA_TRANSPORT=iwarp" client iwarp-active connect-expect ENOTSUP ||
    fail "iwarp: connect did not fail with ENOTSUP"
wait_until 30 grep -q "incoming connection rejected: .*iWARP" "$dir/iwarp.srv" ||
    fail "iwarp: no log line from the listener"
kill -0 "$SRV" 2>/dev/null || fail "iwarp: listener died"
kill "$SRV"
[ "$(grep -c iWARP "$dir/iwarp.srv")" -eq 1 ] || fail "iwarp: listener: want one log line"
[ "$(grep -c iWARP "$dir/iwarp-active.cli")" -eq 1 ] || fail "iwarp: connect: want one log line"
[ "$(grep -c iWARP "$dir/iwarp-passive.cli")" -eq 0 ] || fail "iwarp: the InfiniBand side logged iWARP"
echo "iwarp: ok"

# timed-out resolutions are retried
start_server resolve iomap-server
CLI_ENV="LD_PRELOAD=$LIB:$FAULT RS_FAULT_ADDR_TIMEOUTS=1 RS_FAULT_ROUTE_TIMEOUTS=1 RS_RESOLVE_TIMEOUT_MS=300" \
    client resolve iomap-client || fail "resolve: connect after one timeout per stage"
server_ok resolve
grep -q "address resolution will time out after 300 ms" "$dir/resolve.cli" &&
    grep -q "route resolution will time out after 300 ms" "$dir/resolve.cli" ||
    fail "resolve: the faults were not armed"
grep -q "IOMAP OK" "$dir/resolve.cli" || fail "resolve: no verdict line"
CLI_ENV="LD_PRELOAD=$LIB:$FAULT RS_FAULT_ADDR_TIMEOUTS=100 RS_RESOLVE_TIMEOUT_MS=300 RS_CONNECT_TIMEOUT_MS=2500" \
    client resolve-bound connect-expect ETIMEDOUT || fail "resolve: endless timeouts"
grep -q "address resolution will time out after 2000 ms" "$dir/resolve-bound.cli" ||
    fail "resolve: no retry with 1000<<1 ms"
echo "resolve: ok"

echo PASS
