# shellcheck shell=bash
# OpenSSH's sshd as Debian runs it, on host A of a test/servers test (after
# srv_setup), and the ssh client's options for it on the other host.
#
#   sshd_start PORT     Debian's /etc/ssh/sshd_config with only the port,
#                       host key, authorized keys and pid file set (in
#                       SSHD_DIR, a private directory under /run: sshd's
#                       StrictModes refuses keys below the world-writable
#                       /tmp), started as /etc/init.d/ssh does (the
#                       privilege separation directory /run/sshd, then
#                       /usr/sbin/sshd: a daemon that re-execs itself for
#                       every connection; preauth child as user sshd)
#                       (SSHD_EXTRA: more sshd options when debugging, e.g.
#                       "-o LogLevel=DEBUG3")
#   SSH_OPTS            the client's options: the key of root, the host key
#                       known, nothing from ~/.ssh or /etc/ssh/ssh_config
#   sshd_pid            the listening daemon's pid
#   sshd_log            its last log lines (for failure messages)

SSHD_DIR=""; SSH_OPTS=()

sshd_start() {
    local port=$1 cfg=/etc/ssh/sshd_config
    [ -x /usr/sbin/sshd ] && [ -r "$cfg" ] || prog_fail "openssh-server not installed (tools/deps.sh)"
    id sshd >/dev/null 2>&1 || prog_fail "no sshd user (Debian's openssh-server makes it)"
    SSHD_DIR=$(mktemp -d /run/nstack-sshd.XXXXXX) || prog_fail "cannot make a directory under /run"
    netns_remove_on_exit "$SSHD_DIR"
    chmod 755 "$SSHD_DIR"
    ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/ssh_host_ed25519_key" &&
        ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/id_ed25519" ||
        prog_fail "ssh-keygen failed"
    cp "$SSHD_DIR/id_ed25519.pub" "$SSHD_DIR/authorized_keys"
    echo "[$PROG_ADDR]:$port $(cut -d' ' -f1,2 "$SSHD_DIR/ssh_host_ed25519_key.pub")" >"$SSHD_DIR/known_hosts"
    # The first value of a keyword wins in sshd_config: the test's go first.
    { printf '%s\n' "Port $port" "HostKey $SSHD_DIR/ssh_host_ed25519_key" \
        "AuthorizedKeysFile $SSHD_DIR/authorized_keys" "PidFile $SSHD_DIR/sshd.pid"
      cat "$cfg"; } >"$SSHD_DIR/sshd_config"
    grep -q '^UsePAM yes' "$SSHD_DIR/sshd_config" || prog_fail "$cfg not in the expected form"
    [ -d /run/sshd ] || { mkdir -p /run/sshd && chmod 0755 /run/sshd; }
    srv_on_exit srv_stop_pidfile "$SSHD_DIR/sshd.pid"
    srv_server_env /usr/sbin/sshd -f "$SSHD_DIR/sshd_config" -t ||
        prog_fail "sshd -t refused $SSHD_DIR/sshd_config"
    srv_server_env /usr/sbin/sshd -f "$SSHD_DIR/sshd_config" -E "$SSHD_DIR/sshd.log" ${SSHD_EXTRA:-} \
        >"$PROG_TMP/sshd-start.out" 2>&1 || prog_fail "sshd did not start: $(cat "$PROG_TMP/sshd-start.out")"
    SSH_OPTS=(-F /dev/null -i "$SSHD_DIR/id_ed25519" -o UserKnownHostsFile="$SSHD_DIR/known_hosts"
        -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=20)
    wait_until 30 _sshd_answers "$port" || prog_fail "sshd does not answer on $PROG_ADDR:$port: $(sshd_log)"
}

_sshd_answers() { srv_client timeout 25 ssh "${SSH_OPTS[@]}" -p "$1" "root@$PROG_ADDR" true 2>/dev/null; }
sshd_pid() { cat "$SSHD_DIR/sshd.pid" 2>/dev/null; }
sshd_log() { tail -n 5 "$SSHD_DIR/sshd.log" 2>/dev/null | tr '\n' ' '; }
