#!/usr/bin/env python3
"""expect_conn.py FILE PEER STATE REASON_CODE [RULE_SUBSTRING]

FILE is `nstack-stat -c -j PID` output. Succeeds when exactly one process is
in it and one of its connections has peer PEER ("IP:PORT", or "IP:*" for any
port), state STATE and reason_code REASON_CODE (and a route containing
RULE_SUBSTRING); else prints the connections and exits 1."""
import json
import sys

path, peer, state, reason = sys.argv[1:5]
rule = sys.argv[5] if len(sys.argv) > 5 else ""
doc = json.load(open(path))
procs = doc["processes"]
if len(procs) != 1:
    sys.exit(f"expected one process in {path}, found {len(procs)}")
conns = procs[0].get("connections", [])


def peer_ok(c):
    if peer.endswith(":*"):
        return c["peer"].rsplit(":", 1)[0] == peer[:-2]
    return c["peer"] == peer


hits = [c for c in conns if peer_ok(c)]
for c in hits:
    if c["state"] == state and c["reason_code"] == reason and rule in c["route"]:
        if reason != "none" and not c["reason"]:
            sys.exit(f"{peer}: reason code {reason} without text")
        print(f"ok: {peer}: {state}: {c['reason'] or 'accelerated'} ({c['route']})")
        sys.exit(0)
print(json.dumps(conns, indent=1), file=sys.stderr)
sys.exit(f"no connection to {peer} with state {state}, reason {reason}, route ~ '{rule}'")
