"""Loopback TCP echo through selectors (epoll), checked by SHA-256.

usage: echo_check.py NBYTES [wait]
Prints "ok <nbytes> <pid>"; with "wait", then blocks until stdin closes so a
test can inspect the running process. Every loop is bounded by a deadline."""
import hashlib, os, selectors, socket, sys, time

n = int(sys.argv[1])
payload = bytes((i * 7 + 3) & 0xFF for i in range(n))
deadline = time.monotonic() + 60

lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("127.0.0.1", 0))
lst.listen(4)
cli = socket.create_connection(lst.getsockname(), timeout=30)
srv, _ = lst.accept()
srv.setblocking(False)
cli.setblocking(False)

sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ, "srv")
sel.register(cli, selectors.EVENT_READ | selectors.EVENT_WRITE, "cli")
sent = 0
echo_buf = b""
got = bytearray()
while len(got) < n:
    if time.monotonic() > deadline:
        sys.exit("timeout: sent %d echoed %d" % (sent, len(got)))
    for key, ev in sel.select(timeout=5):
        if key.data == "srv":
            if ev & selectors.EVENT_READ:
                data = srv.recv(65536)
                if data:
                    echo_buf += data
            if echo_buf:
                try:
                    k = srv.send(echo_buf)
                    echo_buf = echo_buf[k:]
                except BlockingIOError:
                    pass
        else:
            if ev & selectors.EVENT_WRITE and sent < n:
                try:
                    sent += cli.send(payload[sent:sent + 65536])
                except BlockingIOError:
                    pass
                if sent == n:
                    sel.modify(cli, selectors.EVENT_READ, "cli")
            if ev & selectors.EVENT_READ:
                try:
                    got += cli.recv(65536)
                except BlockingIOError:
                    pass
if hashlib.sha256(bytes(got)).digest() != hashlib.sha256(payload).digest():
    sys.exit("digest mismatch")
print("ok %d %d" % (n, os.getpid()), flush=True)
if len(sys.argv) > 2 and sys.argv[2] == "wait":
    sys.stdin.read()
