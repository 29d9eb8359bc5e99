#!/usr/bin/env bash
# MariaDB as Debian runs it: the stock /etc/mysql/my.cnf (with its
# mariadb.conf.d/50-server.cnf) included, adapted only in bind-address
# (0.0.0.0), port, datadir, socket and pid file; a private datadir made by
# mariadb-install-db; mariadbd-safe starting mariadbd, which drops to the
# mysql user and serves each connection in a thread of its own. From the
# other host, as a user allowed over TCP: a 4 MiB table loaded
# by the mariadb client, read back in full and compared byte by byte, then
# mariadb-slap with 8 concurrent connections. The wire and the counters
# say which route carried the bytes.
# Usage: mariadb.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.mariadb
. "$NSTACK_SRC/test/lib/servers.sh"
for p in mariadbd-safe mariadb-install-db mariadb mariadb-slap; do
    command -v "$p" >/dev/null || prog_fail "$p not installed (tools/deps.sh: mariadb-server, mariadb-client)"
done
[ -r /etc/mysql/my.cnf ] || prog_fail "no /etc/mysql/my.cnf (the mariadb-server package installs it)"
id mysql >/dev/null 2>&1 || prog_fail "no mysql user (the mariadb-server package makes it)"
srv_setup "$1" 13306
D=$PROG_TMP/mariadb
mkdir -p "$D/data" "$D/run" && chown -R mysql: "$D" || prog_fail "cannot prepare $D"
cat >"$D/my.cnf" <<CNF
!include /etc/mysql/my.cnf
[mysqld]
user = mysql
bind-address = 0.0.0.0
port = $PROG_PORT
datadir = $D/data
socket = $D/run/mysqld.sock
pid-file = $D/run/mysqld.pid
log-error = $D/error.log
[client]
socket = $D/run/mysqld.sock
port = $PROG_PORT
CNF
chmod 644 "$D/my.cnf"
ip netns exec "$NS_A" mariadb-install-db --defaults-file="$D/my.cnf" --user=mysql \
    --skip-test-db >"$PROG_TMP/install.out" 2>&1 || prog_fail "mariadb-install-db: $(tail -n 3 "$PROG_TMP/install.out")"
db_log() { tail -n 5 "$D/error.log" 2>/dev/null | tr '\n' ' '; }
prog_server mariadbd-safe mariadbd-safe --defaults-file="$D/my.cnf"
local_sql() { ip netns exec "$NS_A" mariadb --defaults-file="$D/my.cnf" -uroot -e "$1"; }
up() { local_sql 'select 1' >/dev/null 2>&1; }
wait_until 60 up || prog_fail "mariadbd did not start: $(db_log)"
pid=$(cat "$D/run/mysqld.pid")
[ "$(srv_user_of "$pid")" = mysql ] || prog_fail "mariadbd $pid runs as '$(srv_user_of "$pid")', not mysql"
local_sql "CREATE USER 'nstack'@'%' IDENTIFIED BY 'nstack-pw'; GRANT ALL ON *.* TO 'nstack'@'%';" ||
    prog_fail "cannot create the test user"
DB=(-h "$PROG_ADDR" -P "$PROG_PORT" -u nstack -pnstack-pw --protocol=TCP)
remote_up() { srv_client mariadb "${DB[@]}" -e 'select 1' >/dev/null 2>&1; }
wait_until 30 remote_up || prog_fail "mariadbd does not answer on $PROG_ADDR:$PROG_PORT: $(db_log)"

# 2048 rows of 2 KiB of hex (4 MiB), as one SQL script, and what reading
# them back in id order prints (id TAB data per line).
python3 - "$PROG_TMP/load.sql" "$PROG_TMP/want.tsv" <<'PY'
import os, sys
rows = [(i, os.urandom(1024).hex()) for i in range(2048)]
with open(sys.argv[1], "w") as f:
    f.write("CREATE DATABASE nst; USE nst;\n"
            "CREATE TABLE t (id INT PRIMARY KEY, data TEXT NOT NULL) ENGINE=InnoDB;\n")
    for k in range(0, len(rows), 64):
        f.write("INSERT INTO t VALUES " +
                ",".join(f"({i},'{d}')" for i, d in rows[k:k + 64]) + ";\n")
with open(sys.argv[2], "w") as f:
    f.writelines(f"{i}\t{d}\n" for i, d in rows)
PY

srv_wire_start "$PROG_PORT"
prog_client_in "$PROG_TMP/load.sql" timeout 120 mariadb "${DB[@]}" >"$PROG_TMP/load.out" 2>&1 ||
    prog_fail "loading the table: $(grep -v '^nstack' "$PROG_TMP/load.out" | tail -n 3) $(db_log)"
srv_client timeout 120 mariadb "${DB[@]}" --batch --raw --skip-column-names \
    -e 'SELECT id, data FROM nst.t ORDER BY id' >"$PROG_TMP/got.tsv" 2>"$PROG_TMP/read.err" ||
    prog_fail "reading the table: $(grep -v '^nstack' "$PROG_TMP/read.err" | tail -n 3)"
want=$(prog_sha256 "$PROG_TMP/want.tsv"); got=$(prog_sha256 "$PROG_TMP/got.tsv")
[ "$want" = "$got" ] || prog_fail "the table read back differs (sha256 $got, want $want; $(wc -l <"$PROG_TMP/got.tsv") lines)"
srv_client timeout 180 mariadb-slap "${DB[@]}" --concurrency=8 --iterations=2 --number-of-queries=800 \
    --auto-generate-sql --auto-generate-sql-load-type=mixed --auto-generate-sql-add-autoincrement \
    >"$PROG_TMP/slap.out" 2>&1 || prog_fail "mariadb-slap: $(grep -v '^nstack' "$PROG_TMP/slap.out" | tail -n 3) $(db_log)"
grep -q 'Number of clients running queries: 8' "$PROG_TMP/slap.out" ||
    prog_fail "mariadb-slap printed no result: $(cat "$PROG_TMP/slap.out")"
cat "$PROG_TMP/load.out" "$PROG_TMP/read.err" >"$PROG_TMP/client.stats"
srv_wire_verdict "mariadb" "$PROG_TMP/client.stats" $((4 * 1024 * 1024)) "$(srv_server_bytes)"
prog_note "OK: mariadbd as mysql, 4 MiB table loaded and read back intact, mariadb-slap 8 clients ($(sed -n 's/.*Average number of seconds to run all queries: \([0-9.]*\).*/\1 s/p' "$PROG_TMP/slap.out"))"
