# shellcheck shell=bash
# librspreload (rdma-core's own socket interposer, Debian's v44) on this
# project's engine versus the framework, same programs and addresses.
#
# librspreload calls the rsocket API (rsocket, rsend, rpoll, ...), which
# libdmm_rsocket.so exports at RDMACM_1.0; preloading the engine first
# makes those calls land in it (and the software device stands in for the
# NIC). librspreload has no epoll in v44, so programs that use epoll
# fail or fall back - that is a result of the comparison, not a bug here.
# Sourced by tools/bench.sh; needs the test hosts.

RSPRELOAD_LIB=${RSPRELOAD_LIB:-/usr/lib/x86_64-linux-gnu/rsocket/librspreload.so}

side_rspreload() {
    BENCH_ENV=("LD_LIBRARY_PATH=$NSTACK_RELEASE/lib64/softrdma"
               "LD_PRELOAD=$NSTACK_RELEASE/lib64/libdmm_rsocket.so $RSPRELOAD_LIB")
    BENCH_ADDR=$IP_A
}
side_framework_rs_apps() { BENCH_ENV=("${NSTACK_PRELOAD_ENV[@]}"); BENCH_ADDR=$IP_A; }

rspreload_present() { [ -e "$RSPRELOAD_LIB" ]; }
