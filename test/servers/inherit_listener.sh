#!/usr/bin/env bash
# A TCP listener the serving image did not make, as with socket activation
# or dovecot's login processes: a Python server listens, then execs a new
# image of itself that gets the listener as an inherited fd and accepts
# on it. The dispatcher of the new image adopts the listener at its first
# accept() (sock_adopt_listener), so on the rsocket route the connection
# upgrades as one made there would: 1 MiB echoed and checked, and the
# client's counters show it on rsocket (before, the connection stayed on
# TCP: "peer does not run the framework").
# Usage: inherit_listener.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.inherit_listener
. "$NSTACK_SRC/test/lib/servers.sh"

srv_setup "$1" 18733
cat >"$PROG_TMP/srv.py" <<'PY'
import os, socket, sys
if sys.argv[1] == "listen":
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((sys.argv[2], int(sys.argv[3])))
    l.listen(4)
    l.set_inheritable(True)
    os.execv(sys.executable, [sys.executable, sys.argv[0], "serve", str(l.fileno())])
l = socket.socket(fileno=int(sys.argv[2]))
print("listening on", l.getsockname(), flush=True)
c, _ = l.accept()
n = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    c.sendall(b)
    n += len(b)
c.close()
print("echoed", n, flush=True)
PY
cat >"$PROG_TMP/cli.py" <<'PY'
import os, socket, sys
data = os.urandom(1 << 20)
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
got = bytearray()
for i in range(0, len(data), 65536):
    c.sendall(data[i:i + 65536])
    while len(got) < i + 65536:
        b = c.recv(1 << 20)
        if not b:
            sys.exit("early EOF after %d bytes" % len(got))
        got += b
c.shutdown(socket.SHUT_WR)
if c.recv(1) != b"":
    sys.exit("extra bytes")
sys.exit(0 if bytes(got) == data else "echo differs")
PY
prog_server server python3 "$PROG_TMP/srv.py" listen "$PROG_ADDR" "$PROG_PORT"
srv_wait_banner server
srv_wire_start "$PROG_PORT"
srv_client timeout 60 python3 "$PROG_TMP/cli.py" "$PROG_ADDR" "$PROG_PORT" >"$PROG_TMP/client.out" 2>&1 ||
    prog_fail "client: $(cat "$PROG_TMP/client.out") server: $(cat "$PROG_TMP/server.out")"
srv_server_done
grep -q "^echoed $((1 << 20))" "$PROG_TMP/server.out" || prog_fail "server: $(cat "$PROG_TMP/server.out")"
srv_wire_verdict "1 MiB echo through an inherited listener" "$PROG_TMP/client.out" $((2 << 20))
prog_note "OK: 1 MiB echoed by an image that accepts on a listener it inherited"
