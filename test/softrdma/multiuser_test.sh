#!/bin/bash
# One softrdma fabric shared by processes of different users, between the
# two namespace test hosts (sr_user_test: echo, READ of a registered
# region, READ past it refused):
#   drop         server starts as root and setuid()s to nobody after the
#                device started; client as root; then a www-data server on
#                the same port (the first one's root-owned claim is stale)
#   root_fabric  the fabric is created by a root server; client as nobody
#   user_fabric  the fabric is created by a nobody server; clients as
#                www-data, then root
#   rebind       a nobody server exits without destroying its ids; a
#                www-data server then takes the same address and port
#                (the first one's names went at its exit: under the
#                fabric's sticky bit www-data could not remove them)
#   relisten     a nobody server is killed (SIGKILL: its names stay, and
#                www-data may not remove them); a www-data server listens
#                on the same address and port under an alternate name,
#                and a root client finds it there
#   low_port     RDMA ports below 1024 need CAP_NET_BIND_SERVICE, as in
#                the kernel's rdma_cm: EACCES for nobody, fine for root
set -u
. "$NSTACK_SRC/test/lib/netns.sh"
LOG=$(mktemp -d /tmp/softrdma-users.XXXXXX)
netns_remove_on_exit "$LOG"
fail() { echo "FAIL: $*"; for f in "$LOG"/*.log; do echo "--- $f"; tail -n 20 "$f"; done;
         echo "--- fabric"; ls -laR "$SOFTRDMA_FABRIC" 2>&1 | head -40; exit 1; }
# the program and the device where every user can read them, whatever the
# modes of the build tree
chmod 755 "$LOG"
cp "$NSTACK_BUILD/test/softrdma/sr_user_test" "$LOG/" || fail "no sr_user_test"
cp -a "$NSTACK_RELEASE/lib64/softrdma/." "$LOG/lib/" 2>/dev/null ||
    { mkdir -p "$LOG/lib" && cp -a "$NSTACK_RELEASE/lib64/softrdma/." "$LOG/lib/"; } || fail "copy the device"
chmod -R a+rX "$LOG"
export LD_LIBRARY_PATH="$LOG/lib"
BIN="$LOG/sr_user_test"
netns_setup || fail "netns setup"
# a fabric directory that the tests create is shared like /tmp (netns.sh)
[ "$(stat -c %a "$SOFTRDMA_FABRIC")" = 1777 ] || fail "the test fabric is not 1777"
PORT=$((20000 + RANDOM % 1000))

# as USER: the command prefix that runs as USER (nothing for root)
as() { AS=(); [ "$1" = root ] || AS=(setpriv --reuid="$1" --regid="$(id -g "$1")" --clear-groups); }

# run SERVER_USER DROP_TO CLIENT_USER...: one server run per client
run() {
    local suser=$1 drop=$2 c spid; shift 2
    for c in "$@"; do
        as "$suser"
        bg_a "${AS[@]}" "$BIN" server "$IP_A" "$PORT" $drop > "$LOG/server.log" 2>&1; spid=$BG_PID
        # (a previous server's name may still be there: wait for this one)
        wait_file_match "$LOG/server.log" "server: listening" 30 || fail "server did not listen"
        as "$c"
        timeout 60 ip netns exec "$NS_B" "${AS[@]}" "$BIN" client "$IP_A" "$PORT" \
            > "$LOG/client-$c.log" 2>&1 || fail "client as $c: exit status"
        grep -q "all as expected" "$LOG/client-$c.log" || fail "client as $c: no result"
        cat "$LOG/client-$c.log"
        timeout 60 tail --pid="$spid" -f /dev/null || fail "server did not exit"
        wait "$spid" || fail "server exit status"
        ! grep -qi "permission denied\|cannot" "$LOG"/*.log || fail "a permission error was logged"
        # sr_user_test exits without destroying its ids: its names go at
        # exit (a claim made as root before a drop stays: it is the next
        # run's to ignore)
        [ -z "$(find "$SOFTRDMA_FABRIC/cm" -maxdepth 1 -name "${IP_A}_$PORT*" -user "${drop:-$suser}")" ] ||
            fail "the listener name outlived the server"
        [ -n "$drop" ] || ! ls "$SOFTRDMA_FABRIC/cm/port/"*_"$PORT" 2>/dev/null | grep -q "@$spid\." ||
            fail "the port claim outlived the server"
    done
}

case "${1:-}" in
drop)
    run root nobody root
    grep -q "running as uid 65534" "$LOG/server.log" || fail "server did not drop to nobody"
    # its claim, made as root, could not be removed by nobody: it must not
    # keep another user off the port
    run www-data "" root ;;
root_fabric) run root "" nobody ;;
user_fabric)
    run nobody "" www-data root
    [ "$(stat -c %U "$SOFTRDMA_FABRIC/nic")" = nobody ] || fail "nobody did not create the fabric" ;;
rebind)
    run nobody "" root
    run www-data "" root ;;
relisten)
    as nobody
    bg_a "${AS[@]}" "$BIN" server "$IP_A" "$PORT" > "$LOG/server.log" 2>&1; spid=$BG_PID
    wait_file_match "$LOG/server.log" "server: listening" 30 || fail "server did not listen"
    kill -9 "$spid"; wait "$spid" 2>/dev/null
    [ "$(stat -c %U "$SOFTRDMA_FABRIC/cm/${IP_A}_$PORT")" = nobody ] || fail "no stale name of nobody"
    run www-data "" root ;;
low_port)
    as nobody; in_a "${AS[@]}" "$BIN" bind "$IP_A" 999 > "$LOG/low-nobody.log" 2>&1
    grep -q "bind: EACCES" "$LOG/low-nobody.log" || fail "nobody bound RDMA port 999"
    grep -q "port 999 is privileged" "$LOG/low-nobody.log" || fail "no line naming port 999"
    as nobody; in_a "${AS[@]}" "$BIN" bind "$IP_A" 1999 > "$LOG/high-nobody.log" 2>&1
    grep -q "bind: 0" "$LOG/high-nobody.log" || fail "nobody could not bind RDMA port 1999"
    in_a "$BIN" bind "$IP_A" 999 > "$LOG/low-root.log" 2>&1
    grep -q "bind: 0" "$LOG/low-root.log" || fail "root could not bind RDMA port 999" ;;
*) echo "usage: $0 drop|root_fabric|user_fabric|rebind|relisten|low_port"; exit 2 ;;
esac
echo "PASS: $1"
