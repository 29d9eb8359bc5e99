#!/bin/bash
# Smoke test of libnStackAPI.so as an LD_PRELOAD:
#  - programs that never use sockets behave exactly as without it and leave
#    no counters segment (lazy start);
#  - a loopback TCP echo through epoll (python selectors) is byte-exact;
#  - a broken configuration or log level is reported and the kernel stack
#    still carries everything.
set -u
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}"
LIB="$NSTACK_RELEASE/lib64/libnStackAPI.so"
HERE="$NSTACK_SRC/test/framework-unit"
fail() { echo "FAIL preload_smoke: $*" >&2; exit 1; }
[ -f "$LIB" ] || fail "$LIB not built"
work=$(mktemp -d /tmp/nstack-fwsmoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || fail "cd $work"

# 1. socket-free programs: identical output and status, no segment
want=$(ls -la /usr/bin | head -20; echo "rc=$?")
got=$(LD_PRELOAD="$LIB" ls -la /usr/bin | head -20; echo "rc=$?")
[ "$want" = "$got" ] || fail "ls output differs under the preload"
out=$(LD_PRELOAD="$LIB" sh -c 'echo hello; [ ! -e /dev/shm/nstack-stat.$$ ] && echo nosegment; exit 3' 2>&1)
rc=$?
[ $rc -eq 3 ] || fail "sh exit status $rc, expected 3"
[ "$out" = "$(printf 'hello\nnosegment')" ] || fail "sh output: $out"
out=$(LD_PRELOAD="$LIB" python3 -c 'print(6*7)' 2>&1)
[ "$out" = 42 ] || fail "python3 -c output: $out"

# 2. loopback echo through epoll, digest-checked
out=$(LD_PRELOAD="$LIB" timeout 90 python3 "$HERE/echo_check.py" 3000000 2>&1)
echo "$out" | grep -q '^ok 3000000 ' || fail "echo: $out"

# 3. broken config and log level: reported, kernel carries the traffic
printf '{ "default_stack_name": ' >bad_module.json
out=$(NSTACK_MOD_CFG_FILE="$work/bad_module.json" NSTACK_LOG_ON=bogus LD_PRELOAD="$LIB" \
      timeout 90 python3 "$HERE/echo_check.py" 100000 2>&1)
echo "$out" | grep -q '^ok 100000 ' || fail "echo with a broken config: $out"
echo "$out" | grep -q '^nstack\[[0-9]*\]: WAR: NSTACK_LOG_ON="bogus"' || fail "no warning for NSTACK_LOG_ON=bogus: $out"
[ "$(echo "$out" | grep -c 'NSTACK_LOG_ON')" -eq 1 ] || fail "the log-level warning is not printed exactly once: $out"
[ "$(echo "$out" | grep -c '^nstack\[[0-9]*\]: ERR: config: .*bad_module.json')" -eq 1 ] ||
    fail "the broken config is not reported exactly once: $out"
echo "preload_smoke: ok"
