/*
 * Integration test harness: starts the real jobd on a private temporary
 * folder (socket, state) and drives it with the real jobctl. Every process it
 * starts is stopped by its pid when the test ends; every wait is on a real
 * condition with a bounded timeout, never a sleep. Helpers fail the running
 * cmocka test (with the output that explains why) instead of returning
 * errors, so tests read as a list of steps and assertions.
 */
#ifndef JOBD_HARNESS_H
#define JOBD_HARNESS_H

#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define HARNESS_MAX_ARGS  8     /* extra jobd arguments */
#define HARNESS_MAX_TRACK 16    /* pids a test asks the harness to kill */
#define HARNESS_READY_MS  10000 /* jobd must be listening by then */
#define HARNESS_STOP_MS   10000 /* jobd must exit by then after SIGTERM */
#define HARNESS_RUN_MS    30000 /* any jobctl run must end by then */
#define HARNESS_WAIT_S    20    /* jobctl wait --timeout, in seconds */
#define HARNESS_EVENT_MS  10000 /* a job must reach a marker by then */

/* One jobd and its folder. */
struct jobd_inst {
	char dir[PATH_MAX - 64]; /* the temporary folder */
	char state[PATH_MAX];    /* DIR/state */
	char url[PATH_MAX];      /* ipc://DIR/jobd.sock */
	char log[PATH_MAX];      /* DIR/jobd.log: jobd's stderr */
	pid_t pid;               /* jobd, or 0 when not running */
	const char *args[HARNESS_MAX_ARGS + 1]; /* extra args, for restarts */
	int gate_fd;                            /* DIR/gate held open, or -1 */
	int markers;                            /* markers made so far */
	pid_t tracked[HARNESS_MAX_TRACK];       /* with a pidfd for each */
	int tracked_fd[HARNESS_MAX_TRACK];
	int ntracked;
};

/* A process started by harness_proc_start, with its output captured. */
struct harness_proc {
	char what[160]; /* the command line, for messages */
	pid_t pid;
	int out_fd, err_fd;
	char *out, *err;
	size_t out_len, err_len;
};

/*
 * Start jobd on a fresh folder with extra arguments (NULL-terminated) and
 * wait until it says it is ready. Fails the test, with jobd's stderr, if it
 * exits or stays silent for HARNESS_READY_MS.
 */
void harness_start(struct jobd_inst *, ...) __attribute__((sentinel));

/* Start jobd again on the same folder with the same arguments. */
void harness_restart(struct jobd_inst *);

/*
 * Send sig to jobd and wait (bounded) for it to exit; SIGKILL if it does not.
 * Returns its wait status.
 */
int harness_signal(struct jobd_inst *, int);
#define harness_kill9(inst) ((void)harness_signal((inst), SIGKILL))

/*
 * Stop jobd (SIGTERM, bounded wait, SIGKILL), kill every supervisor still
 * holding a run file and its jobs, kill tracked pids, remove the folder.
 * Returns -1 (and prints jobd's stderr) if jobd did not exit 0 on SIGTERM.
 */
int harness_stop(struct jobd_inst *);

/*
 * Watch pid, which must be alive: returns a pidfd for harness_await_exit.
 * The harness kills the process, if it still lives, when the test ends.
 */
int harness_track(struct jobd_inst *, pid_t);

/* cmocka fixtures: a jobd with default arguments, or --parallel 1 or 2. */
int harness_setup(void **);
int harness_setup_parallel1(void **);
int harness_setup_parallel2(void **);
int harness_teardown(void **);

/*
 * Start argv (argv[0] a path) with stdin on /dev/null and stdout and stderr
 * captured, with env (NAME=VALUE, NULL-terminated, may be NULL) added to
 * ours. Fails the test if it cannot be started.
 */
void harness_proc_start(struct harness_proc *, const char *const *,
                        const char *const *);

/*
 * Read all the output of a started process and reap it, within timeout_ms
 * (then SIGKILL and fail the test). Returns its exit code; fails the test if
 * it died of a signal. The caller frees out and err with harness_proc_free.
 */
int harness_proc_finish(struct harness_proc *, int);
/* Append what fd has to *buf; close it and set it to -1 at EOF. */
void harness_drain(int *, char **, size_t *);
void harness_proc_free(struct harness_proc *);
/*
 * Hand a finished process's whole stdout and stderr to *out and *err (each
 * may be NULL; each gets NULL if nothing was printed; the caller frees
 * them), and free the rest of it.
 */
void harness_proc_take(struct harness_proc *, char **, char **);

/*
 * Run "jobctl --socket URL ARGS..." (NULL-terminated) to the end and return
 * its exit code. *out and *err (each may be NULL) get its whole stdout and
 * stderr, NUL-terminated; the caller frees them.
 */
int harness_jobctl(struct jobd_inst *, char **, char **, ...)
    __attribute__((sentinel));
/*
 * The same with args (NULL-terminated) as an array, and env (NAME=VALUE,
 * NULL-terminated, may be NULL) added; with a NULL inst no --socket is
 * added.
 */
int harness_jobctl_run(struct jobd_inst *, const char *const *,
                       const char *const *, char **, char **);

/* Start "jobctl --socket URL ARGS..." without waiting for it. */
void harness_jobctl_start(struct jobd_inst *, struct harness_proc *, ...)
    __attribute__((sentinel));

/*
 * Read a started process's output until its stdout holds text. Returns 0, or
 * -1 if it closed its stdout or timeout_ms passed first.
 */
int harness_proc_await_output(struct harness_proc *, const char *, int);

/*
 * "jobctl submit ARGS..." (NULL-terminated) must succeed and print an id
 * alone: returns it.
 */
int64_t harness_submit(struct jobd_inst *, ...) __attribute__((sentinel));

/* Parse "ID\n" as printed by submit (err is shown on failure). */
int64_t harness_parse_id(const char *, const char *);

/* harness_submit with its arguments as an array (NULL-terminated). */
int64_t harness_submit_argv(struct jobd_inst *, const char *const *);

/*
 * Submit shell command cmd prefixed by the creation of a marker file, and
 * wait until the marker exists: the job is running when this returns.
 */
int64_t harness_submit_running(struct jobd_inst *, const char *);
/* The same with more submit arguments (NULL-terminated, may be NULL). */
int64_t harness_submit_running_argv(struct jobd_inst *, const char *,
                                    const char *const *);

/*
 * The gate: a fifo DIR/gate the harness holds open. A job that runs
 * harness_gate_cmd() blocks until harness_gate_release() lets one such job
 * through (one byte per release).
 */
const char *harness_gate_cmd(struct jobd_inst *);
void harness_gate_release(struct jobd_inst *);

/* A job blocked on the gate, running when this returns. */
int64_t harness_blocker(struct jobd_inst *);
/* The same with more submit arguments (-q QUEUE...; NULL-terminated). */
int64_t harness_blocker_argv(struct jobd_inst *, const char *const *);

/* "jobctl wait ID --timeout HARNESS_WAIT_S": returns its exit code. */
int harness_wait(struct jobd_inst *, int64_t);
/* "jobctl wait" on n ids at once. */
int harness_wait_ids(struct jobd_inst *, const int64_t *, size_t);
/* The same with --timeout seconds. */
int harness_wait_within(struct jobd_inst *, const int64_t *, size_t, int);

/* "jobctl --json status ID": the job object (caller decrefs). */
json_t *harness_status(struct jobd_inst *, int64_t);
/* The job's state, copied into buf; returns buf. */
const char *harness_state(struct jobd_inst *, int64_t, char *, size_t);

/* "jobctl logs ID [--stderr]": the raw output (caller frees). */
char *harness_logs(struct jobd_inst *, int64_t, int);

/* "jobctl ping" must succeed. */
void harness_ping(struct jobd_inst *);

/* Parse text as JSON or fail the test. */
json_t *harness_json(const char *);

/*
 * Send len raw bytes to jobd over an nng REQ socket and wait up to
 * timeout_ms for the reply. Returns 0 and sets *reply (caller decrefs; it
 * must parse as JSON, or the test fails), or the nng error.
 */
int harness_raw(struct jobd_inst *, const void *, size_t, int, json_t **);
/* Send text; the reply must be {"ok":false,"error":code}. */
void harness_raw_error(struct jobd_inst *, const char *, const char *);

/*
 * Assertions on a job object (or any JSON object); on failure they print the
 * whole object. harness_assert_json compares a value with JSON text.
 */
void harness_assert_str(json_t *, const char *, const char *);
void harness_assert_int(json_t *, const char *, long long);
void harness_assert_null(json_t *, const char *);
void harness_assert_json(json_t *, const char *, const char *);
/* The field is an RFC 3339 UTC time with milliseconds. */
void harness_assert_time(json_t *, const char *);

/* Read a whole file (NUL-terminated; caller frees), or NULL if missing. */
char *harness_read_file(const char *, size_t *);

/* Wait up to timeout_ms for path to exist. Returns 0, or -1 on timeout. */
int harness_await_file(const char *, int);

/*
 * Wait up to timeout_ms for the process behind a pidfd to end (a zombie has
 * ended). Returns 0, or -1 if it still runs.
 */
int harness_await_exit(int, int);

/*
 * Print to stderr, like cmocka's print_error but without its 1 KiB limit
 * (jobd's log, a job object).
 */
void harness_msg(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic milliseconds. */
int64_t harness_now_ms(void);

/* A job id as text, in buf (an array): HARNESS_ID(buf, id). */
#define HARNESS_ID(buf, id)                                                    \
	(snprintf((buf), sizeof(buf), "%lld", (long long)(id)), (buf))

/* Wall-clock milliseconds since the epoch (jobd's times are wall-clock). */
int64_t harness_wall_ms(void);

/* ms since the epoch as jobd writes times (2026-11-27T19:30:00.123Z). */
const char *harness_format_time(int64_t, char *, size_t);

/* The time in field key (as harness_assert_time) in ms since the epoch. */
int64_t harness_time_ms(json_t *, const char *);

/* "jobctl ARGS..." must exit 0: returns its stdout (caller frees). */
char *harness_jobctl_ok(struct jobd_inst *, ...) __attribute__((sentinel));

/* "jobctl --json ARGS..." must exit 0: its output parsed (caller decrefs). */
json_t *harness_jobctl_json(struct jobd_inst *, ...) __attribute__((sentinel));

/*
 * "jobctl ARGS..." must exit with code and say why on stderr, and print
 * nothing on stdout: returns its stderr (caller frees).
 */
char *harness_jobctl_refused(struct jobd_inst *, int, ...)
    __attribute__((sentinel));
char *harness_jobctl_refused_argv(struct jobd_inst *, int, const char *const *);

/* The ids of an array of job objects as JSON text, "[3,2,1]" (to free). */
char *harness_ids_text(json_t *);

/*
 * Stamps: a job that runs harness_stamp_cmd(path, label, body) appends
 * "s LABEL NS" to path when it starts, runs body, then appends "e LABEL NS"
 * (NS from date +%s%N; label may hold shell expansions such as
 * $JOBD_ARRAY_INDEX). Returns the command (caller frees).
 */
char *harness_stamp_cmd(const char *, const char *, const char *);

/*
 * The most jobs of a stamp file that ran at once, from their own stamps.
 * Sets *n to the number of starts; fails the test if there are not as many
 * ends, or a line does not parse. Stamps fall inside a job's real run, so
 * this never counts more overlap than there was.
 */
int harness_stamps_overlap(const char *, size_t *);

/* Fail unless path does not exist. */
void harness_assert_absent(const char *);

/*
 * Job id must show the same status object as before (harness_status, taken
 * earlier); otherwise print both and fail.
 */
void harness_assert_unchanged(struct jobd_inst *, int64_t, json_t *);

#endif
