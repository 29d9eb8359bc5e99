#!/bin/bash
# run_private_fabric.sh RELEASE_DIR PROGRAM: PROGRAM on the software RDMA
# device of RELEASE_DIR with its own fabric directory (removed afterwards),
# so it meets no other test's listeners.
set -u
release=$1 prog=$2
# In the ThreadSanitizer tree: the device's emulated DMA is suppressed
# (tsan.supp says why); a caller's own TSAN_OPTIONS win. Ignored elsewhere.
export TSAN_OPTIONS=${TSAN_OPTIONS:-"suppressions=$(cd "$(dirname "$0")" && pwd)/tsan.supp"}
[ -e "$release/lib64/softrdma/librdmacm.so.1" ] || { echo "FAIL: no softrdma device in $release/lib64/softrdma"; exit 1; }
fabric=$(mktemp -d /tmp/nstack-tsan-fabric.XXXXXX) || exit 1
trap 'rm -rf "$fabric"' EXIT
SOFTRDMA_FABRIC=$fabric LD_LIBRARY_PATH="$release/lib64/softrdma:$release/lib64" timeout 280 "$prog"
