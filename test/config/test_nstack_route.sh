#!/bin/bash
# nstack-route against sample files: answers, diagnostics and exit codes
# (0 valid, 1 invalid configuration, 2 usage error). Also checks that the
# shipped config/ files are valid and warning-free.
set -u
TOOL="$NSTACK_RELEASE/bin/nstack-route"
DATA="$NSTACK_SRC/test/config/data"
WORK=$(mktemp -d /tmp/nstack-route-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FAILS=0

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# run EXPECTED_STATUS ARGS...: runs the tool, output in $OUT / $ERR
run() {
    local want=$1; shift
    "$TOOL" "$@" >"$WORK/out" 2>"$WORK/err"
    local got=$?
    OUT=$(cat "$WORK/out"); ERR=$(cat "$WORK/err")
    [ "$got" -eq "$want" ] || fail "nstack-route $*: exit $got, expected $want (stderr: $ERR)"
}
expect_out() { [ "$OUT" = "$1" ] || fail "stdout was '$OUT', expected '$1'"; }
expect_err_has() { grep -qF -- "$1" "$WORK/err" || fail "stderr lacks '$1': $ERR"; }
expect_out_has() { grep -qF -- "$1" "$WORK/out" || fail "stdout lacks '$1': $OUT"; }

M="$DATA/module_dmm.json"; R="$DATA/rd_dmm.json"

# --- answers with DMM-format files
run 0 -m "$M" -r "$R" connect 192.168.21.181:20000 tcp
expect_out "connect 192.168.21.181:20000 tcp -> rsocket (ip_route[0] 192.168.21.0/24)"
expect_err_has "rd_dmm.json: ip_route[0].subnet: \"192.168.21.1/24\": host bits set past the prefix"
run 0 -m "$M" -r "$R" bind 192.168.22.180:20000 tcp
expect_out "bind 192.168.22.180:20000 tcp -> kernel (prot_route[0] tcp)"
run 0 -m "$M" -r "$R" 192.168.22.181:53 udp
expect_out "connect 192.168.22.181:53 udp -> kernel (default_stack_name)"
run 0 -m "$M" -r "$R" connect "[fd21::181]:20000" udp
expect_out "connect [fd21::181]:20000 udp -> rsocket (ip_route[1] fd21::/64)"
run 0 -m "$M" -r "$R" connect ::ffff:192.168.21.181
expect_out "connect ::ffff:192.168.21.181 tcp -> rsocket (ip_route[0] 192.168.21.0/24)"
run 0 -m "$M" -r "$R" 127.0.0.1:80
expect_out "connect 127.0.0.1:80 tcp -> kernel (built-in 127.0.0.0/8)"

# --- wildcard binds: decided at listen (prot_route, then default) or at
# connect/sendto (destination), exactly as libnStackAPI.so does
run 0 -m "$M" -r "$R" bind 0.0.0.0:80 udp
expect_out "bind 0.0.0.0:80 udp -> undecided (wildcard: the kernel socket serves it until connect/sendto, which decide by the destination)"
run 0 -m "$M" -r "$R" bind 0.0.0.0:80 tcp
expect_out "bind 0.0.0.0:80 tcp -> undecided (wildcard: at listen -> kernel (prot_route[0] tcp); at connect: by the destination)"
run 0 -m "$M" -r "$R" bind "[::]:80"
expect_out "bind [::]:80 tcp -> undecided (wildcard: at listen -> kernel (prot_route[0] tcp); at connect: by the destination)"
run 0 -m "$M" -r "$R" listen 0.0.0.0:80
expect_out "listen 0.0.0.0:80 tcp -> kernel (prot_route[0] tcp)"
run 0 -m "$M" -r "$R" listen
expect_out "listen 0.0.0.0 tcp -> kernel (prot_route[0] tcp)"
run 0 -m "$M" -r "$R" listen 192.168.21.180:80
expect_out "listen 192.168.21.180:80 tcp -> rsocket (ip_route[0] 192.168.21.0/24)"
run 2 -m "$M" -r "$R" listen 0.0.0.0:80 udp
expect_err_has "listen is for tcp sockets"
# without prot_route the listener gets the default stack
sed 's/"default_stack_name": "kernel"/"default_stack_name": "rsocket"/' "$M" >"$WORK/module_def.json"
echo '{ "ip_route": [], "prot_route": [] }' >"$WORK/rd_empty.json"
run 0 -m "$WORK/module_def.json" -r "$WORK/rd_empty.json" bind 0.0.0.0:80
expect_out "bind 0.0.0.0:80 tcp -> undecided (wildcard: at listen -> rsocket (default_stack_name); at connect: by the destination)"
run 0 -m "$WORK/module_def.json" -r "$WORK/rd_empty.json" listen "[::]:80"
expect_out "listen [::]:80 tcp -> rsocket (default_stack_name)"

# --- --check and --dump
run 0 -m "$M" -r "$R" --check
expect_out_has "configuration valid: module_config $M, rd_config $R"
run 0 -m "$M" -r "$R" --dump
expect_out_has "module[1] rsocket: libname libdmm_rsocket.so, loadtype dynamic, stackid 1, deploytype 1"
expect_out_has "route ip_route[0] 192.168.21.0/24 -> rsocket"
expect_out_has "route built-in 127.0.0.0/8 -> kernel"
expect_out_has "route prot_route[0] tcp (proto_type 1) -> kernel"
expect_out_has "route default_stack_name -> kernel"

# --- invalid configurations: exit 1, every problem named
run 1 -m "$M" -r "$DATA/rd_bad.json" --check
expect_err_has "error: $DATA/rd_bad.json: ip_route[0].subnet: \"192.168.21.0/33\": prefix length out of range (0..32)"
expect_err_has "error: $DATA/rd_bad.json: ip_route[1].stack_name: \"lwip\": no module of that name"
expect_err_has "configuration invalid"
[ -z "$OUT" ] || fail "invalid config printed a result: $OUT"
run 1 -m "$DATA/module_malformed.json" -r "$R" 10.0.0.1
expect_err_has "error: $DATA/module_malformed.json: line 3, column 3: malformed JSON"
run 1 -m "$WORK/none.json" --check
expect_err_has "error: $WORK/none.json: cannot open: No such file or directory"

# --- usage errors: exit 2 before any file is read
run 2
expect_err_has "nothing to do"
run 2 -m "$M" connect
expect_err_has "missing ADDR after \"connect\""
run 2 -m "$M" 192.168.21.181:70000
expect_err_has "not an address"
run 2 -m "$M" fd21::1:80x
run 2 -m "$M" 10.0.0.1 sctp
expect_err_has "unexpected argument \"sctp\""
run 2 --frobnicate 10.0.0.1
expect_err_has "unknown option \"--frobnicate\""
run 2 10.0.0.1 -m
expect_err_has "missing file after \"-m\""
run 0 --help
expect_out_has "usage: nstack-route"

# --- the library's file search: environment, then the current directory
cd "$WORK" || exit 1
run 0 192.168.21.181
expect_out "connect 192.168.21.181 tcp -> kernel (default_stack_name)"
NSTACK_MOD_CFG_FILE="$M" NSTACK_MOD_CFG_RD="$R" run 0 192.168.21.181
expect_out "connect 192.168.21.181 tcp -> rsocket (ip_route[0] 192.168.21.0/24)"
cp "$M" module_config.json; cp "$DATA/rd_bad.json" rd_config.json
run 1 --check
expect_err_has "./rd_config.json: ip_route[0].subnet"
NSTACK_MOD_CFG_RD="$R" run 0 --check
expect_out_has "rd_config $R"

# --- the shipped defaults: valid, silent, kernel only
run 0 -m "$NSTACK_SRC/config/module_config.json" -r "$NSTACK_SRC/config/rd_config.json" --check 192.168.21.181
[ -z "$ERR" ] || fail "shipped config produced diagnostics: $ERR"
expect_out_has "connect 192.168.21.181 tcp -> kernel (default_stack_name)"

if [ "$FAILS" -ne 0 ]; then
    echo "$FAILS check(s) failed" >&2
    exit 1
fi
echo "all nstack-route checks passed"
