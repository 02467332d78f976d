/*
 * Submitting, running and inspecting jobs with the real jobd and jobctl:
 * the job object, output, shell commands, the captured environment, names
 * and priorities, status of several jobs, list, logs --follow, idempotent
 * submits and the JOBD_SOCKET variable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* "jobctl --json ARGS..." must succeed: its parsed output. */
static json_t *
jobctl_json(struct jobd_inst *inst, const char *cmd, const char *arg1,
            const char *arg2, const char *arg3)
{
	const char *args[] = { "--json", cmd, arg1, arg2, arg3, NULL };
	char *out, *err;
	json_t *j;
	int code = harness_jobctl_run(inst, NULL, args, &out, &err);

	if (code != 0) {
		harness_msg("jobctl --json %s exited %d; stderr:\n%s\n", cmd,
		            code, err);
		free(out);
		free(err);
		fail();
	}
	j = harness_json(out);
	free(out);
	free(err);
	return (j);
}

static void
assert_output(struct jobd_inst *inst, int64_t id, int want_stderr,
              const char *expected)
{
	char *out = harness_logs(inst, id, want_stderr);

	assert_string_equal(out, expected);
	free(out);
}

/* Time field a is not after b (same format: text order is time order). */
static void
assert_in_order(json_t *job, const char *a, const char *b)
{
	const char *ta = json_string_value(json_object_get(job, a));
	const char *tb = json_string_value(json_object_get(job, b));

	assert_non_null(ta);
	assert_non_null(tb);
	if (strcmp(ta, tb) > 0) {
		fail_msg("%s %s is after %s %s", a, ta, b, tb);
	}
}

static void
test_submit_run_status(void **state)
{
	struct jobd_inst *inst = *state;
	char cwd[PATH_MAX], path[PATH_MAX * 2];
	int64_t id;
	json_t *job;

	id = harness_submit(inst, "--", "sh", "-c", "echo hello; echo oops >&2",
	                    NULL);
	assert_int_equal(harness_wait(inst, id), 0);

	job = harness_status(inst, id);
	assert_non_null(getcwd(cwd, sizeof cwd));
	harness_assert_str(job, "state", "succeeded");
	harness_assert_int(job, "exit_code", 0);
	harness_assert_null(job, "signal");
	harness_assert_json(job, "argv",
	                    "[\"sh\", \"-c\", \"echo hello; echo oops >&2\"]");
	harness_assert_null(job, "shell");
	harness_assert_str(job, "cwd", cwd);
	harness_assert_int(json_object_get(job, "owner"), "uid", getuid());
	harness_assert_int(json_object_get(job, "owner"), "gid", getgid());
	assert_true(json_integer_value(json_object_get(
	                json_object_get(job, "owner"), "pid")) > 0);
	harness_assert_int(job, "priority", 0);
	harness_assert_int(job, "attempt", 1);
	harness_assert_time(job, "submitted_at");
	harness_assert_time(job, "started_at");
	harness_assert_time(job, "finished_at");
	assert_in_order(job, "submitted_at", "started_at");
	assert_in_order(job, "started_at", "finished_at");
	snprintf(path, sizeof path, "%s/out/%lld.out", inst->state,
	         (long long)id);
	harness_assert_str(job, "stdout", path);
	snprintf(path, sizeof path, "%s/out/%lld.err", inst->state,
	         (long long)id);
	harness_assert_str(job, "stderr", path);
	json_decref(job);

	assert_output(inst, id, 0, "hello\n");
	assert_output(inst, id, 1, "oops\n");
}

static void
test_human_status(void **state)
{
	struct jobd_inst *inst = *state;
	char idbuf[24], *out;
	int64_t id = harness_submit(inst, "--", "true", NULL);

	assert_int_equal(harness_wait(inst, id), 0);
	snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
	assert_int_equal(
	    harness_jobctl(inst, &out, NULL, "status", idbuf, NULL), 0);
	assert_non_null(strstr(out, "succeeded"));
	free(out);
}

static void
test_shell_command(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_submit(inst, "-c", "echo $((1+2))", NULL);
	json_t *job;

	assert_int_equal(harness_wait(inst, id), 0);
	assert_output(inst, id, 0, "3\n");
	job = harness_status(inst, id);
	harness_assert_str(job, "shell", "echo $((1+2))");
	harness_assert_null(job, "argv");
	json_decref(job);
}

static void
test_environment_captured(void **state)
{
	struct jobd_inst *inst = *state;
	const char *env[] = { "JOBD_IT_VAR=two words", NULL };
	const char *args[] = { "submit", "-c", "printf '%s' \"$JOBD_IT_VAR\"",
		               NULL };
	char *out, *err;
	int64_t id;

	assert_int_equal(harness_jobctl_run(inst, env, args, &out, &err), 0);
	id = harness_parse_id(out, err);
	free(out);
	free(err);
	assert_int_equal(harness_wait(inst, id), 0);
	assert_output(inst, id, 0, "two words");
}

static void
test_name_and_priority(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id =
	    harness_submit(inst, "-n", "build", "-p", "7", "--", "true", NULL);
	int64_t low = harness_submit(inst, "-p", "-3", "--", "true", NULL);
	json_t *job;

	job = harness_status(inst, id);
	harness_assert_str(job, "name", "build");
	harness_assert_int(job, "priority", 7);
	json_decref(job);
	job = harness_status(inst, low);
	harness_assert_int(job, "priority", -3);
	json_decref(job);
}

static void
test_submit_json(void **state)
{
	struct jobd_inst *inst = *state;
	json_t *job = jobctl_json(inst, "submit", "--", "true", NULL);
	json_t *again;

	assert_true(json_is_object(job));
	assert_true(json_integer_value(json_object_get(job, "id")) > 0);
	harness_assert_json(job, "argv", "[\"true\"]");
	assert_non_null(json_string_value(json_object_get(job, "state")));
	again = harness_status(inst,
	                       json_integer_value(json_object_get(job, "id")));
	harness_assert_json(again, "argv", "[\"true\"]");
	json_decref(again);
	json_decref(job);
}

static void
test_status_several(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t a = harness_submit(inst, "--", "true", NULL);
	int64_t b = harness_submit(inst, "--", "false", NULL);
	char ida[24], idb[24], want[64], *ids;
	json_t *jobs;

	snprintf(ida, sizeof ida, "%lld", (long long)a);
	snprintf(idb, sizeof idb, "%lld", (long long)b);
	jobs = jobctl_json(inst, "status", idb, ida, NULL);
	ids = harness_ids_text(jobs);
	snprintf(want, sizeof want, "[%s,%s]", idb, ida);
	assert_string_equal(ids, want);
	free(ids);
	json_decref(jobs);
}

static void
test_list_newest_first(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id[3];
	char want[96], *ids;
	json_t *jobs;

	for (int i = 0; i < 3; i++) {
		id[i] = harness_submit(inst, "--", "true", NULL);
	}
	assert_int_equal(harness_wait_ids(inst, id, 3), 0);

	jobs = jobctl_json(inst, "list", "--limit", "2", NULL);
	ids = harness_ids_text(jobs);
	snprintf(want, sizeof want, "[%lld,%lld]", (long long)id[2],
	         (long long)id[1]);
	assert_string_equal(ids, want);
	free(ids);
	json_decref(jobs);

	jobs = jobctl_json(inst, "list", "--state", "succeeded", NULL);
	ids = harness_ids_text(jobs);
	snprintf(want, sizeof want, "[%lld,%lld,%lld]", (long long)id[2],
	         (long long)id[1], (long long)id[0]);
	assert_string_equal(ids, want);
	free(ids);
	json_decref(jobs);

	jobs = jobctl_json(inst, "list", "--state", "failed", NULL);
	assert_int_equal(json_array_size(jobs), 0);
	json_decref(jobs);
}

/* Output larger than one reply and bytes that are not UTF-8 come back whole. */
static void
test_logs_large_and_binary(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t big = harness_submit(
	    inst, "-c", "head -c 600000 /dev/zero | tr '\\0' a", NULL);
	int64_t bin =
	    harness_submit(inst, "-c", "printf '\\377\\376\\001\\n'", NULL);
	char *out;

	assert_int_equal(harness_wait(inst, big), 0);
	assert_int_equal(harness_wait(inst, bin), 0);
	out = harness_logs(inst, big, 0);
	assert_int_equal(strlen(out), 600000);
	assert_int_equal(strspn(out, "a"), 600000);
	free(out);
	assert_output(inst, bin, 0, "\377\376\001\n");
}

/* logs --follow streams output as it comes and exits 0 when the job ends. */
static void
test_logs_follow(void **state)
{
	struct jobd_inst *inst = *state;
	struct harness_proc p;
	char cmd[PATH_MAX + 128], idbuf[24];
	int64_t id;

	snprintf(cmd, sizeof cmd, "echo first; %s; echo second",
	         harness_gate_cmd(inst));
	id = harness_submit(inst, "-c", cmd, NULL);
	snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
	harness_jobctl_start(inst, &p, "logs", idbuf, "--follow", NULL);
	if (harness_proc_await_output(&p, "first\n", HARNESS_EVENT_MS) != 0) {
		harness_msg("logs --follow printed '%s' (stderr '%s')\n",
		            p.out ? p.out : "", p.err ? p.err : "");
		harness_gate_release(inst);
		harness_proc_finish(&p, HARNESS_RUN_MS);
		harness_proc_free(&p);
		fail();
	}
	harness_gate_release(inst);
	assert_int_equal(harness_proc_finish(&p, HARNESS_RUN_MS), 0);
	assert_string_equal(p.out, "first\nsecond\n");
	harness_proc_free(&p);
}

static void
test_ping_version(void **state)
{
	struct jobd_inst *inst = *state;
	char *out;

	harness_ping(inst);
	assert_int_equal(harness_jobctl(inst, &out, NULL, "version", NULL), 0);
	assert_non_null(strstr(out, JOBD_VERSION));
	free(out);
}

/* The same --key gives the same job; jobctl's own keys never collide. */
static void
test_idempotent_submit(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t a = harness_submit(inst, "--key", "k1", "--", "true", NULL);
	int64_t b = harness_submit(inst, "--key", "k1", "--", "true", NULL);
	int64_t c, d, e;
	json_t *jobs;

	assert_int_equal(a, b);
	jobs = jobctl_json(inst, "list", NULL, NULL, NULL);
	assert_int_equal(json_array_size(jobs), 1);
	json_decref(jobs);

	c = harness_submit(inst, "--key", "k2", "--", "true", NULL);
	d = harness_submit(inst, "--", "true", NULL);
	e = harness_submit(inst, "--", "true", NULL);
	assert_int_not_equal(c, a);
	assert_int_not_equal(d, e);
	jobs = jobctl_json(inst, "list", NULL, NULL, NULL);
	assert_int_equal(json_array_size(jobs), 4);
	json_decref(jobs);
}

static void
test_socket_from_environment(void **state)
{
	struct jobd_inst *inst = *state;
	char var[PATH_MAX + 16];
	const char *env[] = { var, NULL };
	const char *args[] = { "ping", NULL };

	snprintf(var, sizeof var, "JOBD_SOCKET=%s", inst->url);
	assert_int_equal(harness_jobctl_run(NULL, env, args, NULL, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, harness_setup, harness_teardown)
		T(test_submit_run_status),
		T(test_human_status),
		T(test_shell_command),
		T(test_environment_captured),
		T(test_name_and_priority),
		T(test_submit_json),
		T(test_status_several),
		T(test_list_newest_first),
		T(test_logs_large_and_binary),
		T(test_logs_follow),
		T(test_ping_version),
		T(test_idempotent_submit),
		T(test_socket_from_environment),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
