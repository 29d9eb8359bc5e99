#!/bin/bash
# rss.sh BURSTS N BYTES: one rsocket server process (rsfw_conns, host B)
# serves BURSTS bursts of N concurrent connections from a client on host A
# (BYTES echoed and verified on each). After every burst, once all its
# connections ended, the server prints its resident set; after the last
# one (the lowest of 3 s of samples: frees that follow a close run a little
# later) it must be within RSS_SLACK_KB (default 20480) of what it was before
# the first connection: per-connection memory goes back at close.
. "$(dirname "$0")/rsfw_lib.sh"
BURSTS=${1:-3}; N=${2:-1000}; BYTES=${3:-16384}
SLACK=${RSS_SLACK_KB:-20480}
PROG=$NSTACK_BUILD/test/rsocket-fw/rsfw_conns
[ -x "$PROG" ] || fail "$PROG not built"
ulimit -n "$(ulimit -Hn)" || fail "cannot raise the fd limit"
rsfw_setup

bg_b "${RS_ENV[@]}" "$PROG" server "$IP_B" 20000 $((BURSTS * N)) $((BURSTS * N * BYTES)) \
    >"$WORK/server.out" 2>&1
srv=$BG_PID
wait_file_match "$WORK/server.out" "^listening" 30 || { cat "$WORK/server.out"; fail "server did not listen"; }
for b in $(seq 1 "$BURSTS"); do
    in_a "${RS_ENV[@]}" "$PROG" client "$IP_B" 20000 "$N" "$BYTES" >"$WORK/client$b.out" 2>&1 ||
        { cat "$WORK/client$b.out"; fail "burst $b: client failed"; }
    expect_line "$WORK/client$b.out" "PASS: $N connections x $BYTES bytes echoed and verified" "burst $b"
    wait_file_match "$WORK/server.out" "idle after $((b * N)) connections" 60 ||
        { cat "$WORK/server.out"; fail "burst $b: the server did not see every connection end"; }
done
wait_exit "$srv" 120 || { cat "$WORK/server.out"; fail "server failed"; }
grep -E "rss_kb|PASS" "$WORK/server.out"
base=$(sed -n 's/^server: rss_kb \([0-9]*\) at start$/\1/p' "$WORK/server.out")
last=$(sed -n "s/^server: idle after $((BURSTS * N)) connections, rss_kb \([0-9]*\)$/\1/p" "$WORK/server.out")
[ -n "$base" ] && [ -n "$last" ] || fail "no RSS figures from the server"
expect_stack "$WORK/server.out" rsocket accept $((BURSTS * N)) server
[ $((last - base)) -le "$SLACK" ] ||
    fail "server RSS after $BURSTS bursts of $N: $last kB, $((last - base)) kB above the $base kB before (limit $SLACK kB)"
echo "PASS: after $BURSTS bursts of $N connections the server's RSS is $((last - base)) kB above its start ($base -> $last kB)"
