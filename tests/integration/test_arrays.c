/*
 * Arrays and the job environment (issue 3): --array 1-20%3 runs every index
 * once, never more than 3 at once (from the tasks' own stamps); status,
 * wait, cancel and --after take the array id; every job gets JOBD_JOB_ID,
 * JOBD_QUEUE and JOBD_ATTEMPT (and JOBD_ARRAY_ID, JOBD_ARRAY_INDEX), which
 * replace same-named variables of the submitted environment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define TASKS 20

static struct jobd_inst fixture;

/* --parallel 8: more than the array's limit, whatever the CPU count. */
static int
setup_parallel8(void **state)
{
	harness_start(&fixture, "--parallel", "8", NULL);
	*state = &fixture;
	return (0);
}

/* "jobctl --json status ID": every job it stands for, as an array. */
static json_t *
status_all(struct jobd_inst *inst, int64_t id)
{
	char idbuf[24];
	json_t *jobs =
	    harness_jobctl_json(inst, "status", HARNESS_ID(idbuf, id), NULL);

	if (!json_is_array(jobs)) {
		char *dump = json_dumps(jobs, JSON_ENCODE_ANY);

		harness_msg("status %s: not an array: %s\n", idbuf, dump);
		free(dump);
		json_decref(jobs);
		fail();
	}
	return (jobs);
}

/*
 * --array 1-20%3: the array id is printed; 20 tasks with ids A+1..A+20 run
 * each index exactly once, never more than 3 at once; wait on the array
 * exits 0, status of the array gives the 20 tasks in index order.
 */
static void
test_array_throttle(void **state)
{
	struct jobd_inst *inst = *state;
	char stamps[PATH_MAX], idbuf[24], *cmd, *text, *line, *save = NULL;
	int seen[TASKS + 1] = { 0 }, most, idx;
	int64_t array;
	json_t *jobs, *job;
	size_t n, i;

	snprintf(stamps, sizeof stamps, "%s/stamps", inst->dir);
	cmd = harness_stamp_cmd(stamps, "$JOBD_ARRAY_INDEX $JOBD_ARRAY_ID",
	                        "sleep 0.1");
	array = harness_submit(inst, "--array", "1-20%3", "-c", cmd, NULL);
	free(cmd);
	assert_int_equal(harness_wait_within(inst, &array, 1, 60), 0);

	most = harness_stamps_overlap(stamps, &n);
	assert_int_equal(n, TASKS);
	if (most > 3) {
		fail_msg("%d tasks of an array with %%3 ran at once", most);
	}
	text = harness_read_file(stamps, NULL);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		long long aid;

		if (line[0] != 's') {
			continue;
		}
		if (sscanf(line, "s %d %lld", &idx, &aid) != 2 || idx < 1 ||
		    idx > TASKS || aid != array) {
			fail_msg("task stamp '%s' (array %lld)", line,
			         (long long)array);
		}
		seen[idx]++;
	}
	free(text);
	for (idx = 1; idx <= TASKS; idx++) {
		if (seen[idx] != 1) {
			fail_msg("index %d ran %d times", idx, seen[idx]);
		}
	}

	jobs = status_all(inst, array);
	assert_int_equal(json_array_size(jobs), TASKS);
	json_array_foreach(jobs, i, job)
	{
		harness_assert_int(job, "id", array + 1 + (int64_t)i);
		harness_assert_int(job, "array_id", array);
		harness_assert_int(job, "array_index", (long long)i + 1);
		harness_assert_int(job, "array_limit", 3);
		harness_assert_str(job, "state", "succeeded");
	}
	json_decref(jobs);
	/* logs takes job ids only, and no job has the array's id. */
	free(harness_jobctl_refused(inst, 1, "logs", HARNESS_ID(idbuf, array),
	                            NULL));
}

/* submit --json of an array gives its first task and the array's id. */
static void
test_array_submit_json(void **state)
{
	struct jobd_inst *inst = *state;
	json_t *job = harness_jobctl_json(inst, "submit", "--array", "5-7",
	                                  "--", "true", NULL);
	int64_t array, first;

	first = json_integer_value(json_object_get(job, "id"));
	array = json_integer_value(json_object_get(job, "array_id"));
	harness_assert_int(job, "array_index", 5);
	harness_assert_null(job, "array_limit");
	assert_int_equal(first, array + 1);
	json_decref(job);
	assert_int_equal(harness_wait(inst, array), 0);
	job = status_all(inst, array);
	assert_int_equal(json_array_size(job), 3);
	harness_assert_int(json_array_get(job, 2), "array_index", 7);
	harness_assert_int(json_array_get(job, 2), "id", array + 3);
	json_decref(job);

	/* An array of one task is still an array to status --json. */
	array = harness_submit(inst, "--array", "4", "--", "true", NULL);
	assert_int_equal(harness_wait(inst, array), 0);
	job = status_all(inst, array);
	assert_int_equal(json_array_size(job), 1);
	harness_assert_int(json_array_get(job, 0), "id", array + 1);
	harness_assert_int(json_array_get(job, 0), "array_index", 4);
	json_decref(job);
}

/*
 * cancel on the array id cancels every remaining task: the two running
 * ones (stopped with their process group) and the blocked ones, which
 * never run.
 */
static void
test_array_cancel(void **state)
{
	struct jobd_inst *inst = *state;
	char marks[PATH_MAX], m1[PATH_MAX + 8], m2[PATH_MAX + 8], idbuf[24];
	char cmd[PATH_MAX * 3], path[PATH_MAX + 16];
	int64_t array;
	json_t *jobs, *job;
	size_t i;
	int code;

	snprintf(marks, sizeof marks, "%s/m", inst->dir);
	snprintf(cmd, sizeof cmd, ": > '%s.'$JOBD_ARRAY_INDEX; %s", marks,
	         harness_gate_cmd(inst));
	array = harness_submit(inst, "--array", "1-10%2", "-c", cmd, NULL);
	snprintf(m1, sizeof m1, "%s.1", marks);
	snprintf(m2, sizeof m2, "%s.2", marks);
	assert_int_equal(harness_await_file(m1, HARNESS_EVENT_MS), 0);
	assert_int_equal(harness_await_file(m2, HARNESS_EVENT_MS), 0);
	jobs = status_all(inst, array);
	harness_assert_str(json_array_get(jobs, 0), "state", "running");
	harness_assert_str(json_array_get(jobs, 1), "state", "running");
	for (i = 2; i < 10; i++) {
		/* Blocked on a slot of the array: counted in deps_pending. */
		harness_assert_str(json_array_get(jobs, i), "state", "blocked");
		harness_assert_int(json_array_get(jobs, i), "deps_pending", 1);
	}
	json_decref(jobs);

	free(harness_jobctl_ok(inst, "cancel", HARNESS_ID(idbuf, array), NULL));
	code = harness_wait(inst, array);
	assert_int_not_equal(code, 0);
	assert_int_not_equal(code, 124);
	jobs = status_all(inst, array);
	assert_int_equal(json_array_size(jobs), 10);
	json_array_foreach(jobs, i, job)
	{
		harness_assert_str(job, "state", "cancelled");
		if (i >= 2) {
			harness_assert_null(job, "started_at");
		}
	}
	json_decref(jobs);
	for (i = 3; i <= 10; i++) {
		snprintf(path, sizeof path, "%s.%zu", marks, i);
		harness_assert_absent(path);
	}
}

/* --after ARRAYID waits for every task. */
static void
test_after_array(void **state)
{
	struct jobd_inst *inst = *state;
	char marks[PATH_MAX], cmd[PATH_MAX * 3], path[PATH_MAX + 16];
	char idbuf[24];
	int64_t array, x;
	json_t *job, *tasks;
	size_t i;

	snprintf(marks, sizeof marks, "%s/m", inst->dir);
	snprintf(cmd, sizeof cmd, ": > '%s.'$JOBD_ARRAY_INDEX; %s", marks,
	         harness_gate_cmd(inst));
	array = harness_submit(inst, "--array", "1-3", "-c", cmd, NULL);
	for (i = 1; i <= 3; i++) {
		snprintf(path, sizeof path, "%s.%zu", marks, i);
		assert_int_equal(harness_await_file(path, HARNESS_EVENT_MS), 0);
	}
	job = harness_jobctl_json(inst, "submit", "--after",
	                          HARNESS_ID(idbuf, array), "--", "true", NULL);
	harness_assert_str(job, "state", "blocked");
	harness_assert_int(job, "deps_pending", 3);
	x = json_integer_value(json_object_get(job, "id"));
	json_decref(job);

	for (i = 0; i < 3; i++) {
		harness_gate_release(inst);
	}
	assert_int_equal(harness_wait(inst, x), 0);
	job = harness_status(inst, x);
	tasks = status_all(inst, array);
	for (i = 0; i < 3; i++) {
		json_t *t = json_array_get(tasks, i);

		harness_assert_str(t, "state", "succeeded");
		if (harness_time_ms(job, "started_at") <
		    harness_time_ms(t, "finished_at")) {
			fail_msg("job %lld started before task %zu ended",
			         (long long)x, i + 1);
		}
	}
	json_decref(tasks);
	json_decref(job);
}

/*
 * The job environment: JOBD_JOB_ID, JOBD_QUEUE and JOBD_ATTEMPT are set,
 * and win over same-named variables of the submitter's environment.
 */
static void
test_job_env(void **state)
{
	static const char *const env[] = { "JOBD_JOB_ID=bogus",
		                           "JOBD_QUEUE=bogus",
		                           "JOBD_ATTEMPT=bogus",
		                           "JOBD_ARRAY_INDEX=bogus", NULL };
	static const char *const args[] = {
		"submit",
		"-q",
		"envq",
		"-c",
		"echo \"$JOBD_JOB_ID $JOBD_QUEUE $JOBD_ATTEMPT "
		"${JOBD_ARRAY_INDEX-unset}\"",
		NULL
	};
	struct jobd_inst *inst = *state;
	char *out, *err, want[128];
	int64_t id, plain;

	assert_int_equal(harness_jobctl_run(inst, env, args, &out, &err), 0);
	id = harness_parse_id(out, err);
	free(out);
	free(err);
	assert_int_equal(harness_wait(inst, id), 0);
	out = harness_logs(inst, id, 0);
	snprintf(want, sizeof want, "%lld envq 1 unset\n", (long long)id);
	assert_string_equal(out, want);
	free(out);

	plain = harness_submit(
	    inst, "-c", "echo \"$JOBD_JOB_ID $JOBD_QUEUE $JOBD_ATTEMPT\"",
	    NULL);
	assert_int_equal(harness_wait(inst, plain), 0);
	out = harness_logs(inst, plain, 0);
	snprintf(want, sizeof want, "%lld default 1\n", (long long)plain);
	assert_string_equal(out, want);
	free(out);
}

/* Array tasks see JOBD_ARRAY_ID and their own JOBD_ARRAY_INDEX. */
static void
test_array_env(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t array = harness_submit(
	    inst, "--array", "7-8", "-c",
	    "echo \"$JOBD_ARRAY_ID $JOBD_ARRAY_INDEX $JOBD_JOB_ID\"", NULL);
	char want[96], *out;

	assert_int_equal(harness_wait(inst, array), 0);
	for (int i = 0; i < 2; i++) {
		out = harness_logs(inst, array + 1 + i, 0);
		snprintf(want, sizeof want, "%lld %d %lld\n", (long long)array,
		         7 + i, (long long)(array + 1 + i));
		assert_string_equal(out, want);
		free(out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f)                                                                   \
	cmocka_unit_test_setup_teardown(f, setup_parallel8, harness_teardown)
		T(test_array_throttle), T(test_array_submit_json),
		T(test_array_cancel),   T(test_after_array),
		T(test_job_env),        T(test_array_env),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
