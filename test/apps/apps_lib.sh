# shellcheck shell=bash
# Shared helpers of the regression-app tests (sourced by the *.sh tests).
#
# Each test gets its own two hosts from test/lib/netns.sh. "Loopback"
# tests run both ends inside host A on its private 127.0.0.1 / ::1, so
# parallel tests never share ports.
#
# APPS_PRELOAD=1 runs every app under LD_PRELOAD=libnStackAPI.so with no
# module config (every socket stays on the kernel stack): the preload must
# be transparent to plain POSIX programs.
#
# APPS_STACK=rsocket runs every app under the preload with the rsocket
# stack module on the software RDMA device: sockets on 192.168.21.0/24
# (mode ns) go over rsocket. NSTACK_STATS=1 makes each app print its
# per-stack byte counters at exit; expect_stack_bytes checks them, which
# proves the data did not quietly take the kernel stack.

set -u
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}" "${NSTACK_BUILD:?}"
# shellcheck source=../lib/netns.sh
. "$NSTACK_SRC/test/lib/netns.sh"

BIN=$NSTACK_RELEASE/bin
WORK=$(mktemp -d /tmp/apps-test.XXXXXX)
# The idle timeout of every app: a broken peer fails the test in seconds,
# not after the apps' 120 s default.
export VS_TIMEOUT=${VS_TIMEOUT:-30}

APP=(env)
if [ "${APPS_PRELOAD:-0}" = 1 ]; then
    # No config files (none in the test's working directory either), so
    # the dispatcher keeps every socket on the kernel stack.
    APP=(env -u NSTACK_MOD_CFG_FILE -u NSTACK_MOD_CFG_RD
         "LD_PRELOAD=$NSTACK_RELEASE/lib64/libnStackAPI.so")
    [ -e "$NSTACK_RELEASE/lib64/libnStackAPI.so" ] ||
        { echo "FAIL: APPS_PRELOAD=1 but libnStackAPI.so is not built" >&2; exit 1; }
elif [ "${APPS_STACK:-kernel}" = rsocket ]; then
    APP=(env "LD_PRELOAD=$NSTACK_RELEASE/lib64/libnStackAPI.so"
         "LD_LIBRARY_PATH=$NSTACK_RELEASE/lib64:$NSTACK_RELEASE/lib64/softrdma"
         "NSTACK_MOD_CFG_FILE=$NSTACK_SRC/stacks/rsocket/config/module_config.json"
         "NSTACK_MOD_CFG_RD=$NSTACK_SRC/stacks/rsocket/config/rd_config.json"
         NSTACK_STATS=1)
    for lib in libnStackAPI.so libdmm_rsocket.so softrdma/libibverbs.so.1; do
        [ -e "$NSTACK_RELEASE/lib64/$lib" ] ||
            { echo "FAIL: APPS_STACK=rsocket but $lib is not built" >&2; exit 1; }
    done
fi

apps_cleanup() { netns_cleanup; rm -rf "$WORK"; }

apps_setup() {
    netns_setup || { echo "FAIL: netns_setup" >&2; exit 1; }
    trap apps_cleanup EXIT
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_line FILE REGEX WHAT: FILE has a line matching REGEX.
expect_line() {
    grep -qE -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "$3"; }
}

# start_server_a OUT CMD...: start CMD on host A, wait for its banner.
start_server_a() {
    local out=$1; shift
    bg_a "${APP[@]}" "$@" >"$out" 2>&1
    SERVER_PID=$BG_PID
    wait_file_match "$out" "^listening" 30 ||
        { cat "$out"; fail "server $1 did not print its listening line"; }
}

# server_status: exit status of the server started last, waiting at most
# 90 s (its own idle timeout is shorter).
server_status() {
    wait_until 90 sh -c "! kill -0 $SERVER_PID 2>/dev/null" ||
        fail "server did not exit within 90 s"
    wait "$SERVER_PID"
}

# expect_stack_bytes FILE TX RX WHAT: with APPS_STACK=rsocket, the exit
# counters in FILE say the rsocket stack sent exactly TX and received
# exactly RX bytes and the kernel stack carried none. A no-op otherwise.
expect_stack_bytes() {
    [ "${APPS_STACK:-kernel}" = rsocket ] || return 0
    expect_line "$1" "^nstack\[[0-9]+\]: stats: stack rsocket: .* tx_bytes $2 rx_bytes $3\$" \
        "$4: $2 bytes sent and $3 received over the rsocket stack"
    expect_line "$1" "^nstack\[[0-9]+\]: stats: stack kernel: .* tx_bytes 0 rx_bytes 0\$" \
        "$4: no bytes over the kernel stack"
}

# where_ips MODE: sets SRV_IP (server, host A) and CLI_IP (client) and
# CLIENT_RUN (in_a or in_b) for MODE lo | lo6 | ns | ns6.
where_ips() {
    case $1 in
        lo)  SRV_IP=127.0.0.1; CLI_IP=127.0.0.1; CLIENT_RUN=in_a ;;
        lo6) SRV_IP=::1;       CLI_IP=::1;       CLIENT_RUN=in_a ;;
        ns)  SRV_IP=$IP_A;     CLI_IP=$IP_B;     CLIENT_RUN=in_b ;;
        ns6) SRV_IP=$IP6_A;    CLI_IP=$IP6_B;    CLIENT_RUN=in_b ;;
        *) fail "unknown mode $1 (lo, lo6, ns, ns6)" ;;
    esac
    [ "${APPS_STACK:-kernel}" != rsocket ] || [ "$1" = ns ] ||
        fail "APPS_STACK=rsocket needs mode ns (192.168.21.0/24 is the rsocket subnet)"
}

# expect_file_result CRC SRC: the file pair's verdicts: both exited 0,
# both printed "Result = Success", equal digests, identical files
# ($WORK/{client,server}.out, file.txt, receive_file.txt).
expect_file_result() {
    [ "$1" = 0 ] || fail "vc_cli_file exited $1"
    [ "$2" = 0 ] || fail "vc_serv_file exited $2"
    expect_line "$WORK/client.out" "^Result = Success$" "sender result"
    expect_line "$WORK/server.out" "^Result = Success$" "receiver result"
    local sent got
    sent=$(grep -oE 'fnv1a64=[0-9a-f]{16}' "$WORK/client.out")
    got=$(grep -oE 'fnv1a64=[0-9a-f]{16}' "$WORK/server.out")
    [ -n "$sent" ] && [ "$sent" = "$got" ] || fail "digests differ: sent $sent, received $got"
    cmp "$WORK/file.txt" "$WORK/receive_file.txt" || fail "received file differs"
}
