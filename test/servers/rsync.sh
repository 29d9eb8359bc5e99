#!/usr/bin/env bash
# rsync as Debian's init script runs its daemon (rsync --daemon --config
# FILE: detaches, forks per connection; the module chroots and drops to
# uid nobody / gid nogroup, Debian's defaults for a daemon run as root),
# with one writable module. From the other host: push and pull of a tree
# of 6.3 MiB in 45 files, a link and an empty directory (rsync -a -c, then
# diff -r), and the same tree over ssh (rsync
# -e ssh: sshd's session runs the remote rsync on the channel's pipes).
# On rsocket the daemon's connections upgrade for the protocol's start and
# return to TCP when the receiving side forks its generator (doc/fork.md,
# servers.forkclient): asserted as such, every byte checked.
# Usage: rsync.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.rsync
. "$NSTACK_SRC/test/lib/servers.sh"
. "$NSTACK_SRC/test/lib/sshd.sh"
command -v rsync >/dev/null || prog_fail "rsync not installed (tools/deps.sh: rsync)"
id nobody >/dev/null 2>&1 && getent group nogroup >/dev/null || prog_fail "no user nobody / group nogroup"

srv_setup "$1" 18873
D=$PROG_TMP/rsyncd
mkdir -p "$D/data/src" "$D/data/push" && chown -R nobody:nogroup "$D/data" || prog_fail "cannot make $D"

# A tree: nested directories, files from empty to 2 MiB, 6 MiB in all.
TREE=$PROG_TMP/tree
make_tree() {
    local i
    mkdir -p "$1/a/b/c" "$1/d" "$1/empty"
    for i in 1 2 3; do prog_random_file "$1/a/big$i.bin" $((1536 * 1024)); done
    prog_random_file "$1/a/b/c/deep.bin" $((1024 * 1024))
    for i in $(seq 1 40); do prog_random_file "$1/d/small$i.txt" $((i * 997)); done
    : >"$1/a/b/zero.bin"
    ln -s ../a/big1.bin "$1/d/link"
}
make_tree "$TREE"
make_tree "$D/data/src"
chown -R nobody:nogroup "$D/data"
chmod -R a+rX "$PROG_TMP"
SIZE=$(find "$TREE" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')

cat >"$D/rsyncd.conf" <<CONF
pid file = $D/rsyncd.pid
use chroot = yes
uid = nobody
gid = nogroup

[data]
	path = $D/data
	read only = false
CONF
srv_on_exit srv_stop_pidfile "$D/rsyncd.pid"
# The daemon speaks first (its greeting): on rsocket its connection waits
# RS_ANCHOR_HELLO_MS (200 ms) for the client's hello before it writes the
# greeting on TCP for a plain client, and stays on TCP. A loaded machine
# (the CI's 2 cores under ctest -j2) can run the client that late: 2 s
# here, as test/rsocket-fw/ll.sh does, so that the test asserts the
# upgrade and not the machine's load (the plain-client fallback has its
# own tests: sem_anchor plain_server_*).
srv_server_env env RS_ANCHOR_HELLO_MS=2000 rsync --daemon --config="$D/rsyncd.conf" --port="$PROG_PORT" >"$PROG_TMP/start.out" 2>&1 ||
    prog_fail "rsync --daemon did not start: $(cat "$PROG_TMP/start.out")"
URL=rsync://$PROG_ADDR:$PROG_PORT/data
listed() { srv_client timeout 10 rsync "$URL/" >"$PROG_TMP/listed.out" 2>&1; }
wait_until 30 listed || prog_fail "the rsync daemon does not answer on $URL: $(tail -n 5 "$PROG_TMP/listed.out")"
wait_until 10 srv_pidfile_pid "$D/rsyncd.pid" >/dev/null || prog_fail "rsync --daemon wrote no pid file of a live process"
[ "$(srv_user_of "$(srv_pidfile_pid "$D/rsyncd.pid")")" = root ] || prog_fail "rsync --daemon does not run as root"

# srv_rsync WHAT OUT ARGS...: one rsync from the other host; OUT gets its
# output (and its exit counters under the preload).
run_rsync() {
    local what=$1 out=$2; shift 2
    srv_client timeout 120 rsync -a -c --stats "$@" >"$out" 2>&1 ||
        prog_fail "$what failed: $(grep -v '^nstack' "$out" | tail -n 3)"
}
# same_tree A B: every file, link and directory alike.
same_tree() { diff -r --no-dereference "$1" "$2" >"$PROG_TMP/diff.out" 2>&1 || prog_fail "$3: the trees differ: $(head -n 3 "$PROG_TMP/diff.out")"; }

# verdict WHAT OUT MIN: plain/preload: the bulk on the mode's kernel route
# (the client's counters show MIN bytes); rsocket: the start on rsocket,
# the rest on TCP after the fork.
verdict() {
    if [ "$PROG_MODE" != rsocket ]; then
        srv_wire_verdict "$1" "$2" "$3"
        return
    fi
    wire_capture_stop
    wire_expect_payload "$1 (after rsync's fork)"
    local rs
    rs=$(stats_exit_bytes "$2" rsocket)
    [ "$rs" -gt 0 ] || prog_fail "$1: no byte went over rsocket before the fork: $(grep report "$2")"
    grep -q 'fork/exec limitation' "$2" ||
        prog_fail "$1: the connection did not return to TCP at a fork: $(grep report "$2")"
    prog_note "$1: $rs bytes on rsocket before the fork, then kernel TCP ($WIRE_BIG packets > 64 B)"
}

srv_wire_start "$PROG_PORT"
run_rsync "push" "$PROG_TMP/push.out" "$TREE/" "$URL/push/"
verdict "rsync push $SIZE bytes" "$PROG_TMP/push.out" "$SIZE"
same_tree "$TREE" "$D/data/push" "push"
owner=$(stat -c %U "$D/data/push/a/big1.bin")
[ "$owner" = nobody ] || prog_fail "pushed files belong to '$owner', not the module's uid nobody"

srv_wire_start "$PROG_PORT"
run_rsync "pull" "$PROG_TMP/pull.out" "$URL/src/" "$PROG_TMP/pulled/"
# (the client's receiving child reads the bulk and leaves with _exit(),
# which prints no counters: the wire shows the bulk)
verdict "rsync pull $SIZE bytes" "$PROG_TMP/pull.out" 1
same_tree "$D/data/src" "$PROG_TMP/pulled" "pull"

# A second push changes nothing: -c compares every file's checksum.
run_rsync "push again" "$PROG_TMP/push2.out" "$TREE/" "$URL/push/"
grep -q '^Number of regular files transferred: 0' "$PROG_TMP/push2.out" ||
    prog_fail "the second push transferred files: $(grep 'files transferred' "$PROG_TMP/push2.out")"

# Over ssh: the client's rsync talks to ssh through a socketpair, sshd's
# session runs "rsync --server" (test/lib/sshd.sh).
sshd_start $((PROG_PORT + 1))
run_rsync "push over ssh" "$PROG_TMP/ssh-push.out" -e "ssh ${SSH_OPTS[*]} -p $((PROG_PORT + 1))" \
    "$TREE/" "root@$PROG_ADDR:$D/viassh/"
same_tree "$TREE" "$D/viassh" "push over ssh"
run_rsync "pull over ssh" "$PROG_TMP/ssh-pull.out" -e "ssh ${SSH_OPTS[*]} -p $((PROG_PORT + 1))" \
    "root@$PROG_ADDR:$D/data/src/" "$PROG_TMP/pulled-ssh/"
same_tree "$D/data/src" "$PROG_TMP/pulled-ssh" "pull over ssh"
prog_note "OK: rsync daemon push and pull of $SIZE bytes (45 files, links, empty dirs) identical, files as nobody; a second push moved nothing; push and pull over ssh identical"
