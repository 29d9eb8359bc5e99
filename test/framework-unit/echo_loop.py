"""N send/recv round trips of 64 bytes over a loopback TCP pair, each
checked. A fixed, deterministic syscall pattern for strace -c."""
import socket, sys
n = int(sys.argv[1])
lis = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lis.bind(("127.0.0.1", 0))
lis.listen(1)
cli = socket.create_connection(lis.getsockname(), timeout=60)
srv, _ = lis.accept()
for i in range(n):
    msg = i.to_bytes(8, "little") * 8
    cli.send(msg)
    got = srv.recv(64, socket.MSG_WAITALL)
    assert got == msg, "round %d: server got other bytes" % i
    srv.send(got)
    back = cli.recv(64, socket.MSG_WAITALL)
    assert back == msg, "round %d: client got other bytes" % i
print("ok", n)
