/*
 * Start times, timeouts and retries (issue 3): --in and --at start a job in
 * a bounded window after it was scheduled, the forms of TIME, a timeout
 * kills a job that ignores SIGTERM with its whole process group, retries
 * with backoff are recorded as attempts, and jobctl retry runs an ended job
 * again. Only lower bounds are exact; upper bounds are generous.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "util.h"

/* Any start this late is a failure, however slow the machine. */
#define LATE_MS 10000

static struct jobd_inst fixture;

/* --parallel 4, whatever the CPU count. */
static int
setup_parallel4(void **state)
{
	harness_start(&fixture, "--parallel", "4", NULL);
	*state = &fixture;
	return (0);
}

/* The wall-clock ms a job's "date +%s%N > path" wrote. */
static int64_t
stamp_ms(const char *path)
{
	char *text = harness_read_file(path, NULL);
	long long ns;

	assert_non_null(text);
	if (sscanf(text, "%lld", &ns) != 1) {
		fail_msg("%s holds '%s'", path, text);
	}
	free(text);
	return (ns / 1000000);
}

/* "jobctl --json submit ARGS -c CMD": the job (caller decrefs). */
static json_t *
submit_json(struct jobd_inst *inst, const char *opt, const char *arg,
            const char *cmd)
{
	return (harness_jobctl_json(inst, "submit", opt, arg, "-c", cmd, NULL));
}

static int64_t
job_id(json_t *job)
{
	return (json_integer_value(json_object_get(job, "id")));
}

/* Time field a of job is not before b (same format: text order). */
static void
assert_not_before(json_t *job, const char *a, const char *b)
{
	const char *ta = json_string_value(json_object_get(job, a));
	const char *tb = json_string_value(json_object_get(job, b));

	if (ta == NULL || tb == NULL || strcmp(ta, tb) < 0) {
		fail_msg("%s %s is before %s %s", a, ta ? ta : "null", b,
		         tb ? tb : "null");
	}
}

/*
 * --in 1s: the job is scheduled, with run_at about 1 s after the submit,
 * and starts no earlier than that and well within LATE_MS.
 */
static void
test_in(void **state)
{
	struct jobd_inst *inst = *state;
	char stamp[PATH_MAX], cmd[PATH_MAX + 32];
	int64_t t0, run_at, started, id;
	json_t *job;

	snprintf(stamp, sizeof stamp, "%s/stamp", inst->dir);
	snprintf(cmd, sizeof cmd, "date +%%s%%N > '%s'", stamp);
	t0 = harness_wall_ms();
	job = submit_json(inst, "--in", "1s", cmd);
	harness_assert_str(job, "state", "scheduled");
	run_at = harness_time_ms(job, "run_at");
	harness_assert_null(job, "started_at");
	id = job_id(job);
	json_decref(job);
	if (run_at < t0 + 1000 - 10 || run_at > t0 + LATE_MS) {
		fail_msg("--in 1s: run_at is %lld ms after the submit",
		         (long long)(run_at - t0));
	}

	assert_int_equal(harness_wait(inst, id), 0);
	started = stamp_ms(stamp);
	if (started < t0 + 1000 - 50 || started > t0 + LATE_MS) {
		fail_msg("--in 1s: started %lld ms after the submit",
		         (long long)(started - t0));
	}
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "succeeded");
	assert_not_before(job, "started_at", "run_at");
	json_decref(job);
}

/* --in 0 is allowed: the job starts now. */
static void
test_in_zero(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_submit(inst, "--in", "0", "--", "true", NULL);

	assert_int_equal(harness_wait(inst, id), 0);
}

/* --at an RFC 3339 time 2 s ahead: run_at is that time, and it holds. */
static void
test_at(void **state)
{
	struct jobd_inst *inst = *state;
	char stamp[PATH_MAX], cmd[PATH_MAX + 32], at[40];
	int64_t at_ms, started, id, t0;
	json_t *job;

	snprintf(stamp, sizeof stamp, "%s/stamp", inst->dir);
	snprintf(cmd, sizeof cmd, "date +%%s%%N > '%s'", stamp);
	t0 = harness_wall_ms();
	at_ms = t0 + 2000;
	harness_format_time(at_ms, at, sizeof at);
	job = submit_json(inst, "--at", at, cmd);
	harness_assert_str(job, "state", "scheduled");
	harness_assert_str(job, "run_at", at);
	id = job_id(job);
	json_decref(job);

	assert_int_equal(harness_wait(inst, id), 0);
	started = stamp_ms(stamp);
	if (started < at_ms - 50 || started > t0 + LATE_MS) {
		fail_msg("--at %s: started %lld ms after that time", at,
		         (long long)(started - at_ms));
	}
	job = harness_status(inst, id);
	assert_not_before(job, "started_at", "run_at");
	json_decref(job);
}

/* The next local HH:MM[:SS] equal to that of t (today, else tomorrow). */
static int64_t
next_local(time_t t, int with_seconds, time_t now)
{
	struct tm tm, today;
	time_t when;

	localtime_r(&t, &tm);
	localtime_r(&now, &today);
	tm.tm_year = today.tm_year;
	tm.tm_mon = today.tm_mon;
	tm.tm_mday = today.tm_mday;
	if (!with_seconds) {
		tm.tm_sec = 0;
	}
	tm.tm_isdst = -1;
	when = mktime(&tm);
	if (when <= now) {
		tm.tm_mday++;
		tm.tm_isdst = -1;
		when = mktime(&tm);
	}
	return ((int64_t)when * 1000);
}

/*
 * The forms of TIME: RFC 3339 with T or a space, fractions and offsets, and
 * HH:MM / HH:MM:SS in local time, the next such time. Each job is
 * scheduled at that instant; cancel works on scheduled jobs.
 */
static void
test_at_forms(void **state)
{
	struct jobd_inst *inst = *state;
	char text[4][64], want[4][40], day[32];
	time_t now = time(NULL), hour = now + 3600, later = now + 7200, off;
	struct tm tm;
	int64_t id[4], expect[4];
	json_t *job;

	/* One hour ahead, whole seconds, UTC with T. */
	gmtime_r(&hour, &tm);
	strftime(text[0], sizeof text[0], "%Y-%m-%dT%H:%M:%SZ", &tm);
	expect[0] = (int64_t)hour * 1000;
	/* The same instant + 0.5 s, written at +01:00 with a space. */
	off = hour + 3600;
	gmtime_r(&off, &tm);
	strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(text[1], sizeof text[1], "%s.5+01:00", day);
	expect[1] = (int64_t)hour * 1000 + 500;
	/* HH:MM and HH:MM:SS two hours from now, local time. */
	localtime_r(&later, &tm);
	strftime(text[2], sizeof text[2], "%H:%M", &tm);
	expect[2] = next_local(later, 0, now);
	strftime(text[3], sizeof text[3], "%H:%M:%S", &tm);
	expect[3] = next_local(later, 1, now);

	for (int i = 0; i < 4; i++) {
		job = submit_json(inst, "--at", text[i], "true");
		harness_assert_str(job, "state", "scheduled");
		harness_format_time(expect[i], want[i], sizeof want[i]);
		if (harness_time_ms(job, "run_at") != expect[i]) {
			fail_msg(
			    "--at '%s': run_at %s, expected %s", text[i],
			    json_string_value(json_object_get(job, "run_at")),
			    want[i]);
		}
		id[i] = job_id(job);
		json_decref(job);
	}
	for (int i = 0; i < 4; i++) {
		char idbuf[24];

		free(harness_jobctl_ok(inst, "cancel", HARNESS_ID(idbuf, id[i]),
		                       NULL));
		job = harness_status(inst, id[i]);
		harness_assert_str(job, "state", "cancelled");
		harness_assert_null(job, "started_at");
		json_decref(job);
	}
}

/*
 * --timeout 1s --kill-after 1s on a job that ignores SIGTERM, with a
 * background child: it ends failed, reason "timeout", after the timeout
 * and the grace, and both processes are gone.
 */
static void
test_timeout_kills_group(void **state)
{
	struct jobd_inst *inst = *state;
	char pidfile[PATH_MAX], cmd[PATH_MAX * 4], *text;
	int shell_pid = 0, child_pid = 0, shell_fd, child_fd, code;
	int64_t id, t0, took;
	json_t *job;

	snprintf(pidfile, sizeof pidfile, "%s/pids", inst->dir);
	snprintf(cmd, sizeof cmd,
	         "trap '' TERM; sleep 60 & echo $$ $! > '%s.tmp'; "
	         "mv '%s.tmp' '%s'; sleep 60",
	         pidfile, pidfile, pidfile);
	t0 = harness_now_ms();
	id = harness_submit(inst, "--timeout", "1s", "--kill-after", "1s", "-c",
	                    cmd, NULL);
	assert_int_equal(harness_await_file(pidfile, HARNESS_EVENT_MS), 0);
	text = harness_read_file(pidfile, NULL);
	assert_non_null(text);
	assert_int_equal(sscanf(text, "%d %d", &shell_pid, &child_pid), 2);
	free(text);
	shell_fd = harness_track(inst, shell_pid);
	child_fd = harness_track(inst, child_pid);

	code = harness_wait(inst, id);
	took = harness_now_ms() - t0;
	assert_int_not_equal(code, 0);
	assert_int_not_equal(code, 124);
	/* TERM is ignored: only the KILL after 1 s + 1 s ends it. */
	if (took < 1900 || took > 15000) {
		fail_msg("the timed-out job ended %lld ms after its submit",
		         (long long)took);
	}
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "failed");
	harness_assert_str(job, "reason", "timeout");
	harness_assert_int(job, "timeout_ms", 1000);
	harness_assert_int(job, "kill_after_ms", 1000);
	json_decref(job);
	assert_int_equal(harness_await_exit(shell_fd, 5000), 0);
	assert_int_equal(harness_await_exit(child_fd, 5000), 0);
}

/* A job that obeys SIGTERM ends at the timeout, long before the grace. */
static void
test_timeout_term(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t t0 = harness_now_ms(), id, took;
	json_t *job;

	id = harness_submit(inst, "--timeout", "500ms", "--", "sleep", "60",
	                    NULL);
	assert_int_not_equal(harness_wait(inst, id), 0);
	took = harness_now_ms() - t0;
	if (took < 450 || took > 9000) {
		fail_msg("timed out %lld ms after the submit", (long long)took);
	}
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "failed");
	harness_assert_str(job, "reason", "timeout");
	harness_assert_int(job, "signal", 15);
	harness_assert_int(job, "kill_after_ms", 10000);
	json_decref(job);
}

/* One attempt of a status reply's attempts. */
static void
assert_attempt(json_t *job, size_t i, const char *state, int exit_code)
{
	json_t *a = json_array_get(json_object_get(job, "attempts"), i);

	if (a == NULL) {
		char *dump = json_dumps(job, 0);

		harness_msg("no attempt %zu in %s\n", i + 1, dump);
		free(dump);
		fail();
	}
	harness_assert_int(a, "attempt", (long long)i + 1);
	harness_assert_str(a, "state", state);
	harness_assert_int(a, "exit_code", exit_code);
	harness_assert_time(a, "started_at");
	harness_assert_time(a, "finished_at");
}

/* ms between attempt i's end and attempt i+1's start. */
static int64_t
attempt_gap(json_t *job, size_t i)
{
	json_t *attempts = json_object_get(job, "attempts");

	return (harness_time_ms(json_array_get(attempts, i + 1), "started_at") -
	        harness_time_ms(json_array_get(attempts, i), "finished_at"));
}

/*
 * A job that fails twice and then succeeds, with --retries 3
 * --retry-delay 100ms: it ends succeeded at attempt 3, with three attempts
 * recorded (1, 1, 0), JOBD_ATTEMPT 1, 2, 3, and backoffs of at least 100
 * and 200 ms.
 */
static void
test_retries(void **state)
{
	struct jobd_inst *inst = *state;
	char counter[PATH_MAX], seen[PATH_MAX], *cmd, *text;
	int64_t id;
	json_t *job;

	snprintf(counter, sizeof counter, "%s/counter", inst->dir);
	snprintf(seen, sizeof seen, "%s/attempts", inst->dir);
	assert_true(asprintf(&cmd,
	                     "n=$(cat '%s' 2>/dev/null || echo 0); "
	                     "n=$((n + 1)); echo $n > '%s'; "
	                     "echo \"$JOBD_ATTEMPT\" >> '%s'; [ $n -ge 3 ]",
	                     counter, counter, seen) > 0);
	id = harness_submit(inst, "--retries", "3", "--retry-delay", "100ms",
	                    "-c", cmd, NULL);
	free(cmd);
	assert_int_equal(harness_wait(inst, id), 0);

	job = harness_status(inst, id);
	harness_assert_str(job, "state", "succeeded");
	harness_assert_int(job, "attempt", 3);
	harness_assert_int(job, "retries", 3);
	harness_assert_int(job, "retry_delay_ms", 100);
	harness_assert_int(job, "exit_code", 0);
	assert_int_equal(json_array_size(json_object_get(job, "attempts")), 3);
	assert_attempt(job, 0, "failed", 1);
	assert_attempt(job, 1, "failed", 1);
	assert_attempt(job, 2, "succeeded", 0);
	/* Never less than the delay; the second retry waits twice as long. */
	if (attempt_gap(job, 0) < 95 || attempt_gap(job, 1) < 190) {
		fail_msg("retries started %lld and %lld ms after the failures",
		         (long long)attempt_gap(job, 0),
		         (long long)attempt_gap(job, 1));
	}
	json_decref(job);
	text = harness_read_file(seen, NULL);
	assert_non_null(text);
	assert_string_equal(text, "1\n2\n3\n");
	free(text);
}

/* Retries run out: the job ends failed after 1 + N attempts. */
static void
test_retries_exhausted(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_submit(inst, "--retries", "2", "--retry-delay",
	                            "0", "-c", "exit 4", NULL);
	json_t *job;

	assert_int_equal(harness_wait(inst, id), 4);
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "failed");
	harness_assert_int(job, "attempt", 3);
	assert_int_equal(json_array_size(json_object_get(job, "attempts")), 3);
	for (size_t i = 0; i < 3; i++) {
		assert_attempt(job, i, "failed", 4);
	}
	json_decref(job);
}

/*
 * jobctl retry runs a failed job again as a new attempt; a job that has not
 * ended cannot be retried.
 */
static void
test_retry_command(void **state)
{
	struct jobd_inst *inst = *state;
	char flag[PATH_MAX], cmd[PATH_MAX * 2 + 64], idbuf[24], bl[24];
	char req[128];
	int64_t id, blocker;
	json_t *job;

	snprintf(flag, sizeof flag, "%s/flag", inst->dir);
	snprintf(cmd, sizeof cmd,
	         "if [ -e '%s' ]; then exit 0; fi; : > '%s'; exit 3", flag,
	         flag);
	id = harness_submit(inst, "-c", cmd, NULL);
	assert_int_equal(harness_wait(inst, id), 3);
	job = harness_jobctl_json(inst, "retry", HARNESS_ID(idbuf, id), NULL);
	harness_assert_int(job, "id", id);
	json_decref(job);
	assert_int_equal(harness_wait(inst, id), 0);

	job = harness_status(inst, id);
	harness_assert_str(job, "state", "succeeded");
	harness_assert_int(job, "attempt", 2);
	assert_int_equal(json_array_size(json_object_get(job, "attempts")), 2);
	assert_attempt(job, 0, "failed", 3);
	assert_attempt(job, 1, "succeeded", 0);
	json_decref(job);

	/* Not ended: refused, also beside an ended job (all or nothing). */
	blocker = harness_blocker(inst);
	free(harness_jobctl_refused(inst, 1, "retry", HARNESS_ID(bl, blocker),
	                            NULL));
	free(harness_jobctl_refused(inst, 1, "retry", idbuf, bl, NULL));
	snprintf(req, sizeof req, "{\"v\":1,\"op\":\"retry\",\"ids\":[%lld]}",
	         (long long)blocker);
	harness_raw_error(inst, req, "invalid_state");
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "succeeded");
	harness_assert_int(job, "attempt", 2);
	json_decref(job);
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, blocker), 0);
	job = harness_status(inst, blocker);
	harness_assert_int(job, "attempt", 1);
	json_decref(job);
}

/*
 * jobctl retry counts the automatic retries afresh: a job with --retries 1
 * that failed twice runs twice more.
 */
static void
test_retry_command_afresh(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_submit(inst, "--retries", "1", "--retry-delay",
	                            "0", "-c", "exit 2", NULL);
	char idbuf[24];
	json_t *job;

	assert_int_equal(harness_wait(inst, id), 2);
	job = harness_status(inst, id);
	harness_assert_int(job, "attempt", 2);
	json_decref(job);
	free(harness_jobctl_ok(inst, "retry", HARNESS_ID(idbuf, id), NULL));
	assert_int_equal(harness_wait(inst, id), 2);
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "failed");
	harness_assert_int(job, "attempt", 4);
	assert_int_equal(json_array_size(json_object_get(job, "attempts")), 4);
	for (size_t i = 0; i < 4; i++) {
		assert_attempt(job, i, "failed", 2);
	}
	json_decref(job);
}

/* A timed-out attempt is retried like any failure; each says "timeout". */
static void
test_timeout_retried(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id =
	    harness_submit(inst, "--timeout", "200ms", "--retries", "1",
	                   "--retry-delay", "0", "--", "sleep", "60", NULL);
	json_t *job, *attempts;

	assert_int_not_equal(harness_wait(inst, id), 0);
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "failed");
	harness_assert_str(job, "reason", "timeout");
	harness_assert_int(job, "attempt", 2);
	attempts = json_object_get(job, "attempts");
	assert_int_equal(json_array_size(attempts), 2);
	for (size_t i = 0; i < 2; i++) {
		harness_assert_str(json_array_get(attempts, i), "state",
		                   "failed");
		harness_assert_str(json_array_get(attempts, i), "reason",
		                   "timeout");
	}
	json_decref(job);
}

/*
 * An attempt that ends lost (jobd killed while it ran) is retried only with
 * --retry-on-lost; without it the job stays lost, retries or not.
 */
/*
 * Submit a job that, on its first attempt, leaves its supervisor's pid in
 * sup<i> and its own (its group's) in job<i>, then waits at the gate; on a
 * later attempt it exits 0 at once.
 */
static int64_t
submit_lost_once(struct jobd_inst *inst, int i, const char *const *args)
{
	char *cmd;
	int64_t id;

	assert_true(asprintf(&cmd,
	                     "cd '%s'; if [ -e flag%d ]; then exit 0; fi; "
	                     ": > flag%d; echo $PPID > s%d.tmp; "
	                     "mv s%d.tmp sup%d; echo $$ > j%d.tmp; "
	                     "mv j%d.tmp job%d; %s",
	                     inst->dir, i, i, i, i, i, i, i, i,
	                     harness_gate_cmd(inst)) > 0);
	id = harness_submit_running_argv(inst, cmd, args);
	free(cmd);
	return (id);
}

/* The pid a job of submit_lost_once left in file <name><i>. */
static pid_t
lost_once_pid(struct jobd_inst *inst, const char *name, int i)
{
	char path[PATH_MAX], *text;
	long long pid;

	snprintf(path, sizeof path, "%s/%s%d", inst->dir, name, i);
	assert_int_equal(harness_await_file(path, 10000), 0);
	text = harness_read_file(path, NULL);
	text[strcspn(text, "\n")] = '\0';
	assert_int_equal(util_parse_int(text, 2, INT_MAX, &pid), 0);
	free(text);
	return ((pid_t)pid);
}

/*
 * A supervisor killed with SIGKILL leaves no outcome: the attempt is lost.
 * With --retry-on-lost it is retried; without, the job ends lost. (jobd
 * kills the job left without its supervisor; test_supervisor_kill.c checks
 * that. The group is killed here too, in case it did not.)
 */
static void
test_retry_on_lost(void **state)
{
	static const char *const on_lost[] = { "--retries",       "1",
		                               "--retry-delay",   "0",
		                               "--retry-on-lost", NULL };
	static const char *const plain[] = { "--retries", "1", "--retry-delay",
		                             "0", NULL };
	struct jobd_inst *inst = *state;
	int64_t id[2];
	json_t *job, *a;

	for (int i = 0; i < 2; i++) {
		id[i] = submit_lost_once(inst, i, i == 0 ? on_lost : plain);
		/* Once the job has written its pid: jobd kills the rest. */
		(void)lost_once_pid(inst, "job", i);
		assert_int_equal(kill(lost_once_pid(inst, "sup", i), SIGKILL),
		                 0);
	}

	assert_int_equal(harness_wait(inst, id[0]), 0);
	job = harness_status(inst, id[0]);
	harness_assert_str(job, "state", "succeeded");
	harness_assert_int(job, "attempt", 2);
	harness_assert_json(job, "retry_on_lost", "true");
	assert_int_equal(json_array_size(json_object_get(job, "attempts")), 2);
	a = json_array_get(json_object_get(job, "attempts"), 0);
	harness_assert_int(a, "attempt", 1);
	harness_assert_str(a, "state", "lost");
	harness_assert_null(a, "exit_code");
	assert_non_null(strstr(json_string_value(json_object_get(a, "reason")),
	                       "killed by signal 9"));
	assert_attempt(job, 1, "succeeded", 0);
	json_decref(job);

	assert_int_equal(harness_wait(inst, id[1]), 1);
	job = harness_status(inst, id[1]);
	harness_assert_str(job, "state", "lost");
	harness_assert_int(job, "attempt", 1);
	harness_assert_json(job, "retry_on_lost", "false");
	json_decref(job);

	for (int i = 0; i < 2; i++)
		kill(-lost_once_pid(inst, "job", i), SIGKILL);
}

/*
 * jobd killed with SIGKILL while a job runs: the next jobd adopts the
 * job's supervisor, and the job ends with its true exit code, in its first
 * attempt.
 */
static void
test_adopt_after_kill9(void **state)
{
	static const char *const on_lost[] = { "--retries",       "1",
		                               "--retry-delay",   "0",
		                               "--retry-on-lost", NULL };
	struct jobd_inst *inst = *state;
	int64_t id;
	json_t *job;

	id = submit_lost_once(inst, 0, on_lost);
	harness_kill9(inst);
	harness_restart(inst);
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "running");
	json_decref(job);
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, id), 0);
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "succeeded");
	harness_assert_int(job, "attempt", 1);
	assert_int_equal(json_array_size(json_object_get(job, "attempts")), 1);
	json_decref(job);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, harness_setup, harness_teardown)
		T(test_in),
		T(test_in_zero),
		T(test_at),
		T(test_at_forms),
		T(test_timeout_kills_group),
		T(test_timeout_term),
		T(test_retries),
		T(test_retries_exhausted),
		T(test_retry_command),
		T(test_retry_command_afresh),
		T(test_timeout_retried),
		cmocka_unit_test_setup_teardown(
		    test_retry_on_lost, setup_parallel4, harness_teardown),
		T(test_adopt_after_kill9),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
