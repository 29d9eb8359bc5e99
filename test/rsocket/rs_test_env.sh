# shellcheck shell=bash
# Common start of the rsocket engine test scripts: the software RDMA
# device on the library path, the two test hosts, a scratch directory
# removed (with the hosts) on exit, and fail() that prints every log in
# it. Sourced after `set -u`; NSTACK_SRC and NSTACK_RELEASE come from ctest.
#
#   RS_LIBPATH_EXTRA  appended to LD_LIBRARY_PATH after the device (optional)
. "$NSTACK_SRC/test/lib/netns.sh"
SOFT="$NSTACK_RELEASE/lib64/softrdma"
[ -e "$SOFT/librdmacm.so.1" ] || { echo "softrdma librdmacm missing: $SOFT"; exit 1; }
export LD_LIBRARY_PATH="$SOFT${RS_LIBPATH_EXTRA:+:$RS_LIBPATH_EXTRA}"
netns_setup || exit 1
dir=$(mktemp -d); trap 'rm -rf "$dir"; netns_cleanup' EXIT
fail() { for f in "$dir"/*; do echo "--- $f:"; cat "$f"; done; echo "FAIL: $*"; exit 1; }
