#!/usr/bin/env python3
"""memcached_client.py HOST PORT: the text protocol over 4 connections:
400 keys with values of 1 B..200 KB (random, seeded) set, then read back and
compared byte by byte, plus incr and delete. Exit 0 and one PASS line, else
FAIL naming the key."""
import random, socket, sys

def conn(host, port):
    s = socket.create_connection((host, int(port)), timeout=30)
    return s, s.makefile("rb")

def line(f):
    l = f.readline()
    if not l.endswith(b"\r\n"):
        sys.exit(f"FAIL: short reply {l!r}")
    return l[:-2]

def main(host, port):
    rnd = random.Random(4242)
    conns = [conn(host, port) for _ in range(4)]
    vals = {}
    total = 0
    for i in range(400):
        s, f = conns[i % 4]
        v = rnd.randbytes(rnd.randint(1, 200000 if i % 10 == 0 else 4000))
        vals[f"k{i}"] = v
        s.sendall(b"set k%d 0 0 %d\r\n" % (i, len(v)) + v + b"\r\n")
        if line(f) != b"STORED":
            sys.exit(f"FAIL: set k{i} not stored")
        total += len(v)
    for i in range(400):
        s, f = conns[(i + 1) % 4]
        s.sendall(b"get k%d\r\n" % i)
        hdr = line(f).split()
        if len(hdr) != 4 or hdr[0] != b"VALUE":
            sys.exit(f"FAIL: get k{i}: {hdr!r}")
        got = f.read(int(hdr[3]) + 2)[:-2]
        if got != vals[f"k{i}"] or line(f) != b"END":
            sys.exit(f"FAIL: get k{i}: {len(got)} bytes differ from the {len(vals[f'k{i}'])} stored")
    s, f = conns[0]
    s.sendall(b"set n 0 0 1\r\n7\r\nincr n 35\r\ndelete k0\r\nget k0\r\n")
    replies = [line(f) for _ in range(4)]
    if replies != [b"STORED", b"42", b"DELETED", b"END"]:
        sys.exit(f"FAIL: incr/delete replies {replies!r}")
    print(f"PASS: 400 keys, {total} bytes set and read back, incr and delete", flush=True)

main(*sys.argv[1:3])
