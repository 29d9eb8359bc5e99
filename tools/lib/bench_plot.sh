# shellcheck shell=bash
# tools/bench.sh --plot: each side-by-side table of a run as an SVG bar
# chart (gnuplot): per metric, side A at 1.0 and side B at its ratio B/A,
# each bar labelled with its median and unit. Sourced by tools/bench.sh;
# tools/bench.sh records the tables with bench_plot_header/bench_plot_row.
#
# A table file (BENCH_PLOT_DATA/TABLE.tsv): a first line
#   # TITLE<TAB>NAME_A<TAB>NAME_B
# then one tab-separated row per metric with data:
#   METRIC UNIT MEDIAN_A MEDIAN_B RATIO GOAL

# bench_plot_header TABLE TITLE NAME_A NAME_B: starts TABLE's file.
bench_plot_header() {
    [ -n "${BENCH_PLOT_DATA:-}" ] || return 0
    mkdir -p "$BENCH_PLOT_DATA"
    printf '# %s\t%s\t%s\n' "$2" "$3" "$4" >"$BENCH_PLOT_DATA/$1.tsv"
}

# bench_plot_row TABLE METRIC UNIT A B GOAL: one row, when both sides gave
# a positive median (a NO DATA row has nothing to draw).
bench_plot_row() {
    [ -n "${BENCH_PLOT_DATA:-}" ] && [ -f "$BENCH_PLOT_DATA/$1.tsv" ] || return 0
    awk -v m="$2" -v u="$3" -v a="$4" -v b="$5" -v g="$6" 'BEGIN {
        if (a == "" || b == "" || a + 0 <= 0 || b + 0 < 0) exit
        printf "%s\t%s\t%s\t%s\t%.4f\t%s\n", m, u, a, b, b / a, g }' >>"$BENCH_PLOT_DATA/$1.tsv"
}

# bench_plot_svg TSV SVG: draws one table; false with a line saying why.
bench_plot_svg() {
    local tsv=$1 svg=$2 title name_a name_b
    command -v gnuplot >/dev/null || { warn "--plot: gnuplot not installed (tools/deps.sh)"; return 1; }
    [ "$(grep -vc '^#' "$tsv")" -gt 0 ] || { warn "--plot: $tsv has no rows with data"; return 1; }
    IFS=$'\t' read -r title name_a name_b < <(sed -n '1s/^# //p' "$tsv" | tr -d '"\\')
    gnuplot -e "tsv='$tsv'; svg='$svg'; ttl=\"$title\"; na=\"$name_a\"; nb=\"$name_b\"" \
        "$NSTACK_SRC/tools/lib/bench_plot.gp" || { warn "--plot: gnuplot failed on $tsv"; return 1; }
}

# bench_plot_all OUTDIR: an SVG per recorded table, OUTDIR/TABLE.svg.
bench_plot_all() {
    local out=$1 tsv
    mkdir -p "$out" || return 1
    for tsv in "$BENCH_PLOT_DATA"/*.tsv; do
        [ -e "$tsv" ] || continue
        bench_plot_svg "$tsv" "$out/$(basename "$tsv" .tsv).svg" &&
            echo "plot: $out/$(basename "$tsv" .tsv).svg"
    done
}
