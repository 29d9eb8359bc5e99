#!/bin/bash
# nosocket_identical.sh - programs that never use sockets must behave exactly
# as without the preload: byte-identical stdout and stderr, same exit status.
set -u
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}"
lib="$NSTACK_RELEASE/lib64/libnStackAPI.so"
[ -f "$lib" ] || { echo "FAIL $lib not built" >&2; exit 1; }
work=$(mktemp -d /tmp/nstack-nosock.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
unset NSTACK_MOD_CFG_FILE NSTACK_MOD_CFG_RD

# Each entry is one command line run with sh -c (so sh itself is covered).
commands=(
    'echo hello; printf "%s\n" a b c; exit 3'
    'ls -la "$NSTACK_SRC/test" | sort'
    'ls /nonexistent-dir-for-nstack'
    'python3 -c "import sys, os; print(sum(range(1000))); print(sorted(os.listdir(sys.argv[1])))" "$NSTACK_SRC"'
    'python3 -c "import sys; sys.stderr.write(\"err-line\\n\"); sys.exit(5)"'
    'seq 1 20000 | sort -r | head -c 5000 | md5sum'
    'cat "$NSTACK_SRC/test/lib/netns.sh" | wc -c; true | cat; exec sh -c "exit 0"'
    # posix_spawn with file actions, system, popen (wrap_spawn.c, wrap_system.c)
    'python3 -c "import os; p = os.posix_spawnp(\"sh\", [\"sh\", \"-c\", \"echo spawned >&2; exit 6\"], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, 1, 2), (os.POSIX_SPAWN_OPEN, 0, \"/dev/null\", os.O_RDONLY, 0)]); print(os.waitpid(p, 0)[1] >> 8); print(os.system(\"echo sys; exit 4\") >> 8)"; awk "BEGIN { while ((\"echo popen\" | getline l) > 0) print l; print system(\"exit 2\") }"'
)
fail=0
for i in "${!commands[@]}"; do
    cmd=${commands[$i]}
    sh -c "$cmd" >"plain.out.$i" 2>"plain.err.$i"; rc_plain=$?
    LD_PRELOAD="$lib" sh -c "$cmd" >"pre.out.$i" 2>"pre.err.$i"; rc_pre=$?
    if [ $rc_plain -ne $rc_pre ]; then
        echo "FAIL [$cmd]: exit status $rc_pre with preload, $rc_plain without" >&2; fail=1
    fi
    if ! cmp -s "plain.out.$i" "pre.out.$i"; then
        echo "FAIL [$cmd]: stdout differs with preload" >&2; diff "plain.out.$i" "pre.out.$i" | head -5 >&2; fail=1
    fi
    if ! cmp -s "plain.err.$i" "pre.err.$i"; then
        echo "FAIL [$cmd]: stderr differs with preload" >&2; diff "plain.err.$i" "pre.err.$i" | head -5 >&2; fail=1
    fi
done
[ $fail -eq 0 ] && echo "ok ${#commands[@]} socket-free programs identical with and without the preload"
exit $fail
