#!/bin/bash
# config/*.schema.json against what the library accepts: every shipped
# configuration, DMM's files and the doc/configuration.md examples validate
# (after the comments and trailing commas json-c tolerates are stripped,
# schema_check.py) and nstack-route --check accepts them too; files the
# library rejects for a reason a schema can express are rejected by both.
set -u
TOOL="$NSTACK_RELEASE/bin/nstack-route"
SRC="$NSTACK_SRC"
CHECK="python3 $SRC/test/config/schema_check.py"
MS="$SRC/config/module_config.schema.json"
RS="$SRC/config/rd_config.schema.json"
DATA="$SRC/test/config/data"
WORK=$(mktemp -d /tmp/nstack-schema-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

python3 -c 'import jsonschema' || { echo "FAIL: python3-jsonschema missing (tools/deps.sh)"; exit 1; }

# valid MODULE RD: the schemas and the library both accept the pair
valid() {
    $CHECK "$MS" "$1" >"$WORK/out" 2>&1 || fail "schema rejects $1: $(cat "$WORK/out")"
    $CHECK "$RS" "$2" >"$WORK/out" 2>&1 || fail "schema rejects $2: $(cat "$WORK/out")"
    "$TOOL" -m "$1" -r "$2" --check >"$WORK/out" 2>&1 ||
        fail "nstack-route --check rejects $1 + $2: $(cat "$WORK/out")"
}
valid "$SRC/config/module_config.json" "$SRC/config/rd_config.json"
valid "$SRC/stacks/rsocket/config/module_config.json" "$SRC/stacks/rsocket/config/rd_config.json"
valid "$DATA/module_dmm.json" "$DATA/rd_dmm.json"

# The documented examples (the first two ```json blocks of configuration.md).
awk '/^```json/{n++; on=1; next} /^```/{on=0} on{print > ("'"$WORK"'/doc" n ".json")}' \
    "$SRC/doc/configuration.md"
[ -s "$WORK/doc1.json" ] && [ -s "$WORK/doc2.json" ] || fail "no json examples in configuration.md"
valid "$WORK/doc1.json" "$WORK/doc2.json"

# DMM as shipped: priorty/maxfd/minfd, numbers as strings, comments, the
# anchor and fallback keys of this framework, multi_stack_listen.
cat >"$WORK/m.json" <<'J'
// DMM release/configure style
{ "default_stack_name": "rsocket",
  "module_list": [
    { "stack_name": "kernel", "libname": "./", "loadtype": "static",
      "deploytype": "1", "maxfd": "1024", "minfd": "0", "priorty": "1", "stackid": "0", },
    { "stack_name": "rsocket", "libname": "libdmm_rsocket.so", "loadtype": "dynamic",
      "deploytype": 1, "maxfd": 8192, "minfd": "0", "priorty": "0", "stackid": 1 } /* last */ ], }
J
cat >"$WORK/r.json" <<'J'
{ "ip_route": [ { "subnet": "192.168.21.0/24", "stack_name": "rsocket",
                  "fallback": "kernel", "anchor": false, },
                { "subnet": "fd21::/64", "stack_name": "rsocket", "anchor": true,
                  "upgrade_after_bytes": 65536 },
                { "subnet": "192.168.24.0/24", "stack_name": "rsocket", "upgrade_after_bytes": "1000" },
                { "subnet": "::ffff:192.168.23.0/120", "stack_name": "rsocket" },
                { "subnet": "10.1.2.3", "stack_name": "kernel" } ],
  "prot_route": [ { "proto_type": "1", "stack_name": "kernel" },
                  { "proto_type": 2, "stack_name": "rsocket", "anchor": false } ],
  "multi_stack_listen": false, }
J
valid "$WORK/m.json" "$WORK/r.json"

# invalid KIND NAME JSON: the library (nstack-route --check, exit 1) and the
# schema (exit 1) both reject it. KIND m = module_config, r = rd_config.
invalid() {
    local kind=$1 name=$2 f="$WORK/$2.json"
    printf '%s\n' "$3" >"$f"
    if [ "$kind" = m ]; then
        "$TOOL" -m "$f" -r "$WORK/r.json" --check >"$WORK/out" 2>&1; lib=$?
        $CHECK "$MS" "$f" >"$WORK/sout" 2>&1; sch=$?
    else
        "$TOOL" -m "$WORK/m.json" -r "$f" --check >"$WORK/out" 2>&1; lib=$?
        $CHECK "$RS" "$f" >"$WORK/sout" 2>&1; sch=$?
    fi
    [ "$lib" -eq 1 ] || fail "$name: nstack-route --check exit $lib, expected 1: $(cat "$WORK/out")"
    [ "$sch" -eq 1 ] || fail "$name: schema exit $sch, expected 1: $(cat "$WORK/sout")"
}
K='{ "stack_name": "kernel", "libname": "./" }'
invalid m loadtype   '{ "module_list": [ '"$K"', { "stack_name": "rsocket", "libname": "x.so", "loadtype": "shared" } ] }'
invalid m stackid    '{ "module_list": [ '"$K"', { "stack_name": "rsocket", "libname": "x.so", "stackid": "16" } ] }'
invalid m stackidtxt '{ "module_list": [ '"$K"', { "stack_name": "rsocket", "libname": "x.so", "stackid": "one" } ] }'
invalid m deploy     '{ "module_list": [ '"$K"', { "stack_name": "rsocket", "libname": "x.so", "deploytype": 5 } ] }'
invalid m name       '{ "module_list": [ '"$K"', { "stack_name": "rs-socket", "libname": "x.so" } ] }'
invalid m nolib      '{ "module_list": [ '"$K"', { "stack_name": "rsocket" } ] }'
invalid m emptylib   '{ "module_list": [ '"$K"', { "stack_name": "rsocket", "libname": "" } ] }'
invalid m list       '{ "module_list": { "stack_name": "kernel" } }'
invalid m malformed  "$(cat "$DATA/module_malformed.json")"
invalid r prefix     "$(cat "$DATA/rd_bad.json")"
invalid r subnet     '{ "ip_route": [ { "subnet": "192.168.21/24", "stack_name": "rsocket" } ] }'
invalid r nostack    '{ "ip_route": [ { "subnet": "192.168.21.0/24" } ] }'
invalid r fallback   '{ "ip_route": [ { "subnet": "192.168.21.0/24", "stack_name": "rsocket", "fallback": "rsocket" } ] }'
invalid r anchor     '{ "ip_route": [ { "subnet": "192.168.21.0/24", "stack_name": "rsocket", "anchor": "no" } ] }'
invalid r llzero     '{ "ip_route": [ { "subnet": "192.168.21.0/24", "stack_name": "rsocket", "upgrade_after_bytes": 0 } ] }'
invalid r llbig      '{ "ip_route": [ { "subnet": "192.168.21.0/24", "stack_name": "rsocket", "upgrade_after_bytes": 2147483648 } ] }'
invalid r lltype     '{ "ip_route": [ { "subnet": "192.168.21.0/24", "stack_name": "rsocket", "upgrade_after_bytes": true } ] }'
invalid r lldirect   '{ "ip_route": [ { "subnet": "192.168.21.0/24", "stack_name": "rsocket", "anchor": false, "upgrade_after_bytes": 4096 } ] }'
invalid r llprot     '{ "prot_route": [ { "proto_type": 1, "stack_name": "rsocket", "upgrade_after_bytes": "x" } ] }'
invalid r proto      '{ "prot_route": [ { "proto_type": "3", "stack_name": "kernel" } ] }'
invalid r multi      '{ "multi_stack_listen": "yes" }'

# The tool names the schema in its help, so a user finds it.
"$TOOL" --help >"$WORK/help" 2>&1
grep -q 'rd_config.schema.json' "$WORK/help" || fail "nstack-route --help does not name the schemas"

[ "$FAILS" -eq 0 ] && echo "PASS: schemas agree with the library" || exit 1
