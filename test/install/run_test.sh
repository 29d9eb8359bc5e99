#!/usr/bin/env bash
# nstack-run, installed into a temporary prefix: exit status passed
# through; set-user-ID, set-group-ID, static (and static-pie), Go and
# scripts with such an interpreter refused with one line and status 126;
# 127 for a missing program; 125 with the checker's lines for a bad
# configuration; the software device only when asked or no RDMA device
# exists; and a real echo over rsocket (software device) on loopback.
. "$(dirname "${BASH_SOURCE[0]}")/install_lib.sh"

P=$SCRATCH/prefix
cmake --install "$BUILD" --prefix "$P" >"$SCRATCH/install.log" 2>&1 ||
    { cat "$SCRATCH/install.log"; fail "cmake --install failed"; }
RUN=$P/bin/nstack-run
S=$SCRATCH/bin
mkdir -p "$S"

# expect STATUS PATTERN CMD...: status and (for a refusal) exactly one
# line on stderr matching PATTERN.
expect() {
    local want=$1 pat=$2 rc=0; shift 2
    "$@" >"$SCRATCH/out" 2>"$SCRATCH/err" || rc=$?
    [ "$rc" = "$want" ] || { cat "$SCRATCH/err"; fail "$*: status $rc, want $want"; }
    if [ -n "$pat" ]; then
        grep -q -- "$pat" "$SCRATCH/err" || { cat "$SCRATCH/err"; fail "$*: no line with '$pat'"; }
    fi
}
one_line() {
    [ "$(wc -l <"$SCRATCH/err")" = 1 ] || { cat "$SCRATCH/err"; fail "want exactly one line: $*"; }
    echo "   $(cat "$SCRATCH/err")"
}

expect 42 "" "$RUN" -- sh -c 'exit 42'
expect 0 "" "$RUN" -- true
expect 143 "" "$RUN" -- sh -c 'kill -TERM $$'
expect 3 "" "$RUN" --stats -- python3 -c 'import socket, sys; socket.socket().close(); sys.exit(3)'
grep -q 'stats: stack kernel' "$SCRATCH/err" || fail "--stats printed no counters"
pass "exit status passed through (42, 0, 143 for SIGTERM, 3 with --stats)"

cp /bin/true "$S/suid"; chmod 4755 "$S/suid"
expect 126 "set-user-ID" "$RUN" -- "$S/suid"; one_line setuid
cp /bin/true "$S/sgid"; chmod 2755 "$S/sgid"
expect 126 "set-group-ID" "$RUN" -- "$S/sgid"; one_line setgid
pass "set-user-ID and set-group-ID refused"

printf 'int main(void) { return 0; }\n' >"$SCRATCH/hello.c"
if cc -static -o "$S/static" "$SCRATCH/hello.c" 2>/dev/null; then
    expect 126 "statically linked" "$RUN" -- "$S/static"; one_line static
    if cc -static-pie -o "$S/static-pie" "$SCRATCH/hello.c" 2>/dev/null; then
        expect 126 "statically linked" "$RUN" -- "$S/static-pie"; one_line static-pie
    fi
    printf '#!%s\n' "$S/static" >"$S/script"; chmod 755 "$S/script"
    expect 126 "interpreter $S/static) is statically linked" "$RUN" -- "$S/script"; one_line script
    pass "static, static-pie and a script with a static interpreter refused"
else
    echo "SKIP: static binaries: no static libc (libc6-dev's libc.a) for cc -static"
fi

# Go binaries, made without Go: the two marks a Go linker leaves.
printf '\377 Go buildinf:\010\002' >"$SCRATCH/buildinfo"
cp /bin/true "$S/go1"
objcopy --add-section .go.buildinfo="$SCRATCH/buildinfo" "$S/go1"
expect 126 "is a Go program" "$RUN" -- "$S/go1"; one_line go-buildinfo
printf '\004\000\000\000\010\000\000\000\004\000\000\000Go\000\000abcdefgh' >"$SCRATCH/note"
cp /bin/true "$S/go2"
objcopy --add-section .note.go.buildid="$SCRATCH/note" "$S/go2"
expect 126 "is a Go program" "$RUN" -- "$S/go2"; one_line go-note
pass "Go programs refused (build-info section, build-id note)"

expect 127 "command not found" "$RUN" -- nstack-no-such-program
printf 'x\n' >"$S/plain"; chmod 644 "$S/plain"
expect 126 "not an executable file" "$RUN" -- "$S/plain"
expect 125 "expected SUBNET=STACK" "$RUN" --route bogus -- true
expect 125 "no module of that name" "$RUN" --route 10.0.0.0/8=nosuch -- true
grep -q "configuration invalid" "$SCRATCH/err" || fail "no 'configuration invalid' line"
mkdir "$SCRATCH/badconf"; printf '{"module_list": [' >"$SCRATCH/badconf/module_config.json"
expect 125 "malformed JSON" "$RUN" --config "$SCRATCH/badconf" -- true
expect 125 "unknown option" "$RUN" --bogus -- true
pass "127 not found, 126 not executable, 125 for bad routes, configs and options"

# The software device: asked for, refused, or chosen by the machine.
dry_path() { "$RUN" -n "$@" -- true | sed -n 's/^LD_LIBRARY_PATH=//p'; }
case $(dry_path --softrdma) in *nstack/softrdma*) ;; *) fail "--softrdma: device not on the path" ;; esac
case $(dry_path --no-softrdma) in *softrdma*) fail "--no-softrdma: device on the path" ;; esac
if compgen -G '/sys/class/infiniband/*' >/dev/null; then auto=real; else auto=soft; fi
case $auto:$(dry_path) in
soft:*nstack/softrdma*) ;;
soft:*) fail "no RDMA device here, but the software device is not used" ;;
real:*nstack/softrdma*) fail "the software device shadows the real RDMA device" ;;
esac
# awk reads to the end: an early exit could kill ldconfig with SIGPIPE, and
# pipefail + set -e would end the test without a word (seen in CI)
libm=$(ldconfig -p | awk '$1 == "libm.so.6" && /x86-64/ && p == "" { p = $NF } END { print p }')
pre=$(LD_PRELOAD=$libm "$RUN" -n -- true | sed -n 's/^LD_PRELOAD=//p')
case $pre in *libnStackAPI.so\\\ "$libm") ;; *) fail "LD_PRELOAD not kept: $pre" ;; esac
own=$("$RUN" -n -- true | sed -n 's/^LD_PRELOAD=//p')
[ "$(LD_PRELOAD=$own "$RUN" -n -- true | sed -n 's/^LD_PRELOAD=//p')" = "$own" ] ||
    fail "the preload was added twice"
pass "software device: --softrdma, --no-softrdma, automatic ($auto device here); LD_PRELOAD kept"

rsocket_echo "$RUN" "$P/libexec/nstack"
pass "vs_epoll/vc_common echo over rsocket (software device) under the installed nstack-run"
