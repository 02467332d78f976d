# bench/lib.sh: what the benchmark scripts share (sourced, POSIX sh).
#
# Each system under test runs on a private socket or folder in $BENCH_WORK
# (the calling script's own folder in $BENCH_TMP), and every process
# started here is stopped by its PID: jobd by the PID the shell gave it,
# tsp's server and nq's waiting processes by finding, in /proc, the
# processes of that name whose environment holds our private TS_SOCKET or
# NQDIR (and no one else's).
#
# The scripts take from bench/run: BENCH_BIN (jobd, jobctl, bench-*),
# BENCH_TMP (private scratch), BENCH_SRC (this folder), BENCH_QUICK=1,
# BENCH_SMOKE=1, and print rows: section, name, system, unit, median, p90,
# min, max, runs, tab-separated.

: "${BENCH_BIN:?BENCH_BIN is not set (run bench/run)}"
: "${BENCH_TMP:?BENCH_TMP is not set (run bench/run)}"

bench_log() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

bench_die() {
	bench_log "$*"
	exit 1
}

# A note for the results page: one line per note, in $BENCH_TMP/notes.
bench_note() {
	printf '%s\n' "$*" >>"$BENCH_TMP/notes"
	bench_log "note: $*"
}

# Where a script's systems keep their sockets, state and output: a folder
# of the script's own, so that no script finds another's jobs.
BENCH_WORK=${BENCH_WORK:-$BENCH_TMP}

# The size of a thing by the mode: bench_pick SMOKE QUICK FULL.
bench_pick() {
	if [ "${BENCH_SMOKE:-0}" = 1 ]; then
		echo "$1"
	elif [ "${BENCH_QUICK:-0}" = 1 ]; then
		echo "$2"
	else
		echo "$3"
	fi
}

bench_have() {
	command -v "$1" >/dev/null 2>&1
}

# Whether to run a peer: installed, and not turned off by BENCH_PEERS
# (a space-separated list; default "tsp nq").
bench_peer() {
	case " ${BENCH_PEERS-tsp nq} " in
	*" $1 "*) bench_have "$1" ;;
	*) return 1 ;;
	esac
}

# The PIDs of processes named comm whose environment holds var=value.
bench_pids_env() {
	for p in /proc/[0-9]*; do
		# read is a builtin: no fork for each process looked at.
		read -r comm 2>/dev/null <"$p/comm" || continue
		[ "$comm" = "$1" ] || continue
		if grep -qxzF "$2" 2>/dev/null <"$p/environ"; then
			echo "${p#/proc/}"
		fi
	done
}

# The PIDs of processes named comm with a word of their command line
# equal to word.
bench_pids_arg() {
	for p in /proc/[0-9]*; do
		read -r comm 2>/dev/null <"$p/comm" || continue
		[ "$comm" = "$1" ] || continue
		if grep -qxzF "$2" 2>/dev/null <"$p/cmdline"; then
			echo "${p#/proc/}"
		fi
	done
}

# Whether PID runs (a zombie does not) and is still named comm (its PID
# was not taken by another process since).
bench_alive() {
	read -r c 2>/dev/null <"/proc/$1/comm" || return 1
	[ "$c" = "$2" ] || return 1
	# /proc/PID/stat: "PID (COMM) STATE ..."
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# bench_stop_pids COMM PID...: SIGTERM to each, then SIGKILL to any still
# running after 10 s. Thousands at once: nq leaves a process per waiting
# job.
bench_stop_pids() {
	comm=$1
	shift
	[ $# -gt 0 ] || return 0
	kill -TERM "$@" 2>/dev/null
	i=0
	while [ $i -lt 200 ]; do
		alive=
		for pid in "$@"; do
			bench_alive "$pid" "$comm" && alive="$alive $pid"
		done
		[ -z "$alive" ] && return 0
		sleep 0.05
		i=$((i + 1))
	done
	bench_log "$comm ignored SIGTERM:$alive: SIGKILL"
	# shellcheck disable=SC2086
	kill -KILL $alive 2>/dev/null
}

# --- jobd ------------------------------------------------------------

# Start jobd in $BENCH_WORK/jobd (socket and state) with --parallel $1
# (default 2), and wait for its "ready". Sets JOBD_PID, JOBD_SOCK,
# JOBD_STATE and JOBCTL (jobctl with its --socket).
bench_jobd_start() {
	d=$BENCH_WORK/jobd
	mkdir -p "$d"
	JOBD_SOCK=$d/jobd.sock
	JOBD_STATE=$d/state
	rm -f "$d/ready"
	mkfifo "$d/ready" || bench_die "mkfifo $d/ready"
	"$BENCH_BIN/jobd" --socket "$JOBD_SOCK" --state-dir "$JOBD_STATE" \
	    --parallel "${1:-2}" --ready-fd 3 3>"$d/ready" 2>>"$d/jobd.log" &
	JOBD_PID=$!
	# The FIFO's end of file comes if jobd dies before it is ready.
	ready=$(timeout 30 head -n 1 "$d/ready")
	rm -f "$d/ready"
	if [ "$ready" != ready ]; then
		bench_stop_pids jobd "$JOBD_PID"
		tail -n 20 "$d/jobd.log" >&2
		bench_die "jobd did not start (log: $d/jobd.log)"
	fi
	JOBCTL="$BENCH_BIN/jobctl --socket $JOBD_SOCK"
	export JOBD_SOCK JOBCTL
}

# Stop jobd by its PID, then any supervisor of its state folder that is
# still there (none should be: the benchmarks wait for their jobs).
bench_jobd_stop() {
	[ -n "${JOBD_PID:-}" ] || return 0
	bench_stop_pids jobd "$JOBD_PID"
	wait "$JOBD_PID" 2>/dev/null
	JOBD_PID=
	# shellcheck disable=SC2046
	bench_stop_pids jobd-supervisor \
	    $(bench_pids_arg jobd-supervisor "$JOBD_STATE")
}

# --- Task Spooler ----------------------------------------------------

# Start tsp's server on a private socket with $1 slots (default 2). Sets
# and exports TS_SOCKET (and TMPDIR for its output files); TSP_PID.
bench_tsp_start() {
	d=$BENCH_WORK/tsp
	mkdir -p "$d"
	TS_SOCKET=$d/socket
	TMPDIR=$d
	export TS_SOCKET TMPDIR
	# The first tsp call forks the server; -S sets the slots.
	tsp -S "${1:-2}" || bench_die "tsp -S failed"
	TSP_PID=$(bench_pids_env tsp "TS_SOCKET=$TS_SOCKET" | head -n 1)
	[ -n "$TSP_PID" ] || bench_die "tsp's server not found"
}

# Empty tsp's list of finished jobs (it keeps them all in memory).
bench_tsp_clear() {
	tsp -C
}

# Stop tsp's server (tsp -K, then by its PID), and any tsp client of our
# socket still waiting to run a job.
bench_tsp_stop() {
	[ -n "${TSP_PID:-}" ] || return 0
	tsp -K 2>/dev/null
	# shellcheck disable=SC2046
	bench_stop_pids tsp "$TSP_PID" \
	    $(bench_pids_env tsp "TS_SOCKET=$TS_SOCKET")
	TSP_PID=
}

# --- nq --------------------------------------------------------------

# nq has no server: a queue is a folder. Sets and exports NQDIR.
bench_nq_start() {
	NQDIR=$BENCH_WORK/nq
	mkdir -p "$NQDIR"
	export NQDIR
}

# Remove the ended jobs' files (each job is one file until removed).
bench_nq_clear() {
	nq -w && rm -f "$NQDIR"/,*
}

# Stop any nq of our folder still waiting for its turn.
bench_nq_stop() {
	[ -n "${NQDIR:-}" ] || return 0
	# shellcheck disable=SC2046
	bench_stop_pids nq $(bench_pids_env nq "NQDIR=$NQDIR")
}

# Stop all three; for a trap.
bench_stop_all() {
	bench_jobd_stop
	bench_tsp_stop
	bench_nq_stop
}

# Median, p90, min, max and count of the numbers on stdin, tab-separated.
stats() {
	sort -n | awk '{ v[NR - 1] = $1 }
	END {
		if (NR == 0)
			exit 1
		printf "%s\t%s\t%s\t%s\t%d\n", v[int(NR / 2)],
		    v[int(NR * 9 / 10)], v[0], v[NR - 1], NR
	}'
}
