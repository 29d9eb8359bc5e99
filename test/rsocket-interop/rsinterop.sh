#!/bin/bash
# rsinterop.sh SCENARIO ref-server|ref-client [rsocket|nstack|swapped]
#
# One interop scenario between rs_ref_peer (clean-room rsockets v1 peer on
# rdma_cm + verbs) and the engine, over the software RDMA device between
# two namespace hosts of test/lib/netns.sh. The server runs on host A
# (192.168.21.180), the client on host B. The engine end is
#   rsocket  rs_engine_peer (rsocket API) with LD_PRELOAD=libdmm_rsocket.so
#   nstack   rs_sock_peer (plain sockets) under libnStackAPI.so, with
#            192.168.21.0/24 routed to the rsocket stack
#   nstack-nb  as nstack, the client's connect nonblocking, the server's
#            accept waited for with epoll
#   swapped  as rsocket, but the reference peer announces a big-endian
#            host (NET flag): the engine must write the SGL and iomap
#            entries it sends us byte-swapped, and read ours unswapped
# Both ends must report "<scenario> server|client OK" and exit 0.
set -u
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}" "${NSTACK_BUILD:?}"
SCEN=${1:?scenario}; DIR=${2:?ref-server|ref-client}; API=${3:-rsocket}
IBIN=$NSTACK_BUILD/test/rsocket-interop
SOFT=$NSTACK_RELEASE/lib64/softrdma
PORT=7490
STEP_TIMEOUT=${RSINTEROP_TIMEOUT:-400}

if [ "$API" = nstack ] || [ "$API" = nstack-nb ]; then
    # shellcheck source=../rsocket-fw/rsfw_lib.sh
    . "$NSTACK_SRC/test/rsocket-fw/rsfw_lib.sh"
    rsfw_setup
    ENGINE=("${RS_ENV[@]}" "$IBIN/rs_sock_peer")
    # nstack-nb: the client's connect is nonblocking (waited for with
    # epoll, SO_ERROR, getpeername), the server waits for its connection
    # with epoll
    [ "$API" = nstack-nb ] &&
        ENGINE=("${RS_ENV[@]}" PEER_CONNECT_NONBLOCK=1 PEER_WAIT_EPOLL=1 "$IBIN/rs_sock_peer")
    dir=$WORK
else
    . "$NSTACK_SRC/test/lib/netns.sh"
    [ -e "$SOFT/librdmacm.so.1" ] || { echo "FAIL: softrdma missing: $SOFT"; exit 1; }
    netns_setup || { echo "FAIL: netns_setup"; exit 1; }
    dir=$(mktemp -d /tmp/rsinterop.XXXXXX)
    netns_remove_on_exit "$dir"
    ENGINE=(env "LD_LIBRARY_PATH=$SOFT" "LD_PRELOAD=$NSTACK_RELEASE/lib64/libdmm_rsocket.so"
            "$IBIN/rs_engine_peer")
fi
REF=(env "LD_LIBRARY_PATH=$SOFT" "$IBIN/rs_ref_peer")
[ "$API" = swapped ] && REF=(env "REF_CLAIM_BIG_ENDIAN=1" "${REF[@]:1}")

fail() {
    local f
    for f in "$dir"/*.log; do echo "--- $f:"; cat "$f"; done
    echo "FAIL: $SCEN $DIR $API: $*"
    exit 1
}

if [ "$DIR" = ref-server ]; then
    SERVER=("${REF[@]}"); CLIENT=("${ENGINE[@]}")
elif [ "$DIR" = ref-client ]; then
    SERVER=("${ENGINE[@]}"); CLIENT=("${REF[@]}")
else
    echo "FAIL: direction must be ref-server or ref-client, not '$DIR'"; exit 2
fi

bg_a timeout "$STEP_TIMEOUT" "${SERVER[@]}" server "$IP_A" "$PORT" "$SCEN" >"$dir/server.log" 2>&1
srv=$BG_PID
wait_file_match "$dir/server.log" LISTENING 60 || fail "server did not listen"
in_b timeout "$STEP_TIMEOUT" "${CLIENT[@]}" client "$IP_A" "$PORT" "$SCEN" >"$dir/client.log" 2>&1
crc=$?
wait_until "$STEP_TIMEOUT" sh -c "! kill -0 $srv 2>/dev/null" || fail "server still running"
wait "$srv"; src=$?
[ "$crc" -eq 0 ] || fail "client exit status $crc"
[ "$src" -eq 0 ] || fail "server exit status $src"
grep -q "$SCEN client OK" "$dir/client.log" || fail "no client verdict"
grep -q "$SCEN server OK" "$dir/server.log" || fail "no server verdict"
if grep -h "PROTOCOL VIOLATION" "$dir"/*.log; then fail "protocol violation"; fi
grep -h -e "rs_ref_peer: stats:" -e "rs_ref_peer: peer conn data" "$dir"/*.log
if [ "$API" = nstack ]; then
    log=$dir/server.log; [ "$DIR" = ref-server ] && log=$dir/client.log
    expect_stack "$log" rsocket sockets 1 "the plain-socket end did not use the rsocket stack"
fi
echo "PASS: $SCEN $DIR $API"
