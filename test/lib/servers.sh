# shellcheck shell=bash
# Harness for test/servers: real servers started as Debian starts them
# (daemons, several processes, workers under their own users), driven from
# the other test host, with the wire and the nStack counters checked.
# Builds on test/lib/programs.sh (modes, hosts, client) and wirecheck.sh.
#
#   srv_setup MODE BASE_PORT    MODE: plain | preload | rsocket (prog_setup);
#                               $PROG_TMP is readable by every user
#   srv_on_exit CMD...          run CMD (a graceful stop) before the hosts go
#   srv_server_env CMD...       CMD on host A under the mode's preload
#   srv_server_env_chroot ROOT CMD...  the same for a daemon chrooting to ROOT
#   srv_client CMD...           the client on the other host (plain: host A's
#                               loopback), NSTACK_STATS=1 under the preload
#   srv_wire_start PORT         capture kernel TCP packets > 64 B payload
#   srv_server_bytes            tx+rx bytes on the mode's stack (kernel, or
#                               rsocket) of host A's live framework processes
#   srv_wire_verdict WHAT STATS MIN [SERVER_BYTES]
#       plain/preload: the bulk crossed kernel TCP (the capture saw it:
#       proves the rsocket assertion can fail); rsocket: no kernel TCP
#       packet with more than 64 B of payload. Under the preload, the
#       client's exit counters (file STATS) and SERVER_BYTES (from
#       srv_server_bytes, when given) show >= MIN bytes on the mode's stack
#   srv_framework_pids          live processes of host A using libnStackAPI.so
#   srv_user_of PID             the user name a process runs as
#   srv_wait_gone PID SECONDS   bounded wait for a process to end
#   srv_wait_banner NAME        the test program prog_server NAME listens
#   srv_server_done             ... and ends with status 0
#   srv_check_users MAIN MU WU [PID...]  the daemon's users
#   srv_http_answers URL / srv_http_fetch_checked URL FILE LOG_CMD
#   srv_http_get_times URL WANT N / srv_ab_both URL   N checked GETs; ab both ways
#   srv_http_big_and_post URL   the pattern app's 3 GETs and POST, checked
#   srv_wrk_check OUT WHAT      wrk's requests, all 2xx, no socket error
#   srv_conns_client N BYTES    N echo connections at once, checked

. "$NSTACK_SRC/test/lib/programs.sh"
. "$NSTACK_SRC/test/lib/wirecheck.sh"

wire_fail() { prog_fail "$@"; }

_SRV_EXIT_HOOKS=()
SRV_CLIENT_ENV=()
SRV_IFACE=eth0

# Servers started as their service user (runuser/pg_ctl: an exec, not a
# fork of a root process) load the preload themselves: when the tree is
# not readable by other users (a clone under a 0700 directory), they get a
# copy of release/lib64 in the test's private directory.
srv_share_release() {
    runuser -u nobody -- test -r "$NSTACK_RELEASE/lib64/libnStackAPI.so" 2>/dev/null && return 0
    cp -a "$NSTACK_RELEASE/lib64" "$PROG_TMP/lib64" && chmod -R a+rX "$PROG_TMP/lib64" ||
        prog_fail "cannot copy $NSTACK_RELEASE/lib64 for the service users"
    local i
    for i in "${!NSTACK_PRELOAD_ENV[@]}"; do
        NSTACK_PRELOAD_ENV[i]=${NSTACK_PRELOAD_ENV[i]//"$NSTACK_RELEASE/lib64"/"$PROG_TMP/lib64"}
    done
}

srv_setup() {
    prog_setup "$1" "$2"
    trap srv_cleanup EXIT
    # Workers that drop privileges (www-data, postgres) read their files here.
    chmod 755 "$PROG_TMP"
    # The test's private fabric is 1777 (test/lib/netns.sh), as the device
    # makes /run/softrdma: workers that dropped to www-data or postgres
    # share it with root's processes, as /dev/infiniband lets any user in.
    _prog_preloaded && srv_share_release
    SRV_IFACE=eth0; [ "$PROG_MODE" = plain ] && SRV_IFACE=lo
    SRV_CLIENT_ENV=()
    _prog_preloaded && SRV_CLIENT_ENV=("${NSTACK_PRELOAD_ENV[@]}" NSTACK_STATS=1)
    return 0
}

srv_on_exit() { _SRV_EXIT_HOOKS+=("$*"); }

# srv_pidfile_pid FILE: the pid FILE names, if that process is alive
# (a daemon writes its pid file once it has detached).
srv_pidfile_pid() {
    local p
    p=$(cat "$1" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
}

# srv_stop_pidfile FILE: stop the daemon whose pid FILE names (TERM, KILL
# after 10 s). By pid, not by name: another mode of the same test may run
# at once in other namespaces with the same port and user.
srv_stop_pidfile() {
    local p
    p=$(srv_pidfile_pid "$1") || return 0
    kill "$p" 2>/dev/null
    wait_until 10 sh -c "! kill -0 $p 2>/dev/null" || kill -9 "$p" 2>/dev/null
    return 0
}

# A process stopped by a signal (a daemon's workers at "stop") never reaches
# exit(), where the dispatcher removes its counters segment: remove those of
# every process that ran on the hosts at the end.
srv_cleanup() {
    local h pid pids
    pids=$(ip netns pids "$NS_A" 2>/dev/null; ip netns pids "$NS_B" 2>/dev/null)
    # a hook is a command (bounded by timeout) or a shell function of the
    # test (bounded itself)
    for h in "${_SRV_EXIT_HOOKS[@]}"; do
        if declare -F "${h%% *}" >/dev/null; then eval "$h" >/dev/null 2>&1
        else eval "timeout 20 $h" >/dev/null 2>&1; fi
    done
    prog_cleanup
    for pid in $pids; do kill -0 "$pid" 2>/dev/null || rm -f "/dev/shm/nstack-stat.$pid"; done
    return 0
}

srv_client() {
    local ns=$NS_B
    [ "$PROG_MODE" = plain ] && ns=$NS_A
    ip netns exec "$ns" env "${SRV_CLIENT_ENV[@]}" "$@" </dev/null
}

# srv_server_env CMD...: CMD on host A with the preload environment (the
# way an administrator would start a daemon under libnStackAPI.so).
srv_server_env() { ip netns exec "$NS_A" env "${NSTACK_PRELOAD_ENV[@]}" "$@"; }

# srv_server_env_chroot ROOT CMD...: srv_server_env for a daemon that
# chroots into ROOT (haproxy's stock "chroot /var/lib/haproxy"). On the
# rsocket route the RDMA device must be reachable inside the chroot, as an
# administrator makes it (doc/rsocket-framework.md "Chrooted daemons"):
# here the software device's fabric directory, bind-mounted at its own
# path under ROOT. In the mount namespace ip netns exec makes for the
# command, over a private tmpfs at ROOT: the host's ROOT is not touched.
srv_server_env_chroot() {
    local root=$1; shift
    [ "$PROG_MODE" = rsocket ] || { srv_server_env "$@"; return; }
    ip netns exec "$NS_A" sh -c 'set -e; r=$1; f=$2; shift 2
        mount -t tmpfs -o mode=755 nstack-chroot "$r"
        mkdir -p "$r$f"; mount --bind "$f" "$r$f"
        exec "$@"' sh "$root" "$SOFTRDMA_FABRIC" env "${NSTACK_PRELOAD_ENV[@]}" "$@"
}

srv_wire_start() { wire_capture_start "$NS_A" "$SRV_IFACE" "$1" "$PROG_TMP"; }

srv_wire_verdict() {
    local what=$1 stats=$2 min=$3 server=${4:-}
    wire_capture_stop
    if [ "$PROG_MODE" = rsocket ]; then wire_expect_no_payload "$what"
    else wire_expect_payload "$what"; fi
    if _prog_preloaded; then
        expect_bulk_on "$PROG_STACK" "$min" "$(stats_exit_bytes "$stats" "$PROG_STACK")" "$what: client"
        [ -z "$server" ] || expect_bulk_on "$PROG_STACK" "$min" "$server" "$what: server"
    fi
    prog_note "$what: $WIRE_BIG kernel TCP packets with > $WIRE_MAX_PAYLOAD B payload"
}

srv_server_bytes() {
    # shellcheck disable=SC2046
    _prog_preloaded && stats_live_bytes "$PROG_STACK" $(srv_framework_pids)
}

srv_framework_pids() {
    local pid
    for pid in $(ip netns pids "$NS_A" 2>/dev/null); do
        [ -e "/dev/shm/nstack-stat.$pid" ] && echo "$pid"
    done
}

srv_user_of() { ps -o user= -p "$1" 2>/dev/null | tr -d ' '; }

_srv_gone() { ! kill -0 "$1" 2>/dev/null; }
srv_wait_gone() { wait_until "$2" _srv_gone "$1"; }

# srv_wait_banner NAME: the server started with prog_server NAME printed
# "listening on" (after listen(): works whatever stack the listener is on),
# or the test fails with its output.
_srv_banner_or_dead() { grep -qs '^listening on' "$PROG_TMP/$1.out" || ! kill -0 "$PROG_SERVER_PID" 2>/dev/null; }
srv_wait_banner() {
    wait_until 30 _srv_banner_or_dead "$1" && grep -qs '^listening on' "$PROG_TMP/$1.out" ||
        prog_fail "$1 did not listen: $(tail -n 5 "$PROG_TMP/$1.out")"
}

# srv_check_users MAIN_PID MAIN_USER WORKER_USER [WORKER_PID...]: a daemon's
# main process and its workers run as the users its package configures.
srv_check_users() {
    # a worker just forked runs as root until it drops privileges
    wait_until 10 _srv_users_are "$@" || true
    local main=$1 mu=$2 wu=$3 w u; shift 3
    u=$(srv_user_of "$main")
    [ "$u" = "$mu" ] || prog_fail "main process $main runs as '$u', not $mu"
    for w in "$@"; do
        u=$(srv_user_of "$w")
        [ "$u" = "$wu" ] || prog_fail "worker $w runs as '$u', not $wu"
    done
}

_srv_users_are() {
    local main=$1 mu=$2 wu=$3 w; shift 3
    [ "$(srv_user_of "$main")" = "$mu" ] || return 1
    for w in "$@"; do [ "$(srv_user_of "$w")" = "$wu" ] || return 1; done
}

# srv_http_answers URL: one GET answered with a 2xx (for wait_until).
srv_http_answers() { srv_client timeout 5 curl -sS --fail --max-time 4 -o /dev/null "$1" 2>/dev/null; }

# srv_http_fetch_checked URL FILE LOG_CMD: curl URL from the other host
# with the wire captured; the body's sha256 must be FILE's (SRV_SHA gets
# it); then the wire verdict with FILE's size as the bulk, the server's
# live counters included. LOG_CMD prints the server's last log lines.
srv_http_fetch_checked() {
    local url=$1 file=$2 log=$3 got size
    size=$(stat -c %s "$file")
    srv_wire_start "$PROG_PORT"
    srv_client timeout 60 curl -sS --fail --max-time 50 -o "$PROG_TMP/fetched" "$url" \
        2>"$PROG_TMP/curl.err" || prog_fail "curl $url failed: $(cat "$PROG_TMP/curl.err") $($log)"
    SRV_SHA=$(prog_sha256 "$file"); got=$(prog_sha256 "$PROG_TMP/fetched")
    [ "$SRV_SHA" = "$got" ] ||
        prog_fail "$url differs: sha256 $got, want $SRV_SHA ($(stat -c %s "$PROG_TMP/fetched") of $size bytes)"
    srv_wire_verdict "curl $size bytes" "$PROG_TMP/curl.err" "$size" "$(srv_server_bytes)"
}

# srv_http_get_times URL WANT N: N GETs of URL from the other host, each
# body's sha256 WANT (bodies in $PROG_TMP/big.I, curl's stderr - the exit
# counters under the preload - in $PROG_TMP/curl.I.err).
srv_http_get_times() {
    local url=$1 want=$2 n=$3 i got
    for i in $(seq 1 "$n"); do
        srv_client timeout 60 curl -sS -o "$PROG_TMP/big.$i" "$url" 2>"$PROG_TMP/curl.$i.err" ||
            prog_fail "curl $i: $(grep -v '^nstack' "$PROG_TMP/curl.$i.err" | tail -n 2)"
        got=$(prog_sha256 "$PROG_TMP/big.$i")
        [ "$got" = "$want" ] || prog_fail "GET $i: sha256 $got, want $want ($(stat -c %s "$PROG_TMP/big.$i") bytes)"
    done
}

# srv_http_big_and_post URL: the pattern app's checks (test/servers
# node_server.js, gunicorn_app.py): URL/big three times, 4 MiB of
# (i * 7 + 3) & 255 each (sha256), with the wire captured from the first;
# then a 1 MiB POST to URL/post, answered "got COUNT SUM".
srv_http_big_and_post() {
    local want sum
    want=$(python3 -c 'import hashlib; print(hashlib.sha256(bytes((i * 7 + 3) & 255 for i in range(4 << 20))).hexdigest())')
    srv_wire_start "$PROG_PORT"
    srv_http_get_times "$1/big" "$want" 3
    head -c $((1 << 20)) /dev/urandom >"$PROG_TMP/post"
    sum=$(python3 -c 'import sys; print(sum(open(sys.argv[1], "rb").read()) % (1 << 32))' "$PROG_TMP/post")
    srv_client timeout 60 curl -sS --data-binary "@$PROG_TMP/post" "$1/post" >"$PROG_TMP/post.out" 2>&1 ||
        prog_fail "POST: $(tail -n 2 "$PROG_TMP/post.out")"
    grep -qx "got $((1 << 20)) $sum" "$PROG_TMP/post.out" ||
        prog_fail "POST answer: $(grep -v '^nstack' "$PROG_TMP/post.out")"
}

# srv_ab_both URL: ab with keep-alive and ab with a new connection per
# request (1000 requests, 8 at once), every one complete and none failed;
# outputs in $PROG_TMP/ab.keepalive and $PROG_TMP/ab.close.
srv_ab_both() {
    local how opt
    for how in keepalive close; do
        opt=(-k); [ "$how" = close ] && opt=()
        srv_client timeout 120 ab -q -n 1000 -c 8 "${opt[@]}" "$1" >"$PROG_TMP/ab.$how" 2>&1 ||
            prog_fail "ab ($how): $(tail -n 3 "$PROG_TMP/ab.$how")"
        grep -qE '^Complete requests: +1000$' "$PROG_TMP/ab.$how" && grep -qE '^Failed requests: +0$' "$PROG_TMP/ab.$how" ||
            prog_fail "ab ($how): $(grep -E 'Complete|Failed|Non-2xx' "$PROG_TMP/ab.$how")"
    done
}

# srv_conns_client N BYTES: N connections at once from the other host, BYTES
# of a per-connection pattern echoed and checked on each (rsfw_conns client),
# with the wire captured; output in $PROG_TMP/client.out.
srv_conns_client() {
    srv_wire_start "$PROG_PORT"
    srv_client timeout 120 env RSFW_TIMEOUT_S=100 "$SRV_CONNS" client "$PROG_ADDR" "$PROG_PORT" "$1" "$2" \
        >"$PROG_TMP/client.out" 2>&1 ||
        prog_fail "client: $(tail -n 3 "$PROG_TMP/client.out") server: $(tail -n 6 "$PROG_TMP/server.out")"
    grep -q "PASS: $1 connections x $2 bytes echoed and verified" "$PROG_TMP/client.out" ||
        prog_fail "client verdict missing: $(cat "$PROG_TMP/client.out")"
}

# srv_server_done: the server started by prog_server ends (30 s) with status 0.
srv_server_done() {
    srv_wait_gone "$PROG_SERVER_PID" 30 || prog_fail "server did not finish: $(cat "$PROG_TMP/server.out")"
    wait "$PROG_SERVER_PID" || prog_fail "server: $(cat "$PROG_TMP/server.out")"
}

# srv_wrk_check OUT WHAT: wrk completed requests, all 2xx, and no socket
# error (wrk prints those lines only when a count is not zero); prints the
# number of requests.
srv_wrk_check() {
    local out=$1 requests
    requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$out")
    [ -n "$requests" ] && [ "$requests" -gt 0 ] || prog_fail "$2: no requests completed: $(cat "$out")"
    grep -q 'Non-2xx or 3xx responses' "$out" && prog_fail "$2: $(grep 'Non-2xx' "$out")"
    grep -q 'Socket errors' "$out" && prog_fail "$2: $(grep 'Socket errors' "$out")"
    echo "$requests"
}
