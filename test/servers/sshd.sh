#!/usr/bin/env bash
# OpenSSH's sshd as Debian runs it (test/lib/sshd.sh: stock sshd_config
# adapted only in port, host key, authorized keys and pid file; a daemon
# that forks and re-execs itself per connection, passing the socket on
# stdin/stdout, privilege separation under user sshd, PAM), a key-based
# root login from the other host: `ssh host cat FILE` of 8 MiB (sha256)
# with the wire captured, scp of 4 MiB both ways, and a port forward
# (ssh -L) carrying 4 MiB from a server on host A's loopback. On rsocket
# the connection upgrades for the banners, then returns to TCP at sshd's
# privilege-separation fork (doc/fork.md): asserted as such.
# Usage: sshd.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.sshd
. "$NSTACK_SRC/test/lib/servers.sh"
. "$NSTACK_SRC/test/lib/sshd.sh"
. "$NSTACK_SRC/test/lib/nginx.sh"
command -v ssh >/dev/null && command -v scp >/dev/null || prog_fail "openssh-client not installed (tools/deps.sh)"

srv_setup "$1" 18622
sshd_start "$PROG_PORT"
D=$PROG_TMP/files
mkdir -p "$D" && chmod 755 "$D"
prog_random_file "$D/big.bin" $((8 * 1024 * 1024))
prog_random_file "$D/up.bin" $((4 * 1024 * 1024))
SSH=(ssh "${SSH_OPTS[@]}" -p "$PROG_PORT" "root@$PROG_ADDR")
SCP=(scp -q "${SSH_OPTS[@]}" -P "$PROG_PORT")
[ "$(srv_user_of "$(sshd_pid)")" = root ] || prog_fail "sshd runs as $(srv_user_of "$(sshd_pid)"), want root"

# A remote command's output: the session child's pipe to the channel.
srv_wire_start "$PROG_PORT"
srv_client timeout 120 "${SSH[@]}" cat "$D/big.bin" >"$PROG_TMP/cat.out" 2>"$PROG_TMP/ssh.err" ||
    prog_fail "ssh cat failed: $(grep -v '^nstack' "$PROG_TMP/ssh.err" | tail -n 3) sshd: $(sshd_log)"
[ "$(prog_sha256 "$PROG_TMP/cat.out")" = "$(prog_sha256 "$D/big.bin")" ] ||
    prog_fail "ssh cat: sha256 differs ($(stat -c %s "$PROG_TMP/cat.out") of $((8 * 1024 * 1024)) bytes)"
if [ "$PROG_MODE" = rsocket ]; then
    # The limit doc/fork.md names: the re-exec'd sshd exchanges the banners
    # (the connection upgrades), then forks its privilege-separated child,
    # so the connection returns to TCP for good before that fork and the
    # session's bytes cross TCP. Asserted as it is: the banners on rsocket,
    # the bulk on kernel TCP, and the client's report naming the reason.
    wire_capture_stop
    wire_expect_payload "ssh cat 8 MiB (after sshd's privsep fork)"
    rs=$(stats_exit_bytes "$PROG_TMP/ssh.err" rsocket)
    [ "$rs" -gt 0 ] || prog_fail "ssh: no byte went over rsocket before sshd's fork: $(grep report "$PROG_TMP/ssh.err")"
    grep -q 'stayed on TCP: fork/exec limitation' "$PROG_TMP/ssh.err" ||
        prog_fail "ssh: the connection did not return to TCP at sshd's fork: $(grep report "$PROG_TMP/ssh.err")"
    prog_note "ssh cat 8 MiB: $rs bytes on rsocket before sshd's privsep fork, then kernel TCP ($WIRE_BIG packets > 64 B)"
else
    srv_wire_verdict "ssh cat 8 MiB" "$PROG_TMP/ssh.err" $((8 * 1024 * 1024))
fi
cat_big=$WIRE_BIG

# scp both ways (the SFTP protocol: sftp-server under the session).
srv_client timeout 120 "${SCP[@]}" "$D/up.bin" "root@$PROG_ADDR:$D/up.copy" 2>"$PROG_TMP/scp.err" ||
    prog_fail "scp up failed: $(grep -v '^nstack' "$PROG_TMP/scp.err" | tail -n 3) sshd: $(sshd_log)"
cmp -s "$D/up.bin" "$D/up.copy" || prog_fail "scp up: the copy differs"
srv_client timeout 120 "${SCP[@]}" "root@$PROG_ADDR:$D/big.bin" "$PROG_TMP/down.copy" 2>"$PROG_TMP/scp.err" ||
    prog_fail "scp down failed: $(grep -v '^nstack' "$PROG_TMP/scp.err" | tail -n 3) sshd: $(sshd_log)"
cmp -s "$D/big.bin" "$PROG_TMP/down.copy" || prog_fail "scp down: the copy differs"

# A port forward: host B's local port to an nginx on host A's loopback,
# through the session's channel.
FWD_PORT=$((PROG_PORT + 1)); TARGET_PORT=$((PROG_PORT + 2))
nginx_prepare "$PROG_TMP/target" 127.0.0.1 "$TARGET_PORT"
prog_random_file "$PROG_TMP/target/www/fwd.bin" $((4 * 1024 * 1024))
chmod -R a+rX "$PROG_TMP/target"
# shellcheck disable=SC2046
prog_server target $(nginx_cmd "$PROG_TMP/target")
FWD_HOST=127.0.0.1
srv_client timeout 100 "${SSH[@]}" -N -o ExitOnForwardFailure=yes \
    -L "$FWD_HOST:$FWD_PORT:127.0.0.1:$TARGET_PORT" >"$PROG_TMP/fwd.out" 2>&1 &
fwd_pid=$!
bg_track "$fwd_pid"
fwd_up() { srv_client timeout 5 curl -sS --fail --max-time 4 -o /dev/null "http://$FWD_HOST:$FWD_PORT/index.html" 2>/dev/null; }
wait_until 30 fwd_up || prog_fail "the forward does not answer: $(tail -n 3 "$PROG_TMP/fwd.out") sshd: $(sshd_log)"
srv_client timeout 60 curl -sS --fail --max-time 50 -o "$PROG_TMP/fwd.got" "http://$FWD_HOST:$FWD_PORT/fwd.bin" ||
    prog_fail "curl through the forward failed"
cmp -s "$PROG_TMP/fwd.got" "$PROG_TMP/target/www/fwd.bin" || prog_fail "the forwarded file differs"
kill "$fwd_pid" 2>/dev/null
srv_wait_gone "$fwd_pid" 10 || prog_fail "ssh -L did not end"

grep -q 'fatal\|error:' "$SSHD_DIR/sshd.log" && prog_fail "sshd log: $(grep -m3 'fatal\|error:' "$SSHD_DIR/sshd.log")"
prog_note "OK: ssh cat 8 MiB sha256 intact ($cat_big kernel TCP packets > 64 B), scp 4 MiB up and 8 MiB down intact, ssh -L carried 4 MiB intact; sshd root, re-exec per connection"
