#!/usr/bin/env bash
# vsftpd with Debian's stock /etc/vsftpd.conf (adapted only in the port,
# the log file and its secure_chroot_dir; listen_ipv6=YES: one wildcard
# IPv6 listener that takes IPv4 too), run in the foreground as Debian's
# unit runs it. vsftpd forks a privileged parent and an unprivileged,
# chrooted child per session; logging in as a local user through PAM
# (local_enable=YES) changes to that user. From the other host, with
# curl: a passive-mode download (EPSV: the client opens the data
# connection) and upload, and an active-mode download (PORT: vsftpd's
# privileged part connects from port 20 to the client), each 4 MiB and
# checked by sha256; the counters say which route carried the bytes.
# Usage: vsftpd.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.vsftpd
. "$NSTACK_SRC/test/lib/servers.sh"

command -v vsftpd >/dev/null && [ -r /etc/vsftpd.conf ] ||
    prog_fail "vsftpd not installed (tools/deps.sh: vsftpd)"
srv_setup "$1" 18521
# A local user of this test machine, as an FTP site's users are; the same
# password in every run, so that the modes may run at once (their files
# are apart: down-MODE.bin, up-MODE.bin).
FTP_USER=nstackftp FTP_PASS=nstack-ftp-test
id "$FTP_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$FTP_USER" ||
    prog_fail "cannot create the local user $FTP_USER"
echo "$FTP_USER:$FTP_PASS" | chpasswd || prog_fail "cannot set $FTP_USER's password"
H=$(getent passwd "$FTP_USER" | cut -d: -f6)
D=$PROG_TMP/vsftpd DOWN=down-$1.bin UP=up-$1.bin
mkdir -p "$D/empty" || prog_fail "cannot make $D"
prog_random_file "$H/$DOWN" $((4 * 1024 * 1024))
prog_random_file "$D/up.bin" $((4 * 1024 * 1024))
chown "$FTP_USER:" "$H/$DOWN"; chmod a+r "$D/up.bin"
srv_on_exit rm -f "$H/$DOWN" "$H/$UP"
sed -e "s|^secure_chroot_dir=.*|secure_chroot_dir=$D/empty|" \
    /etc/vsftpd.conf >"$D/vsftpd.conf" || prog_fail "cannot copy vsftpd.conf"
printf '%s\n' "listen_port=$PROG_PORT" "vsftpd_log_file=$D/vsftpd.log" "write_enable=YES" \
    >>"$D/vsftpd.conf"
grep -q '^listen_ipv6=YES' "$D/vsftpd.conf" && grep -q '^connect_from_port_20=YES' "$D/vsftpd.conf" ||
    prog_fail "/etc/vsftpd.conf not in the expected form"
prog_server vsftpd vsftpd "$D/vsftpd.conf"
prog_wait_listen "$PROG_PORT"
URL=ftp://$PROG_ADDR:$PROG_PORT
CURL=(timeout 60 curl -sS --max-time 50 --user "$FTP_USER:$FTP_PASS")
ftp_log() { tail -n 5 "$PROG_TMP/vsftpd.out" "$D/vsftpd.log" 2>/dev/null | tr '\n' ' '; }

want=$(prog_sha256 "$H/$DOWN")
srv_client "${CURL[@]}" -o "$PROG_TMP/pasv.got" "$URL/$DOWN" 2>"$PROG_TMP/pasv.err" ||
    prog_fail "passive download: $(cat "$PROG_TMP/pasv.err") $(ftp_log)"
[ "$(prog_sha256 "$PROG_TMP/pasv.got")" = "$want" ] || prog_fail "passive download differs"
srv_client "${CURL[@]}" -T "$D/up.bin" "$URL/$UP" 2>"$PROG_TMP/up.err" ||
    prog_fail "passive upload: $(cat "$PROG_TMP/up.err") $(ftp_log)"
[ "$(prog_sha256 "$H/$UP")" = "$(prog_sha256 "$D/up.bin")" ] || prog_fail "upload differs"
[ "$(stat -c %U "$H/$UP")" = "$FTP_USER" ] || prog_fail "upload not written as $FTP_USER"
srv_client "${CURL[@]}" -P - -o "$PROG_TMP/port.got" "$URL/$DOWN" 2>"$PROG_TMP/port.err" ||
    prog_fail "active download: $(cat "$PROG_TMP/port.err") $(ftp_log)"
[ "$(prog_sha256 "$PROG_TMP/port.got")" = "$want" ] || prog_fail "active download differs"
prog_note "OK: passive download and upload, active download, 4 MiB each, sha256 intact"
