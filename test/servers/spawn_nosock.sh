#!/usr/bin/env bash
# posix_spawnp (file actions: open, dup2, closefrom), system, popen and a
# missing program in a process without sockets: the answers libc gives
# without the preload (srv_spawn nosock), run plain and under the preload.
# Usage: spawn_nosock.sh plain|preload
set -uo pipefail
B=$NSTACK_BUILD/test/servers
[ -x "$B/srv_spawn" ] || { echo "FAIL: $B/srv_spawn not built"; exit 1; }
ENV=()
if [ "$1" = preload ]; then
    ENV=(LD_PRELOAD="$NSTACK_RELEASE/lib64/libnStackAPI.so" NSTACK_LOG_ON=INF)
fi
out=$(timeout 60 env "${ENV[@]}" "$B/srv_spawn" nosock 2>&1) || { echo "FAIL: $out"; exit 1; }
echo "$out" | grep -q '^PASS' || { echo "FAIL: no verdict: $out"; exit 1; }
echo "$out" | grep -q 'nstack' && { echo "FAIL: the preload spoke in a program without sockets: $out"; exit 1; }
echo "$1: $out"
