#!/bin/bash
# Hot path: a kernel-routed echo loop makes exactly the same data-path
# system calls with and without the preload (strace -c -f): 2N sendto,
# 2N recvfrom, 2N+1 poll for N round trips, and no per-call futex (no lock
# contention, nothing on the send/recv path but the libc call).
set -u
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}"
LIB="$NSTACK_RELEASE/lib64/libnStackAPI.so"
LOOP="$NSTACK_SRC/test/framework-unit/echo_loop.py"
command -v strace >/dev/null || { echo "FAIL: strace not installed" >&2; exit 1; }
fail() { echo "FAIL syscall_count: $*" >&2; exit 1; }
work=$(mktemp -d /tmp/nstack-sysc.XXXXXX)
trap 'rm -rf "$work"' EXIT
N=2000

# count FILE SYSCALL -> number of calls (0 if absent)
count() { awk -v s="$2" '$NF == s { print $4; f=1 } END { if (!f) print 0 }' "$1"; }

out=$(timeout 300 strace -f -c -o "$work/plain" python3 "$LOOP" $N 2>&1) || fail "plain run: $out"
[ "$out" = "ok $N" ] || fail "plain run: $out"
out=$(LD_PRELOAD="$LIB" timeout 300 strace -f -c -o "$work/preload" python3 "$LOOP" $N 2>&1) || fail "preload run: $out"
[ "$out" = "ok $N" ] || fail "preload run: $out"
for sc in sendto recvfrom poll; do
    a=$(count "$work/plain" $sc); b=$(count "$work/preload" $sc)
    [ "$a" = "$b" ] || fail "$sc: $a calls without the preload, $b with it"
    [ "$a" -ge $((2 * N)) ] || fail "$sc: only $a calls for $N round trips (strace output format?)"
done
f=$(count "$work/preload" futex)
[ "$f" -lt $((N / 10)) ] || fail "$f futex calls for $N round trips: a lock on the data path"
echo "syscalls equal: sendto/recvfrom/poll $(count "$work/plain" sendto)/$(count "$work/plain" recvfrom)/$(count "$work/plain" poll); futex $f"
