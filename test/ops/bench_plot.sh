#!/bin/bash
# tools/bench.sh --plot: the rows bench.sh records become an SVG bar chart
# (gnuplot) per table: well-formed XML naming every metric with data, its
# medians and both sides, one bar per side and metric, nothing for a NO DATA
# row; then a real one-round run (preload, loopback) writes its SVG.
set -u
WORK=$(mktemp -d /tmp/nstack-plot-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
command -v gnuplot >/dev/null || fail "gnuplot missing (tools/deps.sh: gnuplot-nox)"

# shellcheck source=../../tools/lib/common.sh
. "$NSTACK_SRC/tools/lib/common.sh"
. "$NSTACK_SRC/tools/lib/bench_plot.sh"
BENCH_PLOT_DATA=$WORK/data
bench_plot_header t1 "kernel vs rsocket, median of 2" kernel rsocket
bench_plot_row t1 sockperf_latency usec 30.5 20.1 "-"
bench_plot_row t1 iperf3_throughput Gbit/s 5.2 7.9 "-"
bench_plot_row t1 redis_rps req/s 41000 "" "-"          # NO DATA: no bars
bench_plot_all "$WORK/svg" >"$WORK/out" || fail "bench_plot_all"
grep -qx "plot: $WORK/svg/t1.svg" "$WORK/out" || fail "no plot line: $(cat "$WORK/out")"
python3 - "$WORK/svg/t1.svg" <<'PY' || fail "synthetic table's SVG"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
text = [t.strip() for t in root.itertext() if t.strip()]
for want in ("sockperf_latency", "iperf3_throughput", "30.5 usec", "20.1 usec",
             "5.2 Gbit/s", "7.9 Gbit/s", "kernel", "rsocket",
             "kernel vs rsocket, median of 2", "rsocket / kernel (ratio of medians)"):
    assert want in text, f"{want!r} not drawn: {text}"
assert "redis_rps" not in text, "a NO DATA row was drawn"
svg = open(sys.argv[1]).read()
a, b = svg.count("fill = 'rgb( 68, 119, 170)'"), svg.count("fill = 'rgb(238, 102, 119)'")
assert a == 3 and b == 3, f"bars: {a} A, {b} B (expected 2 metrics + legend each)"
print("ok: synthetic table drawn")
PY

# A real run: one round of 1 s per side, plain vs preload on loopback.
BENCH_NO_BUILD=1 BENCH_PLOT_DIR=$WORK/real timeout 400 \
    bash "$NSTACK_SRC/tools/bench.sh" -r 1 -s 1 --plot preload >"$WORK/bench.log" 2>&1 ||
    { cat "$WORK/bench.log"; fail "tools/bench.sh --plot preload"; }
grep -qx "plot: $WORK/real/preload.svg" "$WORK/bench.log" || { cat "$WORK/bench.log"; fail "no plot line"; }
python3 - "$WORK/real/preload.svg" "$WORK/bench.log" <<'PY' || { cat "$WORK/bench.log"; fail "real run's SVG"; }
import re, sys, xml.etree.ElementTree as ET
text = [t.strip() for t in ET.parse(sys.argv[1]).getroot().itertext() if t.strip()]
rows = [l.split()[0] for l in open(sys.argv[2])
        if re.match(r"^\w+ +\S+ +[0-9.]+ +[0-9.]+ +[0-9.]+ ", l)]
assert rows, "the table has no rows with data"
for m in rows:
    assert m in text, f"{m} (a row with data) not drawn"
assert "plain" in text and "preload" in text, text
print(f"ok: real run drew {len(rows)} metrics: {' '.join(rows)}")
PY
echo "ops.bench_plot: ok"
