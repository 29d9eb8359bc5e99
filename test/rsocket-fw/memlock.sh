#!/bin/bash
# memlock.sh: RDMA under the locked-memory limit (issue 10, "Limits"). The
# client runs as an unprivileged user (no CAP_IPC_LOCK), so the software
# device enforces RLIMIT_MEMLOCK on ibv_reg_mr as the kernel does.
# With a device that has on-demand paging (ODP, the software device's
# default):
#  0. ulimit -l 256 KiB, 10 connections: every one on RDMA (the buffers are
#     registered on demand at full size, nothing counts against the limit),
#     no warning, the INF line says why.
# As a NIC without ODP (SOFTRDMA_ODP=0):
#  1. ulimit -l 256 KiB, 10 connections: the engine sizes its buffers to
#     the limit (some connections on RDMA), the rest stay on TCP; every
#     byte echoed and verified, two WAR lines in all (the sizing and the
#     refusal, each naming RLIMIT_MEMLOCK and the setting to change), and
#     the exit report counts the others under "locked-memory limit".
#  2. the default ulimit -l of 8 MiB: N connections, at least MIN_RDMA of
#     them on RDMA (the number is in doc/rsocket-framework.md).
. "$(dirname "$0")/rsfw_lib.sh"
PROG=$NSTACK_BUILD/test/rsocket-fw/rsfw_conns
[ -x "$PROG" ] || fail "$PROG not built"
N2=${1:-250}; MIN_RDMA=${2:-150}
rsfw_setup

# Everything the unprivileged client reads, readable by it (the tree may
# be under a 0700 directory).
chmod 755 "$WORK"
cp -a "$NSTACK_RELEASE/lib64" "$WORK/lib64" && cp "$PROG" "$WORK/" &&
    cp "$NSTACK_SRC"/stacks/rsocket/config/{module_config,rd_config}.json "$WORK/" &&
    chmod -R a+rX "$WORK" || fail "cannot copy the client's files"
USER_ENV=(env "LD_LIBRARY_PATH=$WORK/lib64:$WORK/lib64/softrdma" "LD_PRELOAD=$WORK/lib64/libnStackAPI.so"
    "NSTACK_MOD_CFG_FILE=$WORK/module_config.json" "NSTACK_MOD_CFG_RD=$WORK/rd_config.json" NSTACK_STATS=1)

# run_case NAME N LIMIT_KIB PORT [ENV...]: server (root) on B, client as nobody on A.
run_case() {
    local name=$1 n=$2 lim=$3 port=$4 srv
    shift 4
    bg_b "${RS_ENV[@]}" "$PROG" server "$IP_B" "$port" "$n" $((n * 65536)) >"$WORK/$name.server" 2>&1
    srv=$BG_PID
    wait_file_match "$WORK/$name.server" "^listening" 30 || { cat "$WORK/$name.server"; fail "$name: server did not listen"; }
    in_a "${USER_ENV[@]}" "$@" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
        bash -c "ulimit -l $lim && exec '$WORK/rsfw_conns' client '$IP_B' $port $n 65536" \
        >"$WORK/$name.client" 2>&1 || { cat "$WORK/$name.client"; fail "$name: client failed"; }
    wait_exit "$srv" 120 || { cat "$WORK/$name.server"; fail "$name: server failed"; }
    expect_line "$WORK/$name.client" "PASS: $n connections x 65536 bytes echoed and verified" "$name: client verdict"
    expect_line "$WORK/$name.server" "^server: $n connections, $((n * 65536)) bytes echoed" "$name: server totals"
}

anchored() { sed -n 's/.*stats: anchored on rsocket: \([0-9]*\),.*/\1/p' "$1" | head -1; }

run_case odp 10 256 20003 NSTACK_LOG_ON=INF
c=$WORK/odp.client
on=$(anchored "$c"); on=${on:-0}
[ "$on" -eq 10 ] || fail "256 KiB with ODP: $on of 10 connections on RDMA, expected all"
expect_stack "$c" rsocket tx_bytes $((10 * 65536)) "256 KiB with ODP: RDMA carried every connection's data"
expect_line "$c" "locked-memory limit 256 KiB \(RLIMIT_MEMLOCK, no CAP_IPC_LOCK\): RDMA buffers registered on demand" "the ODP line"
grep -q 'WAR.*\(MEMLOCK\|locked-memory\)' "$c" && fail "256 KiB with ODP: a warning about the limit: $(grep -m1 'WAR' "$c")"
echo "256 KiB with ODP: 10 of 10 connections on RDMA, buffers registered on demand; data verified"

run_case small 10 256 20001 SOFTRDMA_ODP=0
c=$WORK/small.client
on=$(anchored "$c"); on=${on:-0}
[ "$on" -ge 1 ] && [ "$on" -lt 10 ] || fail "256 KiB: $on of 10 connections on RDMA, expected some but not all"
expect_stack "$c" rsocket tx_bytes 65536 "256 KiB: the RDMA connections carried data"
expect_line "$c" "WAR: rsocket: locked-memory limit 256 KiB \(RLIMIT_MEMLOCK, no CAP_IPC_LOCK\): RDMA buffers of 16 KiB" "the sizing line"
expect_line "$c" "WAR: rsocket: memory registration refused at the locked-memory limit .*ulimit -l" "the refusal line"
expect_line "$c" "stats: report: $((10 - on)) connections? to 192.168.21.0/24 stayed on TCP: locked-memory limit" "the exit report's reason"
lines=$(grep -v ': stats: ' "$c" | grep -c 'MEMLOCK\|locked-memory')
[ "$lines" -le 3 ] || { cat "$c"; fail "256 KiB: $lines lines about the limit, expected one each from the engine and the device"; }
grep -q 'cannot create the RDMA endpoint\|RDMA connection to the peer failed' "$c" &&
    fail "256 KiB: per-connection error lines: $(grep -m2 'cannot create\|peer failed' "$c")"
echo "256 KiB: $on of 10 connections on RDMA, the others on TCP with the reason; data verified"

run_case default "$N2" 8192 20002 SOFTRDMA_ODP=0
on=$(anchored "$WORK/default.client"); on=${on:-0}
[ "$on" -ge "$MIN_RDMA" ] || fail "8 MiB: $on of $N2 connections on RDMA, expected at least $MIN_RDMA"
echo "PASS: ulimit -l 8 MiB: $on of $N2 connections on RDMA (16 KiB buffers), the rest on TCP; data verified"
