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
