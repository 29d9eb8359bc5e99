# shellcheck shell=bash
# Shared setup of the multi-stack tests: two namespace hosts, the shadow
# module with a port space of its own, and a config that routes
# 192.168.21.0/24 to the shadow (192.168.22.0/24 stays on the kernel).
set -u
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}" "${NSTACK_BUILD:?}"
. "$NSTACK_SRC/test/lib/netns.sh"
LIB="$NSTACK_RELEASE/lib64/libnStackAPI.so"
TOOL="$NSTACK_RELEASE/bin/nstack-route"
SHADOW="$NSTACK_BUILD/test/stacks/libdmm_shadow.so"
PEER="$NSTACK_BUILD/test/multistack/ms_peer"
BYTES=262144
fail() { echo "FAIL ${TEST_NAME:-multistack}: $*" >&2; exit 1; }
for f in "$LIB" "$TOOL" "$SHADOW" "$PEER"; do [ -e "$f" ] || fail "$f not built"; done
WORK=$(mktemp -d /tmp/nstack-ms.XXXXXX)
netns_setup || fail "cannot create the namespace hosts"
trap 'netns_cleanup; rm -rf "$WORK"' EXIT
# A shadow connection uses port P+1000 on its private kernel socket, so a
# shadow client reaches only a shadow listener (as an RDMA client reaches
# only an RDMA listener) and a kernel listener can share the port number.
export SHADOW_PORT_OFFSET=1000

# write_config RD_EXTRA IP_ROUTE_EXTRA: module_config + rd_config in $WORK.
write_config() {
    cat >"$WORK/module.json" <<JSON
{ "default_stack_name": "kernel", "module_list": [
  { "stack_name": "kernel", "libname": "", "loadtype": "static", "deploytype": 1, "stackid": 0 },
  { "stack_name": "shadow", "libname": "$SHADOW", "loadtype": "dynamic", "deploytype": 1, "stackid": 1 } ] }
JSON
    # "anchor": false (per-route opt-out of TCP-anchored connections): these
    # tests are about direct module sockets and multi-stack listeners, which
    # a route keeps with it (and a module without anchor() always has);
    # MS_ANCHOR=true for the anchored test (anchor.sh).
    echo "{ \"ip_route\": [ { \"subnet\": \"192.168.21.0/24\", \"stack_name\": \"shadow\", \"anchor\": ${MS_ANCHOR:-false} $2 } ], $1 \"prot_route\": [] }" \
        >"$WORK/rd.json"
}

# preloaded CMD...: run with the library and the test config.
preloaded() {
    env NSTACK_MOD_CFG_FILE="$WORK/module.json" NSTACK_MOD_CFG_RD="$WORK/rd.json" \
        LD_PRELOAD="$LIB" "$@"
}

# start_server NAME N1 N2 [preload|plain]: the server on host A; sets PORT.
start_server() {
    local name=$1 n1=$2 n2=$3 how=${4:-preload}
    if [ "$how" = preload ]; then
        bg_a env NSTACK_STATS=1 NSTACK_LOG_ON=INF NSTACK_MOD_CFG_FILE="$WORK/module.json" \
            NSTACK_MOD_CFG_RD="$WORK/rd.json" LD_PRELOAD="$LIB" \
            "$PEER" server "$n1" "$n2" "$BYTES" >"$WORK/$name.out" 2>"$WORK/$name.err"
    else
        bg_a "$PEER" server "$n1" "$n2" "$BYTES" >"$WORK/$name.out" 2>"$WORK/$name.err"
    fi
    SERVER_PID=$BG_PID
    wait_file_match "$WORK/$name.out" '^port [0-9]+$' 60 ||
        fail "server did not start: $(cat "$WORK/$name.err")"
    PORT=$(sed -n 's/^port //p' "$WORK/$name.out")
}

# finish_server NAME: the server exits 0 and printed ok.
finish_server() {
    local name=$1 i
    for i in $(seq 1 1200); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$SERVER_PID" || fail "server failed: $(cat "$WORK/$name.err")"
    grep -q '^ok$' "$WORK/$name.out" || fail "server did not finish: $(cat "$WORK/$name.out" "$WORK/$name.err")"
}

# client_b ADDR: a preloaded client on host B, digest-checked echo.
client_b() {
    in_b env NSTACK_STATS=1 NSTACK_MOD_CFG_FILE="$WORK/module.json" NSTACK_MOD_CFG_RD="$WORK/rd.json" \
        LD_PRELOAD="$LIB" "$PEER" client "$1" "$PORT" "$BYTES"
}

# stat_field FILE STACK FIELD: a counter from an NSTACK_STATS=1 dump.
stat_field() {
    sed -n "s/^nstack\[[0-9]*\]: stats: stack $2: .* $3 \([0-9]*\).*/\1/p" "$1" | head -1
}
