#!/usr/bin/env bash
# test.sh - install dependencies, build, and run the whole suite.
#
#   tools/test.sh                      everything: full suite + sanitizer unit/engine run
#   tools/test.sh -L integration       only ctest label "integration" (args go to ctest)
#   tools/test.sh -R iperf3            any ctest selection
#   NSTACK_NO_SANITIZE=1 tools/test.sh skip the ASan/UBSan build
#   NSTACK_TSAN=1 tools/test.sh        also the ThreadSanitizer phase (5)
#
# Phases:
#   1. tools/deps.sh                    (apt only when something is missing)
#   2. build/        -> release/        (RelWithDebInfo, -Werror)
#   3. ctest in build/ with --output-on-failure and a per-test timeout;
#      then a warning naming anything tests left behind (netns, /dev/shm)
#   4. build-asan/   -> build-asan/release  (ASan+UBSan), ctest -L 'unit|engine'
#   5. only with NSTACK_TSAN=1: build-tsan/ -> build-tsan/release (TSan),
#      the thread-safety tests and the multi-threaded engine/dispatcher tests
# Exits non-zero when any phase fails; prints a summary at the end.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# A test that hangs is killed after this long (each test also sets its own).
TEST_TIMEOUT=${NSTACK_TEST_TIMEOUT:-900}
ASAN_BUILD=${NSTACK_ASAN_BUILD:-$NSTACK_SRC/build-asan}
TSAN_BUILD=${NSTACK_TSAN_BUILD:-$NSTACK_SRC/build-tsan}

declare -a SUMMARY=()
FAILED=0

# record NAME STATUS: remember a phase result for the summary.
record() {
    SUMMARY+=("$(printf '%-28s %s' "$1" "$2")")
    [ "$2" = PASS ] || [ "$2" = SKIPPED ] || FAILED=1
}

run_ctest() {
    local dir=$1; shift
    (cd "$dir" && ctest --output-on-failure --timeout "$TEST_TIMEOUT" \
        --no-tests=ignore "$@")
}

phase_deps() {
    if "$NSTACK_SRC/tools/deps.sh"; then record "dependencies" PASS
    else record "dependencies" FAIL; fi
}

phase_build() {
    say "building $NSTACK_BUILD -> $NSTACK_RELEASE"
    if (build_tree "$NSTACK_BUILD"); then record "build (release)" PASS
    else record "build (release)" FAIL; return 1; fi
}

# A test that fails is run once more on its own. One that then passes is
# reported by name as flaky in the summary (never hidden); one that fails
# twice fails the run. NSTACK_TEST_RETRY=0 turns the second chance off.
phase_suite() {
    say "ctest $* (in $NSTACK_BUILD)"
    if run_ctest "$NSTACK_BUILD" "$@"; then record "ctest ${*:-all}" PASS; return; fi
    local failed="$NSTACK_BUILD/Testing/Temporary/LastTestsFailed.log" names
    if [ "${NSTACK_TEST_RETRY:-1}" = 0 ] || [ ! -s "$failed" ]; then
        record "ctest ${*:-all}" FAIL; return
    fi
    names=$(cut -d: -f2 "$failed" | tr '\n' ' ')
    say "retrying the failed tests once: $names"
    if run_ctest "$NSTACK_BUILD" --rerun-failed; then
        record "ctest ${*:-all}" PASS
        SUMMARY+=("  flaky (failed, then passed alone): $names")
        warn "flaky tests (failed once, passed on retry): $names"
    else record "ctest ${*:-all}" FAIL; fi
}

# The sanitizer tree has its own release dir so it never overwrites release/.
phase_sanitize() {
    if [ -n "${NSTACK_NO_SANITIZE:-}" ]; then record "sanitizer unit tests" SKIPPED; return; fi
    say "building $ASAN_BUILD with ASan+UBSan"
    if ! (build_tree "$ASAN_BUILD" -DNSTACK_SANITIZE=ON \
            -DNSTACK_RELEASE_DIR="$ASAN_BUILD/release"); then
        record "build (asan+ubsan)" FAIL; return
    fi
    record "build (asan+ubsan)" PASS
    # unit: pure code; engine: the softrdma device and the rsocket engine
    # driven directly (no LD_PRELOAD, so the sanitizer runtime loads first).
    say "ctest -L 'unit|engine' (in $ASAN_BUILD)"
    if NSTACK_RELEASE="$ASAN_BUILD/release" \
       UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       run_ctest "$ASAN_BUILD" -L 'unit|engine'; then
        record "ctest unit+engine (asan+ubsan)" PASS
    else record "ctest unit+engine (asan+ubsan)" FAIL; fi
}

# ThreadSanitizer (opt-in: NSTACK_TSAN=1). Every race report fails its test
# (TSan exits 66). The tests: label tsan (test/tsan), and the existing
# multi-threaded ones on the engine and through the dispatcher whose own
# code is race-free (sem_threads/sem_stress race on purpose in the test
# program itself: doc/testing.md). tsan.supp only names the software
# device's emulated DMA; die_after_fork=0: tests fork with threads running.
TSAN_TESTS='^(rsocket_engine|rsocket_dgram_engine|rsocket_robust|rsbug\.api\.(mtpoll|stress|pollmany|listen_poll)|rsbug\.fw\.(mtpoll|stress|pollmany|listen_epoll)|rsfw\.sem_(epoll|poll|data|dup)|rsfw\.dmm_vs_epoll_f1|multistack\..*)$'
phase_tsan() {
    if [ "${NSTACK_TSAN:-0}" != 1 ]; then return; fi
    say "building $TSAN_BUILD with ThreadSanitizer"
    if ! (build_tree "$TSAN_BUILD" -DNSTACK_TSAN=ON \
            -DNSTACK_RELEASE_DIR="$TSAN_BUILD/release"); then
        record "build (tsan)" FAIL; return
    fi
    record "build (tsan)" PASS
    local opts="halt_on_error=0 second_deadlock_stack=1 report_signal_unsafe=0"
    opts="$opts die_after_fork=0 suppressions=$NSTACK_SRC/test/tsan/tsan.supp"
    say "ctest -L tsan and the multi-threaded tests (in $TSAN_BUILD)"
    if NSTACK_RELEASE="$TSAN_BUILD/release" TSAN_OPTIONS="$opts" \
       run_ctest "$TSAN_BUILD" -L tsan &&
       NSTACK_RELEASE="$TSAN_BUILD/release" TSAN_OPTIONS="$opts" \
       run_ctest "$TSAN_BUILD" -R "$TSAN_TESTS"; then
        record "ctest threads (tsan)" PASS
    else record "ctest threads (tsan)" FAIL; fi
}

# Tests must leave nothing behind (test/lib/netns.sh cleans up on exit and
# sweeps after a test ctest killed). Whatever is left by a process that is
# gone is named in the summary, so a leaking test shows up in CI. A warning,
# not a failure: a concurrent run on a shared machine may own live ones.
_pid_dead() { ! kill -0 "$1" 2>/dev/null; }
check_leftovers() {
    local left=() ns f owner
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^nst[0-9]+_'); do
        owner=${ns#nst}; owner=${owner%%_*}
        _pid_dead "$owner" && left+=("netns $ns")
    done
    for f in /dev/shm/nstack-stat.*; do
        [ -e "$f" ] || continue
        _pid_dead "${f##*.}" && left+=("$f")
    done
    if [ ${#left[@]} -eq 0 ]; then record "leftovers" PASS; return; fi
    SUMMARY+=("$(printf '%-28s %s' leftovers "WARNING: ${left[*]}")")
    warn "tests left behind: ${left[*]}"
}

print_summary() {
    local line
    echo
    echo "==================== tools/test.sh summary ===================="
    for line in "${SUMMARY[@]}"; do echo "  $line"; done
    if [ "$FAILED" -eq 0 ]; then echo "  RESULT: PASS"; else echo "  RESULT: FAIL"; fi
}

main() {
    [ "$(id -u)" -eq 0 ] ||
        warn "not root: apt-get and the integration tests (network namespaces) need root"
    phase_deps
    if phase_build; then
        phase_suite "$@"
        check_leftovers
        # A ctest selection given on the command line means "just these".
        if [ $# -eq 0 ]; then phase_sanitize; phase_tsan; fi
    fi
    print_summary
    exit "$FAILED"
}

main "$@"
