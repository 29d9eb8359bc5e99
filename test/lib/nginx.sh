# shellcheck shell=bash
# A private nginx: one process (master_process off, daemon off), every path
# (prefix, conf, pid, logs, temp dirs) inside one directory, so it never
# touches /etc/nginx, /var/log or /run and several can run at once.
#
#   nginx_prepare DIR ADDR PORT   writes DIR/nginx.conf, DIR/www/
#   nginx_cmd DIR                 prints the command line that runs it

nginx_prepare() {
    local dir=$1 addr=$2 port=$3
    mkdir -p "$dir/www" "$dir/logs" "$dir/tmp"
    cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    default_type application/octet-stream;
    keepalive_requests 100000;
    server {
        listen $addr:$port;
        root $dir/www;
    }
}
CONF
    echo "hello from nstack" >"$dir/www/index.html"
}

# -e: the error log before the config is read (the built-in default is
# outside the private directory).
nginx_cmd() { echo "nginx -p $1 -e $1/logs/error.log -c $1/nginx.conf"; }

# Debian's own configuration, as the package installs it: /etc/nginx/nginx.conf
# (user www-data, master + workers, sendfile on, tcp_nopush on, gzip on) and
# sites-available/default (wildcard listen, IPv4 and IPv6), adapted only in
# paths (pid, logs, temp dirs, document root, included site), the port, and
# worker_processes (Debian's "auto" is one per core; fixed so a test knows
# how many workers to expect).
#
#   nginx_debian_prepare DIR PORT WORKERS   writes DIR/nginx.conf, DIR/sites-enabled/,
#                                           DIR/www/ (readable by www-data)
# The prefix stays Debian's (/usr/share/nginx): modules-enabled/*.conf load
# "modules/..." relative to it.
#
#   nginx_debian_args DIR                   NGINX_ARGS: the command line, as
#                                           Debian's unit (daemon on;
#                                           master_process on), to which
#                                           -s reload / -s stop may be added
nginx_debian_prepare() {
    local dir=$1 port=$2 workers=$3 conf=/etc/nginx/nginx.conf site=/etc/nginx/sites-available/default
    [ -r "$conf" ] && [ -r "$site" ] || { echo "nginx_debian_prepare: $conf or $site missing" >&2; return 1; }
    mkdir -p "$dir/www" "$dir/logs" "$dir/tmp" "$dir/sites-enabled" "$dir/conf.d"
    sed -e "s|^\(\s*worker_processes\) .*;|\1 $workers;|" \
        -e "s|^\(\s*pid\) .*;|\1 $dir/nginx.pid;|" \
        -e "s|^\(\s*error_log\) .*;|\1 $dir/logs/error.log;|" \
        -e "s|^\(\s*access_log\) .*;|\1 $dir/logs/access.log;|" \
        -e "s|include /etc/nginx/conf.d/|include $dir/conf.d/|" \
        -e "s|include /etc/nginx/sites-enabled/|include $dir/sites-enabled/|" \
        -e "s|^http {|http {\n\tclient_body_temp_path $dir/tmp/body;\n\tproxy_temp_path $dir/tmp/proxy;\n\tfastcgi_temp_path $dir/tmp/fastcgi;\n\tuwsgi_temp_path $dir/tmp/uwsgi;\n\tscgi_temp_path $dir/tmp/scgi;|" \
        "$conf" >"$dir/nginx.conf"
    sed -e "s|listen 80 |listen $port |" -e "s|listen \[::\]:80 |listen [::]:$port |" \
        -e "s|root /var/www/html;|root $dir/www;|" "$site" >"$dir/sites-enabled/default"
    grep -q "listen $port default_server" "$dir/sites-enabled/default" &&
        grep -q "pid $dir/nginx.pid" "$dir/nginx.conf" ||
        { echo "nginx_debian_prepare: $conf or $site not in the expected form" >&2; return 1; }
    echo "hello from nstack" >"$dir/www/index.html"
    chmod -R a+rX "$dir"
}

nginx_debian_args() {
    NGINX_ARGS=(nginx -e "$1/logs/error.log" -c "$1/nginx.conf" -g 'daemon on; master_process on;')
}

# The nginx of nginx_debian_prepare DIR, started as Debian's unit starts it
# (NGINX_ARGS: a daemon; stopped when the test exits), under the test's
# preload environment (test/lib/servers.sh); the test fails with the
# error log's last lines unless its master comes up with N workers.
#
#   nginx_debian_start DIR N
#   nginx_master DIR / nginx_workers DIR / nginx_log DIR
nginx_log() { tail -n 5 "$1/logs/error.log" 2>/dev/null | tr '\n' ' '; }
nginx_master() { cat "$1/nginx.pid" 2>/dev/null; }
nginx_workers() { ps -o pid= --ppid "$(nginx_master "$1")" 2>/dev/null | tr -d ' ' | sort; }
nginx_has_workers() { [ "$(nginx_workers "$1" | wc -l)" -eq "$2" ]; }
nginx_debian_start() {
    local dir=$1 n=$2
    nginx_debian_args "$dir"
    srv_on_exit ip netns exec "$NS_A" "${NGINX_ARGS[@]@Q}" -s stop
    srv_server_env "${NGINX_ARGS[@]}" -t -q || prog_fail "nginx -t: $(nginx_log "$dir")"
    srv_server_env "${NGINX_ARGS[@]}" >"$PROG_TMP/start.out" 2>&1 ||
        prog_fail "nginx did not start: $(cat "$PROG_TMP/start.out") $(nginx_log "$dir")"
    wait_until 30 nginx_has_workers "$dir" "$n" ||
        prog_fail "no master with $n workers: $(nginx_workers "$dir" | wc -l) workers; $(nginx_log "$dir")"
}
