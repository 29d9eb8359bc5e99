#!/usr/bin/env bash
# A preloaded process with a config of 1,000 bad entries and control bytes:
# its log holds a handful of escaped lines per file, the "and N more" line,
# and one line saying the kernel stack serves every socket.
set -euo pipefail
REL=${NSTACK_RELEASE:?}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 - "$dir/rd.json" <<'PY'
import sys
routes = ",".join('{"subnet":"10.0.%d.%d/40","stack_name":"kernel"}' % (i // 250, i % 250)
                  for i in range(1000))
open(sys.argv[1], "wb").write(b'{"\x1b[31mkey\xff":1,"ip_route":[' + routes.encode() + b']}')
PY
printf '{"module_list":[{"stack_name":"kernel"}]}' >"$dir/mod.json"

NSTACK_MOD_CFG_FILE=$dir/mod.json NSTACK_MOD_CFG_RD=$dir/rd.json \
LD_PRELOAD=$REL/lib64/libnStackAPI.so \
    python3 -c 'import socket; socket.socket().close()' 2>"$dir/log"

cat "$dir/log"
lines=$(grep -c 'config:' "$dir/log" || true)
[ "$lines" -le 8 ] || fail "$lines config log lines (want at most 8)"
grep -q 'and 996 more problems not shown (996 errors, 0 warnings)' "$dir/log" ||
    fail "no 'and N more' line"
grep -q 'kernel stack serves every socket' "$dir/log" || fail "no fallback line"
grep -q '\\x1b\[31mkey\\xff' "$dir/log" || fail "key not escaped"
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f-\xff]' "$dir/log"; then
    fail "raw control or non-ASCII byte in the log"
fi
echo "PASS: $lines config lines, escaped, fallback named"
