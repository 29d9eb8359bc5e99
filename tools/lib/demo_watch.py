#!/usr/bin/env python3
"""demo_watch.py LABEL NSTACK_STAT MSG_LEN CONNS_FILE CLIENT_PID [SERVER_PID]

tools/demo.sh's live view of one subnet: about once a second, while the
client runs, one line with the messages/s the client sent in that second
and the stack that carried them, from `nstack-stat -j CLIENT_PID` (the
framework's shared counters). Also keeps the latest `nstack-stat -c` of
both processes in CONNS_FILE, so the per-connection view of what crossed
which stack survives the processes' exit. Ends when the client exits (at
most after 900 s).
"""
import json
import os
import subprocess
import sys
import time

LIMIT_S = 900


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sample(stat, pid):
    """{stack: tx_bytes} of the process, or None once it is gone."""
    r = subprocess.run([stat, '-j', str(pid)], capture_output=True, text=True,
                       timeout=10)
    if r.returncode != 0 or not r.stdout.strip():
        return None
    try:
        doc = json.loads(r.stdout.splitlines()[0])
        procs = doc.get('processes', [])
        return {s['name']: s['tx_bytes'] for s in procs[0]['stacks']} if procs else None
    except (ValueError, KeyError, IndexError):
        return None


def keep_conns(stat, pids, path):
    """The text per-connection view, replaced only by a complete sample."""
    r = subprocess.run([stat, '-c'] + [str(p) for p in pids], capture_output=True,
                       text=True, timeout=10)
    if r.returncode == 0 and r.stdout.strip():
        with open(path + '.tmp', 'w') as f:
            f.write(r.stdout)
        os.replace(path + '.tmp', path)


def line(label, t, prev, cur, dt, msg_len):
    moved = {k: cur[k] - prev.get(k, 0) for k in cur if cur[k] - prev.get(k, 0) > 0}
    total = sum(cur.values()) // msg_len
    if not moved:
        return '  %-16s %6.1f s  %10s msg/s  %-10s %10d msgs sent' % (label, t, 0, '-', total)
    rate = sum(moved.values()) / msg_len / dt
    mbit = sum(moved.values()) * 8 / dt / 1e6
    return '  %-16s %6.1f s  %10.0f msg/s  %-10s %10d msgs sent  %8.1f Mbit/s' % (
        label, t, rate, '+'.join(sorted(moved)), total, mbit)


def main(argv):
    label, stat, msg_len, conns = argv[1], argv[2], int(argv[3]), argv[4]
    pids = [int(p) for p in argv[5:]]
    start = last_t = time.monotonic()
    prev = sample(stat, pids[0]) or {}
    # The per-connection view every quarter second (a short run still gets
    # one, and the last is at most that old), a progress line every second.
    while alive(pids[0]) and time.monotonic() - start < LIMIT_S:
        if all(alive(p) for p in pids):    # else keep the sample with both
            keep_conns(stat, pids, conns)
        time.sleep(0.25)                # display pacing, not synchronisation
        if time.monotonic() - last_t < 1:
            continue
        cur = sample(stat, pids[0])
        if cur is None:
            break
        now = time.monotonic()
        print(line(label, now - start, prev, cur, now - last_t, msg_len), flush=True)
        prev, last_t = cur, now
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
