/*
 * Dependencies and hold/release (issue 3): --after chains run in order,
 * --after-any and --after-fail follow a failing job, a dependency that can
 * never be satisfied cancels its dependents down a chain with a reason
 * naming the dependency, unknown ids are refused; a held job does not start
 * while a slot is free and release lets it go.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static struct jobd_inst fixture;

static int
setup_parallel4(void **state)
{
	harness_start(&fixture, "--parallel", "4", NULL);
	*state = &fixture;
	return (0);
}

static int64_t
job_id(json_t *job)
{
	return (json_integer_value(json_object_get(job, "id")));
}

/*
 * A job on the gate that appends name to the order file when let through,
 * then exits with code; running when this returns.
 */
static int64_t
gated(struct jobd_inst *inst, const char *order, const char *name, int code)
{
	char cmd[PATH_MAX * 3];

	snprintf(cmd, sizeof cmd, "%s; echo %s >> '%s'; exit %d",
	         harness_gate_cmd(inst), name, order, code);
	return (harness_submit_running(inst, cmd));
}

/*
 * "jobctl --json submit OPT DEP -c 'echo NAME >> ORDER'": must be blocked
 * on n dependencies. Returns its id.
 */
static int64_t
dependent(struct jobd_inst *inst, const char *opt, int64_t dep,
          const char *order, const char *name, int pending)
{
	char cmd[PATH_MAX + 64], idbuf[24];
	json_t *job;
	int64_t id;

	snprintf(cmd, sizeof cmd, "echo %s >> '%s'", name, order);
	job = harness_jobctl_json(inst, "submit", opt, HARNESS_ID(idbuf, dep),
	                          "-c", cmd, NULL);
	harness_assert_str(job, "state", "blocked");
	harness_assert_int(job, "deps_pending", pending);
	id = job_id(job);
	json_decref(job);
	return (id);
}

static void
assert_file(const char *path, const char *expected)
{
	char *text = harness_read_file(path, NULL);

	if (text == NULL || strcmp(text, expected) != 0) {
		fail_msg("%s holds '%s', expected '%s'", path,
		         text ? text : "(no file)", expected);
	}
	free(text);
}

/* Does text hold the number id as a whole number? */
static int
names_id(const char *text, int64_t id)
{
	char num[24];
	const char *p = text;
	size_t len;

	len = (size_t)snprintf(num, sizeof num, "%lld", (long long)id);
	while (p != NULL && (p = strstr(p, num)) != NULL) {
		if ((p == text || !isdigit((unsigned char)p[-1])) &&
		    !isdigit((unsigned char)p[len])) {
			return (1);
		}
		p += len;
	}
	return (0);
}

/* The job ended cancelled without running, with a reason naming dep. */
static void
assert_cancelled_by(struct jobd_inst *inst, int64_t id, int64_t dep)
{
	json_t *job = harness_status(inst, id);
	const char *reason = json_string_value(json_object_get(job, "reason"));

	harness_assert_str(job, "state", "cancelled");
	harness_assert_null(job, "started_at");
	if (reason == NULL || !names_id(reason, dep)) {
		char *dump = json_dumps(job, 0);

		harness_msg("job %lld: the reason does not name job %lld: %s\n",
		            (long long)id, (long long)dep, dump);
		free(dump);
		json_decref(job);
		fail();
	}
	json_decref(job);
}

/* A --after chain of three runs in order, each after the one before. */
static void
test_after_chain(void **state)
{
	struct jobd_inst *inst = *state;
	char order[PATH_MAX];
	int64_t a, b, c, ids[3];
	json_t *job;

	snprintf(order, sizeof order, "%s/order", inst->dir);
	a = gated(inst, order, "A", 0);
	b = dependent(inst, "--after", a, order, "B", 1);
	c = dependent(inst, "--after", b, order, "C", 1);
	job = harness_status(inst, b);
	{
		char want[64];

		snprintf(want, sizeof want, "[{\"id\":%lld,\"type\":\"ok\"}]",
		         (long long)a);
		harness_assert_json(job, "after", want);
	}
	json_decref(job);

	harness_gate_release(inst);
	ids[0] = a;
	ids[1] = b;
	ids[2] = c;
	assert_int_equal(harness_wait_ids(inst, ids, 3), 0);
	assert_file(order, "A\nB\nC\n");
	for (int i = 1; i < 3; i++) {
		json_t *prev = harness_status(inst, ids[i - 1]);
		json_t *cur = harness_status(inst, ids[i]);

		if (harness_time_ms(cur, "started_at") <
		    harness_time_ms(prev, "finished_at")) {
			fail_msg("job %lld started before job %lld finished",
			         (long long)ids[i], (long long)ids[i - 1]);
		}
		harness_assert_int(cur, "deps_pending", 0);
		json_decref(prev);
		json_decref(cur);
	}
}

/*
 * --after A,B waits for both: after one of them ends it is still blocked,
 * on one dependency.
 */
static void
test_after_two(void **state)
{
	struct jobd_inst *inst = *state;
	char first[PATH_MAX], cmd[PATH_MAX * 4], deps[64], *text;
	int64_t id[2], x;
	json_t *job;

	/* Each, let through the gate, names itself in "first" (renamed in). */
	snprintf(first, sizeof first, "%s/first", inst->dir);
	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof cmd,
		         "%s; echo %d > '%s.%d'; mv '%s.%d' '%s'",
		         harness_gate_cmd(inst), i, first, i, first, i, first);
		id[i] = harness_submit_running(inst, cmd);
	}
	snprintf(deps, sizeof deps, "%lld,%lld", (long long)id[0],
	         (long long)id[1]);
	job = harness_jobctl_json(inst, "submit", "--after", deps, "--", "true",
	                          NULL);
	harness_assert_str(job, "state", "blocked");
	harness_assert_int(job, "deps_pending", 2);
	x = job_id(job);
	json_decref(job);

	harness_gate_release(inst);
	assert_int_equal(harness_await_file(first, HARNESS_EVENT_MS), 0);
	text = harness_read_file(first, NULL);
	assert_non_null(text);
	assert_true(text[0] == '0' || text[0] == '1');
	assert_int_equal(harness_wait(inst, id[text[0] - '0']), 0);
	free(text);
	job = harness_status(inst, x);
	harness_assert_str(job, "state", "blocked");
	harness_assert_int(job, "deps_pending", 1);
	json_decref(job);

	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, x), 0);
	assert_int_equal(harness_wait_ids(inst, id, 2), 0);
}

/* --after-any runs after a job that failed. */
static void
test_after_any(void **state)
{
	struct jobd_inst *inst = *state;
	char order[PATH_MAX];
	int64_t f, x;
	json_t *job;

	snprintf(order, sizeof order, "%s/order", inst->dir);
	f = gated(inst, order, "F", 1);
	x = dependent(inst, "--after-any", f, order, "X", 1);
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, x), 0);
	assert_int_equal(harness_wait(inst, f), 1);
	assert_file(order, "F\nX\n");
	job = harness_status(inst, x);
	harness_assert_str(job, "state", "succeeded");
	{
		char want[64];

		snprintf(want, sizeof want, "[{\"id\":%lld,\"type\":\"any\"}]",
		         (long long)f);
		harness_assert_json(job, "after", want);
	}
	json_decref(job);
}

/*
 * --after-fail runs after a job that failed, and is cancelled (without
 * running) after one that succeeded.
 */
static void
test_after_fail(void **state)
{
	struct jobd_inst *inst = *state;
	char order[PATH_MAX], other[PATH_MAX];
	int64_t f, s, x, y;

	snprintf(order, sizeof order, "%s/order", inst->dir);
	snprintf(other, sizeof other, "%s/other", inst->dir);
	f = gated(inst, order, "F", 1);
	x = dependent(inst, "--after-fail", f, order, "X", 1);
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, x), 0);
	assert_file(order, "F\nX\n");

	s = gated(inst, other, "S", 0);
	y = dependent(inst, "--after-fail", s, other, "Y", 1);
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, s), 0);
	assert_int_equal(harness_wait(inst, y), 1);
	assert_cancelled_by(inst, y, s);
	assert_file(other, "S\n");
}

/*
 * A failed root cancels a --after chain of three, each job with a reason
 * that names its own dependency; none of them runs.
 */
static void
test_failed_root_cancels_chain(void **state)
{
	struct jobd_inst *inst = *state;
	char order[PATH_MAX];
	int64_t root, id[3];

	snprintf(order, sizeof order, "%s/order", inst->dir);
	root = gated(inst, order, "R", 1);
	id[0] = dependent(inst, "--after", root, order, "B1", 1);
	id[1] = dependent(inst, "--after", id[0], order, "B2", 1);
	id[2] = dependent(inst, "--after", id[1], order, "B3", 1);
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, root), 1);
	/* Cancelled without an exit code: wait says 1. */
	assert_int_equal(harness_wait_ids(inst, id, 3), 1);
	assert_cancelled_by(inst, id[0], root);
	assert_cancelled_by(inst, id[1], id[0]);
	assert_cancelled_by(inst, id[2], id[1]);
	assert_file(order, "R\n");
}

/*
 * Cancelling a blocked job ends it at once, and that end passes on: a
 * --after dependent is cancelled naming it, an --after-any one runs.
 */
static void
test_cancel_blocked(void **state)
{
	struct jobd_inst *inst = *state;
	char order[PATH_MAX], idbuf[24];
	int64_t a, x, ok, any;
	json_t *job;

	snprintf(order, sizeof order, "%s/order", inst->dir);
	a = gated(inst, order, "A", 0);
	x = dependent(inst, "--after", a, order, "X", 1);
	ok = dependent(inst, "--after", x, order, "OK", 1);
	any = dependent(inst, "--after-any", x, order, "ANY", 1);

	free(harness_jobctl_ok(inst, "cancel", HARNESS_ID(idbuf, x), NULL));
	job = harness_status(inst, x);
	harness_assert_str(job, "state", "cancelled");
	harness_assert_null(job, "started_at");
	json_decref(job);
	assert_int_equal(harness_wait(inst, any), 0);
	assert_int_equal(harness_wait(inst, ok), 1);
	assert_cancelled_by(inst, ok, x);
	assert_file(order, "ANY\n");

	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, a), 0);
	assert_file(order, "ANY\nA\n");
}

/* A dependency on a job that already ended well is satisfied at once. */
static void
test_after_ended(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t ok = harness_submit(inst, "--", "true", NULL), x;
	char idbuf[24];

	assert_int_equal(harness_wait(inst, ok), 0);
	x = harness_submit(inst, "--after", HARNESS_ID(idbuf, ok), "--", "true",
	                   NULL);
	assert_int_equal(harness_wait(inst, x), 0);
}

/* An unknown dependency is refused (not_found) and nothing is made. */
static void
test_after_unknown(void **state)
{
	static const char *const opts[] = { "--after", "--after-any",
		                            "--after-fail" };
	static const char *const fields[] = { "after", "after_any",
		                              "after_fail" };
	struct jobd_inst *inst = *state;
	int64_t ok = harness_submit(inst, "--", "true", NULL);
	char deps[64], req[256], *err, *before, *after;
	json_t *jobs;

	assert_int_equal(harness_wait(inst, ok), 0);
	jobs = harness_jobctl_json(inst, "list", NULL);
	before = harness_ids_text(jobs);
	json_decref(jobs);
	snprintf(deps, sizeof deps, "%lld,999999", (long long)ok);
	for (int i = 0; i < 3; i++) {
		err = harness_jobctl_refused(inst, 1, "submit", opts[i], deps,
		                             "--", "true", NULL);
		if (strstr(err, "999999") == NULL) {
			fail_msg("%s %s: the message does not name 999999: %s",
			         opts[i], deps, err);
		}
		free(err);
		snprintf(req, sizeof req,
		         "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
		         "\"argv\":[\"true\"],\"%s\":[999999]}",
		         fields[i]);
		harness_raw_error(inst, req, "not_found");
	}
	jobs = harness_jobctl_json(inst, "list", NULL);
	after = harness_ids_text(jobs);
	json_decref(jobs);
	assert_string_equal(after, before);
	free(before);
	free(after);
}

/*
 * A held queued job does not start though a slot is free: a job submitted
 * after it runs to the end first. Release lets it run. A job can be held
 * and released twice; releasing one not held changes nothing.
 */
static void
test_hold_release(void **state)
{
	struct jobd_inst *inst = *state;
	char ran[PATH_MAX], cmd[PATH_MAX + 16], idbuf[24], *out;
	int64_t blocker = harness_blocker(inst), h, y;
	json_t *job;

	snprintf(ran, sizeof ran, "%s/ran", inst->dir);
	snprintf(cmd, sizeof cmd, ": > '%s'", ran);
	h = harness_submit(inst, "-c", cmd, NULL);
	HARNESS_ID(idbuf, h);
	job = harness_jobctl_json(inst, "hold", idbuf, NULL);
	harness_assert_int(job, "id", h);
	harness_assert_str(job, "state", "queued");
	harness_assert_json(job, "held", "true");
	json_decref(job);
	out = harness_jobctl_ok(inst, "status", idbuf, NULL);
	if (strstr(out, "queued (held)") == NULL) {
		fail_msg("status of a held job does not say 'queued (held)':\n"
		         "%s",
		         out);
	}
	free(out);

	/* The slot frees up; y, submitted after h, runs to the end. */
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, blocker), 0);
	y = harness_submit(inst, "--", "true", NULL);
	assert_int_equal(harness_wait(inst, y), 0);
	job = harness_status(inst, h);
	harness_assert_str(job, "state", "queued");
	harness_assert_json(job, "held", "true");
	json_decref(job);
	harness_assert_absent(ran);

	job = harness_jobctl_json(inst, "release", idbuf, NULL);
	harness_assert_json(job, "held", "false");
	json_decref(job);
	assert_int_equal(harness_wait(inst, h), 0);
	assert_int_equal(harness_await_file(ran, HARNESS_EVENT_MS), 0);
}

/* A held blocked job stays queued (held) once its dependency ended. */
static void
test_hold_blocked(void **state)
{
	struct jobd_inst *inst = *state;
	char order[PATH_MAX], idbuf[24];
	int64_t a, x, y;
	json_t *job;

	snprintf(order, sizeof order, "%s/order", inst->dir);
	a = gated(inst, order, "A", 0);
	x = dependent(inst, "--after", a, order, "X", 1);
	HARNESS_ID(idbuf, x);
	job = harness_jobctl_json(inst, "hold", idbuf, NULL);
	harness_assert_str(job, "state", "blocked");
	harness_assert_json(job, "held", "true");
	json_decref(job);

	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, a), 0);
	y = harness_submit(inst, "--", "true", NULL);
	assert_int_equal(harness_wait(inst, y), 0);
	job = harness_status(inst, x);
	harness_assert_str(job, "state", "queued");
	harness_assert_json(job, "held", "true");
	json_decref(job);
	assert_file(order, "A\n");

	free(harness_jobctl_ok(inst, "release", idbuf, NULL));
	assert_int_equal(harness_wait(inst, x), 0);
	assert_file(order, "A\nX\n");
}

/*
 * Hold is refused for running and ended jobs (all or nothing); a held job
 * can be cancelled; releasing a job that is not held is a no-op.
 */
static void
test_hold_refused(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t done = harness_submit(inst, "--", "true", NULL);
	int64_t blocker = harness_blocker(inst), q;
	char d[24], b[24], qb[24], req[128];
	json_t *job;

	assert_int_equal(harness_wait(inst, done), 0);
	HARNESS_ID(d, done);
	HARNESS_ID(b, blocker);
	free(harness_jobctl_refused(inst, 1, "hold", d, NULL));
	snprintf(req, sizeof req, "{\"v\":1,\"op\":\"hold\",\"ids\":[%lld]}",
	         (long long)done);
	harness_raw_error(inst, req, "invalid_state");
	free(harness_jobctl_refused(inst, 1, "hold", b, NULL));
	snprintf(req, sizeof req, "{\"v\":1,\"op\":\"hold\",\"ids\":[%lld]}",
	         (long long)blocker);
	harness_raw_error(inst, req, "invalid_state");
	harness_raw_error(inst, "{\"v\":1,\"op\":\"hold\",\"ids\":[999999]}",
	                  "not_found");
	free(harness_jobctl_refused(inst, 1, "release", d, NULL));

	/* q is scheduled far ahead: hold it with a bad id beside it. */
	q = harness_submit(inst, "--in", "1h", "--", "true", NULL);
	HARNESS_ID(qb, q);
	free(harness_jobctl_refused(inst, 1, "hold", qb, d, NULL));
	job = harness_status(inst, q);
	harness_assert_json(job, "held", "false");
	json_decref(job);
	/* Not held: release is a no-op. */
	job = harness_jobctl_json(inst, "release", qb, NULL);
	harness_assert_str(job, "state", "scheduled");
	harness_assert_json(job, "held", "false");
	json_decref(job);
	/* Held, then cancelled. */
	free(harness_jobctl_ok(inst, "hold", qb, NULL));
	free(harness_jobctl_ok(inst, "cancel", qb, NULL));
	job = harness_status(inst, q);
	harness_assert_str(job, "state", "cancelled");
	json_decref(job);

	job = harness_status(inst, done);
	harness_assert_json(job, "held", "false");
	harness_assert_str(job, "state", "succeeded");
	json_decref(job);
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, blocker), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T4(f)                                                                  \
	cmocka_unit_test_setup_teardown(f, setup_parallel4, harness_teardown)
#define T1(f)                                                                  \
	cmocka_unit_test_setup_teardown(f, harness_setup_parallel1,            \
	                                harness_teardown)
		T4(test_after_chain),
		T4(test_after_two),
		T4(test_after_any),
		T4(test_after_fail),
		T4(test_failed_root_cancels_chain),
		T4(test_cancel_blocked),
		T4(test_after_ended),
		T4(test_after_unknown),
		T1(test_hold_release),
		T4(test_hold_blocked),
		T4(test_hold_refused),
#undef T1
#undef T4
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
