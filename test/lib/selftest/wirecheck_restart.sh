#!/usr/bin/env bash
# testlib.wirecheck_restart: wire_capture_start (test/lib/wirecheck.sh)
# returns only once the tcpdump it started listens, also for a second
# capture on a port, whose error file still holds the first one's
# "listening on". Before the fix the background job truncated that file
# only when it got to run, and the wait could read the old line first and
# return while its tcpdump was still starting: on a loaded machine
# servers.rsync.rsocket then ran its whole pull before the capture began
# and failed with "the capture sees nothing" (about 1 run in 100), and a
# capture that must see nothing could pass unchecked.
#
# Deterministic: a read lease on the old error file (a helper holds it
# 1 s after anybody opens the file for writing) holds back every truncating
# open meanwhile, the job's as the fix's, while reads go on. No namespace,
# no root: ip and tcpdump are stand-ins first in PATH; the fake tcpdump
# notes in a log when it listens and stops at SIGINT as tcpdump does.
set -uo pipefail
. "$NSTACK_SRC/test/lib/netns.sh"
. "$NSTACK_SRC/test/lib/wirecheck.sh"
fail() { echo "FAIL: testlib.wirecheck_restart: $*" >&2; exit 1; }
command -v python3 >/dev/null || fail "python3 not installed"

T=$(mktemp -d /tmp/nstack-wirecheck.XXXXXX) || fail "mktemp failed"
cleanup() {
    local p
    for p in "${_NETNS_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
mkdir "$T/bin" "$T/cap"
cat >"$T/bin/ip" <<'SH'
#!/bin/sh
# ip netns exec NS CMD...: CMD here
[ "$1 $2" = "netns exec" ] || exit 2
shift 3
exec "$@"
SH
cat >"$T/bin/tcpdump" <<'PY'
#!/usr/bin/env python3
import os, signal, sys, time
if "-r" in sys.argv:                 # reading a capture back: no packet
    sys.exit(0)
def stop(*_):
    sys.stderr.write("0 packets captured\n0 packets received by filter\n0 packets dropped by kernel\n")
    sys.exit(0)
signal.signal(signal.SIGINT, stop)   # a background job starts with SIGINT ignored
time.sleep(0.2)                      # tcpdump takes a while to start
with open(os.environ["STARTS"], "a") as f:
    f.write("listening\n")
sys.stderr.write("listening on fake0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n")
sys.stderr.flush()
end = time.monotonic() + 60
while time.monotonic() < end:
    time.sleep(0.05)
PY
# lease FILE: holds a read lease on FILE until a truncating open wants it,
# then 1 s more ("leased" on stdout once held; bounded: 30 s in all).
cat >"$T/lease" <<'PY'
#!/usr/bin/env python3
import fcntl, os, signal, sys, time
F_SETLEASE = 1024
broken = []
signal.signal(signal.SIGIO, lambda *_: broken.append(time.monotonic()))
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.fcntl(fd, F_SETLEASE, fcntl.F_RDLCK)
print("leased", flush=True)
end = time.monotonic() + 30
while time.monotonic() < end and not (broken and time.monotonic() - broken[0] >= 1.0):
    time.sleep(0.02)
fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)
PY
chmod +x "$T/bin/ip" "$T/bin/tcpdump" "$T/lease"
export PATH="$T/bin:$PATH" STARTS=$T/starts
starts() { wc -l <"$STARTS" 2>/dev/null || echo 0; }

capture() {
    wire_capture_start fakens fake0 5555 "$T/cap"
    [ "$(starts)" -eq "$1" ] ||
        fail "capture $1: wire_capture_start returned before its tcpdump listened ($(starts) of $1 started)"
    wire_capture_stop
    [ "$WIRE_BIG" -eq 0 ] && [ "$WIRE_DROPPED" -eq 0 ] || fail "capture $1: WIRE_BIG=$WIRE_BIG WIRE_DROPPED=$WIRE_DROPPED"
}

capture 1
grep -q 'listening on' "$T/cap/wire.5555.err" || fail "the first capture's error file has no 'listening on'"
"$T/lease" "$T/cap/wire.5555.err" >"$T/lease.out" 2>&1 &
bg_track $!
wait_until 10 grep -qs leased "$T/lease.out" || fail "cannot lease the error file: $(cat "$T/lease.out")"
capture 2
capture 3
echo "testlib.wirecheck_restart: 3 captures on one port, each start returned once its tcpdump listened"
