#!/bin/bash
# The library and nstack-route agree on wildcard listeners: a socket bound
# to 0.0.0.0 / :: is decided at listen by prot_route, then the default
# stack. For three configurations nstack-route's answer is compared with the
# stack the preloaded library really used (NSTACK_STATS=1 accept counters),
# with a digest-checked echo through the listener (shadow test module,
# loopback only).
set -u
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}" "${NSTACK_BUILD:?}"
LIB="$NSTACK_RELEASE/lib64/libnStackAPI.so"
TOOL="$NSTACK_RELEASE/bin/nstack-route"
SHADOW="$NSTACK_BUILD/test/stacks/libdmm_shadow.so"
HERE="$NSTACK_SRC/test/framework-unit"
fail() { echo "FAIL wildcard_route: $*" >&2; exit 1; }
for f in "$LIB" "$TOOL" "$SHADOW"; do [ -e "$f" ] || fail "$f not built"; done
# Listeners of a module with anchor() are kernel listeners whose accepted
# connections are routed by their local address (doc/fork.md); this test
# is about the listener's own route, which the global opt-out keeps.
export NSTACK_ANCHOR=0
work=$(mktemp -d /tmp/nstack-wild.XXXXXX)
trap 'rm -rf "$work"' EXIT

# config DEFAULT_STACK PROT_ROUTE_JSON
config() {
    cat >"$work/module.json" <<JSON
{ "default_stack_name": "$1", "module_list": [
  { "stack_name": "kernel", "libname": "", "loadtype": "static", "deploytype": 1, "stackid": 0 },
  { "stack_name": "shadow", "libname": "$SHADOW", "loadtype": "dynamic", "deploytype": 1, "stackid": 1 } ] }
JSON
    echo "{ \"ip_route\": [], \"prot_route\": [ $2 ] }" >"$work/rd.json"
}

# check FAMILY EXPECTED_STACK EXPECTED_RULE
check() {
    local fam=$1 want=$2 rule=$3 addr=0.0.0.0:0
    [ "$fam" = 6 ] && addr="[::]:0"
    local said
    said=$("$TOOL" -m "$work/module.json" -r "$work/rd.json" listen "$addr" 2>&1)
    [ "$said" = "listen $addr tcp -> $want ($rule)" ] || fail "nstack-route said: $said (expected $want by $rule)"
    local out
    out=$(NSTACK_MOD_CFG_FILE="$work/module.json" NSTACK_MOD_CFG_RD="$work/rd.json" NSTACK_STATS=1 \
          LD_PRELOAD="$LIB" timeout 120 python3 "$HERE/wildcard_listen.py" 200000 "$fam" 2>&1)
    echo "$out" | grep -q '^ok 200000 ' || fail "echo through a wildcard listener (IPv$fam, $want): $out"
    local accepts
    accepts=$(echo "$out" | sed -n "s/^nstack\[[0-9]*\]: stats: stack $want: .* accept \([0-9]*\) .*/\1/p")
    [ "$accepts" = 1 ] || fail "the library did not accept on $want as nstack-route said (IPv$fam): $out"
}

config kernel '{ "proto_type": 1, "stack_name": "shadow" }'
check 4 shadow "prot_route[0] tcp"
check 6 shadow "prot_route[0] tcp"
config shadow ''
check 4 shadow default_stack_name
config shadow '{ "proto_type": 1, "stack_name": "kernel" }'
check 4 kernel "prot_route[0] tcp"
echo "wildcard listeners: nstack-route and the library agree"
