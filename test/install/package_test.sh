#!/usr/bin/env bash
# tools/package.sh -> apt-get install ./nstack*.deb (offline: every
# dependency is already installed or in Debian's archive) -> the installed
# nstack-run carries an echo over rsocket on loopback, man, pkg-config and
# the module header work from /usr -> apt-get purge leaves no file behind.
# Needs root; skipped (77) when nstack packages are already installed, so
# an installation of the user's is never replaced.
. "$(dirname "${BASH_SOURCE[0]}")/install_lib.sh"

PKGS=(nstack nstack-dev nstack-softrdma)
# present PKG: dpkg knows it in any state but not-installed (config-files too)
present() {
    local s
    s=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ -n $s && $s != *not-installed ]]
}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (apt-get install)"; exit 77; }
for p in "${PKGS[@]}"; do
    if present "$p"; then
        echo "SKIP: package $p is already installed on this machine"; exit 77
    fi
done
APT=(apt-get -y -q --no-install-recommends -o DPkg::Lock::Timeout=300)
export DEBIAN_FRONTEND=noninteractive

"$SRC/tools/package.sh" -b "$BUILD/package-tree" -o "$SCRATCH/debs" ||
    fail "tools/package.sh failed"
debs=("$SCRATCH"/debs/*.deb)
[ ${#debs[@]} = 3 ] || fail "want 3 packages, got: ${debs[*]}"
for d in "${debs[@]}"; do
    dpkg-deb -c "$d" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }'
done | sort -u >"$SCRATCH/files"
grep -q '/nstack/softrdma/libibverbs.so.1$' "$SCRATCH/files" || fail "no software device in the packages"
pass "packages: $(for d in "${debs[@]}"; do printf '%s ' "${d##*/}"; done)"

CLEANUPS+=("${APT[*]} purge ${PKGS[*]} >/dev/null 2>&1")
"${APT[@]}" install "${debs[@]}" >"$SCRATCH/apt.log" 2>&1 ||
    { cat "$SCRATCH/apt.log"; fail "apt-get install of the packages failed"; }
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" | grep -q 'install ok installed' || fail "$p not installed"
done
pass "apt-get install ./nstack*.deb"

RUN=$(command -v nstack-run) || fail "nstack-run not on PATH"
[ "$RUN" = /usr/bin/nstack-run ] || fail "nstack-run is $RUN, not /usr/bin/nstack-run"
triplet=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
[ -f "/usr/lib/$triplet/libnStackAPI.so" ] || fail "no /usr/lib/$triplet/libnStackAPI.so"
if ldconfig -p | grep -q 'nstack/softrdma'; then fail "the software device is in the ld.so cache"; fi
[ "$(man -w nstack-run)" = /usr/share/man/man1/nstack-run.1.gz ] || fail "man -w nstack-run"
[ "$(man -w 7 nstack)" = /usr/share/man/man7/nstack.7.gz ] || fail "man -w 7 nstack"
unset PKG_CONFIG_PATH
[[ " $(pkg-config --cflags nstack) " == *" -I/usr/include/nstack "* ]] || fail "pkg-config --cflags nstack: $(pkg-config --cflags nstack)"
printf '#include "nstack/nstack_module.h"\n#include "nstack_module.h"\nint v = NSTACK_MODULE_ABI_MAJOR;\n' |
    cc -x c -c -Wall -Werror $(pkg-config --cflags nstack) -o /dev/null - || fail "installed header does not compile"
pass "installed: $RUN, /usr/lib/$triplet/libnStackAPI.so, man pages, nstack.pc, header"

rsocket_echo "$RUN" /usr/libexec/nstack
pass "echo over rsocket (software device) under the installed preload"

"${APT[@]}" purge "${PKGS[@]}" >"$SCRATCH/apt.log" 2>&1 ||
    { cat "$SCRATCH/apt.log"; fail "apt-get purge failed"; }
for p in "${PKGS[@]}"; do
    if present "$p"; then fail "$p still known to dpkg after purge"; fi
done
left=$(while read -r f; do if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi; done <"$SCRATCH/files")
[ -z "$left" ] || fail "left after purge: $left"
for d in /usr/share/nstack /usr/libexec/nstack "/usr/lib/$triplet/nstack" /usr/share/doc/nstack \
         /usr/include/nstack; do
    [ ! -e "$d" ] || fail "$d left after purge"
done
pass "apt-get purge removed all $(wc -l <"$SCRATCH/files") files and their directories"
