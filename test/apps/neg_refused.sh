#!/bin/bash
# neg_refused.sh: every client against a port where nothing listens (on
# loopback and across hosts) exits 1 with a one-line "refused" reason.
. "$(dirname "$0")/apps_lib.sh"
apps_setup

check_refused() {   # WHAT RC OUTFILE
    cat "$3"
    [ "$2" = 1 ] || fail "$1 exited $2, expected 1"
    expect_line "$3" "FAIL: .*connect .*:2000[0-9]: Connection refused" "$1 reason"
}
for target in "in_a 127.0.0.1" "in_b $IP_A"; do
    set -- $target
    run=$1 ip=$2
    $run "${APP[@]}" "$BIN/vc_common" -d "$ip" -p 20001 -t 10 >"$WORK/vc.out" 2>&1
    check_refused "vc_common -> $ip" $? "$WORK/vc.out"
    $run "${APP[@]}" "$BIN/fork_client" -d "$ip" -p 20002 -t 10 >"$WORK/fc.out" 2>&1
    check_refused "fork_client -> $ip" $? "$WORK/fc.out"
    expect_line "$WORK/fc.out" "^Result = Fail$" "fork_client Result = Fail"
    head -c 1000 /dev/urandom >"$WORK/f"
    $run "${APP[@]}" "$BIN/vc_cli_file" tcp "$ip" 20003 "$WORK/f" 0.0.0.0 >"$WORK/cf.out" 2>&1
    check_refused "vc_cli_file -> $ip" $? "$WORK/cf.out"
done
echo "PASS: refused connections are reported"
