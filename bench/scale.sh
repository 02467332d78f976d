#!/bin/sh
# Scale (issue 5): fill the queue to N jobs (1,000,000; the scheduler
# paused), then measure what a big queue costs, each figure first against
# an (almost) empty queue and then at N:
#
#   rss                jobd's resident memory (VmRSS), after the fill;
#   rss_after_runs     the same after the CLI runs below;
#   rss_peak           its peak (VmHWM) by then;
#   status, submit,    one whole jobctl process each, timed by bench-runs:
#   list               status of one job, submit -c true (durable),
#                      list --limit 50;
#   claim_start        from `jobctl queue resume default` (its fork) to the
#                      start of the job at the front of the queue (-p 1000),
#                      as the job itself stamps it;
#   ready, first_answer from starting jobd to "ready" on its --ready-fd,
#                      and to the end of its first successful jobctl ping
#                      (bench-runs --ready), over restarts;
#   rss_restarted      jobd's memory once restarted on the queue;
#   db_bytes_live,     jobd.db + jobd.db-wal while jobd runs, and after
#   db_bytes,          `jobctl shutdown` (a clean stop checkpoints the WAL);
#   db_bytes_per_job   the latter over N;
#   fill, fill_time    the fill itself: bench-ingest --count N --conns 64.
#
# The "empty" queue holds the few jobs the measures make (one for status,
# those of the submit runs). The fill's jobs are a typical shell command
# that does nothing (": make -C /src/project -j4 test"), with the same
# synthetic environment each (BENCH_ENV_BYTES, default 2048 bytes), so
# the few of them that claim_start lets run harm nothing.
#
# Input (set by bench/run): BENCH_BIN, BENCH_TMP, BENCH_QUICK=1 (N 100,000),
# BENCH_SMOKE=1 (N 2,000); BENCH_SCALE_N overrides N.
# Output: TSV rows "scale FIGURE_empty|FIGURE_N jobd UNIT median p90 min max
# runs"; progress on stderr.
set -eu

: "${BENCH_BIN:?BENCH_BIN: the folder with jobd, jobctl and bench-*}"
: "${BENCH_TMP:?BENCH_TMP: a private scratch folder}"
n=1000000
runs=100
restarts=5
claims=5
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	n=100000
	runs=40
fi
if [ "${BENCH_SMOKE:-0}" = 1 ]; then
	n=2000
	runs=5
	restarts=3
	claims=3
fi
n=${BENCH_SCALE_N:-$n}
env_bytes=${BENCH_ENV_BYTES:-2048}
command=': make -C /src/project -j4 test'

dir=$BENCH_TMP/scale
sock=$dir/jobd.sock
state=$dir/state
pid=  # jobd
bpid= # bench-runs --ready, jobd's parent

# jobd's own parent, bench-runs, reaps it: stop jobd, then wait for that.
stop_jobd() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		pid=
	fi
	if [ -n "$bpid" ]; then
		wait "$bpid" 2>/dev/null || true
		bpid=
	fi
}
# Stopped while jobd starts, before its pid is known: bench-runs passes a
# SIGTERM on to the jobd it started.
cleanup() {
	if [ -z "$pid" ] && [ -n "$bpid" ]; then
		kill -TERM "$bpid" 2>/dev/null || true
	fi
	stop_jobd
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() {
	printf 'scale: %s\n' "$*" >&2
}

ctl() {
	"$BENCH_BIN/jobctl" --socket "$sock" "$@"
}

# stats: from bench/lib.sh.
. "${BENCH_SRC:-$(dirname "$0")}/lib.sh"

# row FIGURE UNIT: a row of the numbers on stdin.
row() {
	printf 'scale\t%s\tjobd\t%s\t%s\n' "$1" "$2" "$(stats)"
}

# one FIGURE UNIT VALUE: a row of a single measurement.
one() {
	printf 'scale\t%s\tjobd\t%s\t%s\t%s\t%s\t%s\t1\n' "$1" "$2" "$3" "$3" \
	    "$3" "$3"
}

# Start jobd through bench-runs, which times it; appends the two times to
# $dir/ready and $dir/first_answer.
start_jobd() {
	rm -f "$dir/start.fifo"
	mkfifo "$dir/start.fifo"
	"$BENCH_BIN/bench-runs" --ready 3 -- \
	    "$BENCH_BIN/jobd" --socket "$sock" --state-dir "$state" \
	    --parallel 2 --ready-fd 3 -- \
	    "$BENCH_BIN/jobctl" --socket "$sock" ping \
	    >"$dir/start.fifo" 2>>"$dir/jobd.log" &
	bpid=$!
	line=
	read -r line <"$dir/start.fifo" || true
	read -r jpid ready_us answer_us <<-EOF
	$line
	EOF
	if [ -z "$answer_us" ]; then
		say "jobd did not start; the end of its log:"
		tail -n 20 "$dir/jobd.log" >&2
		exit 1
	fi
	pid=$jpid
	echo "$ready_us" >>"$dir/ready"
	echo "$answer_us" >>"$dir/first_answer"
}

# VmRSS or VmHWM of jobd, in MiB.
mem() {
	awk -v f="$1:" '$1 == f { printf "%.1f\n", $2 / 1024 }' \
	    "/proc/$pid/status"
}

db_bytes() {
	total=0
	for f in "$state/jobd.db" "$state/jobd.db-wal"; do
		if [ -f "$f" ]; then
			total=$((total + $(wc -c <"$f")))
		fi
	done
	echo "$total"
}

# cli LABEL ID: time status ID, list --limit 50 and submit -c true.
cli() {
	say "$runs runs each of jobctl status, list --limit 50, submit ($1)"
	"$BENCH_BIN/bench-runs" --runs "$runs" -- \
	    "$BENCH_BIN/jobctl" --socket "$sock" status "$2" |
	    row "status_$1" us
	"$BENCH_BIN/bench-runs" --runs "$runs" -- \
	    "$BENCH_BIN/jobctl" --socket "$sock" list --limit 50 |
	    row "list_$1" us
	"$BENCH_BIN/bench-runs" --runs "$runs" -- \
	    "$BENCH_BIN/jobctl" --socket "$sock" submit -c true |
	    row "submit_$1" us
}

# claim LABEL: from resume to the start of the job at the front, $claims
# times; the queue is paused before and after.
claim() {
	label=$1
	say "$claims claims and starts of a job at the front ($label)"
	rm -f "$dir/claim"
	i=0
	while [ "$i" -lt "$claims" ]; do
		rm -f "$dir/stamp"
		ctl submit -p 1000 -- "$BENCH_BIN/bench-runs" --stamp \
		    "$dir/stamp" >/dev/null
		resumed=$("$BENCH_BIN/bench-runs" --wall -- \
		    "$BENCH_BIN/jobctl" --socket "$sock" queue resume default |
		    cut -f 1)
		if [ -z "$resumed" ]; then
			say "jobctl queue resume failed"
			exit 1
		fi
		t=0
		while [ ! -s "$dir/stamp" ] && [ "$t" -lt 6000 ]; do
			sleep 0.01
			t=$((t + 1))
		done
		ctl queue pause default >/dev/null
		if [ ! -s "$dir/stamp" ]; then
			say "the job at the front never started"
			exit 1
		fi
		echo $((($(cat "$dir/stamp") - resumed) / 1000)) >>"$dir/claim"
		i=$((i + 1))
	done
	row "claim_start_$label" us <"$dir/claim"
}

# restart LABEL: stop jobd and start it again, $restarts times.
restart() {
	say "$restarts restarts ($1)"
	rm -f "$dir/ready" "$dir/first_answer"
	i=0
	while [ "$i" -lt "$restarts" ]; do
		stop_jobd
		start_jobd
		i=$((i + 1))
	done
	# The pause is kept in the store; say it again all the same.
	ctl queue pause default >/dev/null
	row "ready_$1" us <"$dir/ready"
	row "first_answer_$1" us <"$dir/first_answer"
	one "rss_restarted_$1" MiB "$(mem VmRSS)"
}

rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
say "jobd --parallel 2 in $dir; log in $dir/jobd.log; N = $n"
start_jobd
ctl queue pause default >/dev/null
id=$(ctl submit -c true)

# The empty queue.
one rss_empty MiB "$(mem VmRSS)"
claim empty
cli empty "$id"
one rss_after_runs_empty MiB "$(mem VmRSS)"
one rss_peak_empty MiB "$(mem VmHWM)"
one db_bytes_live_empty bytes "$(db_bytes)"
restart empty

# The fill.
say "filling the queue with $n jobs (64 connections)"
first=$(ctl submit -c true)
out=$("$BENCH_BIN/bench-ingest" --socket "$sock" --conns 64 --count "$n" \
    --env-bytes "$env_bytes" --command "$command")
read -r acked errors secs rate <<EOF
$out
EOF
say "fill: $acked acked, $errors errors in $secs s: $rate per s"
if [ "$errors" != 0 ]; then
	say "WARNING: jobd refused or dropped $errors submits of the fill"
fi
one "fill_$n" per_s "$rate"
one "fill_time_$n" s "$secs"

# The full queue.
one "rss_$n" MiB "$(mem VmRSS)"
cli "$n" $((first + n / 2))
one "rss_after_runs_$n" MiB "$(mem VmRSS)"
one "rss_peak_$n" MiB "$(mem VmHWM)"
claim "$n"
one "db_bytes_live_$n" bytes "$(db_bytes)"
say "jobctl shutdown"
ctl shutdown >/dev/null
wait "$bpid" || true
pid=
bpid=
if [ -s "$state/jobd.db-wal" ]; then
	say "note: jobd.db-wal is not empty after the clean stop"
fi
bytes=$(db_bytes)
one "db_bytes_$n" bytes "$bytes"
one "db_bytes_per_job_$n" bytes $((bytes / n))
restart "$n"
stop_jobd

if grep -qi 'warn\|error\|slow' "$dir/jobd.log"; then
	say "jobd logged warnings:"
	grep -i 'warn\|error\|slow' "$dir/jobd.log" | head -n 20 >&2
fi
