#!/usr/bin/env python3
"""udp_echo.py: UDP echo for the datagram-rsocket tests (run under the
preload; plain POSIX sockets, nothing rsocket-specific).

  udp_echo.py serve IP PORT EXPECT_PEERS
      echo every datagram to its source until each of EXPECT_PEERS distinct
      peers sent b"QUIT"; prints "listening", then "served N datagrams from
      K peers" and exits 0. Any datagram that is not from an echo client
      (its first byte not b"E" or b"Q") fails the server: nothing malformed
      may reach the application.
  udp_echo.py client IP PORT LOCAL_IP SOCKETS COUNT [GO_FILE]
      SOCKETS sockets bound to LOCAL_IP (one peer each, all to the one
      server socket): three warm-up round trips per socket (first contact),
      then, when GO_FILE is given, print "warm N" and wait for GO_FILE to
      exist (the test starts its capture), then COUNT round trips per
      socket, round robin, random sizes 1..1400 (and the largest datagram
      once), every echoed byte checked. Prints "PASS: ..." and exits 0.
  udp_echo.py bad IP PORT
      plain kernel UDP (run without the preload): malformed first-contact
      datagrams to the server (bad tag, version, length, short, version
      not matching the family, and a valid header with a non-echo
      payload is NOT sent: that would be data), then exits 0.
"""
import os
import random
import socket
import struct
import sys
import time

TIMEOUT = float(os.environ.get("VS_TIMEOUT", "30"))


def family(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def serve(ip, port, expect_peers):
    s = socket.socket(family(ip), socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.settimeout(TIMEOUT)
    print("listening", flush=True)
    peers, quit_from, n = set(), set(), 0
    while len(quit_from) < expect_peers:
        data, src = s.recvfrom(65536)
        if data[:1] not in (b"E", b"Q"):
            sys.exit(f"FAIL: server got a datagram that is not from an echo client: "
                     f"{data[:32]!r} from {src}")
        peers.add(src)
        if data[:1] == b"Q":
            quit_from.add(src)
        s.sendto(data, src)
        n += 1
    print(f"served {n} datagrams from {len(peers)} peers", flush=True)


def round_trip(s, payload, dest):
    s.sendto(payload, dest)
    got, src = s.recvfrom(65536)
    if got != payload:
        sys.exit(f"FAIL: echo differs: sent {len(payload)} bytes, got {len(got)} "
                 f"(first difference at {next((i for i, (a, b) in enumerate(zip(payload, got)) if a != b), min(len(got), len(payload)))})")


def client(ip, port, local, nsock, count, go_file):
    dest = (ip, port)
    socks = []
    for _ in range(nsock):
        s = socket.socket(family(ip), socket.SOCK_DGRAM)
        s.bind((local, 0))
        s.settimeout(TIMEOUT)
        socks.append(s)
    for _ in range(3):              # first contact, then the address handles settle
        for s in socks:
            round_trip(s, b"E" + b"w" * 31, dest)
    # GO_FILE.more: one more warm-up round (the test asks until a round
    # crossed without kernel UDP: every peer's address handle is made)
    rounds = 3
    while go_file:
        print(f"warm {rounds}", flush=True)
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(go_file) and not os.path.exists(go_file + ".more"):
            if time.monotonic() > deadline:
                sys.exit("FAIL: the test never said go")
            time.sleep(0.01)
        if os.path.exists(go_file):
            break
        os.unlink(go_file + ".more")
        for s in socks:
            round_trip(s, b"E" + b"w" * 31, dest)
        rounds += 1
    rnd = random.Random(1234)
    total = 0
    for i in range(count):
        for s in socks:
            size = 1400 if i else 2000      # the largest kind once
            size = rnd.randint(1, size) if i else size
            payload = b"E" + rnd.randbytes(size - 1) if size > 1 else b"E"
            round_trip(s, payload, dest)
            total += len(payload)
    for s in socks:
        round_trip(s, b"Q", dest)
    print(f"PASS: {nsock} sockets x {count} round trips, {total} bytes echoed and checked",
          flush=True)


def bad(ip, port):
    fam = family(ip)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    tag = struct.pack("!I", 0x55555555)
    ip4 = b"\x01\x02\x03\x04"
    ip6 = b"\x00" * 16
    v, ln, addr = (4, 16, ip4) if fam == socket.AF_INET else (6, 28, ip6)
    other_v, other_ln = (6, 28) if v == 4 else (4, 16)
    cases = [
        b"",                                                       # empty
        b"X" * 40,                                                 # no tag
        tag + bytes([v, 0, ln]),                                   # short
        b"\x00\x00\x00\x00" + bytes([v, 0, ln, 0]) + b"\0\0\0\1" + addr + b"Ebad",   # bad tag
        tag + bytes([9, 0, ln, 0]) + b"\0\0\0\1" + addr + b"Ebad",                    # version 9
        tag + bytes([v, 0, ln + 4, 0]) + b"\0\0\0\1" + addr + b"Ebad",                # wrong length
        tag + bytes([other_v, 0, other_ln, 0]) + b"\0\0\0\1" + b"\0" * 16 + b"Ebad",  # other family
        tag + bytes([v, 0, 200, 0]) + b"\0\0\0\1" + addr,                             # length past end
        b"E plain UDP without the first-contact header",
    ]
    for c in cases:
        s.sendto(c, (ip, port))
    print(f"sent {len(cases)} malformed datagrams", flush=True)


def main():
    mode = sys.argv[1]
    if mode == "serve":
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "client":
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]),
               sys.argv[7] if len(sys.argv) > 7 else None)
    elif mode == "bad":
        bad(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
