#!/bin/bash
# rdma_errors on one test host: RNR and remote access error completions of
# the software RDMA device must be the ones real hardware reports.
set -u
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}"
. "$NSTACK_SRC/test/lib/netns.sh"

bin="$NSTACK_RELEASE/bin/rdma_errors"
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
export LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma"
# hardware-exact work queue accounting (see doc/softrdma.md)
export SOFTRDMA_STRICT_SQ=${SOFTRDMA_STRICT_SQ:-1}
netns_setup || { echo "FAIL: test hosts"; exit 1; }
out=$(mktemp -d /tmp/example_err.XXXXXX)
trap 'netns_cleanup; rm -rf "$out"' EXIT

status=0
for addr in "$IP_A" "$IP6_A"; do
    in_a timeout 120 "$bin" -a "$addr" -t 90 >"$out/out" 2>"$out/err"; rc=$?
    if [ "$rc" -ne 0 ] || ! grep -q "all scenarios behaved as expected" "$out/out" ||
       [ "$(grep -c -- '->' "$out/out")" -ne 6 ]; then
        echo "FAIL: rdma_errors -a $addr exited $rc"; cat "$out/out" "$out/err"; status=1
    else
        echo "PASS: rdma_errors -a $addr"; cat "$out/out"
    fi
done
# An address no port owns is refused with a reason, not a crash.
in_a timeout 60 "$bin" -a 192.0.2.1 >"$out/out" 2>"$out/err"; rc=$?
if [ "$rc" -ne 1 ] || ! grep -q "^rdma_errors: no RDMA device has a GID for 192.0.2.1" "$out/err"; then
    echo "FAIL: unknown address: status $rc"; cat "$out/err"; status=1
else
    echo "PASS: unknown address: $(cat "$out/err")"
fi
exit $status
