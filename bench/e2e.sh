#!/bin/sh
# bench/e2e.sh: end to end (issue 5, item 4). N `true` jobs, 2 running at
# once, from the first submit until the last job has ended:
#   (a) one client call per job: jobd (jobctl submit -- true), tsp (tsp
#       true, 2 slots) and nq (nq true: nq runs its jobs one after another,
#       its only model);
#   (b) all in one call: jobctl submit --stdin, one shell command per line
#       in one request and one transaction (jobd only: tsp and nq have no
#       such call). Skipped, with a note, while jobctl lacks --stdin.
# All the runs are interleaved round-robin by bench-cli (a whole run is one
# timed process: sh e2e.sh --one SYSTEM MODE N); between runs, untimed, the
# finished jobs are checked and cleared (--settle). Rows on stdout, in
# jobs/s: the p90 column is the rate that 90% of the runs reached, min and
# max the slowest and fastest run.
set -u
BENCH_SRC=${BENCH_SRC:-$(dirname "$0")}
BENCH_WORK=$BENCH_TMP/e2e
. "$BENCH_SRC/lib.sh"

# --- one timed run (a process of its own) -----------------------------

# jobd: wait for the last two jobs (2 run at once), then for whatever is
# still queued or running, until nothing is.
e2e_jobd_wait() {
	# shellcheck disable=SC2046
	$JOBCTL wait $(tail -n 2 "$ids") >/dev/null || exit 1
	while :; do
		left=$({
			$JOBCTL list --state queued --limit 1000
			$JOBCTL list --state running --limit 1000
		} | awk '$1 ~ /^[0-9]+$/ { print $1 }')
		[ -z "$left" ] && return 0
		# shellcheck disable=SC2086
		$JOBCTL wait $left >/dev/null || exit 1
	done
}

# tsp: the same with tsp -w, one job at a time.
e2e_tsp_wait() {
	tsp -w "$(tail -n 1 "$ids")" >/dev/null || exit 1
	while :; do
		left=$(tsp -l | awk 'NR > 1 && ($2 == "running" ||
		    $2 == "queued") { print $1 }')
		[ -z "$left" ] && return 0
		for id in $left; do
			tsp -w "$id" >/dev/null || exit 1
		done
	done
}

e2e_one() {
	system=$1 mode=$2 n=$3
	ids=$BENCH_WORK/$system.ids
	i=0
	case $system.$mode in
	jobd.a)
		while [ $i -lt "$n" ]; do
			$JOBCTL submit -- true || exit 1
			i=$((i + 1))
		done >"$ids"
		e2e_jobd_wait
		;;
	jobd.b)
		$JOBCTL submit --stdin <"$BENCH_WORK/lines" >"$ids" ||
		    exit 1
		e2e_jobd_wait
		;;
	tsp.a)
		while [ $i -lt "$n" ]; do
			tsp true || exit 1
			i=$((i + 1))
		done >"$ids"
		e2e_tsp_wait
		;;
	nq.a)
		while [ $i -lt "$n" ]; do
			nq true || exit 1
			i=$((i + 1))
		done >"$ids"
		# With no id, nq -w waits for every job of $NQDIR.
		nq -w || exit 1
		;;
	*)
		bench_die "no such run: $system $mode"
		;;
	esac
}

# Between runs, untimed: check that every job ran, then clear the list.
e2e_settle() {
	system=$1 n=$2
	ids=$BENCH_WORK/$system.ids
	got=$(wc -l <"$ids")
	[ "$got" -eq "$n" ] || bench_die "$system: $got ids for $n submits"
	case $system in
	jobd)
		bad=$({
			$JOBCTL list --state failed --limit 1
			$JOBCTL list --state lost --limit 1
		} | awk '$1 ~ /^[0-9]+$/')
		[ -z "$bad" ] || bench_die "jobd: a job did not succeed: $bad"
		;;
	tsp)
		bad=$(tsp -l | awk 'NR > 1 && $2 == "finished" && $4 != 0')
		[ -z "$bad" ] || bench_die "tsp: a job did not succeed: $bad"
		bench_tsp_clear
		;;
	nq)
		bad=$(grep -L 'exited with status 0' "$NQDIR"/,* | head -n 1)
		[ -z "$bad" ] || bench_die "nq: a job did not succeed: $bad"
		bench_nq_clear
		;;
	esac
}

case ${1:-} in
--one)
	e2e_one "$2" "$3" "$4"
	exit 0
	;;
--settle)
	e2e_settle "$2" "$3"
	exit 0
	;;
esac

# --- the benchmark ----------------------------------------------------

n=${BENCH_E2E_N:-$(bench_pick 10 1000 10000)}
runs=${BENCH_E2E_RUNS:-$(bench_pick 1 3 3)}
bench_note "e2e: $n jobs per run, $runs runs of each (full size: 10000)"

trap 'bench_stop_all' EXIT
trap 'exit 1' INT TERM HUP

bench_jobd_start 2
set -- jobd:a sh "$BENCH_SRC/e2e.sh" --one jobd a "$n"
settle="--settle jobd:a"
if "$BENCH_BIN/jobctl" submit --help 2>&1 | grep -q -- --stdin; then
	i=0
	while [ $i -lt "$n" ]; do
		echo true
		i=$((i + 1))
	done >"$BENCH_WORK/lines"
	set -- "$@" ::: jobd:b sh "$BENCH_SRC/e2e.sh" --one jobd b "$n"
	settle="$settle --settle jobd:b"
else
	bench_note "e2e: (b) skipped: this jobctl has no submit --stdin"
fi
if bench_peer tsp; then
	bench_tsp_start 2
	set -- "$@" ::: tsp:a sh "$BENCH_SRC/e2e.sh" --one tsp a "$n"
	settle="$settle --settle tsp:a"
	bench_note "e2e: tsp runs 2 at once (tsp -S 2); it keeps one client" \
	    "process per queued job and serves at most TS_MAXCONN (1000)" \
	    "connections: past that, a submit blocks until a job ends"
fi
# nq keeps a process per queued job, each waiting on the locks of all the
# earlier ones: its rate falls as its queue grows (about 8 jobs/s with
# 8000 waiting), and 10000 jobs would take it over an hour. It runs at most
# 1000 per run.
nq_n=$n
[ "$nq_n" -gt 1000 ] && nq_n=1000
if bench_peer nq; then
	bench_nq_start
	set -- "$@" ::: nq:a sh "$BENCH_SRC/e2e.sh" --one nq a "$nq_n"
	settle="$settle --settle nq:a"
	bench_note "e2e: nq runs its jobs one at a time, each after all" \
	    "earlier ones (its only model), so its runs are not 2 at once;" \
	    "$nq_n jobs per run (its rate falls as its queue grows)"
fi

# Each --settle takes the system's name (jobd:a -> jobd) and n.
settle_args=
for s in $settle; do
	case $s in
	--settle) settle_args="$settle_args $s" ;;
	nq:*) settle_args="$settle_args $s 'sh $BENCH_SRC/e2e.sh --settle nq $nq_n'" ;;
	*) settle_args="$settle_args $s 'sh $BENCH_SRC/e2e.sh --settle ${s%%:*} $n'" ;;
	esac
done
out=$BENCH_WORK/raw
eval "\"\$BENCH_BIN/bench-cli\" --runs $runs --warmup 0 --section e2e \
    --name jobs --timeout 3600 $settle_args -- \"\$@\"" >"$out" ||
    bench_die "end to end could not run"

# Times of whole runs (us) to rates (jobs/s); a slower time is a lower
# rate, so p90 becomes the rate at the p90 time and min/max swap.
awk -F '\t' -v all="$n" -v nq_n="$nq_n" 'BEGIN { OFS = "\t" }
{
	split($3, sm, ":")
	n = sm[1] == "nq" ? nq_n : all
	name = (sm[2] == "a") ? "a_call_per_job" : "b_one_call"
	printf "%s\t%s\t%s\tjobs/s\t%.1f\t%.1f\t%.1f\t%.1f\t%d\n", $1, name,
	    sm[1], n * 1e6 / $5, n * 1e6 / $6, n * 1e6 / $8, n * 1e6 / $7, $9
}' "$out"
