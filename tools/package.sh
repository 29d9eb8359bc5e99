#!/usr/bin/env bash
# package.sh - build the Debian packages from this tree with dpkg-deb:
#
#   nstack           libnStackAPI.so, libdmm_rsocket.so, nstack-run/-route/-stat,
#                    the regression apps (libexec), example configs, docs, man pages
#   nstack-dev       nstack_module.h and nstack.pc (building stack modules)
#   nstack-softrdma  the software RDMA device in /usr/lib/<triplet>/nstack/softrdma,
#                    off the default search path so it never shadows a real stack
#
#   tools/package.sh [-o OUTDIR] [-b BUILDDIR]
#       OUTDIR    where the .deb files go (default: <tree>/build-pkg/debs)
#       BUILDDIR  its own build tree, prefix /usr (default: <tree>/build-pkg)
#
# The files come from `cmake --install --component` (cmake/install.cmake);
# dependencies from the shlibs files of the installed Debian libraries each
# binary needs (json-c is linked statically). No maintainer scripts: the
# libraries have no SONAME users to register and the software device's
# directory is private, so there is nothing for ldconfig to do.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$SRC/build-pkg
OUT=""
while getopts "o:b:h" opt; do
    case $opt in
    o) OUT=$OPTARG ;;
    b) BUILD=$OPTARG ;;
    h) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: tools/package.sh [-o OUTDIR] [-b BUILDDIR]" >&2; exit 2 ;;
    esac
done
OUT=${OUT:-$BUILD/debs}
JOBS=${NSTACK_JOBS:-2}
say() { printf 'package: %s\n' "$*"; }
die() { printf 'package: %s\n' "$*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

ARCH=$(dpkg --print-architecture)
MAINT="nstack developers <nstack@localhost>"

configure_and_build() {
    say "building $BUILD (prefix /usr)"
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_INSTALL_PREFIX=/usr -DNSTACK_RELEASE_DIR="$BUILD/release" >/dev/null
    # only what the install rules name
    local targets=(nStackAPI dmm_rsocket nstack-route nstack-stat nstack-check softrdma_ibverbs
                   softrdma_rdmacm vs_epoll vs_select vs_poll vs_common vc_common
                   fork_server fork_client vc_serv_file vc_cli_file)
    cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}" >/dev/null
}

# shlib_dep SONAME: the dependency the owning package's shlibs file gives
# ("libibverbs1 (>= 44.0)"), else the bare package name.
shlib_dep() {
    local soname=$1 name ver path pkg line
    name=${soname%%.so*}
    ver=${soname#*.so.}
    path=$(ldconfig -p | awk -v s="$soname" '$1 == s && /x86-64|64bit|AArch64/ && p == "" { p = $NF } END { print p }')
    [ -n "$path" ] || { echo "package: $soname: not found by ldconfig" >&2; return 1; }
    pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true)
    pkg=${pkg%%: *}
    [ -n "$pkg" ] || { echo "package: $soname ($path): no Debian package owns it" >&2; return 1; }
    line=$(awk -v n="$name" -v v="$ver" '$1 == n && $2 == v { $1 = $2 = ""; sub(/^ +/, ""); print; exit }' \
           "/var/lib/dpkg/info/$pkg.shlibs" "/var/lib/dpkg/info/${pkg%%:*}.shlibs" 2>/dev/null || true)
    printf '%s\n' "${line:-${pkg%%:*}}"
}

# depends_of STAGE [SONAME...]: the shared libraries the stage's ELF files
# need, minus those named (shipped in the package itself), as Depends.
depends_of() {
    local stage=$1; shift
    local f so own deps=()
    while read -r so; do
        for own in "$@"; do [ "$so" = "$own" ] && continue 2; done
        deps+=("$(shlib_dep "$so")") || return 1
    done < <(find "$stage" -type f -print0 | while IFS= read -r -d '' f; do
                 [ "$(head -c4 "$f" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || continue
                 readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
             done | sort -u)
    printf '%s\n' "${deps[@]}" | sort -u | paste -sd, - | sed 's/,/, /g'
}

# stage COMPONENT PKG: the component's files under $STAGE/PKG, man pages
# compressed as Debian's policy asks.
stage() {
    local comp=$1 pkg=$2 dir=$STAGE/$2
    DESTDIR=$dir cmake --install "$BUILD" --component "$comp" >/dev/null
    find "$dir/usr/share/man" -type f -name '*.[0-9]' -exec gzip -9n {} + 2>/dev/null || true
    mkdir -p "$dir/DEBIAN"
}

control() {
    local pkg=$1 depends=$2 extra=$3 descr=$4 dir=$STAGE/$1
    {
        echo "Package: $pkg"
        echo "Version: $VERSION"
        echo "Architecture: $ARCH"
        echo "Maintainer: $MAINT"
        echo "Section: net"
        echo "Priority: optional"
        echo "Installed-Size: $(du -sk --exclude=DEBIAN "$dir" | cut -f1)"
        [ -n "$depends" ] && echo "Depends: $depends"
        [ -n "$extra" ] && printf '%s\n' "$extra"
        printf '%s\n' "$descr"
    } >"$dir/DEBIAN/control"
    (cd "$dir" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
        LC_ALL=C sort -z | xargs -0r md5sum) >"$dir/DEBIAN/md5sums"
}

build_deb() {
    local pkg=$1 deb=$OUT/${1}_${VERSION}_${ARCH}.deb
    dpkg-deb --root-owner-group -Zxz --build "$STAGE/$pkg" "$deb" >/dev/null
    say "$deb"
}

main() {
    configure_and_build
    VERSION=$(sed -n 's/^NSTACK_VERSION:STRING=//p' "$BUILD/CMakeCache.txt")
    [ -n "$VERSION" ] || die "no NSTACK_VERSION in $BUILD/CMakeCache.txt"
    STAGE=$BUILD/stage
    rm -rf "$STAGE"
    mkdir -p "$OUT"
    rm -f "$OUT"/nstack*_"$ARCH".deb

    stage runtime nstack
    stage dev nstack-dev
    stage softrdma nstack-softrdma

    control nstack "$(depends_of "$STAGE/nstack")" "Suggests: nstack-softrdma" \
"Description: nStack-style socket framework with an RDMA (rsockets) stack
 An LD_PRELOAD library (libnStackAPI.so) that carries an unmodified
 program's TCP/UDP sockets on the stack its routing table names: the
 kernel, or the rsocket module (libdmm_rsocket.so), TCP streams over RDMA.
 Includes nstack-run, nstack-route, nstack-stat, DMM's regression apps,
 example configurations and manual pages."
    control nstack-dev "nstack (= $VERSION)" "Suggests: pkg-config" \
"Description: nStack-style socket framework - stack module interface
 The header nstack/nstack_module.h and nstack.pc for building stack
 modules out of tree (pkg-config --cflags nstack)."
    control nstack-softrdma \
        "$(depends_of "$STAGE/nstack-softrdma" libibverbs.so.1 librdmacm.so.1)" "" \
"Description: user-space software RDMA device for nstack
 Drop-in libibverbs.so.1 and librdmacm.so.1 that emulate an RDMA device
 over local sockets, for machines without RDMA hardware. Installed in a
 private directory (LIBDIR/nstack/softrdma), used only through
 LD_LIBRARY_PATH (nstack-run does this when no RDMA device exists), so it
 never shadows a real RDMA stack."

    for p in nstack nstack-dev nstack-softrdma; do build_deb "$p"; done
}

main "$@"
