#!/usr/bin/env bash
# deps.sh - install every Debian package the project needs (Debian 12).
# Idempotent: when everything is present it does not touch apt at all.
# Never starts services: nginx, redis, apache2 and postgresql would start their
# daemons on install, so a policy-rc.d that forbids starting is in place
# while apt runs.
set -euo pipefail

PACKAGES=(
    # build (binutils: nm/readelf in the framework's export checks)
    cmake gcc make binutils pkg-config libjson-c-dev libcmocka-dev
    librdmacm-dev libibverbs-dev rdmacm-utils ibverbs-utils
    # perftest: links the mlx5/efa provider libraries (ibverbs-providers)
    perftest ibverbs-providers
    # test hosts, process handling, test drivers (python3: framework tests)
    iproute2 procps psmisc util-linux python3
    # real programs (test/programs) and benchmarks (tools/bench.sh)
    iperf3 sockperf redis-server redis-tools memcached nginx-light wrk curl strace jq nodejs
    # real servers as Debian runs them (test/servers; ab: tools/bench.sh conn-rate)
    # and the capture that checks what crossed kernel TCP (test/lib/wirecheck.sh)
    postgresql apache2 apache2-utils tcpdump mariadb-server mariadb-client
    # a proxy, remote login/copy and file sync with their privilege drops and
    # per-connection forks/re-execs (test/servers haproxy, sshd, rsync)
    haproxy openssh-server openssh-client rsync
    # a second web server with its own event loop and sendfile (test/servers lighttpd)
    lighttpd
    # an FTP server that forks into new namespaces with a raw clone(), chroots,
    # drops to nobody and passes data connections over a unix socket
    # (test/servers vsftpd)
    vsftpd
    # a caching proxy whose master execs its worker in secure-execution mode
    # (test/servers squid)
    squid
    # an MQTT broker and its clients (test/servers mosquitto)
    mosquitto mosquitto-clients
    # an IMAP server: chrooted login processes that hand the client to the
    # mail process over a unix socket (test/servers dovecot)
    dovecot-imapd
    # Debian's default MTA, a set-user-ID daemon (test/servers exim4)
    exim4-daemon-light
    # a DNS server on libuv, a listening socket per thread (test/servers bind9)
    bind9 bind9-dnsutils
    # the JVM's networking: NIO selector, blocking sockets, close by dup2
    # (test/servers java, run from source: needs the JDK's compiler)
    openjdk-17-jdk-headless
    # a pre-forking Python WSGI server (test/servers gunicorn)
    gunicorn
    # manuals and packaging tests (test/install: apt-get install of the
    # built .debs, man -l / groff -ww, cc -static against libc6-dev's libc.a)
    man-db groff-base libc6-dev
    # config/*.schema.json checked against the shipped configs (test/config)
    # and tools/bench.sh --plot's SVG
    python3-jsonschema gnuplot-nox
)

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            printf '%s\n' "$p"
    done
}

# Forbid service starts for the duration of apt (restores what was there).
POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=""
block_service_starts() {
    if [ -e "$POLICY" ]; then
        POLICY_BACKUP=$(mktemp); cp -p "$POLICY" "$POLICY_BACKUP"
    fi
    printf '#!/bin/sh\nexit 101\n' >"$POLICY"; chmod 755 "$POLICY"
    trap restore_policy EXIT
}
restore_policy() {
    if [ -n "$POLICY_BACKUP" ]; then mv -f "$POLICY_BACKUP" "$POLICY"; else rm -f "$POLICY"; fi
}

main() {
    local missing
    missing=$(missing_packages)
    if [ -z "$missing" ]; then
        echo "deps: all ${#PACKAGES[@]} packages present"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || { echo "deps: missing packages: $missing; run as root" >&2; return 1; }
    echo "deps: installing:" $missing
    block_service_starts
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
    # Some packages start a daemon despite policy-rc.d (no init system in
    # containers uses it consistently): make sure none is left running.
    stop_started_daemons
}

stop_started_daemons() {
    local svc
    for svc in nginx redis-server apache2 postgresql memcached haproxy ssh rsync mariadb lighttpd vsftpd squid mosquitto dovecot exim4 named; do
        command -v service >/dev/null 2>&1 && service "$svc" stop >/dev/null 2>&1 || true
    done
}

main "$@"
