#!/usr/bin/env bash
# The man pages render with man -l and groff without a warning, have a
# NAME line whatis can index, and nstack-run(1) documents every option
# `nstack-run --help` lists.
. "$(dirname "${BASH_SOURCE[0]}")/install_lib.sh"

pages=(nstack-run.1 nstack-route.1 nstack-stat.1 nstack-check.1 nstack.7)
for p in "${pages[@]}"; do
    f=$SRC/doc/man/$p
    [ -f "$f" ] || fail "doc/man/$p missing"
    LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" >"$SCRATCH/out" 2>"$SCRATCH/err" ||
        fail "$p: man -l failed"
    [ ! -s "$SCRATCH/err" ] || { cat "$SCRATCH/err"; fail "$p: man --warnings printed warnings"; }
    groff -man -ww -z "$f" 2>"$SCRATCH/err" || fail "$p: groff failed"
    [ ! -s "$SCRATCH/err" ] || { cat "$SCRATCH/err"; fail "$p: groff -ww printed warnings"; }
    name=${p%.*}
    grep -q "^NAME" "$SCRATCH/out" || fail "$p: no NAME section rendered"
    lexgrog "$f" | grep -q "\"$name - " || fail "$p: whatis cannot index the NAME line"
done
pass "${#pages[*]} pages render without warnings: ${pages[*]}"

# The options of nstack-run's usage are all in its manual.
src_run=$SRC/tools/nstack-run
opts=$("$src_run" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u)
[ -n "$opts" ] || fail "nstack-run --help lists no options"
manopts=$(MANWIDTH=200 man -l "$SRC/doc/man/nstack-run.1" 2>/dev/null)
for o in $opts; do
    grep -qe "$o" <<<"$manopts" || fail "nstack-run(1) does not document $o"
done
pass "nstack-run(1) documents $(wc -w <<<"$opts") options of nstack-run --help"

# The same for nstack-check(1) and nstack-check --help.
opts=$("${NSTACK_RELEASE:?}/bin/nstack-check" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u)
[ -n "$opts" ] || fail "nstack-check --help lists no options"
manopts=$(MANWIDTH=200 man -l "$SRC/doc/man/nstack-check.1" 2>/dev/null)
for o in $opts; do
    grep -qe "$o" <<<"$manopts" || fail "nstack-check(1) does not document $o"
done
pass "nstack-check(1) documents $(wc -w <<<"$opts") options of nstack-check --help"
