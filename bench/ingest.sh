#!/bin/sh
# Durable ingest (issue 5): how many submits per second jobd acknowledges,
# each committed to disk before its reply, from 1, 8 and 64 connections
# with one submit in flight on each (bench-ingest). The queue is paused, so
# nothing runs and the figure is ingest alone.
#
# Input (set by bench/run): BENCH_BIN, BENCH_TMP, BENCH_QUICK=1, BENCH_SMOKE=1;
# BENCH_ENV_BYTES (default 2048), the size of each submit's environment:
# synthetic, so that the figure does not depend on who runs it.
# Output: TSV rows "ingest conns_N jobd per_s median p90 min max runs", over
# the rounds; progress on stderr.
set -eu

: "${BENCH_BIN:?BENCH_BIN: the folder with jobd, jobctl and bench-*}"
: "${BENCH_TMP:?BENCH_TMP: a private scratch folder}"
seconds=10
rounds=3
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	seconds=3
fi
if [ "${BENCH_SMOKE:-0}" = 1 ]; then
	seconds=1
	rounds=1
fi
env_bytes=${BENCH_ENV_BYTES:-2048}
conns_list="1 8 64"

dir=$BENCH_TMP/ingest
sock=$dir/jobd.sock
pid=

cleanup() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() {
	printf 'ingest: %s\n' "$*" >&2
}

# stats: from bench/lib.sh.
. "${BENCH_SRC:-$(dirname "$0")}/lib.sh"

rm -rf "$dir"
mkdir -p "$dir"
mkfifo "$dir/ready"
say "jobd --parallel 2 in $dir; log in $dir/jobd.log"
"$BENCH_BIN/jobd" --socket "$sock" --state-dir "$dir/state" --parallel 2 \
    --ready-fd 3 3>"$dir/ready" 2>>"$dir/jobd.log" &
pid=$!
line=
read -r line <"$dir/ready" || true
if [ "$line" != ready ]; then
	say "jobd did not start; its log:"
	cat "$dir/jobd.log" >&2
	exit 1
fi
"$BENCH_BIN/jobctl" --socket "$sock" queue pause default >/dev/null
say "queue default paused: nothing runs"
say "no peer figure: tsp and nq have no durable ingest protocol to load"
say "$rounds round(s) of ${seconds} s (after a 1 s warm-up) for each of" \
    "$conns_list connections, environment of $env_bytes bytes"

# Rounds go through the connection counts in turn, so that the queue's
# growth weighs on each alike.
round=1
while [ "$round" -le "$rounds" ]; do
	for conns in $conns_list; do
		out=$("$BENCH_BIN/bench-ingest" --socket "$sock" \
		    --conns "$conns" --seconds "$seconds" \
		    --env-bytes "$env_bytes")
		read -r acked errors _ rate <<-EOF
		$out
		EOF
		say "round $round, $conns connection(s): $acked acked," \
		    "$errors errors, $rate per s"
		if [ "$errors" != 0 ]; then
			say "WARNING: jobd refused or dropped $errors submits"
		fi
		echo "$rate" >>"$dir/conns_$conns"
	done
	round=$((round + 1))
done

for conns in $conns_list; do
	printf 'ingest\tconns_%s\tjobd\tper_s\t%s\n' "$conns" \
	    "$(stats <"$dir/conns_$conns")"
done
last=$("$BENCH_BIN/jobctl" --socket "$sock" --json list --limit 1 |
    sed -n 's/^ *"id": *\([0-9]*\).*/\1/p' | head -n 1)
say "jobs queued at the end: ${last:-?} (the newest id)"
cleanup
if grep -qi 'warn\|error' "$dir/jobd.log"; then
	say "jobd logged warnings:"
	grep -i 'warn\|error' "$dir/jobd.log" | head -n 20 >&2
fi
