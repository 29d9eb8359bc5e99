#!/bin/bash
# run_sem.sh MODE PROGRAM [CASE...] - run one semantic test program.
#
#   kernel          plain kernel, no preload, loopback (validates the test)
#   preload         LD_PRELOAD libnStackAPI.so, no config (pass-through), loopback
#   preload-kernel  preload; config routes the test subnets to the kernel stack;
#                   runs on namespace host A against its own 192.168.21.180/fd21::180
#   preload-shadow  same, routed to the shadow test module, whose stream
#                   connections are TCP-anchored (doc/fork.md); afterwards the
#                   shadow's byte counters must show that it carried traffic
#                   (sem_anchor: and the framework's counters that connections
#                   were anchored and that the plain-peer cases stayed on TCP)
#   preload-shadow-direct  the same route with NSTACK_ANCHOR=0: direct module
#                   sockets (the app fd is a dup of the module's wait fd)
#   preload-shadow-fallback / preload-shadow-decline  anchored, but the shadow
#                   keeps every connection on TCP (SHADOW_ANCHOR=fallback:
#                   NSTACK_EV_FALLBACK / ENOPROTOOPT after anchor(); =decline:
#                   anchor() fails with ENOPROTOOPT): the fallback paths
set -u
mode=$1; prog=$2; shift 2
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}" "${NSTACK_BUILD:?}"
PRELOAD_LIB="$NSTACK_RELEASE/lib64/libnStackAPI.so"
SHADOW_LIB="$NSTACK_BUILD/test/stacks/libdmm_shadow.so"

fail() { echo "FAIL run_sem.sh $mode $(basename "$prog"): $*" >&2; exit 1; }
[ -x "$prog" ] || fail "program $prog not built"

work=$(mktemp -d /tmp/nstack-sem.XXXXXX)
cleanup_work() { rm -rf "$work"; }

# Writes module_config.json/rd_config.json routing the test subnets to $1.
write_config() {
    local stack=$1 modules='{ "stack_name": "kernel", "libname": "", "loadtype": "static", "deploytype": 1, "stackid": 0 }'
    if [ "$stack" = shadow ]; then
        modules="$modules, { \"stack_name\": \"shadow\", \"libname\": \"$SHADOW_LIB\", \"loadtype\": \"dynamic\", \"deploytype\": 1, \"stackid\": 1 }"
    fi
    cat >"$work/module_config.json" <<JSON
{ "default_stack_name": "kernel", "module_list": [ $modules ] }
JSON
    cat >"$work/rd_config.json" <<JSON
{ "ip_route": [ { "subnet": "192.168.21.0/24", "stack_name": "$stack" },
               { "subnet": "fd21::/64", "stack_name": "$stack" } ],
  "prot_route": [] }
JSON
    export NSTACK_MOD_CFG_FILE="$work/module_config.json" NSTACK_MOD_CFG_RD="$work/rd_config.json"
}

case "$mode" in
kernel)
    trap cleanup_work EXIT
    cd "$work" && "$prog" "$@"
    exit $? ;;
preload)
    trap cleanup_work EXIT
    [ -f "$PRELOAD_LIB" ] || fail "$PRELOAD_LIB not built"
    unset NSTACK_MOD_CFG_FILE NSTACK_MOD_CFG_RD
    cd "$work" && LD_PRELOAD="$PRELOAD_LIB" "$prog" "$@"
    exit $? ;;
preload-kernel|preload-shadow|preload-shadow-direct|preload-shadow-fallback|preload-shadow-decline)
    [ -f "$PRELOAD_LIB" ] || fail "$PRELOAD_LIB not built"
    stack=${mode#preload-}
    stack=${stack%-*}
    case "$mode" in *-fallback) export SHADOW_ANCHOR=fallback ;; *-decline) export SHADOW_ANCHOR=decline ;; esac
    [ "$stack" = kernel ] || [ -f "$SHADOW_LIB" ] || fail "$SHADOW_LIB not built"
    . "$NSTACK_SRC/test/lib/netns.sh"
    netns_setup || fail "netns_setup failed"
    trap 'netns_cleanup; cleanup_work' EXIT
    write_config "$stack"
    export SHADOW_STATS_FILE="$work/shadow.stats"
    # the test address is routed to a module (sem_gaps: UDP notice)
    [ "$stack" = shadow ] && export SEM_MODULE_ROUTE=1
    if [ "$mode" = preload-shadow-direct ]; then
        export NSTACK_ANCHOR=0
        # lets sem_fork skip what direct module sockets cannot do by design (exec inheritance)
        export SEM_MODULE_SOCKETS=1
    fi
    # the shadow carries anchored connections (sem_anchor checks an exec'd image's share)
    [ "$mode" = preload-shadow ] && export SEM_EXPECT_ANCHORED=1
    # a plain peer that waits for the client to speak is noticed after this
    export SHADOW_ANCHOR_WAIT_MS=1000
    cd "$work" || fail "cd $work"
    SEM_ADDR=$IP_A SEM_ADDR6=$IP6_A LD_PRELOAD="$PRELOAD_LIB" NSTACK_STATS=1 in_a "$prog" "$@" 2>"$work/stderr"
    rc=$?
    grep -v ': stats: ' "$work/stderr" >&2
    [ $rc -eq 0 ] || exit $rc
    if [ "$mode" != preload-shadow ] && [ "$mode" != preload-shadow-direct ] && [ "$stack" = shadow ]; then
        # every connection stayed on TCP: the shadow carried nothing
        awk '/stats: anchored on shadow: / { t += $NF } END { exit !(t > 0) }' "$work/stderr" ||
            fail "no connection stayed on TCP: $(grep 'anchored on' "$work/stderr" | tr '\n' ';')"
        exit 0
    fi
    if [ "$mode" = preload-shadow ] && [ "$(basename "$prog")" = sem_anchor ] && [ $# -eq 0 ]; then
        # every process's exit line: "anchored on shadow: N, stayed on TCP: M"
        awk '/stats: anchored on shadow: / { a += $6; t += $NF } END { exit !(a > 0 && t > 0) }' \
            "$work/stderr" || fail "no connection was anchored, or none stayed on TCP: $(grep 'anchored on' "$work/stderr" | tr '\n' ';')"
    fi
    if [ "$stack" = shadow ]; then
        # Each process that loaded the shadow appends "pid sockets sent received".
        [ -s "$SHADOW_STATS_FILE" ] || fail "the shadow module was never used (no $SHADOW_STATS_FILE)"
        awk '{ s += $3; r += $4 } END { exit !(s > 0 && r > 0) }' "$SHADOW_STATS_FILE" ||
            fail "the shadow module carried no data: $(tr '\n' ';' <"$SHADOW_STATS_FILE")"
    fi
    exit 0 ;;
*) fail "unknown mode (kernel|preload|preload-kernel|preload-shadow|preload-shadow-direct)" ;;
esac
