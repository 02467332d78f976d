#!/bin/sh
# bench/cli.sh: CLI latency and submit-to-start (issue 5, items 2 and 3),
# jobd against tsp and nq where they can do the same work, each command
# a whole process, all interleaved round-robin by bench-cli, with the exec
# floor (bench-noop; for submit-to-start, bench-stamp started directly)
# among them. Every run ends with its job ended (--settle, untimed), so each
# one finds its system idle. Rows on stdout (bench/lib.sh).
set -u
BENCH_WORK=$BENCH_TMP/cli
. "${BENCH_SRC:-$(dirname "$0")}/lib.sh"

runs=$(bench_pick 3 50 200)
cli=$BENCH_BIN/bench-cli
noop=$BENCH_BIN/bench-noop
stamp=$BENCH_BIN/bench-stamp
fifo=$BENCH_WORK/stamp.fifo

trap 'bench_stop_all' EXIT
trap 'exit 1' INT TERM HUP

bench_jobd_start 2
tsp=0
nq=0
if bench_peer tsp; then
	bench_tsp_start 2
	tsp=1
fi
if bench_peer nq; then
	bench_nq_start
	nq=1
fi

# One bench-cli run: bench SECTION NAME SETTLE EXTRA JOBD TSP NQ FLOOR,
# each command in one word (split at spaces: no path here holds one); an
# empty peer command leaves that peer out. SETTLE=1: after each run, wait
# (untimed) for the job the command queued to end. EXTRA: more options.
bench() {
	section=$1 name=$2 settle=$3 extra=$4 jcmd=$5 tcmd=$6 ncmd=$7 fcmd=$8
	args="floor $fcmd ::: jobd $jcmd"
	[ $tsp = 1 ] && [ -n "$tcmd" ] && args="$args ::: tsp $tcmd"
	[ $nq = 1 ] && [ -n "$ncmd" ] && args="$args ::: nq $ncmd"
	set -f
	if [ "$settle" = 1 ]; then
		# shellcheck disable=SC2086
		"$cli" --runs "$runs" --section "$section" --name "$name" \
		    $extra --settle jobd "$JOBCTL wait {} >/dev/null" \
		    --settle tsp "tsp -w {} >/dev/null" --settle nq "nq -w {}" \
		    -- $args
	else
		# shellcheck disable=SC2086
		"$cli" --runs "$runs" --section "$section" --name "$name" \
		    $extra -- $args
	fi
	rc=$?
	set +f
	[ $rc = 0 ] || bench_die "$section $name could not run"
}

# 2. CLI latency. submit: a durable submit of `true` (jobd answers after the
# commit); tsp and nq queue the same.
bench cli submit 1 "" "$JOBCTL submit -- true" "tsp true" "nq true" "$noop"

# status of one ended job: tsp -s (its state), nq -t (is it done).
jid=$($JOBCTL submit -- true) && $JOBCTL wait "$jid" >/dev/null ||
    bench_die "jobd: a job failed"
tid=
nid=
if [ $tsp = 1 ]; then
	tid=$(tsp true) && tsp -w "$tid" || bench_die "tsp: a job failed"
fi
if [ $nq = 1 ]; then
	nid=$(nq true) && nq -w "$nid" || bench_die "nq: a job failed"
fi
bench cli status 0 "" "$JOBCTL status $jid" "${tid:+tsp -s $tid}" \
    "${nid:+nq -t $nid}" "$noop"

# list of 20: jobctl list --limit 20 out of all the jobs so far; tsp -l
# lists all its jobs, so it gets exactly 20; nq has no list.
tlist=
if [ $tsp = 1 ]; then
	bench_tsp_clear
	i=0
	while [ $i -lt 20 ]; do
		tsp true >"$BENCH_WORK/tsp.last" || bench_die "tsp failed"
		i=$((i + 1))
	done
	tsp -w "$(cat "$BENCH_WORK/tsp.last")" >/dev/null
	tlist="tsp -l"
fi
bench cli list 0 "" "$JOBCTL list --limit 20" "$tlist" "" "$noop"

# 3. Submit-to-start: the same job for all, bench-stamp FIFO, started by
# jobd as a program (no shell), by tsp and by nq; the floor row is
# bench-stamp started directly.
bench start submit_to_start 1 "--stamp $fifo" \
    "$JOBCTL submit -- $stamp $fifo" "tsp $stamp $fifo" "nq $stamp $fifo" \
    "$stamp $fifo"
rm -f "$fifo"
