"""poll_wakeups.py - a thread blocked in poll() on one connection is not
woken by another connection's traffic (framework poll_agg.c: a socket's
news wakes the threads that poll it, not every poll waiter).

  serve ADDR PORT        echo server: every connection echoed, thread each
  client ADDR PORT N     two connections: a thread polls B (idle) while the
                         main thread makes N round trips of 64 B on A, each
                         waited for with poll(); prints B's thread's
                         voluntary context switches over those round trips
"""
import os
import select
import socket
import sys
import threading


def serve(addr, port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(8)
    print("listening", flush=True)

    def echo(c):
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
        c.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()


def nvcsw(tid):
    with open("/proc/self/task/%d/status" % tid) as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise SystemExit("FAIL: no voluntary_ctxt_switches for thread %d" % tid)


def client(addr, port, n):
    a = socket.create_connection((addr, port))
    b = socket.create_connection((addr, port))
    for s in (a, b):                       # both upgraded and answering
        s.sendall(b"hello")
        if s.recv(5) != b"hello":
            raise SystemExit("FAIL: warm-up echo")
    tid = []
    started = threading.Event()
    stop = threading.Event()

    def idle_poller():
        tid.append(threading.get_native_id())
        p = select.poll()
        p.register(b, select.POLLIN)
        started.set()
        while not stop.is_set():
            if p.poll(60000):              # only the final byte ends it
                b.recv(1)
                return

    t = threading.Thread(target=idle_poller)
    t.start()
    started.wait()
    pa = select.poll()
    pa.register(a, select.POLLIN)
    msg = bytes(range(64))
    a.sendall(msg)                         # the poller is asleep by now
    pa.poll(10000)
    if a.recv(64) != msg:
        raise SystemExit("FAIL: echo on A")
    before = nvcsw(tid[0])
    for i in range(n):
        m = bytes((i + j) & 255 for j in range(64))
        a.sendall(m)
        got = b""
        while len(got) < 64:
            if not pa.poll(10000):
                raise SystemExit("FAIL: round trip %d timed out" % i)
            got += a.recv(64 - len(got))
        if got != m:
            raise SystemExit("FAIL: round trip %d: wrong bytes" % i)
    woken = nvcsw(tid[0]) - before
    stop.set()
    b.sendall(b"x")                        # ends the poller's wait
    t.join(10)
    print("round trips %d, idle poller woken %d times" % (n, woken), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
