#!/usr/bin/env python3
"""Loopback echo for the install tests.

echo.py serve PORTFILE   accept one connection, echo until EOF (no preload)
echo.py client PORT N    send N pseudo-random bytes, read them back, verify
"""
import os
import socket
import sys


def serve(portfile):
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ls.settimeout(60)
        tmp = portfile + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(ls.getsockname()[1]))
        os.rename(tmp, portfile)
        conn, _ = ls.accept()
        with conn:
            conn.settimeout(60)
            while True:
                data = conn.recv(65536)
                if not data:
                    return 0
                conn.sendall(data)


def client(port, n):
    payload = os.urandom(n)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(payload)
    got = bytearray()
    while len(got) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    if bytes(got) != payload:
        print("echo.py: FAIL: %d of %d bytes came back intact" % (len(got), n))
        return 1
    print("echo.py: PASS: %d bytes echoed and verified" % n)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        sys.exit(serve(sys.argv[2]))
    sys.exit(client(int(sys.argv[2]), int(sys.argv[3])))
