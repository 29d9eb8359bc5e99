#!/bin/bash
# cycles.sh CYCLES BYTES: connection churn on the rsocket route (issue 10,
# "Resources"): CYCLES sequential connect/send/recv/close cycles from host
# A to a server on host B, BYTES echoed and checked per cycle; descriptors
# and resident set at the end must be at their level after the warm-up
# (rsfw_cycles.c). In the sanitizer build (its programs link libasan) the
# preloaded framework, module and device are sanitized too, and
# LeakSanitizer checks both processes at exit.
# RSFW_EPC=1: also assert that both ends served connections from the
# endpoint cache (rs_epcache.c: a closed connection's registered buffers
# reused; its one INF line), every cycle's echo still checked.
. "$(dirname "$0")/rsfw_lib.sh"
CYCLES=${1:-20000}; BYTES=${2:-1024}
PROG=$NSTACK_BUILD/test/rsocket-fw/rsfw_cycles
[ -x "$PROG" ] || fail "$PROG not built"
ENV=("${RS_ENV[@]}")
[ "${RSFW_EPC:-0}" = 1 ] && ENV+=("NSTACK_LOG_ON=INF")
asan=$(ldd "$PROG" | awk '/libasan/ { print $3 }')
if [ -n "$asan" ]; then
    # the sanitizer runtime must come first in the preload list
    for i in "${!ENV[@]}"; do
        [[ ${ENV[i]} == LD_PRELOAD=* ]] && ENV[i]="LD_PRELOAD=$asan:${ENV[i]#LD_PRELOAD=}"
    done
    # ASan's quarantine holds freed memory (RSS means nothing there):
    # LeakSanitizer judges memory, the descriptor check stays
    ENV+=("ASAN_OPTIONS=detect_leaks=1:exitcode=23" "RSFW_RSS_SLACK_KB=100000000")
fi
rsfw_setup
bg_b "${ENV[@]}" "$PROG" server "$IP_B" 20010 "$CYCLES" "$BYTES" >"$WORK/server.out" 2>&1
srv=$BG_PID
wait_file_match "$WORK/server.out" "^listening" 30 || { cat "$WORK/server.out"; fail "server did not listen"; }
in_a "${ENV[@]}" "$PROG" client "$IP_B" 20010 "$CYCLES" "$BYTES" >"$WORK/client.out" 2>&1
crc=$?
wait_exit "$srv" 300; src=$?
grep -v ': stats: ' "$WORK/client.out"; grep -v ': stats: ' "$WORK/server.out"
[ "$crc" = 0 ] || fail "client exited $crc${asan:+ (23: LeakSanitizer found leaks)}"
[ "$src" = 0 ] || fail "server exited $src${asan:+ (23: LeakSanitizer found leaks)}"
expect_line "$WORK/client.out" "rsfw_cycles client: PASS" "client verdict"
expect_line "$WORK/server.out" "rsfw_cycles server: PASS" "server verdict"
expect_stack "$WORK/client.out" rsocket connect "$CYCLES" client
expect_stack "$WORK/client.out" rsocket tx_bytes $((CYCLES * BYTES)) "client: every cycle's bytes on rsocket"
expect_stack_zero "$WORK/client.out" kernel tx_bytes client
if [ "${RSFW_EPC:-0}" = 1 ]; then
    expect_line "$WORK/client.out" "endpoint cache: a closed connection's registered buffers serve" "client: no endpoint reused"
    expect_line "$WORK/server.out" "endpoint cache: a closed connection's registered buffers serve" "server: no endpoint reused"
fi
echo "PASS: $CYCLES cycles on rsocket${asan:+ (ASan+LSan)}: $(grep -h 'cycles:' "$WORK/client.out" "$WORK/server.out" | tr '\n' ' ')"
