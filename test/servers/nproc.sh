#!/usr/bin/env bash
# A daemon that confines itself before its first RDMA use, as haproxy's
# stock config does: it listens as root, forks, the child drops to user
# nobody and sets RLIMIT_NPROC to 0 (no new process nor thread: haproxy
# without "insecure-fork-wanted"), then serves. The dispatcher starts the
# module stacks before the limit is lowered (wrap_rlimit.c): without that
# the software device's thread cannot start in the child and the
# connection fails or stays on TCP. From the other host: 1 MiB echoed and
# checked; on rsocket the bytes on rsocket and no kernel TCP packet over
# 64 B of payload.
# Usage: nproc.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.nproc
. "$NSTACK_SRC/test/lib/servers.sh"
srv_setup "$1" 18950
NBYTES=$((1024 * 1024))
cat >"$PROG_TMP/server.py" <<'PY'
import os, resource, socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(4)
print("listening on", addr, port, flush=True)
if os.fork() == 0:
    os.setgid(65534)
    os.setuid(65534)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    c, _ = ls.accept()
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
        n += len(b)
    c.close()
    print("child echoed", n, "as uid", os.getuid(), flush=True)
    os._exit(0)
os.wait()
PY
cat >"$PROG_TMP/client.py" <<'PY'
import socket, sys
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = bytes((i * 7 + i // 251) & 0xff for i in range(n))
s = socket.create_connection((addr, port), timeout=60)
got = bytearray()
# 64 KiB at a time, each read back before the next: the echo never
# depends on how much the buffers of either path hold
for off in range(0, n, 65536):
    chunk = data[off:off + 65536]
    s.sendall(chunk)
    want = len(got) + len(chunk)
    while len(got) < want:
        b = s.recv(want - len(got))
        if not b:
            sys.exit("EOF after %d of %d bytes" % (len(got), n))
        got += b
s.shutdown(socket.SHUT_WR)
if s.recv(1):
    sys.exit("bytes after the echo")
if bytes(got) != data:
    sys.exit("echo differs: %d of %d bytes" % (len(got), n))
print("PASS: %d bytes echoed and checked" % n)
PY
chmod a+r "$PROG_TMP"/*.py
prog_server server python3 "$PROG_TMP/server.py" "$PROG_ADDR" "$PROG_PORT"
srv_wait_banner server
srv_wire_start "$PROG_PORT"
srv_client timeout 90 python3 "$PROG_TMP/client.py" "$PROG_ADDR" "$PROG_PORT" "$NBYTES" \
    >"$PROG_TMP/client.out" 2>&1 ||
    prog_fail "client: $(grep -v '^nstack' "$PROG_TMP/client.out" | tail -n 2) server: $(tail -n 3 "$PROG_TMP/server.out")"
grep -q '^PASS' "$PROG_TMP/client.out" || prog_fail "no client verdict: $(cat "$PROG_TMP/client.out")"
srv_wire_verdict "echo under RLIMIT_NPROC 0" "$PROG_TMP/client.out" $((2 * NBYTES))
srv_server_done
grep -q "child echoed $NBYTES as uid 65534" "$PROG_TMP/server.out" ||
    prog_fail "the confined child did not serve: $(cat "$PROG_TMP/server.out")"
prog_note "OK: $NBYTES bytes echoed by a child as nobody with RLIMIT_NPROC 0"
