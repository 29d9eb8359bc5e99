#!/usr/bin/env bash
# exim4 (Debian's default MTA) with Debian's generated configuration,
# started as its init script starts the listener (`exim4 -bd -q30m`, here
# with -oX for the test's address and port and -oP for the pid file): the
# daemon runs as Debian-exim and forks per connection. From the other
# host, Python's smtplib sends a 200 KB message to a local user; exim
# delivers it to /var/mail/USER, where its random body is found whole.
# exim4 is a set-user-ID binary, so the loader ignores LD_PRELOAD for it
# (secure-execution mode): on the rsocket route the connection stays on
# TCP ("peer does not run the framework"), as documented in
# doc/rsocket-framework.md "What fails"; this test holds that nothing
# breaks, and that the client says why.
# Usage: exim4.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.exim4
. "$NSTACK_SRC/test/lib/servers.sh"

command -v exim4 >/dev/null || prog_fail "exim4 not installed (tools/deps.sh: exim4-daemon-light)"
srv_setup "$1" 18025
# the local user of test/servers/vsftpd.sh
MAIL_USER=nstackftp
id "$MAIL_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$MAIL_USER" || prog_fail "cannot create $MAIL_USER"
srv_on_exit srv_stop_pidfile "$PROG_TMP/exim.pid"
srv_server_env exim4 -bd -q30m -oX "<; $PROG_ADDR.$PROG_PORT" -oP "$PROG_TMP/exim.pid" >"$PROG_TMP/start.out" 2>&1 ||
    prog_fail "exim4 did not start: $(cat "$PROG_TMP/start.out")"
ex_up() { ip netns exec "$NS_A" ss -Hltn "sport = :$PROG_PORT" | grep -q .; }
wait_until 30 ex_up || prog_fail "exim4 does not listen on $PROG_PORT: $(tail -n 3 /var/log/exim4/mainlog 2>/dev/null)"
wait_until 10 test -s "$PROG_TMP/exim.pid" || prog_fail "no pid file"
[ "$(srv_user_of "$(cat "$PROG_TMP/exim.pid")")" = Debian-exim ] || prog_fail "exim4's daemon does not run as Debian-exim"
cat >"$PROG_TMP/send.py" <<'PY'
import base64, email.message, os, smtplib, sys
body = base64.encodebytes(os.urandom(150000)).decode()   # 76-character lines: sent 7bit
m = email.message.EmailMessage()
m["From"], m["To"], m["Subject"] = "nstack@test", sys.argv[3] + "@localhost", "nstack exim4 test"
m.set_content(body)
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=30)
s.send_message(m)
s.quit()
open(sys.argv[4], "w").write(body)
PY
srv_client timeout 60 python3 "$PROG_TMP/send.py" "$PROG_ADDR" "$PROG_PORT" "$MAIL_USER" "$PROG_TMP/body" \
    >"$PROG_TMP/send.out" 2>&1 || prog_fail "smtplib: $(cat "$PROG_TMP/send.out")"
# the body as exim stored it: base64 lines of 76, the mark a whole line
mark=$(head -c 76 "$PROG_TMP/body")
delivered() { grep -qxF "$mark" "/var/mail/$MAIL_USER" 2>/dev/null; }
wait_until 30 delivered || prog_fail "not delivered to /var/mail/$MAIL_USER: $(tail -n 3 /var/log/exim4/mainlog)"
want=$(tr -d '\n' <"$PROG_TMP/body" | sha256sum | cut -d' ' -f1)
got=$(awk -v m="$mark" '$0 == m { on = 1 } on && /^$/ { exit } on' "/var/mail/$MAIL_USER" | tr -d '\n' | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || prog_fail "the delivered body differs"
if [ "$1" = rsocket ]; then
    grep -q "stayed on TCP: peer does not run the framework" "$PROG_TMP/send.out" ||
        prog_fail "the client does not name why the connection stayed on TCP: $(cat "$PROG_TMP/send.out")"
fi
prog_note "OK: 200 KB delivered to /var/mail/$MAIL_USER whole; daemon as Debian-exim"
