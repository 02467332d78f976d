/*
 * jobctl wait (exit codes, signals, timeouts, several ids) and jobctl cancel
 * (running jobs and their children, queued jobs, finished jobs, signals).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define ID(buf, id)                                                            \
	(snprintf((buf), sizeof(buf), "%lld", (long long)(id)), (buf))

/* The job ended in state with this exit code and signal (-1: null). */
static void
assert_outcome(struct jobd_inst *inst, int64_t id, const char *state,
               int exit_code, int sig)
{
	json_t *job = harness_status(inst, id);

	harness_assert_str(job, "state", state);
	if (exit_code >= 0) {
		harness_assert_int(job, "exit_code", exit_code);
	} else {
		harness_assert_null(job, "exit_code");
	}
	if (sig > 0) {
		harness_assert_int(job, "signal", sig);
	} else {
		harness_assert_null(job, "signal");
	}
	harness_assert_time(job, "finished_at");
	json_decref(job);
}

/*
 * A job cancelled while it ran was killed by sig: wait exits 128+sig, like
 * any job a signal killed ("1" is for cancelled jobs without an exit code or
 * signal, i.e. those cancelled while queued).
 */
static void
assert_wait_cancelled(struct jobd_inst *inst, int64_t id, int sig)
{
	assert_int_equal(harness_wait(inst, id), 128 + sig);
}

/* "jobctl cancel ID [ARGS...]": returns the exit code. */
static int
cancel(struct jobd_inst *inst, int64_t id, const char *arg1, const char *arg2)
{
	char idbuf[24], *err;
	const char *args[] = { "cancel", ID(idbuf, id), arg1, arg2, NULL };
	int code = harness_jobctl_run(inst, NULL, args, NULL, &err);

	if (code != 0) {
		harness_msg("cancel %s: exit %d, stderr: %s\n", idbuf, code,
		            err);
	}
	free(err);
	return (code);
}

static void
test_wait_success(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_submit(inst, "--", "true", NULL);

	assert_int_equal(harness_wait(inst, id), 0);
	assert_outcome(inst, id, "succeeded", 0, 0);
}

static void
test_wait_exit_code(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_submit(inst, "-c", "exit 3", NULL);

	assert_int_equal(harness_wait(inst, id), 3);
	assert_outcome(inst, id, "failed", 3, 0);
}

static void
test_wait_killed_by_signal(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_submit(inst, "-c", "kill -9 $$", NULL);

	assert_int_equal(harness_wait(inst, id), 128 + 9);
	assert_outcome(inst, id, "failed", -1, 9);
}

static void
test_wait_timeout(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_blocker(inst), t0;
	char idbuf[24], st[32];

	t0 = harness_now_ms();
	assert_int_equal(harness_jobctl(inst, NULL, NULL, "wait", ID(idbuf, id),
	                                "--timeout", "200ms", NULL),
	                 124);
	/* Not a speed check: far below the 20 s the job would need. */
	assert_true(harness_now_ms() - t0 < 10000);
	assert_string_equal(harness_state(inst, id, st, sizeof st), "running");

	assert_int_equal(cancel(inst, id, NULL, NULL), 0);
	assert_wait_cancelled(inst, id, 15);
	assert_outcome(inst, id, "cancelled", -1, 15);
}

/* Several ids: the first non-zero code in the order given. */
static void
test_wait_several(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t ok = harness_submit(inst, "--", "true", NULL);
	int64_t three = harness_submit(inst, "-c", "exit 3", NULL);
	/* Ends after "three", so the order given decides, not the end. */
	int64_t five = harness_submit(inst, "-c", "sleep 0.2; exit 5", NULL);
	int64_t ids[][3] = { { ok, three, five }, { ok, five, three } };

	assert_int_equal(harness_wait_ids(inst, ids[0], 3), 3);
	assert_int_equal(harness_wait_ids(inst, ids[1], 3), 5);
	assert_int_equal(harness_wait_ids(inst, &ok, 1), 0);
}

/*
 * A running job and the child it started in the background are both gone
 * after cancel, and the job ends cancelled.
 */
static void
test_cancel_running_with_child(void **state)
{
	struct jobd_inst *inst = *state;
	char pidfile[PATH_MAX], cmd[PATH_MAX * 4], *text;
	int shell_pid = 0, child_pid = 0, shell_fd, child_fd;
	int64_t id;

	snprintf(pidfile, sizeof pidfile, "%s/pids", inst->dir);
	snprintf(cmd, sizeof cmd,
	         "sleep 300 & echo $$ $! > '%s.tmp'; mv '%s.tmp' '%s'; wait",
	         pidfile, pidfile, pidfile);
	id = harness_submit(inst, "-c", cmd, NULL);
	assert_int_equal(harness_await_file(pidfile, HARNESS_EVENT_MS), 0);
	text = harness_read_file(pidfile, NULL);
	assert_non_null(text);
	assert_int_equal(sscanf(text, "%d %d", &shell_pid, &child_pid), 2);
	free(text);
	/* Both alive now; the pidfds follow these very processes. */
	shell_fd = harness_track(inst, shell_pid);
	child_fd = harness_track(inst, child_pid);

	assert_int_equal(cancel(inst, id, NULL, NULL), 0);
	assert_wait_cancelled(inst, id, 15);
	assert_outcome(inst, id, "cancelled", -1, 15);
	/* Signals are delivered asynchronously: allow the exits to land. */
	assert_int_equal(harness_await_exit(shell_fd, 5000), 0);
	assert_int_equal(harness_await_exit(child_fd, 5000), 0);
}

/* A queued job ends cancelled at once and never runs. */
static void
test_cancel_queued(void **state)
{
	struct jobd_inst *inst = *state;
	char ran[PATH_MAX], cmd[PATH_MAX + 16];
	int64_t blocker = harness_blocker(inst), queued, after;
	json_t *job;

	snprintf(ran, sizeof ran, "%s/ran", inst->dir);
	snprintf(cmd, sizeof cmd, ": > '%s'", ran);
	queued = harness_submit(inst, "-c", cmd, NULL);

	assert_int_equal(cancel(inst, queued, NULL, NULL), 0);
	job = harness_status(inst, queued);
	harness_assert_str(job, "state", "cancelled");
	harness_assert_null(job, "exit_code");
	harness_assert_null(job, "started_at");
	harness_assert_int(job, "attempt", 0);
	json_decref(job);
	assert_int_equal(harness_wait(inst, queued), 1);

	/* Jobs run in order: once "after" ran, "queued" had its chance. */
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, blocker), 0);
	after = harness_submit(inst, "--", "true", NULL);
	assert_int_equal(harness_wait(inst, after), 0);
	assert_int_equal(access(ran, F_OK), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_cancel_finished(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_submit(inst, "--", "true", NULL);
	char req[128], idbuf[24], *err;

	assert_int_equal(harness_wait(inst, id), 0);
	assert_int_equal(
	    harness_jobctl(inst, NULL, &err, "cancel", ID(idbuf, id), NULL), 1);
	assert_true(strlen(err) > 0);
	free(err);
	snprintf(req, sizeof req, "{\"v\":1,\"op\":\"cancel\",\"ids\":[%lld]}",
	         (long long)id);
	harness_raw_error(inst, req, "invalid_state");
	assert_outcome(inst, id, "succeeded", 0, 0);
}

/* --signal KILL reaches a job that ignores TERM, without the 10 s grace. */
static void
test_cancel_signal_kill(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_submit_running(inst, "trap '' TERM; sleep 300");
	char idbuf[24];

	assert_int_equal(cancel(inst, id, "--signal", "KILL"), 0);
	assert_int_not_equal(harness_jobctl(inst, NULL, NULL, "wait",
	                                    ID(idbuf, id), "--timeout", "5s",
	                                    NULL),
	                     124);
	assert_outcome(inst, id, "cancelled", -1, 9);
}

static void
test_cancel_unknown_signal(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_blocker(inst);
	char idbuf[24], st[32], *err;

	assert_int_equal(harness_jobctl(inst, NULL, &err, "cancel",
	                                ID(idbuf, id), "--signal", "FOO", NULL),
	                 2);
	assert_true(strlen(err) > 0);
	free(err);
	assert_string_equal(harness_state(inst, id, st, sizeof st), "running");
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, id), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, harness_setup, harness_teardown)
		T(test_wait_success),
		T(test_wait_exit_code),
		T(test_wait_killed_by_signal),
		T(test_wait_timeout),
		T(test_wait_several),
		T(test_cancel_running_with_child),
		cmocka_unit_test_setup_teardown(test_cancel_queued,
		                                harness_setup_parallel1,
		                                harness_teardown),
		T(test_cancel_finished),
		T(test_cancel_signal_kill),
		T(test_cancel_unknown_signal),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
