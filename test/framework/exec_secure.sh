#!/bin/bash
# exec_secure.sh - a preloaded process whose real and effective user ids
# differ (squid's master: real proxy, effective root) execs its next image
# in secure-execution mode, where the loader ignores LD_PRELOAD: the
# dispatcher says so in one WAR line naming the ids and /etc/ld.so.preload
# (wrap_exec.c), and the exec'd image indeed runs without it. With equal
# ids the same exec prints nothing. Needs root (setresuid).
set -u
: "${NSTACK_RELEASE:?}"
lib="$NSTACK_RELEASE/lib64/libnStackAPI.so"
[ -f "$lib" ] || { echo "FAIL $lib not built"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 0; }
work=$(mktemp -d /tmp/nstack-execsec.XXXXXX)
trap 'rm -rf "$work"' EXIT
# $1: real uid to take (0: unchanged). The exec'd shell reports whether
# the framework is mapped in it.
run() {
    LD_PRELOAD="$lib" python3 -c '
import os, socket, sys
socket.socket().close()                      # the framework starts
if int(sys.argv[1]): os.setresuid(int(sys.argv[1]), 0, 0)
os.execv("/bin/sh", ["sh", "-c", "grep -c libnStackAPI /proc/self/maps || true"])' "$1"
}
run 65534 >"$work/apart.out" 2>"$work/apart.err"
run 0 >"$work/same.out" 2>"$work/same.err"
grep -q "WAR: exec with real and effective ids apart (uid 65534/0" "$work/apart.err" ||
    { echo "FAIL: no notice: $(cat "$work/apart.err")"; exit 1; }
grep -q "/etc/ld.so.preload" "$work/apart.err" || { echo "FAIL: the notice names no remedy"; exit 1; }
[ "$(cat "$work/apart.out")" = 0 ] || { echo "FAIL: the secure image had the framework: $(cat "$work/apart.out")"; exit 1; }
[ ! -s "$work/same.err" ] || { echo "FAIL: a notice with equal ids: $(cat "$work/same.err")"; exit 1; }
[ "$(cat "$work/same.out")" -ge 1 ] || { echo "FAIL: the image lost the framework with equal ids"; exit 1; }
echo "PASS: secure-execution exec named once; equal ids silent"
