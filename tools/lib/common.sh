# shellcheck shell=bash
# Shared helpers for the tools/*.sh scripts: where the trees are, how to
# report, how to build. Sourced, never executed.

# The repository root: tools/lib/.. /..
NSTACK_SRC=${NSTACK_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
NSTACK_BUILD=${NSTACK_BUILD:-$NSTACK_SRC/build}
NSTACK_RELEASE=${NSTACK_RELEASE:-$NSTACK_SRC/release}
export NSTACK_SRC NSTACK_BUILD NSTACK_RELEASE

# Parallel build jobs: the machines this runs on are small and shared.
NSTACK_JOBS=${NSTACK_JOBS:-2}

say()  { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 needs root (network namespaces, apt-get); run it with sudo"
}

# build_tree BUILD_DIR [cmake args...]: configure (once) and build.
build_tree() {
    local dir=$1; shift
    mkdir -p "$dir"
    cmake -S "$NSTACK_SRC" -B "$dir" "$@" >"$dir/configure.log" 2>&1 ||
        { cat "$dir/configure.log" >&2; die "cmake configure failed in $dir"; }
    cmake --build "$dir" -j "$NSTACK_JOBS" ||
        die "build failed in $dir"
}

# has_lib NAME: release/lib64/NAME exists (components land over time).
has_lib() { [ -e "$NSTACK_RELEASE/lib64/$1" ]; }

# softrdma_present: the software RDMA device (drop-in libibverbs/librdmacm).
softrdma_present() { [ -d "$NSTACK_RELEASE/lib64/softrdma" ]; }

# rsocket_usable: both the rsocket module and a device for it exist.
rsocket_usable() { has_lib libdmm_rsocket.so && softrdma_present; }
