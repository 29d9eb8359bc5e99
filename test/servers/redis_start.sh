# redis_start.sh - sourced by redis.sh and redis_refuse.sh after servers.sh:
# redis_start MODE PORT PROTECTED starts redis-server with a copy of
# Debian's /etc/redis/redis.conf adapted only in port, bind address (all),
# protected mode (PROTECTED: yes or no), directories and pid/log files, as
# Debian's unit starts it: as the redis user, daemonised. Sets D (its
# directory) and defines rlog (the log's last lines).
redis_start() {
    local mode=$1 port=$2 protected=$3
    command -v redis-server >/dev/null && [ -r /etc/redis/redis.conf ] ||
        prog_fail "redis-server not installed (tools/deps.sh: redis-server)"
    id redis >/dev/null 2>&1 || prog_fail "no redis user (Debian's redis-server package makes it)"
    srv_setup "$mode" "$port"
    D=$PROG_TMP/redis
    mkdir -p "$D" && chown redis: "$D" || prog_fail "cannot make $D"
    sed -e "s|^bind .*|bind 0.0.0.0|" -e "s|^protected-mode .*|protected-mode $protected|" \
        -e "s|^port .*|port $PROG_PORT|" \
        -e "s|^daemonize .*|daemonize yes|" -e "s|^pidfile .*|pidfile $D/redis.pid|" \
        -e "s|^logfile .*|logfile $D/redis.log|" -e "s|^dir .*|dir $D|" \
        /etc/redis/redis.conf >"$D/redis.conf" || prog_fail "cannot copy redis.conf"
    grep -q "^port $PROG_PORT" "$D/redis.conf" && grep -q "^daemonize yes" "$D/redis.conf" &&
        grep -q "^protected-mode $protected" "$D/redis.conf" &&
        grep -q "^dir $D" "$D/redis.conf" || prog_fail "/etc/redis/redis.conf not in the expected form"
    chown redis: "$D/redis.conf"
    srv_on_exit srv_stop_pidfile "$D/redis.pid"
    srv_server_env runuser -u redis -- redis-server "$D/redis.conf" >"$PROG_TMP/start.out" 2>&1 ||
        prog_fail "redis-server did not start: $(cat "$PROG_TMP/start.out") $(rlog)"
}
rlog() { tail -n 5 "$D/redis.log" 2>/dev/null | tr '\n' ' '; }
