# bench_plot.gp - one side-by-side table of tools/bench.sh as an SVG
# (tools/lib/bench_plot.sh). Variables: tsv, svg, ttl, na, nb.
# Columns: metric unit median_A median_B ratio goal; side A is drawn at 1.0,
# side B at its ratio, each bar labelled with its median.
set terminal svg size 860,460 dynamic noenhanced font "sans,12" background rgb "white"
set output svg
set datafile separator "\t"
set title ttl
set style fill solid 0.85 border -1
set boxwidth 0.34
set ylabel sprintf("%s / %s (ratio of medians)", nb, na)
set yrange [0:*]
set offsets 0.5, 0.5, 0.1, 0
set grid ytics
set xtics nomirror
set key below horizontal
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "gray40" front
# Medians upright inside the bars (labels above them would collide).
num(v) = v >= 1000 ? sprintf("%.0f", v) : sprintf("%.4g", v)
lbl(v, u) = sprintf("%s %s", num(v), u)
plot tsv using ($0 - 0.18):(1):xtic(stringcolumn(1)) with boxes lc rgb "#4477aa" title na, \
     tsv using ($0 + 0.18):5 with boxes lc rgb "#ee6677" title nb, \
     tsv using ($0 - 0.18):(0):(lbl($3, stringcolumn(2))) with labels rotate by 90 left offset 0, 0.5 font "sans,10" notitle, \
     tsv using ($0 + 0.18):(0):(lbl($4, stringcolumn(2))) with labels rotate by 90 left offset 0, 0.5 font "sans,10" notitle
