#!/bin/bash
# Runs one RDMA example between two test hosts over the software RDMA
# device: the server on host A, N clients on host B at the same time.
#
#   example_pair.sh PROGRAM 4|6 CLIENTS [EXTRA ARGS FOR BOTH SIDES...]
#
# Passes when the server and every client exit 0 and print their
# "verified/checked" line; any failure prints the reason and the outputs.
set -u
prog=$1 family=$2 clients=$3
shift 3
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}"
. "$NSTACK_SRC/test/lib/netns.sh"

bin="$NSTACK_RELEASE/bin/$prog"
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
export LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma"
# hardware-exact work queue accounting (see doc/softrdma.md)
export SOFTRDMA_STRICT_SQ=${SOFTRDMA_STRICT_SQ:-1}
netns_setup || { echo "FAIL: test hosts"; exit 1; }
out=$(mktemp -d /tmp/example_pair.XXXXXX)
trap 'netns_cleanup; rm -rf "$out"' EXIT

if [ "$family" = 6 ]; then server_ip=$IP6_A; else server_ip=$IP_A; fi
server_args=(-s -a "$server_ip" -t 150)
[ "$prog" = rdma_async_msg ] && server_args+=(-k "$clients")

fail() {
    echo "FAIL: $*"
    for f in "$out"/*; do echo "--- ${f##*/}"; cat "$f"; done
    exit 1
}

bg_a timeout 180 "$bin" "${server_args[@]}" "$@" >"$out/server.out" 2>"$out/server.err"
server_pid=$BG_PID
wait_file_match "$out/server.out" "listening on" 30 || fail "server did not start listening"

client_pids=()
for i in $(seq 1 "$clients"); do
    bg_b timeout 180 "$bin" -c "$server_ip" -t 150 "$@" >"$out/client$i.out" 2>"$out/client$i.err"
    client_pids+=("$BG_PID")
done
for i in $(seq 1 "$clients"); do
    wait "${client_pids[$((i - 1))]}"; rc=$?
    [ "$rc" -eq 0 ] || fail "client $i exited with status $rc"
    grep -qE "verified|checked|acknowledged" "$out/client$i.out" || fail "client $i printed no result"
done
wait "$server_pid"; rc=$?
[ "$rc" -eq 0 ] || fail "server exited with status $rc"
grep -qE "verified|checked|served $clients client" "$out/server.out" || fail "server printed no result"
echo "PASS: $prog IPv$family, $clients client(s)"
cat "$out"/*.out
