#!/bin/sh
# bench/report.sh ROWS NOTES OUTDIR: the results page of one run of the
# suite. From the rows (bench/lib.sh) and the notes of the run it writes, in
# OUTDIR, <UTC date>-<host>.md (the machine, the table, the targets, the
# notes), the raw rows beside it (.tsv) and a chart (.svg, with gnuplot when
# it is installed), and points latest.md, latest.tsv and latest.svg at them.
#
# Every figure is set beside a floor measured in the same run, and jobd's
# beside each peer's, as ratios: absolute times drift from run to run.
set -u

[ $# -eq 3 ] || {
	echo "usage: report.sh ROWS NOTES OUTDIR" >&2
	exit 2
}
rows=$1 notes=$2 out=$3
mkdir -p "$out" || exit 1

stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
host=$(hostname 2>/dev/null || echo host)
base=$out/$stamp-$host
cp "$rows" "$base.tsv" && chmod 644 "$base.tsv" || exit 1

cpu=$(awk -F ': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mode=full
[ "${BENCH_QUICK:-0}" = 1 ] && mode=quick
[ "${BENCH_SMOKE:-0}" = 1 ] && mode=smoke

{
	echo "# jobd benchmarks: $stamp on $host"
	echo
	echo "Made by \`bench/run\` ($mode); raw rows: \`${base##*/}.tsv\`;" \
	    "chart: \`${base##*/}.svg\`. bench/README.md says what each" \
	    "benchmark does."
	echo
	echo "| machine | |"
	echo "| --- | --- |"
	echo "| CPUs (nproc) | $(nproc) |"
	echo "| CPU | ${cpu:-unknown} |"
	echo "| kernel | $(uname -r) |"
	echo "| Debian | $(cat /etc/debian_version 2>/dev/null || echo -) |"
	echo "| load average (1, 5, 15 min) at the end | $(cut -d ' ' -f 1-3 /proc/loadavg) |"
	[ -n "${BENCH_LOAD_START:-}" ] &&
	    echo "| load average at the start | $BENCH_LOAD_START |"
	echo "| tsp | $(dpkg-query -W -f '${Version}' task-spooler 2>/dev/null || echo not installed) |"
	echo "| nq | $(dpkg-query -W -f '${Version}' nq 2>/dev/null || echo not installed) |"
	echo
} >"$base.md"

# The table and the targets, from the rows.
awk -F '\t' '
function fmt(v, unit) {
	if (v == "")
		return "-"
	if (unit == "us")
		return sprintf("%.2f ms", v / 1000)
	if (unit == "jobs/s" || unit == "per_s")
		return sprintf(v < 100 ? "%.1f/s" : "%.0f/s", v)
	return v " " unit
}
function ratio(a, b) {
	return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f×", a / b)
}
function med(s, n, sys) {
	return ((s SUBSEP n SUBSEP sys) in M) ? M[s, n, sys] : ""
}
# A target line: what, the figure, the bound, and whether it is met.
function target(what, fig, bound, ok) {
	T[++nt] = sprintf("| %s | %s | %s | %s |", what, fig, bound,
	    fig == "-" ? "not measured" : (ok ? "yes" : "**no**"))
}
{
	key = $1 SUBSEP $2 SUBSEP $3
	if (!(key in M))
		order[++n] = key
	M[key] = $5; P90[key] = $6; MIN[key] = $7; MAX[key] = $8
	UNIT[key] = $4; RUNS[key] = $9
}
END {
	exec = med("floor", "exec_noop", "floor")
	fe1 = med("floor", "forkexec_true_1", "floor")
	fe2 = med("floor", "forkexec_true_2", "floor")
	startfloor = (exec != "" && fe1 != "") ? exec + fe1 : ""
	rate2 = (fe2 != "" && fe2 > 0) ? 1e6 / fe2 : ""

	print "## Results"
	print ""
	print "Median and p90 over the runs; spread = (max − min) / median." \
	    " × floor: the median over the floor of that benchmark" \
	    " measured in this run (for rates, the rate over the floor" \
	    " rate); × tsp, × nq: jobd'"'"'s median over the peer'"'"'s (for" \
	    " times below 1 is faster, for rates above 1 is faster)."
	print ""
	print "| section | benchmark | system | median | p90 | spread | runs" \
	    " | × floor | × tsp | × nq |"
	print "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for (i = 1; i <= n; i++) {
		split(order[i], k, SUBSEP)
		s = k[1]; b = k[2]; sys = k[3]; key = order[i]
		u = UNIT[key]; m = M[key]
		floor = ""
		if (sys != "floor") {
			if (s == "cli")
				floor = med(s, b, "floor")
			else if (s == "start")
				floor = startfloor
			else if (s == "e2e")
				floor = rate2
		}
		if (s == "start" && sys == "floor")
			floor = startfloor
		rt = rn = "-"
		if (sys == "jobd") {
			rt = ratio(m, med(s, b, "tsp"))
			rn = ratio(m, med(s, b, "nq"))
		}
		spread = (m > 0) ? sprintf("%.0f%%", 100 * (MAX[key] - MIN[key]) / m) : "-"
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
		    s, b, sys, fmt(m, u), fmt(P90[key], u), spread, RUNS[key],
		    ratio(m, floor), rt, rn
	}
	print ""
	if (rate2 != "")
		printf "The e2e floor rate is 1 / forkexec_true_2: %.0f jobs/s." \
		    " The submit-to-start floor is exec_noop + forkexec_true_1:" \
		    " %.2f ms.\n\n", rate2, startfloor / 1000

	# The targets of issue 5.
	m = med("cli", "submit", "jobd"); f = med("cli", "submit", "floor")
	target("`jobctl submit` median ≤ 1.5× the exec floor",
	    ratio(m, f), "≤ 1.50×", m != "" && f != "" && m <= 1.5 * f)
	m = med("cli", "status", "jobd"); f = med("cli", "status", "floor")
	target("`jobctl status` median ≤ 1.3× the exec floor",
	    ratio(m, f), "≤ 1.30×", m != "" && f != "" && m <= 1.3 * f)
	m = med("start", "submit_to_start", "jobd")
	target("submit-to-start median ≤ 1.5× (exec_noop + forkexec_true_1)",
	    ratio(m, startfloor), "≤ 1.50×",
	    m != "" && startfloor != "" && m <= 1.5 * startfloor)
	m = med("e2e", "b_one_call", "jobd")
	target("end to end (b), one call: ≥ 60% of the forkexec_true_2 rate",
	    ratio(m, rate2), "≥ 0.60×", m != "" && rate2 != "" && m >= 0.6 * rate2)
	m = med("e2e", "a_call_per_job", "jobd")
	f = med("e2e", "a_call_per_job", "tsp")
	target("end to end (a), a call per job: ≥ 3× tsp'"'"'s rate",
	    ratio(m, f), "≥ 3.00×", m != "" && f != "" && m >= 3 * f)
	m = med("ingest", "conns_64", "jobd")
	target("durable ingest, 64 connections: ≥ 20,000 acked submits/s",
	    fmt(m, "per_s"), "≥ 20000/s", m != "" && m >= 20000)

	# Scale: the figures at the largest N of the run against empty.
	for (i = 1; i <= n; i++) {
		split(order[i], k, SUBSEP)
		if (k[1] == "scale" && match(k[2], /^rss_[0-9]+$/) &&
		    substr(k[2], 5) + 0 > big)
			big = substr(k[2], 5) + 0
	}
	at = big ? " at " big " queued" : ""
	m = med("scale", "rss_" big, "jobd")
	r = med("scale", "rss_after_runs_" big, "jobd")
	if (r > m)
		m = r
	target("RSS" at " (after the fill and after the CLI runs) ≤ 32 MiB",
	    fmt(m, "MiB"), "≤ 32 MiB", m != "" && m <= 32)
	m = med("scale", "status_" big, "jobd")
	f = med("scale", "status_empty", "jobd")
	target("`jobctl status`" at " within 1.2× of empty",
	    ratio(m, f), "≤ 1.20×", m != "" && f != "" && m <= 1.2 * f)
	m = med("scale", "submit_" big, "jobd")
	f = med("scale", "submit_empty", "jobd")
	target("`jobctl submit`" at " within 1.2× of empty",
	    ratio(m, f), "≤ 1.20×", m != "" && f != "" && m <= 1.2 * f)
	m = med("scale", "list_" big, "jobd")
	target("`jobctl list --limit 50`" at " < 10 ms",
	    fmt(m, "us"), "< 10 ms", m != "" && m < 10000)
	m = med("scale", "ready_" big, "jobd")
	target("jobd ready" at " < 1 s", fmt(m, "us"), "< 1000 ms",
	    m != "" && m < 1e6)
	m = med("scale", "db_bytes_per_job_" big, "jobd")
	target("database per job" at " ≤ 1 KiB", fmt(m, "bytes"),
	    "≤ 1024 bytes", m != "" && m <= 1024)

	print "## Targets"
	print ""
	if (big && big != 1000000)
		print "The scale figures of this run are at " big \
		    " queued jobs, not the 1,000,000 of the target.\n"
	print "| target | figure | bound | met |"
	print "| --- | --- | --- | --- |"
	for (i = 1; i <= nt; i++)
		print T[i]
	print ""
}' "$rows" >>"$base.md"

{
	echo "## Notes"
	echo
	if [ -s "$notes" ]; then
		sed 's/^/- /' "$notes"
	else
		echo "- none"
	fi
} >>"$base.md"

# The chart: CLI latency, submit-to-start and end to end, one panel each.
if command -v gnuplot >/dev/null 2>&1; then
	d=$(mktemp -d "${TMPDIR:-/tmp}/bench-report.XXXXXX") || exit 1
	# Columns: label, floor, jobd, tsp, nq ("-" where there is none).
	awk -F '\t' -v d="$d" '
	{ M[$1, $2, $3] = $5 }
	function v(s, n, sys, scale) {
		return ((s, n, sys) in M) ? M[s, n, sys] / scale : "-"
	}
	END {
		f = d "/cli.dat"
		split("submit status list", names, " ")
		for (i = 1; i <= 3; i++)
			printf "%s %s %s %s %s\n", names[i],
			    v("cli", names[i], "floor", 1000),
			    v("cli", names[i], "jobd", 1000),
			    v("cli", names[i], "tsp", 1000),
			    v("cli", names[i], "nq", 1000) >f
		fe1 = M["floor", "forkexec_true_1", "floor"]
		ex = M["floor", "exec_noop", "floor"]
		printf "submit-to-start %s %s %s %s\n",
		    (ex != "" && fe1 != "") ? (ex + fe1) / 1000 : "-",
		    v("start", "submit_to_start", "jobd", 1000),
		    v("start", "submit_to_start", "tsp", 1000),
		    v("start", "submit_to_start", "nq", 1000) >(d "/start.dat")
		fe2 = M["floor", "forkexec_true_2", "floor"]
		printf "\"(a) a call per job\" - %s %s %s\n",
		    v("e2e", "a_call_per_job", "jobd", 1),
		    v("e2e", "a_call_per_job", "tsp", 1),
		    v("e2e", "a_call_per_job", "nq", 1) >(d "/e2e.dat")
		printf "\"(b) one call\" %s %s - -\n",
		    (fe2 != "" && fe2 > 0) ? 1e6 / fe2 : "-",
		    v("e2e", "b_one_call", "jobd", 1) >(d "/e2e.dat")
	}' "$rows"
	gnuplot >"$d/gnuplot.log" 2>&1 <<EOF
set terminal svg size 1200,460 dynamic font "sans,11" background "white"
set output "$base.svg"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key below
set yrange [0:*]
set multiplot layout 1,3 title "jobd against tsp and nq, $host, $stamp ($mode)"
set title "CLI latency (median, ms; lower is better)"
plot "$d/cli.dat" using 2:xtic(1) title "floor (exec)" lc rgb "#999999", \
     "" using 3 title "jobd" lc rgb "#1f77b4", \
     "" using 4 title "tsp" lc rgb "#ff7f0e", \
     "" using 5 title "nq" lc rgb "#2ca02c"
set title "Submit-to-start (median, ms; lower is better)"
plot "$d/start.dat" using 2:xtic(1) title "floor (exec + fork/exec)" lc rgb "#999999", \
     "" using 3 title "jobd" lc rgb "#1f77b4", \
     "" using 4 title "tsp" lc rgb "#ff7f0e", \
     "" using 5 title "nq" lc rgb "#2ca02c"
set title "End to end (median jobs/s; higher is better)"
plot "$d/e2e.dat" using 2:xtic(1) title "floor (fork/exec, 2 at once)" lc rgb "#999999", \
     "" using 3 title "jobd" lc rgb "#1f77b4", \
     "" using 4 title "tsp" lc rgb "#ff7f0e", \
     "" using 5 title "nq (one at a time)" lc rgb "#2ca02c"
unset multiplot
EOF
	rc=$?
	if [ $rc != 0 ]; then
		cat "$d/gnuplot.log" >&2
		echo "report.sh: gnuplot failed: no chart" >&2
	fi
	rm -rf "$d"
	[ $rc = 0 ] || exit 1
	ln -sf "${base##*/}.svg" "$out/latest.svg"
else
	echo "- no chart: gnuplot is not installed (apt-get install gnuplot-nox)" \
	    >>"$base.md"
fi
ln -sf "${base##*/}.md" "$out/latest.md"
ln -sf "${base##*/}.tsv" "$out/latest.tsv"
echo "$base.md"
