#!/bin/bash
# exec_secure.sh - execs whose new image loses the preload (wrap_exec.c):
#  - a process whose real and effective user ids differ (squid's master:
#    real proxy, effective root) execs in secure-execution mode, where the
#    loader ignores LD_PRELOAD: one WAR line naming the ids and
#    /etc/ld.so.preload, and the image indeed runs without it;
#  - an exec with an environment built without LD_PRELOAD (dovecot's
#    children): one WAR line naming the remedy.
# With equal ids and the environment passed on, the same exec prints
# nothing and the image has the framework. Needs root (setresuid).
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
# an exec with an empty environment, after the framework started
LD_PRELOAD="$lib" python3 -c '
import os, socket
socket.socket().close()
os.execve("/bin/sh", ["sh", "-c", "grep -c libnStackAPI /proc/self/maps || true"], {})' \
    >"$work/noenv.out" 2>"$work/noenv.err"
grep -q "WAR: exec with an environment that has no LD_PRELOAD" "$work/noenv.err" ||
    { echo "FAIL: no notice for a dropped LD_PRELOAD: $(cat "$work/noenv.err")"; exit 1; }
[ "$(cat "$work/noenv.out")" = 0 ] || { echo "FAIL: the image had the framework without LD_PRELOAD"; exit 1; }
run 65534 >"$work/apart.out" 2>"$work/apart.err"
run 0 >"$work/same.out" 2>"$work/same.err"
grep -q "WAR: exec with real and effective ids apart (uid 65534/0" "$work/apart.err" ||
    { echo "FAIL: no notice: $(cat "$work/apart.err")"; exit 1; }
grep -q "/etc/ld.so.preload" "$work/apart.err" || { echo "FAIL: the notice names no remedy"; exit 1; }
[ "$(cat "$work/apart.out")" = 0 ] || { echo "FAIL: the secure image had the framework: $(cat "$work/apart.out")"; exit 1; }
[ ! -s "$work/same.err" ] || { echo "FAIL: a notice with equal ids: $(cat "$work/same.err")"; exit 1; }
[ "$(cat "$work/same.out")" -ge 1 ] || { echo "FAIL: the image lost the framework with equal ids"; exit 1; }
echo "PASS: secure-execution exec and a dropped LD_PRELOAD named; equal ids with the environment silent"
