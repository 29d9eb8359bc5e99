#!/usr/bin/env bash
# mosquitto (MQTT broker) with Debian's /etc/mosquitto/mosquitto.conf
# (adapted in its pid file, persistence and log paths, all in a directory
# of the mosquitto user, which writes its pid file after the drop; a listener on the
# test's port with anonymous clients allowed, as a LAN broker is set up),
# daemonised as Debian starts it (`mosquitto -c CONF -d`: root drops to
# the mosquitto user). From the other host: 20 messages of 64 KiB
# published at QoS 1 to a persistent subscriber's session, then taken by
# it, all compared byte for byte and in order;
# the wire and counters say which route carried them.
# Usage: mosquitto.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.mosquitto
. "$NSTACK_SRC/test/lib/servers.sh"

command -v mosquitto >/dev/null && command -v mosquitto_pub >/dev/null && [ -r /etc/mosquitto/mosquitto.conf ] ||
    prog_fail "mosquitto not installed (tools/deps.sh: mosquitto mosquitto-clients)"
srv_setup "$1" 18883
D=$PROG_TMP/mosquitto N=20
mkdir -p "$D/data" "$D/msg" || prog_fail "cannot make $D"
chown mosquitto: "$D/data" || prog_fail "cannot hand $D/data to mosquitto"
grep -q '^persistence_location ' /etc/mosquitto/mosquitto.conf || prog_fail "/etc/mosquitto/mosquitto.conf not in the expected form"
sed -e "s|^pid_file .*|pid_file $D/data/mosquitto.pid|" -e "s|^persistence_location .*|persistence_location $D/data/|" \
    -e "s|^log_dest file .*|log_dest file $D/data/mosquitto.log|" -e '/^include_dir /d' \
    /etc/mosquitto/mosquitto.conf >"$D/mosquitto.conf" || prog_fail "cannot copy mosquitto.conf"
printf '%s\n' "listener $PROG_PORT" "allow_anonymous true" >>"$D/mosquitto.conf"
chmod 644 "$D/mosquitto.conf"
mq_log() { tail -n 5 "$D/data/mosquitto.log" 2>/dev/null | tr '\n' ' '; }
srv_on_exit srv_stop_pidfile "$D/data/mosquitto.pid"
srv_server_env mosquitto -c "$D/mosquitto.conf" -d >"$PROG_TMP/start.out" 2>&1 ||
    prog_fail "mosquitto did not start: $(cat "$PROG_TMP/start.out") $(mq_log)"
mq_up() { ip netns exec "$NS_A" ss -Hltn "sport = :$PROG_PORT" | grep -q .; }
wait_until 30 mq_up || prog_fail "mosquitto does not listen on $PROG_PORT: $(mq_log)"
wait_until 10 test -s "$D/data/mosquitto.pid" || prog_fail "no pid file: $(mq_log)"
[ "$(srv_user_of "$(cat "$D/data/mosquitto.pid")")" = mosquitto ] || prog_fail "mosquitto does not run as mosquitto"
for i in $(seq 1 $N); do prog_random_file "$D/msg/$i" 65536; done

srv_wire_start "$PROG_PORT"
# A persistent session (-c -i) subscribes and leaves (-E): the broker
# queues the QoS 1 messages for it, so no publish can come before the
# subscription; the same session then takes them all (-N -F %p: the
# payloads only, back to back).
SUB=(mosquitto_sub -h "$PROG_ADDR" -p "$PROG_PORT" -q 1 -t nstack/test -c -i nstack-sub)
srv_client timeout 20 "${SUB[@]}" -E >"$PROG_TMP/sub0.out" 2>&1 || prog_fail "subscribe: $(cat "$PROG_TMP/sub0.out") $(mq_log)"
for i in $(seq 1 $N); do
    srv_client timeout 20 mosquitto_pub -h "$PROG_ADDR" -p "$PROG_PORT" -q 1 -t nstack/test -f "$D/msg/$i" \
        >>"$PROG_TMP/pub.out" 2>&1 || prog_fail "publish $i: $(cat "$PROG_TMP/pub.out") $(mq_log)"
done
srv_client timeout 60 "${SUB[@]}" -C "$N" -N -F '%p' >"$PROG_TMP/sub.raw" 2>"$PROG_TMP/sub.err" ||
    prog_fail "subscriber: $(cat "$PROG_TMP/sub.err") $(mq_log)"
cat $(for i in $(seq 1 $N); do echo "$D/msg/$i"; done) >"$PROG_TMP/want.raw"
cmp -s "$PROG_TMP/want.raw" "$PROG_TMP/sub.raw" ||
    prog_fail "the subscriber got $(stat -c %s "$PROG_TMP/sub.raw") bytes, not the $N messages in order"
srv_wire_verdict "mqtt $N x 64 KiB" "$PROG_TMP/sub.err" $((N * 65536)) "$(srv_server_bytes)"
prog_note "OK: $N x 64 KiB published and received in order, byte for byte; mosquitto as mosquitto, daemonised"
