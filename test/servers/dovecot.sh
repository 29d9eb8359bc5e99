#!/usr/bin/env bash
# dovecot (IMAP) with Debian's /etc/dovecot copied as is, its local.conf
# (the file Debian's dovecot.conf includes for local settings) giving only
# the run directory, log file, port, maildir location and - under the
# preload - import_environment with LD_PRELOAD and the nStack settings
# (dovecot starts its processes with only the variables listed there:
# doc/fork.md); the stock ssl = yes with a certificate made here.
# `dovecot -c CONF` daemonises; imap-login runs as dovenull, the mail
# process as the user, which gets the client's connection from imap-login
# over a unix socket after the login. From the other host, curl
# with STARTTLS and a local user's password: APPEND of a 1.3 MB message,
# FETCH of it compared byte for byte, EXAMINE counting it.
# On the rsocket route every connection stays on TCP for now: imap-login
# adopts the listeners it inherited from the master (sock_adopt_listener)
# and runs the handshake, but it is chrooted as dovenull, where the
# software device cannot start (doc/rsocket-framework.md, "What fails");
# the test holds that nothing breaks, chroot and all (wrap_chroot.c).
# Usage: dovecot.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.dovecot
. "$NSTACK_SRC/test/lib/servers.sh"

command -v dovecot >/dev/null && [ -r /etc/dovecot/dovecot.conf ] && [ -r /etc/dovecot/conf.d/10-ssl.conf ] ||
    prog_fail "dovecot not installed (tools/deps.sh: dovecot-imapd)"
srv_setup "$1" 18143
# the local user of test/servers/vsftpd.sh (same name and password)
MAIL_USER=nstackftp MAIL_PASS=nstack-ftp-test
id "$MAIL_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$MAIL_USER" || prog_fail "cannot create $MAIL_USER"
echo "$MAIL_USER:$MAIL_PASS" | chpasswd || prog_fail "cannot set $MAIL_USER's password"
D=$PROG_TMP/dovecot BOX=nstack-$1
mkdir -p "$D/run" || prog_fail "cannot make $D"
cp -a /etc/dovecot "$D/etc" || prog_fail "cannot copy /etc/dovecot"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=nstack-test -keyout "$D/key.pem" \
    -out "$D/cert.pem" >/dev/null 2>&1 || prog_fail "openssl req failed"
sed -i -e "s|^ssl_cert = .*|ssl_cert = <$D/cert.pem|" -e "s|^ssl_key = .*|ssl_key = <$D/key.pem|" \
    "$D/etc/conf.d/10-ssl.conf"
grep -q '^ssl = yes' "$D/etc/conf.d/10-ssl.conf" && grep -q '^!include_try local.conf' "$D/etc/dovecot.conf" ||
    prog_fail "/etc/dovecot not in the expected form"
IMPORT=""
# as KEY=VALUE: dovecot passes on a bare name's value only for some names
for kv in "${NSTACK_PRELOAD_ENV[@]}"; do IMPORT+=" $kv"; done
# the test's private fabric of the software device (test/lib/netns.sh)
[ -n "$IMPORT" ] && [ -n "${SOFTRDMA_FABRIC:-}" ] && IMPORT+=" SOFTRDMA_FABRIC=$SOFTRDMA_FABRIC"
{
    echo "base_dir = $D/run"
    echo "log_path = $D/dovecot.log"
    echo "protocols = imap"
    echo "mail_location = maildir:~/Maildir-$BOX"
    [ -n "$IMPORT" ] && echo "import_environment = TZ CORE_OUTOFMEM CORE_ERROR LISTEN_PID LISTEN_FDS$IMPORT"
    printf 'service imap-login {\n  inet_listener imap {\n    port = %s\n  }\n  inet_listener imaps {\n    port = 0\n  }\n}\n' "$PROG_PORT"
} >"$D/etc/local.conf"
dv_log() { tail -n 5 "$D/dovecot.log" 2>/dev/null | tr '\n' ' '; }
dv_stop() { [ -s "$D/run/master.pid" ] && srv_stop_pidfile "$D/run/master.pid"; rm -rf "$(getent passwd "$MAIL_USER" | cut -d: -f6)/Maildir-$BOX"; }
srv_on_exit dv_stop
srv_server_env dovecot -c "$D/etc/dovecot.conf" >"$PROG_TMP/start.out" 2>&1 ||
    prog_fail "dovecot did not start: $(cat "$PROG_TMP/start.out") $(dv_log)"
dv_up() { ip netns exec "$NS_A" ss -Hltn "sport = :$PROG_PORT" | grep -q .; }
wait_until 30 dv_up || prog_fail "dovecot does not listen on $PROG_PORT: $(dv_log)"

URL=imap://$PROG_ADDR:$PROG_PORT
CURL=(timeout 60 curl -sS --max-time 50 --ssl-reqd -k -u "$MAIL_USER:$MAIL_PASS")
{ printf 'From: nstack@test\r\nSubject: big\r\n\r\n'; head -c 1000000 /dev/urandom | base64 | sed 's/$/\r/'; } \
    >"$PROG_TMP/msg.eml"
srv_client "${CURL[@]}" -T "$PROG_TMP/msg.eml" "$URL/INBOX" 2>"$PROG_TMP/append.err" ||
    prog_fail "APPEND: $(cat "$PROG_TMP/append.err") $(dv_log)"
srv_client "${CURL[@]}" -o "$PROG_TMP/fetched.eml" "$URL/INBOX;UID=1" 2>"$PROG_TMP/fetch.err" ||
    prog_fail "FETCH: $(cat "$PROG_TMP/fetch.err") $(dv_log)"
cmp -s "$PROG_TMP/msg.eml" "$PROG_TMP/fetched.eml" ||
    prog_fail "the message fetched ($(stat -c %s "$PROG_TMP/fetched.eml") bytes) differs from the one appended"
srv_client "${CURL[@]}" -X 'EXAMINE INBOX' "$URL/INBOX" >"$PROG_TMP/examine.out" 2>&1 ||
    prog_fail "EXAMINE: $(cat "$PROG_TMP/examine.out")"
grep -q '^\* 1 EXISTS' "$PROG_TMP/examine.out" || prog_fail "EXAMINE: $(cat "$PROG_TMP/examine.out")"
n=$(grep -c 'imap-login: Info: Login: user=<'"$MAIL_USER"'>.*TLS' "$D/dovecot.log")
[ "$n" -ge 3 ] || prog_fail "$n TLS logins logged, want 3: $(dv_log)"
prog_note "OK: STARTTLS logins; 1.3 MB APPEND and FETCH byte for byte through the mail process that got the connection from imap-login"
