"""A pooled redis client between requests: it connects, PINGs three times,
says "ready", and then makes no call on its socket until a line arrives on
stdin; then it PINGs again and says "pong" if the answer is right.
Usage: redis_idle_client.py HOST PORT"""
import socket
import sys


def ping(s):
    s.sendall(b"PING\r\n")
    got = b""
    while not got.endswith(b"\r\n"):
        b = s.recv(64)
        if not b:
            raise SystemExit("EOF from redis")
        got += b
    return got == b"+PONG\r\n"


s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
for _ in range(3):
    if not ping(s):
        raise SystemExit("bad answer to PING")
print("ready", flush=True)
sys.stdin.readline()          # idle: no call on the socket meanwhile
print("pong" if ping(s) else "bad answer after idle", flush=True)
