#!/bin/bash
# fds.sh N BYTES MAX [DEVMAX]: descriptors per connection (issue 8). N anchored
# connections from one client process (host A) to one server process
# (host B), all open at once, BYTES echoed and checked on each; then both
# processes count their descriptor tables (rsfw_fds). Per connection end,
# not counting what the software device itself opens (another component,
# counted apart in the output: its AF_UNIX sockets, and its copies of the
# other process's completion eventfds: the eventfd ids (fdinfo) both
# processes hold are those copies and their originals, one of each per
# connection in each process, so half of them are the device's in each),
# the average must stay at or below MAX. Counted: the
# application's TCP socket (also the anchor the module watches; a
# dispatcher's dup of it only once the app gave it a second number), the
# module's wait fd, completion channel, CM channel,
# timers and kick eventfds. With DEVMAX, the device's share per connection
# end must stay at or below it too (its CM connection until both upgraded
# ends detach it; its QP streams close once idle, and its copies of peers'
# channels are a per-process cache).
# Both processes run without CAP_SYS_CHROOT, as a server's workers do,
# unless AS is "root": then with it, as root servers do (such a process
# closes its idle device streams too, its device thread having a root of
# its own; with SOFTRDMA_IDLE_CLOSE=1 it would keep them: doc/softrdma.md,
# "Streams open only while used").
. "$(dirname "$0")/rsfw_lib.sh"
N=${1:-500}; BYTES=${2:-4096}; MAX=${3:-2}; DEVMAX=${4:-}; AS=${5:-nochroot}
PROG=$NSTACK_BUILD/test/rsocket-fw/rsfw_fds
[ -x "$PROG" ] || fail "$PROG not built"
ulimit -n "$(ulimit -Hn)" || fail "cannot raise the fd limit"
rsfw_setup

NOCHROOT=(setpriv --bounding-set -sys_chroot)
[ "$AS" = root ] && NOCHROOT=()   # the test hosts need root anyway
bg_b env RSFW_FDS_IDS="$WORK/server.ids" "${RS_ENV[@]}" "${NOCHROOT[@]}" "$PROG" server "$IP_B" 20000 "$N" "$BYTES" >"$WORK/server.out" 2>&1
srv=$BG_PID
wait_file_match "$WORK/server.out" "^listening" 30 || { cat "$WORK/server.out"; fail "server did not listen"; }
bg_a env RSFW_FDS_HOLD="$WORK/hold" RSFW_FDS_IDS="$WORK/client.ids" "${RS_ENV[@]}" "${NOCHROOT[@]}" "$PROG" client "$IP_B" 20000 "$N" "$BYTES" >"$WORK/client.out" 2>&1
cli=$BG_PID
wait_file_match "$WORK/server.out" "^server: fds " 240 || { cat "$WORK/client.out" "$WORK/server.out"; fail "server did not report"; }
wait_file_match "$WORK/client.out" "^client: fds " 240 || { cat "$WORK/client.out" "$WORK/server.out"; fail "client did not report"; }
touch "$WORK/hold"
wait_exit "$cli" 120; crc=$?
wait_exit "$srv" 120; src=$?
cat "$WORK/client.out" "$WORK/server.out"
[ "$crc" = 0 ] || fail "client exited $crc"
[ "$src" = 0 ] || fail "server exited $src"
expect_line "$WORK/client.out" "^client: $N connections x $BYTES bytes echoed and verified" "client verdict"
expect_stack "$WORK/client.out" rsocket tx_bytes $((N * BYTES)) "client (every connection upgraded)"
expect_stack "$WORK/server.out" rsocket rx_bytes $((N * BYTES)) "server (every connection upgraded)"
expect_stack_zero "$WORK/client.out" kernel tx_bytes client

# eventfds both processes hold: the device's cross-process copies and
# their originals (the other process's completion channels)
shared=$(sort -u "$WORK/client.ids" | comm -12 - <(sort -u "$WORK/server.ids") | wc -l)
shared=$((shared / 2))

# check ROLE: (now - base - the device's unix sockets and shared eventfds) / N
check() {
    local line now base unx evf per dev
    line=$(grep "^$1: fds " "$WORK/$1.out")
    now=$(sed -E 's/.* now=([0-9]+).*/\1/' <<<"$line")
    base=$(sed -E 's/.* base=([0-9]+).*/\1/' <<<"$line")
    unx=$(sed -E 's/.* unix=([0-9]+).*/\1/' <<<"$line")
    evf=$shared
    per=$(awk -v a="$now" -v b="$base" -v u="$unx" -v e="$evf" -v n="$N" \
        'BEGIN { printf "%.2f", (a - b - u - e) / n }')
    dev=$(awk -v u="$unx" -v e="$evf" -v n="$N" 'BEGIN { printf "%.2f", (u + e) / n }')
    echo "$1: $per descriptors per connection besides the device's ($dev of the device's)"
    awk -v p="$per" -v m="$MAX" 'BEGIN { exit !(p <= m) }' || fail "$1: $per descriptors per connection, expected <= $MAX"
    [ -z "$DEVMAX" ] || awk -v p="$dev" -v m="$DEVMAX" 'BEGIN { exit !(p <= m) }' ||
        fail "$1: $dev of the device's descriptors per connection, expected <= $DEVMAX"
}
check client
check server
dev_note=""
[ -z "$DEVMAX" ] || dev_note=" (the device's within $DEVMAX)"
echo "PASS: $N anchored connections, descriptors per connection within $MAX$dev_note"
