#!/usr/bin/env bash
# cmake --install into a temporary prefix: the documented layout, nstack.pc
# naming that prefix and the module ABI, the software device in its own
# directory only; then the minimal module of doc/module-interface.md built
# out of tree with `pkg-config --cflags nstack` and carrying a loopback
# echo under the installed preload and nstack-run.
. "$(dirname "${BASH_SOURCE[0]}")/install_lib.sh"

P=$SCRATCH/prefix
cmake --install "$BUILD" --prefix "$P" >"$SCRATCH/install.log" 2>&1 ||
    { cat "$SCRATCH/install.log"; fail "cmake --install failed"; }
LIB=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
LIB=$P/${LIB:-lib}

for f in "$LIB/libnStackAPI.so" "$LIB/libdmm_rsocket.so" \
         "$LIB/nstack/softrdma/libibverbs.so.1" "$LIB/nstack/softrdma/librdmacm.so.1" \
         "$P/bin/nstack-route" "$P/bin/nstack-stat" "$P/bin/nstack-run" "$P/bin/nstack-check" \
         "$P/libexec/nstack/vs_epoll" "$P/libexec/nstack/vc_common" \
         "$P/include/nstack/nstack_module.h" "$P/include/nstack/nstack_stats.h" "$LIB/pkgconfig/nstack.pc" \
         "$P/share/nstack/kernel/module_config.json" "$P/share/nstack/kernel/rd_config.json" \
         "$P/share/nstack/rsocket/module_config.json" "$P/share/nstack/rsocket/rd_config.json" \
         "$P/share/nstack/module_config.schema.json" "$P/share/nstack/rd_config.schema.json" \
         "$P/share/doc/nstack/README.md" "$P/share/doc/nstack/configuration.md" \
         "$P/share/man/man1/nstack-run.1" "$P/share/man/man1/nstack-route.1" \
         "$P/share/man/man1/nstack-stat.1" "$P/share/man/man1/nstack-check.1" "$P/share/man/man7/nstack.7"; do
    [ -e "$f" ] || fail "missing after install: ${f#"$P"/}"
done
pass "layout"

# The software device never lands on a default search path.
stray=$(find "$P" -name 'libibverbs.so*' -o -name 'librdmacm.so*' | grep -v "/nstack/softrdma/" || true)
[ -z "$stray" ] || fail "RDMA libraries outside nstack/softrdma: $stray"
[ ! -e "$LIB/nstack/softrdma/libibverbs.so" ] || fail "development link libibverbs.so installed"
pass "software device only in ${LIB#"$P"/}/nstack/softrdma"

# Every installed configuration passes the installed checker.
for d in kernel rsocket; do
    "$P/bin/nstack-route" -m "$P/share/nstack/$d/module_config.json" \
        -r "$P/share/nstack/$d/rd_config.json" --check >/dev/null ||
        fail "installed $d configuration does not pass nstack-route --check"
done
pass "installed configurations valid"

export PKG_CONFIG_PATH=$LIB/pkgconfig
cflags=$(pkg-config --cflags nstack) || fail "pkg-config --cflags nstack"
case " $cflags " in *" -I$P/include/nstack "*) ;; *) fail "cflags '$cflags' lack -I$P/include/nstack" ;; esac
hdr=$SRC/include/nstack/nstack_module.h
want=$(sed -n 's/^#define NSTACK_MODULE_ABI_MAJOR \([0-9]*\)/\1/p' "$hdr").$(sed -n 's/^#define NSTACK_MODULE_ABI_MINOR \([0-9]*\)/\1/p' "$hdr")
[ "$(pkg-config --variable=module_abi nstack)" = "$want" ] || fail "module_abi is not $want"
[ "$(pkg-config --variable=preload nstack)" = "$LIB/libnStackAPI.so" ] || fail "preload variable wrong"
pass "nstack.pc: $cflags, module_abi $want"

# The documented minimal module, extracted from the document itself.
awk '/^## A minimal module/ { on = 1 } on && /^```c/ { code = 1; next }
     code && /^```/ { exit } code { print }' "$SRC/doc/module-interface.md" >"$SCRATCH/mini.c"
[ -s "$SCRATCH/mini.c" ] || fail "no minimal module in doc/module-interface.md"
# shellcheck disable=SC2086
cc -std=gnu11 -Wall -Wextra -Werror -shared -fPIC $cflags -o "$SCRATCH/libmini.so" \
    "$SCRATCH/mini.c" || fail "the minimal module does not build with pkg-config --cflags nstack"
nm -D --defined-only "$SCRATCH/libmini.so" | grep -q ' T mini_stack_register$' ||
    fail "libmini.so does not export mini_stack_register"
pass "minimal module built out of tree"

mkdir "$SCRATCH/conf"
cat >"$SCRATCH/conf/module_config.json" <<JSON
{ "default_stack_name": "kernel",
  "module_list": [ { "stack_name": "kernel" },
                   { "stack_name": "mini", "libname": "$SCRATCH/libmini.so" } ] }
JSON
python3 "$SRC/test/install/echo.py" serve "$SCRATCH/port" >"$SCRATCH/serve.log" 2>&1 &
CLEANUPS+=("kill $! 2>/dev/null")
wait_until 30 test -s "$SCRATCH/port" || fail "echo server did not start"
"$P/bin/nstack-run" --stats --config "$SCRATCH/conf" --route 127.0.0.0/8=mini -- \
    python3 "$SRC/test/install/echo.py" client "$(cat "$SCRATCH/port")" 100000 \
    >"$SCRATCH/mini.log" 2>&1 || { cat "$SCRATCH/mini.log"; fail "echo through the minimal module failed"; }
cat "$SCRATCH/mini.log"
grep -Eq 'stack mini: sockets 1 connect 1 accept 0 tx_bytes 100000 rx_bytes 100000' "$SCRATCH/mini.log" ||
    fail "the bytes were not carried by the minimal module"
pass "minimal module carried 100000 bytes each way under the installed preload"
