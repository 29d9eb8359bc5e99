#!/bin/bash
# Late connect fallback: a nonblocking shadow connect to a plain kernel
# server answers EINPROGRESS and fails later (the shadow's port space has
# no listener). Without "fallback" the app sees ECONNREFUSED through its
# event call; with "fallback": "kernel" it must see a connect in progress
# that completes on the kernel - through epoll (level- and edge-triggered,
# and a dup made before the connect), poll, select and SO_ERROR alone -
# then a digest-checked echo, one INF line and the fallback counter at 1.
TEST_NAME=multistack.fallback_late
. "$NSTACK_SRC/test/multistack/ms_lib.sh"
NB="$NSTACK_BUILD/test/multistack/ms_nbconnect"
[ -x "$NB" ] || fail "$NB not built"
HOWS="epoll-lt epoll-et epoll-dup poll select sockopt"

# nb ARGS...: ms_nbconnect on host B, preloaded, with the log and counters.
nb() {
    in_b env NSTACK_LOG_ON=INF NSTACK_STATS=1 NSTACK_MOD_CFG_FILE="$WORK/module.json" \
        NSTACK_MOD_CFG_RD="$WORK/rd.json" LD_PRELOAD="$LIB" "$NB" "$@" 2>&1
}

start_server plain 6 0 plain

write_config "" ""
for how in epoll-lt poll select sockopt; do
    out=$(nb refused "$IP_A" "$PORT" "$how") || fail "without fallback ($how): $out"
    echo "$out" | grep -q 'falling back' && fail "fallback without the config key ($how): $out"
done

write_config "" ', "fallback": "kernel"'
for how in $HOWS; do
    out=$(nb ok "$IP_A" "$PORT" "$BYTES" "$how") || fail "with fallback ($how): $out"
    echo "$out" | grep -q "^ok $how\$" || fail "client ($how) did not finish: $out"
    [ "$(echo "$out" | grep -c 'falling back to kernel')" = 1 ] ||
        fail "expected one INF line about the fallback ($how): $out"
    echo "$out" | grep -q "stats: connect fallbacks to kernel: 1" || fail "fallback counter ($how): $out"
    echo "$out" | grep -q "stats: stack kernel: sockets 1 connect 1 " || fail "kernel counters ($how): $out"
done

finish_server plain
[ "$(grep -c "^accepted $IP_B\$" "$WORK/plain.out")" = 6 ] ||
    fail "the kernel server did not see six clients: $(cat "$WORK/plain.out")"
echo "multistack.fallback_late: ok"
