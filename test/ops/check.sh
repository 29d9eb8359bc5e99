#!/bin/bash
# nstack-check between the hosts: against its own --serve side under the
# framework (rsocket, upgraded: exit 0), a plain TCP server (TCP fallback,
# the reason printed: exit 1), a closed port (error: exit 2); once started
# without the preload (it runs itself under it through nstack-run with
# --config) and once already under it; the --serve side says what carried
# each client.
. "$NSTACK_SRC/test/ops/ops_lib.sh"
rsfw_setup
CFG=$NSTACK_SRC/stacks/rsocket/config

bg_a "${RS_ENV[@]}" "$CHECK" --serve 7001 --count 2 >"$WORK/srv.out" 2>&1
SRV_JOB=$BG_PID
wait_tcp_listen "$NS_A" 0.0.0.0 7001 10 || fail "nstack-check --serve did not start"
plain_echo a 192.168.21.180 7002

# expect_check NAME STATUS REGEX CMD...: exit status and one stdout/stderr line.
expect_check() {
    local name=$1 want=$2 re=$3 rc=0
    shift 3
    "$@" >"$WORK/$name.out" 2>&1 || rc=$?
    [ "$rc" = "$want" ] || { cat "$WORK/$name.out"; fail "$name: exit status $rc, expected $want"; }
    expect_line "$WORK/$name.out" "$re" "$name"
}

# 1. not under the preload: re-executes itself through nstack-run
expect_check reexec 0 \
    "^nstack-check: 192.168.21.180:7001: Success: carried by rsocket \(upgraded\); route: ip_route\[0\] 192.168.21.0/24 -> rsocket; 65536 bytes checked each way$" \
    in_b env -u LD_PRELOAD "$CHECK" --config "$CFG" 192.168.21.180:7001
# 2. already under it, a larger pattern
expect_check preloaded 0 "Success: carried by rsocket \(upgraded\).* 1048576 bytes checked each way" \
    rs_b "$CHECK" --bytes 1048576 192.168.21.180:7001
# 3. a plain TCP server: TCP fallback with the reason
expect_check plain 1 \
    "^nstack-check: 192.168.21.180:7002: TCP fallback: carried by kernel \(stayed-on-TCP\): peer does not run the framework; route: ip_route\[0\]" \
    in_b env -u LD_PRELOAD "$CHECK" --config "$CFG" 192.168.21.180:7002
# 4. a closed port: an error
expect_check closed 2 "^nstack-check: 192.168.21.180:7009: connect: Connection refused$" \
    rs_b "$CHECK" 192.168.21.180:7009
# 5. usage errors
expect_check usage 2 "expected HOST:PORT" rs_b "$CHECK" 192.168.21.180
expect_check usage2 2 "unknown option '--frobnicate'" "$CHECK" --frobnicate 1 x:1

wait_exit "$SRV_JOB" 20 || fail "nstack-check --serve did not end after 2 clients"
[ "$(grep -c 'nstack-check: client 192.168.21.181:[0-9]*: Success: carried by rsocket (upgraded)' "$WORK/srv.out")" = 2 ] ||
    { cat "$WORK/srv.out"; fail "the --serve side did not report two upgraded clients"; }
echo "ops.check: ok"
