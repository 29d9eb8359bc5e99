#!/usr/bin/env bash
# Apache2 with Debian's configuration and mpm_event, its stock worker user
# (www-data): /etc/apache2 copied to a private APACHE_CONFDIR, adapted only
# in paths (envvars' run/lock/log dirs, document root), the port and the
# Listen line, started as Debian's unit starts it (apachectl start, which
# daemonises; a main process as root and worker processes as www-data).
# From the other host: curl of an 8 MiB file (sha256), ab -k -n 2000 -c 8
# with every request complete and none failed.
# Usage: apache.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.apache
. "$NSTACK_SRC/test/lib/servers.sh"

command -v apache2ctl >/dev/null && command -v ab >/dev/null ||
    prog_fail "apache2 / ab not installed (tools/deps.sh: apache2, apache2-utils)"
srv_setup "$1" 18980
D=$PROG_TMP/apache; C=$D/conf
mkdir -p "$D/www" "$D/log" && cp -a /etc/apache2 "$C" || prog_fail "cannot copy /etc/apache2"
sed -i -e "s|^export APACHE_PID_FILE=.*|export APACHE_PID_FILE=$D/run/apache2.pid|" \
       -e "s|^export APACHE_RUN_DIR=.*|export APACHE_RUN_DIR=$D/run|" \
       -e "s|^export APACHE_LOCK_DIR=.*|export APACHE_LOCK_DIR=$D/lock|" \
       -e "s|^export APACHE_LOG_DIR=.*|export APACHE_LOG_DIR=$D/log|" "$C/envvars"
sed -i "s|^Listen 80$|Listen $PROG_PORT|" "$C/ports.conf"
sed -i -e "s|<VirtualHost \*:80>|<VirtualHost *:$PROG_PORT>|" \
       -e "s|DocumentRoot /var/www/html|DocumentRoot $D/www|" "$C/sites-available/000-default.conf"
sed -i "s|<Directory /var/www/>|<Directory $D/www/>|" "$C/apache2.conf"
grep -q "^Listen $PROG_PORT" "$C/ports.conf" && grep -q "DocumentRoot $D/www" "$C/sites-enabled/000-default.conf" &&
    grep -q "APACHE_RUN_USER=www-data" "$C/envvars" || prog_fail "/etc/apache2 not in the expected form"
[ -e "$C/mods-enabled/mpm_event.load" ] || prog_fail "mpm_event is not Debian's enabled MPM here"
prog_random_file "$D/www/big.bin" $((8 * 1024 * 1024))
echo "hello from nstack" >"$D/www/index.html"
chmod -R a+rX "$D"

# As the unit: APACHE_STARTED_BY_SYSTEMD keeps apachectl from calling systemctl.
CTL=(env APACHE_CONFDIR="$C" APACHE_STARTED_BY_SYSTEMD=true apache2ctl)
srv_on_exit ip netns exec "$NS_A" "${CTL[@]@Q}" stop
ap_log() { tail -n 5 "$D/log/error.log" 2>/dev/null | tr '\n' ' '; }
srv_server_env "${CTL[@]}" start >"$PROG_TMP/start.out" 2>&1 ||
    prog_fail "apachectl start: $(cat "$PROG_TMP/start.out") $(ap_log)"
"${CTL[@]}" -V 2>/dev/null | grep -q '^Server MPM: *event' || prog_fail "the MPM is not event: $("${CTL[@]}" -V 2>&1 | grep MPM)"

main() { cat "$D/run/apache2.pid" 2>/dev/null; }
children() { ps -o pid= --ppid "$(main)" 2>/dev/null | tr -d ' '; }
has_children() { [ -n "$(main)" ] && [ -n "$(children)" ]; }
URL=http://$PROG_ADDR:$PROG_PORT
wait_until 30 has_children || prog_fail "no apache2 main process with workers: $(ap_log)"
wait_until 30 srv_http_answers "$URL/index.html" || prog_fail "apache2 does not answer on $URL: $(ap_log)"
# shellcheck disable=SC2046
check_users() { srv_check_users "$(main)" root www-data $(children); }
check_users
srv_http_fetch_checked "$URL/big.bin" "$D/www/big.bin" ap_log

out=$PROG_TMP/ab.out
srv_client timeout 120 ab -k -n 2000 -c 8 -s 30 "$URL/index.html" >"$out" 2>&1 ||
    prog_fail "ab failed: $(grep -v '^nstack' "$out" | tail -n 5) $(ap_log)"
grep -qE '^Complete requests: +2000$' "$out" || prog_fail "ab: $(grep -E 'Complete|Failed' "$out")"
grep -qE '^Failed requests: +0$' "$out" || prog_fail "ab: $(grep -A4 -E '^Failed' "$out")"
grep -q '^Non-2xx responses' "$out" && prog_fail "ab: $(grep '^Non-2xx' "$out")"
grep -qE '^Keep-Alive requests: +[1-9]' "$out" || prog_fail "ab -k: no keep-alive request: $(grep Keep "$out")"
check_users
prog_note "OK: 8 MiB sha256 ${SRV_SHA:0:16}... intact; ab -k 2000 requests, 0 failed ($(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$out")/s); workers www-data"
