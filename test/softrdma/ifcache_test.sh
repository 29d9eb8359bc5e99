#!/bin/bash
# The device's per-process copy of the host's addresses (sr_ifcache.c) on
# a namespace test host: sr_ifcache_test checks in one process that a new
# address, a link going down and up, and a removed address are seen at
# once, and that a foreign descriptor on the watch's number is left alone.
# Here, under strace: the process dumps the address list (one netlink
# socket each) a handful of times, not once per lookup (200+ lookups).
set -u
. "$NSTACK_SRC/test/lib/netns.sh"
export LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma"
LOG=$(mktemp -d /tmp/softrdma-ifcache.XXXXXX)
netns_remove_on_exit "$LOG"
fail() { echo "FAIL: $*"; tail -n 20 "$LOG/out.log"; exit 1; }
PROG=$NSTACK_BUILD/test/softrdma/sr_ifcache_test
[ -x "$PROG" ] || fail "$PROG not built"
netns_setup || fail "netns setup"
NEW=192.168.23.180
in_a timeout 60 strace -f -qq -e trace=socket -o "$LOG/strace.log" "$PROG" eth0 "$NEW" >"$LOG/out.log" 2>&1 ||
    fail "sr_ifcache_test exited $?"
grep -q "sr_ifcache_test: PASS" "$LOG/out.log" || fail "no PASS line"
# the test process's own sockets (the ip commands it runs open theirs)
pid=$(awk 'NR == 1 { print $1 }' "$LOG/strace.log")
dumps=$(grep -c "^$pid  *socket(AF_NETLINK" "$LOG/strace.log")
[ "$dumps" -le 15 ] || fail "$dumps netlink sockets for 200+ address lookups: the list is not cached"
echo "PASS: $(grep "sr_ifcache_test: PASS" "$LOG/out.log"), $dumps netlink sockets"
