#!/bin/bash
# A misbehaving peer (rs_bad_peer, raw rdma_cm/verbs) against the engine:
# short / version != 1 / garbage private data are rejected; an unknown op,
# an unknown control message, a data length past the advertised buffer and
# credits beyond the window each get the connection closed with a logged
# reason. The engine process survives, and a correct client connected
# before and one connecting after still get their data intact.
set -u
BIN="${RS_ENGINE_BIN:-$NSTACK_BUILD/test/rsocket/rs_engine_test}"
BAD="$NSTACK_BUILD/test/rsocket/rs_bad_peer"
RS_LIBPATH_EXTRA="$NSTACK_RELEASE/lib64" . "$NSTACK_SRC/test/rsocket/rs_test_env.sh"

bg_a "$BIN" server-sink 7471 "$IP_A" >"$dir/server" 2>&1
srv=$BG_PID
wait_file_match "$dir/server" LISTENING 30 || fail "server did not listen"
# good traffic on the same engine while the bad peer plays
bg_b "$BIN" client "$IP_A" 7471 D:16777216 P D:16777216 >"$dir/good1" 2>&1
good=$BG_PID

# handshake cases on the scenario port (rejected before any socket
# exists), connection cases on the sink (never reads: only the engine's own
# checks can end those connections)
timeout 300 ip netns exec "$NS_B" "$BAD" "$IP_A" 7471 short version garbage \
    >"$dir/bad" 2>&1 || fail "bad peer handshake cases"
timeout 300 ip netns exec "$NS_B" "$BAD" "$IP_A" 7472 op ctrl big length credits \
    >>"$dir/bad" 2>&1 || fail "bad peer connection cases"
cat "$dir/bad"
for why in "shorter than 40 bytes" "version is not 1" "zero credits" \
           "unknown operation" "unknown control" "larger than 64 KiB" \
           "past the advertised buffer" "credits beyond"; do
    grep -q "$why" "$dir/server" || fail "no log line naming \"$why\""
done
wait_until 60 test "$(grep -c 'SO_ERROR 71 ' "$dir/server")" -eq 5 ||
    fail "the sink did not see 5 connections end with EPROTO"
kill -0 "$srv" 2>/dev/null || fail "engine server died"
timeout 300 tail --pid="$good" -f /dev/null
wait "$good" || fail "good client during the bad peer"
timeout 120 ip netns exec "$NS_B" "$BIN" client "$IP_A" 7471 D:1048576 P X \
    >"$dir/client" 2>&1 || fail "good client after the bad peer"
timeout 60 tail --pid="$srv" -f /dev/null
wait "$srv" || fail "server exit status"
grep -q "SERVER OK" "$dir/server" || fail "server verdict"
echo PASS
