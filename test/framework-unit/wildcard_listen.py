"""A listener bound to a wildcard address (no SO_REUSEADDR unless asked),
a loopback client, a digest-checked echo of N bytes. Prints 'ok N DIGEST'."""
import hashlib, os, socket, sys

n = int(sys.argv[1])
family = socket.AF_INET6 if len(sys.argv) > 2 and sys.argv[2] == "6" else socket.AF_INET
wild, loop = ("::", "::1") if family == socket.AF_INET6 else ("0.0.0.0", "127.0.0.1")
lis = socket.socket(family, socket.SOCK_STREAM)
lis.bind((wild, 0))
port = lis.getsockname()[1]
lis.listen(4)
assert lis.getsockname()[1] == port, "port changed at listen"
cli = socket.create_connection((loop, port), timeout=60)
srv, _ = lis.accept()
srv.settimeout(60)
data = os.urandom(n)
cli.sendall(data)
got = bytearray()
for _ in range(100000):
    if len(got) >= n:
        break
    chunk = srv.recv(65536)
    if not chunk:
        break
    got += chunk
srv.sendall(bytes(got))
back = bytearray()
for _ in range(100000):
    if len(back) >= n:
        break
    chunk = cli.recv(65536)
    if not chunk:
        break
    back += chunk
want = hashlib.sha256(data).hexdigest()
assert hashlib.sha256(got).hexdigest() == want, "server got other bytes"
assert hashlib.sha256(back).hexdigest() == want, "client got other bytes"
print("ok", n, want)
