#!/bin/sh
# plot.sh - chart the ratios of a `bench --json` run.
#
#   bench/plot.sh [RESULTS.json|-] [CHART.png]
#
# Reads the JSON document bench prints with --json (standard input when the
# first argument is - or missing) and draws one bar per ratio, grouped by
# workload, on a logarithmic axis: green where the goal is met, red where it
# is missed, grey where there is none; the goal itself is the black mark
# across the bar.  Needs jq and gnuplot (with the pngcairo terminal).
set -eu

in=${1:--}
out=${2:-bench.png}

for tool in jq gnuplot; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "plot.sh: $tool is needed (Debian: apt-get install jq gnuplot-nox)" >&2
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-plot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

if [ "$in" = - ]; then
	cat >"$tmp/in.json"
else
	cp "$in" "$tmp/in.json"
fi

jq -e '.workloads' "$tmp/in.json" >/dev/null 2>&1 || {
	echo "plot.sh: $in is not the JSON output of bench --json" >&2
	exit 1
}

# One line per ratio: group, workload id, ratio name, kind, contender,
# baseline, value, goal (0: none), met (met/missed/none).
jq -r '
  .workloads | to_entries[] | .key as $g | .value as $w
  | select($w.ratios != null) | $w.ratios[]
  | [$g, $w.id, .name, .kind, .contender, .baseline, .value, (.goal // 0),
     (if .met == null then "none" elif .met then "met" else "missed" end)]
  | @tsv' "$tmp/in.json" >"$tmp/ratios.tsv"

if [ ! -s "$tmp/ratios.tsv" ]; then
	echo "plot.sh: no ratios in $in (did every workload fail?)" >&2
	exit 1
fi

# The bars: x position (a gap between workloads), value, goal, colour,
# label.  Labels name the workload and what it is compared with.
awk -F '\t' '
function short(id) {
	if (id == "seq64") return "64 B reads"
	if (id == "seq1m") return "1 MiB reads"
	if (id == "rand4k") return "random 4 KiB reads"
	if (id == "overwrite4k") return "random 4 KiB overwrites"
	if (id == "append64") return "64 B appends"
	if (id == "append1m") return "1 MiB appends"
	if (id == "smallfiles") return "small files"
	if (id == "growth") return "growth"
	if (id == "sync") return "sync"
	if (id == "threads") return "readat"
	return id
}
BEGIN { x = 0; last = -1 }
{
	if (last != -1 && $1 != last) x += 0.6
	last = $1
	if ($2 == "threads")
		label = "readat: 2 threads vs 1"
	else if ($4 == "cost")
		label = short($2) " cost: " $5 " vs " $6
	else
		label = short($2) " vs " $3
	colour = $9 == "met" ? 3050327 : $9 == "missed" ? 12597547 : 9671571
	printf "%.2f\t%s\t%s\t%d\t%s\n", x, $7, $8, colour, label
	x += 1
}' "$tmp/ratios.tsv" >"$tmp/bars.dat"

# The axis: a power of two below the smallest and above the largest value or
# goal.
range=$(awk -F '\t' '
BEGIN { lo = 1; hi = 1 }
{ for (i = 2; i <= 3; i++) if ($i > 0) { if ($i < lo) lo = $i; if ($i > hi) hi = $i } }
END {
	a = 1; while (a > lo / 1.3) a /= 2
	b = 1; while (b < hi * 1.3) b *= 2
	printf "%g %g", a, b
}' "$tmp/bars.dat")
xmax=$(awk -F '\t' '{ x = $1 } END { print x + 0.7 }' "$tmp/bars.dat")
ymin=${range% *}
ymax=${range#* }

title=$(jq -r '
  "libmmapfile " + .library_version + " benchmark: median of " + (.config.rounds | tostring)
  + " rounds, contenders alternated"' "$tmp/in.json")
subtitle=$(jq -r '
  .machine | .cpu + ", " + (.cores | tostring) + " cores, kernel " + .kernel + ", "
  + .fs_type + ", " + .date' "$tmp/in.json" | tr -d '"')

cat >"$tmp/plot.gp" <<EOF
set terminal pngcairo size 1500,820 font "DejaVu Sans,12" enhanced
set output "$tmp/out.png"
set title "$title\n$subtitle" noenhanced font ",13"
set datafile separator "\t"
set logscale y 2
set yrange [$ymin:$ymax]
set ytics ("1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "1.5" 1.5, "2" 2, "3" 3, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64)
set ylabel "ratio (speedup: the other's time / libmmapfile's; cost: large / small)"
set grid ytics lc rgb "#dddddd"
set xtics rotate by 35 right nomirror noenhanced font ",11"
set xrange [-0.7:$xmax]
set bmargin 11
set rmargin 3
set key inside top center horizontal opaque box samplen 2.5 width 1
set style fill solid 0.9 border lc rgb "#333333"
set label 1 "growth, sync: cost ratios, lower is better" at graph 0.99, graph 0.86 right font ",10"
plot 1 with lines dt 2 lw 1.5 lc rgb "#555555" title "1.0 (parity)", \\
     "$tmp/bars.dat" using 1:(sqrt($ymin*1.0)):(\$1-0.4):(\$1+0.4):($ymin):2:4:xtic(5) \\
         with boxxyerrorbars lc rgb variable notitle, \\
     "" using (\$1-0.5):(\$3 > 0 ? \$3 : 1/0):(1.0):(0) with vectors nohead lw 4 lc rgb "black" title "goal", \\
     "" using 1:($ymin*1.15):(sprintf("%#.3g", \$2)) with labels font ",11:Bold" tc rgb "white" notitle, \\
     keyentry with boxes fc rgb "#2e8b57" title "goal met", \\
     keyentry with boxes fc rgb "#c0392b" title "goal missed", \\
     keyentry with boxes fc rgb "#939393" title "no goal"
EOF

gnuplot "$tmp/plot.gp"
mv "$tmp/out.png" "$out"
echo "plot.sh: wrote $out" >&2
