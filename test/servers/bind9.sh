#!/usr/bin/env bash
# BIND 9 (named: libuv event loops, one thread per CPU, each with its own
# listening socket on the port) with Debian's /etc/bind copied as is, its
# named.conf.options replaced by one that listens on the test address and
# port, serves a zone of 20,000 TXT records and allows zone transfers;
# started as Debian's init script does (`named -u bind`: daemonised, root
# drops to bind). From the other host: three full zone transfers over TCP
# (dig +tcp AXFR, about 1.4 MB each) checked record by record against the
# zone file, and a TCP query for one record; the wire and counters say
# which route carried them.
# Usage: bind9.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.bind9
. "$NSTACK_SRC/test/lib/servers.sh"

command -v named >/dev/null && command -v dig >/dev/null && [ -r /etc/bind/named.conf ] ||
    prog_fail "bind9 not installed (tools/deps.sh: bind9 bind9-dnsutils)"
srv_setup "$1" 18053
D=$PROG_TMP/bind N=20000
mkdir -p "$D" && cp -a /etc/bind/. "$D/" || prog_fail "cannot copy /etc/bind"
grep -q 'include "/etc/bind/named.conf.options"' "$D/named.conf" || prog_fail "/etc/bind/named.conf not in the expected form"
{
    echo '$TTL 300'
    echo '@ IN SOA ns.nstack.test. admin.nstack.test. 1 3600 600 86400 300'
    echo '@ IN NS ns.nstack.test.'
    echo "ns IN A $PROG_ADDR"
    for i in $(seq 1 $N); do echo "r$i IN TXT \"record $i of the nstack test zone\""; done
} >"$D/db.nstack.test"
sed -i -e "s|/etc/bind/|$D/|g" "$D/named.conf" "$D/named.conf.default-zones"
cat >"$D/named.conf.options" <<EOC
options {
    directory "$D";
    pid-file "$D/run/named.pid";
    listen-on port $PROG_PORT { $PROG_ADDR; };
    listen-on-v6 { none; };
    allow-transfer { any; };
    recursion no;
};
EOC
echo "zone \"nstack.test\" { type master; file \"$D/db.nstack.test\"; };" >>"$D/named.conf.local"
mkdir -p "$D/run" && chown -R bind:bind "$D" && chmod 755 "$D" || prog_fail "cannot hand $D to bind"
srv_on_exit srv_stop_pidfile "$D/run/named.pid"
srv_server_env named -u bind -c "$D/named.conf" >"$PROG_TMP/start.out" 2>&1 ||
    prog_fail "named did not start: $(cat "$PROG_TMP/start.out")"
bind_up() { ip netns exec "$NS_A" ss -Hltn "sport = :$PROG_PORT" | grep -q .; }
wait_until 30 bind_up || prog_fail "named does not listen on $PROG_PORT: $(cat "$PROG_TMP/start.out")"
wait_until 10 test -s "$D/run/named.pid" || prog_fail "no pid file"
[ "$(srv_user_of "$(cat "$D/run/named.pid")")" = bind ] || prog_fail "named does not run as bind"

# what an AXFR must carry: every TXT record of the zone, in the zone's order
awk '/ TXT / { sub(/^r/, ""); print "r" $1 ".nstack.test." }' "$D/db.nstack.test" | sort >"$PROG_TMP/want"
srv_wire_start "$PROG_PORT"
for i in 1 2 3; do
    srv_client timeout 60 dig +tcp +nocookie -p "$PROG_PORT" "@$PROG_ADDR" nstack.test AXFR \
        >"$PROG_TMP/axfr.$i" 2>"$PROG_TMP/dig.$i.err" || prog_fail "AXFR $i: $(tail -n 3 "$PROG_TMP/dig.$i.err")"
    awk '$4 == "TXT" && $5 == "\"record" && "r" $6 ".nstack.test." == $1 && $7 " " $8 " " $9 " " $10 " " $11 == "of the nstack test zone\"" { print $1 }' \
        "$PROG_TMP/axfr.$i" | sort >"$PROG_TMP/got.$i"
    cmp -s "$PROG_TMP/want" "$PROG_TMP/got.$i" ||
        prog_fail "AXFR $i: $(wc -l <"$PROG_TMP/got.$i") of $N records intact ($(grep -c . "$PROG_TMP/axfr.$i") lines; $(grep -m1 -i 'failed\|error' "$PROG_TMP/axfr.$i"))"
done
ans=$(srv_client timeout 20 dig +tcp +short -p "$PROG_PORT" "@$PROG_ADDR" r777.nstack.test TXT 2>/dev/null)
[ "$ans" = '"record 777 of the nstack test zone"' ] || prog_fail "query over TCP answered '$ans'"
srv_wire_verdict "dns zone transfer" "$PROG_TMP/dig.1.err" 1000000 "$(srv_server_bytes)"
prog_note "OK: 3 zone transfers of $N records, record by record, and a TCP query; named as bind, daemonised"
