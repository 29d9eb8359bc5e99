#!/usr/bin/env bash
# PostgreSQL (Debian's package, its newest /usr/lib/postgresql/*/bin): a
# private cluster made by initdb in the test's directory, run as the
# postgres user by pg_ctl as Debian's pg_ctlcluster does (postmaster forks
# a backend per connection), adapted only in paths, port, listen_addresses
# = '*' and a pg_hba line for the test subnet. From the other host, as root:
# pgbench -i, pgbench -c 8 -j 2 -t 300 (2400 transactions, none failed),
# then count(*) of pgbench_history = 2400.
# Usage: postgres.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.postgres
. "$NSTACK_SRC/test/lib/servers.sh"

PGBIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
[ -x "$PGBIN/pg_ctl" ] && [ -x "$PGBIN/pgbench" ] || prog_fail "PostgreSQL not installed (tools/deps.sh: postgresql)"
id postgres >/dev/null 2>&1 || prog_fail "no postgres user (the postgresql package makes it)"
srv_setup "$1" 15432
D=$PROG_TMP/pg
mkdir -p "$D/sock" && chown -R postgres: "$D" || prog_fail "cannot prepare $D"
as_pg() { runuser -u postgres -- "$@"; }

as_pg "$PGBIN/initdb" -D "$D/data" -U postgres -A trust -E UTF8 >"$PROG_TMP/initdb.out" 2>&1 ||
    prog_fail "initdb: $(tail -n 3 "$PROG_TMP/initdb.out")"
cat >>"$D/data/postgresql.conf" <<CONF
listen_addresses = '*'
port = $PROG_PORT
unix_socket_directories = '$D/sock'
CONF
echo "host all all 192.168.0.0/16 trust" >>"$D/data/pg_hba.conf"

PG_CTL=(runuser -u postgres -- "$PGBIN/pg_ctl" -D "$D/data" -l "$D/log")
srv_on_exit ip netns exec "$NS_A" "${PG_CTL[@]@Q}" -m fast -w -t 15 stop
pg_log() { tail -n 5 "$D/log" 2>/dev/null | tr '\n' ' '; }
# runuser first, then the preload environment: only PostgreSQL runs under it.
ip netns exec "$NS_A" runuser -u postgres -- env "${NSTACK_PRELOAD_ENV[@]}" \
    "$PGBIN/pg_ctl" -D "$D/data" -l "$D/log" -w -t 60 start >"$PROG_TMP/start.out" 2>&1 ||
    prog_fail "pg_ctl start: $(cat "$PROG_TMP/start.out") $(pg_log)"
pm=$(head -n 1 "$D/data/postmaster.pid")
[ "$(srv_user_of "$pm")" = postgres ] || prog_fail "postmaster $pm runs as '$(srv_user_of "$pm")', not postgres"
PG=(-h "$PROG_ADDR" -p "$PROG_PORT" -U postgres)
ready() { srv_client "$PGBIN/pg_isready" "${PG[@]}" -t 2 >/dev/null 2>&1; }
wait_until 30 ready || prog_fail "PostgreSQL does not answer on $PROG_ADDR:$PROG_PORT: $(pg_log)"

srv_wire_start "$PROG_PORT"
srv_client timeout 120 "$PGBIN/pgbench" "${PG[@]}" -i postgres >"$PROG_TMP/init.out" 2>&1 ||
    prog_fail "pgbench -i: $(tail -n 3 "$PROG_TMP/init.out") $(pg_log)"
srv_client timeout 150 "$PGBIN/pgbench" "${PG[@]}" -c 8 -j 2 -t 300 postgres >"$PROG_TMP/run.out" 2>&1 ||
    prog_fail "pgbench: $(grep -v '^nstack' "$PROG_TMP/run.out" | tail -n 5) $(pg_log)"
grep -q '^number of transactions actually processed: 2400/2400' "$PROG_TMP/run.out" ||
    prog_fail "pgbench did not process 2400/2400: $(grep -i 'transactions\|fail' "$PROG_TMP/run.out")"
grep -q '^number of failed transactions: 0 ' "$PROG_TMP/run.out" ||
    prog_fail "pgbench: $(grep 'failed' "$PROG_TMP/run.out")"
count=$(srv_client "$PGBIN/psql" "${PG[@]}" -Atc 'select count(*) from pgbench_history' postgres 2>"$PROG_TMP/psql.err")
[ "$count" = 2400 ] || prog_fail "pgbench_history has '$count' rows, want 2400: $(cat "$PROG_TMP/psql.err")"
cat "$PROG_TMP/init.out" "$PROG_TMP/run.out" >"$PROG_TMP/client.stats"
# pgbench -i loads 100000 accounts with COPY: about 3 MB from the client.
srv_wire_verdict "pgbench" "$PROG_TMP/client.stats" $((2 * 1024 * 1024))
prog_note "OK: pgbench -i + 2400 transactions ($(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$PROG_TMP/run.out") tps), pgbench_history = 2400"
