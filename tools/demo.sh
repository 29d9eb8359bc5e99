#!/usr/bin/env bash
# demo.sh - the main job: DMM's regression apps vs_epoll (server, host A)
# and vc_common (client, host B) between two test hosts, one subnet on the
# rsocket stack and one on the kernel stack, under libnStackAPI.so.
#
#   tools/demo.sh            installs what is missing, builds, runs, summarises
#   DEMO_MESSAGES=50000 tools/demo.sh    a shorter run (default 500000)
#
# While each subnet runs, a line a second shows the client's messages/s and
# the stack carrying them (nstack-stat); the end shows nstack-stat -c of both
# apps (their last sample before exit), then the summary table.
#
# 192.168.21.0/24 goes to rsocket when release/lib64/libdmm_rsocket.so and
# the software RDMA device (release/lib64/softrdma) are built; until then
# both subnets run on the kernel stack (the summary says so).
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$NSTACK_SRC/test/lib/netns.sh"
. "$NSTACK_SRC/test/lib/nstack_env.sh"
. "$NSTACK_SRC/tools/lib/demo_run.sh"

DEMO_MESSAGES=${DEMO_MESSAGES:-500000}
DEMO_MSG_LEN=${DEMO_MSG_LEN:-1000}
DEMO_BIN=$NSTACK_RELEASE/bin

prepare() {
    need_root "tools/demo.sh"
    # DEMO_NO_BUILD=1: the tree is built already (test/ops/demo.sh runs
    # under ctest, which must not relink what parallel tests are running)
    if [ "${DEMO_NO_BUILD:-0}" != 1 ]; then
        "$NSTACK_SRC/tools/deps.sh" || die "installing dependencies failed"
        say "building $NSTACK_BUILD -> $NSTACK_RELEASE"
        build_tree "$NSTACK_BUILD"
    fi
    local app
    for app in vs_epoll vc_common; do
        [ -x "$DEMO_BIN/$app" ] ||
            die "$DEMO_BIN/$app is not built: the regression apps (apps/) are not in this tree yet"
    done
}

# Chooses the stacks, writes the config, fills DEMO_ENV; sets DEMO_NOTE.
configure_stacks() {
    DEMO_CFG=$(mktemp -d /tmp/nstack-demo.XXXXXX)
    STACK21=kernel; DEMO_NOTE=""
    if rsocket_usable; then
        STACK21=rsocket
    else
        DEMO_NOTE="rsocket stack not built yet (release/lib64/libdmm_rsocket.so + softrdma): both subnets run on the kernel stack"
    fi
    nstack_write_config "$DEMO_CFG" "$STACK21" "$NSTACK_RELEASE/lib64/libdmm_rsocket.so"
    if has_lib libnStackAPI.so; then
        nstack_preload_env "$NSTACK_RELEASE" "$DEMO_CFG"
        DEMO_ENV=("${NSTACK_PRELOAD_ENV[@]}" NSTACK_STATS=1)
    else
        DEMO_ENV=(NSTACK_STATS=1)
        DEMO_NOTE="${DEMO_NOTE:+$DEMO_NOTE; }libnStackAPI.so not built yet: the apps run without the framework (plain kernel sockets)"
    fi
    say "config: $DEMO_CFG (192.168.21.0/24 -> $STACK21, 192.168.22.0/24 -> kernel)"
    printf '    export %s\n' "${DEMO_ENV[@]}"
}

main() {
    prepare
    netns_setup || die "could not create the test hosts (network namespaces)"
    configure_stacks
    local logs=$DEMO_CFG results=() failed=0
    demo_run_subnet 192.168.21.0/24 "$IP_A" "$IP_B" "$STACK21" "$logs" || failed=1
    results+=("$DEMO_RESULT")
    demo_run_subnet 192.168.22.0/24 "$IP2_A" "$IP2_B" kernel "$logs" || failed=1
    results+=("$DEMO_RESULT")

    echo
    echo "==================== per connection (nstack-stat -c, last sample before exit) ===================="
    local f
    for f in "$logs"/*.conns.txt; do
        [ -s "$f" ] || continue
        echo "--- $(basename "$f" .conns.txt | tr _ /)"
        cat "$f"
    done
    echo
    echo "==================== tools/demo.sh summary ===================="
    printf '%-16s %-10s %-20s %14s %15s %15s  %s\n' subnet config "stack (counters)" messages rate throughput result
    printf '%s\n' "${results[@]}"
    [ -n "$DEMO_NOTE" ] && echo "note: $DEMO_NOTE"
    echo "logs: $logs"
    if [ "$failed" -eq 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
    return "$failed"
}

main "$@"
