#!/usr/bin/env bash
# A Java server on Debian's OpenJDK 17 (test/servers/java/NstackJava.java,
# run from source as `java FILE.java`): com.sun.net.httpserver's NIO
# selector with a thread pool, and a blocking ServerSocket with a thread
# per connection. From the other host: curl of 8 MiB three times (sha256),
# ab with keep-alive and ab with a new connection per request (0 failures),
# and the Java client: 16 MiB echoed and checked, close() of a socket
# another thread is blocked reading (the JVM dup2()s a dead socket over the
# number), an SO_TIMEOUT read that must time out. The wire and counters say
# which route carried the bytes.
# Usage: java.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.java
. "$NSTACK_SRC/test/lib/servers.sh"
command -v java >/dev/null && java --list-modules 2>/dev/null | grep -q '^jdk.compiler' ||
    prog_fail "a JDK is not installed (tools/deps.sh: openjdk-17-jdk-headless)"
command -v ab >/dev/null || prog_fail "ab not installed (tools/deps.sh: apache2-utils)"
srv_setup "$1" 18070
SRC=$PROG_TMP/NstackJava.java
cp "$NSTACK_SRC/test/servers/java/NstackJava.java" "$SRC" && chmod 644 "$SRC" || prog_fail "cannot copy the Java source"
prog_server java java "$SRC" server "$PROG_ADDR" "$PROG_PORT"
srv_wait_banner java

want=$(python3 -c 'import hashlib; print(hashlib.sha256(bytes((i * 7 + 3) & 255 for i in range(8 << 20))).hexdigest())')
srv_wire_start "$PROG_PORT"
srv_http_get_times "http://$PROG_ADDR:$PROG_PORT/big" "$want" 3
srv_ab_both "http://$PROG_ADDR:$PROG_PORT/"
srv_wire_verdict "java http" "$PROG_TMP/curl.1.err" $((8 << 20)) "$(srv_server_bytes)"
srv_client timeout 120 java "$SRC" client "$PROG_ADDR" "$PROG_PORT" >"$PROG_TMP/client.out" 2>&1 ||
    prog_fail "the Java client (exit $?): $(grep -v '^nstack' "$PROG_TMP/client.out" | tail -n 3)"
_prog_preloaded && expect_bulk_on "$PROG_STACK" $((16 << 20)) \
    "$(stats_exit_bytes "$PROG_TMP/client.out" "$PROG_STACK")" "java echo: client"
prog_note "OK: 3 x 8 MiB GET intact, ab $(awk '/^Requests per second/ { printf "%s ", $4 }' "$PROG_TMP/ab.keepalive" "$PROG_TMP/ab.close")req/s (keep-alive, new connections); $(grep '^client:' "$PROG_TMP/client.out")"
