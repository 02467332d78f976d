/*
 * Bad input never hurts jobd: malformed requests over the raw protocol get
 * the documented error, jobctl refuses bad arguments with exit code 2, bad
 * jobd arguments and a second jobd on the same folder are refused, and an
 * unreachable daemon gives exit code 69. After every case jobd still
 * answers ping and the job made by the fixture is unchanged.
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
#include "proto.h"

/* The job every test starts with, as status showed it. */
static struct {
	int64_t id;
	json_t *job;
} existing;

static int
setup(void **state)
{
	struct jobd_inst *inst;

	harness_setup(state);
	inst = *state;
	existing.id = harness_submit(inst, "-c", "echo kept", NULL);
	assert_int_equal(harness_wait(inst, existing.id), 0);
	existing.job = harness_status(inst, existing.id);
	return (0);
}

static int
teardown(void **state)
{
	json_decref(existing.job);
	existing.job = NULL;
	return (harness_teardown(state));
}

/* jobd still answers and the existing job is as it was. */
static void
assert_intact(struct jobd_inst *inst)
{
	harness_ping(inst);
	harness_assert_unchanged(inst, existing.id, existing.job);
}

/* jobctl ARGS... must exit with code and say something on stderr. */
static void
assert_jobctl_refuses(struct jobd_inst *inst, int code, const char *const *args)
{
	char *out, *err;
	int got = harness_jobctl_run(inst, NULL, args, &out, &err);

	if (got != code || strlen(err) == 0) {
		harness_msg("jobctl %s %s: exit %d (expected %d), stdout '%s', "
		            "stderr '%s'\n",
		            args[0], args[1] ? args[1] : "", got, code, out,
		            err);
		free(out);
		free(err);
		fail();
	}
	free(out);
	free(err);
}

static void
test_not_json(void **state)
{
	struct jobd_inst *inst = *state;
	json_t *reply;

	harness_raw_error(inst, "hello", "bad_request");
	harness_raw_error(inst, "{\"v\":1,", "bad_request");
	harness_raw_error(inst, "\xff\xfe\x01", "bad_request");
	assert_int_equal(harness_raw(inst, "", 0, 5000, &reply), 0);
	harness_assert_str(reply, "error", "bad_request");
	json_decref(reply);
	assert_intact(inst);
}

static void
test_not_an_object(void **state)
{
	struct jobd_inst *inst = *state;

	harness_raw_error(inst, "[1, 2]", "bad_request");
	harness_raw_error(inst, "42", "bad_request");
	harness_raw_error(inst, "\"ping\"", "bad_request");
	assert_intact(inst);
}

static void
test_wrong_types(void **state)
{
	struct jobd_inst *inst = *state;

	harness_raw_error(inst, "{\"v\":1,\"op\":\"status\",\"ids\":\"x\"}",
	                  "bad_request");
	harness_raw_error(
	    inst, "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\",\"argv\":[1]}",
	    "bad_request");
	harness_raw_error(inst, "{\"v\":1,\"op\":\"logs\",\"id\":\"1\"}",
	                  "bad_request");
	harness_raw_error(inst, "{\"v\":1,\"op\":\"list\",\"limit\":0}",
	                  "bad_request");
	harness_raw_error(inst, "{\"v\":1,\"op\":\"ping\",\"extra\":1}",
	                  "bad_request");
	harness_raw_error(inst, "{\"v\":1,\"op\":7}", "bad_request");
	assert_intact(inst);
}

static void
test_unknown_op(void **state)
{
	struct jobd_inst *inst = *state;

	harness_raw_error(inst, "{\"v\":1,\"op\":\"frobnicate\"}",
	                  "unknown_op");
	assert_intact(inst);
}

static void
test_versions(void **state)
{
	struct jobd_inst *inst = *state;

	harness_raw_error(inst, "{\"v\":2,\"op\":\"ping\"}", "bad_version");
	harness_raw_error(inst, "{\"v\":0,\"op\":\"ping\"}", "bad_version");
	harness_raw_error(inst, "{\"op\":\"ping\"}", "bad_request");
	assert_intact(inst);
}

/* Pad a ping to len bytes with an unknown field. */
static char *
padded_request(size_t len)
{
	static const char head[] = "{\"v\":1,\"op\":\"ping\",\"pad\":\"";
	char *buf = malloc(len);

	assert_non_null(buf);
	memset(buf, 'a', len);
	memcpy(buf, head, sizeof head - 1);
	memcpy(buf + len - 2, "\"}", 2);
	return (buf);
}

/*
 * Over PROTO_MAX_MSG the request is not read: no reply (the connection is
 * dropped; our REQ socket only sees a timeout or a reset). Just under it,
 * the request is read and refused for its unknown field.
 */
static void
test_oversize_message(void **state)
{
	struct jobd_inst *inst = *state;
	size_t big = PROTO_MAX_MSG + 4096, near = PROTO_MAX_MSG - 64;
	char *buf;
	json_t *reply = NULL;

	buf = padded_request(big);
	assert_int_not_equal(harness_raw(inst, buf, big, 3000, &reply), 0);
	free(buf);
	assert_null(reply);
	assert_intact(inst);

	buf = padded_request(near);
	assert_int_equal(harness_raw(inst, buf, near, 5000, &reply), 0);
	free(buf);
	harness_assert_str(reply, "error", "bad_request");
	json_decref(reply);
	assert_intact(inst);
}

static void
test_bad_submits(void **state)
{
	struct jobd_inst *inst = *state;
	const char *list[] = { "--json", "list", NULL };
	char *out;
	json_t *jobs;

	harness_raw_error(
	    inst, "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\",\"argv\":[]}",
	    "bad_request");
	harness_raw_error(
	    inst,
	    "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\",\"argv\":[\"true\"],"
	    "\"shell\":\"true\"}",
	    "bad_request");
	harness_raw_error(inst, "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\"}",
	                  "bad_request");
	harness_raw_error(inst,
	                  "{\"v\":1,\"op\":\"submit\",\"argv\":[\"true\"]}",
	                  "bad_request");
	harness_raw_error(inst,
	                  "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/nonexistent\","
	                  "\"argv\":[\"true\"]}",
	                  "bad_request");
	harness_raw_error(inst,
	                  "{\"v\":1,\"op\":\"submit\",\"cwd\":\"relative\","
	                  "\"argv\":[\"true\"]}",
	                  "bad_request");
	harness_raw_error(
	    inst,
	    "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\",\"argv\":[\"true\"],"
	    "\"priority\":1000001}",
	    "bad_request");

	/* None of them made a job. */
	assert_int_equal(harness_jobctl_run(inst, NULL, list, &out, NULL), 0);
	jobs = harness_json(out);
	free(out);
	assert_int_equal(json_array_size(jobs), 1);
	json_decref(jobs);
	assert_intact(inst);
}

/* A program that cannot be run: the job fails with 127 and says why. */
static void
test_missing_program(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_submit(inst, "--", "/nonexistent/prog", NULL);
	char *err;
	json_t *job;

	assert_int_equal(harness_wait(inst, id), 127);
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "failed");
	harness_assert_int(job, "exit_code", 127);
	json_decref(job);
	err = harness_logs(inst, id, 1);
	assert_non_null(strstr(err, "/nonexistent/prog"));
	free(err);
	assert_intact(inst);
}

static void
test_unknown_id(void **state)
{
	struct jobd_inst *inst = *state;
	char *err;

	assert_int_equal(
	    harness_jobctl(inst, NULL, &err, "status", "999999", NULL), 1);
	assert_non_null(strstr(err, "999999"));
	free(err);
	harness_raw_error(inst, "{\"v\":1,\"op\":\"status\",\"ids\":[999999]}",
	                  "not_found");
	assert_intact(inst);
}

static void
test_bad_ids(void **state)
{
	static const char *const bad[] = { "-5", "99999999999999999999", "abc",
		                           "12x", NULL };
	struct jobd_inst *inst = *state;

	for (int i = 0; bad[i] != NULL; i++) {
		const char *args[] = { "status", bad[i], NULL };

		assert_jobctl_refuses(inst, 2, args);
	}
	harness_raw_error(inst, "{\"v\":1,\"op\":\"status\",\"ids\":[-5]}",
	                  "bad_request");
	harness_raw_error(inst, "{\"v\":1,\"op\":\"status\",\"ids\":[]}",
	                  "bad_request");
	harness_raw_error(
	    inst, "{\"v\":1,\"op\":\"status\",\"ids\":[99999999999999999999]}",
	    "bad_request");
	assert_intact(inst);
}

/* An unknown signal is refused before anything is sent to the job. */
static void
test_bad_signal(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id = harness_blocker(inst);
	char idbuf[24], req[128], st[32];
	const char *args[] = { "cancel", idbuf, "--signal", "FOO", NULL };

	snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
	assert_jobctl_refuses(inst, 2, args);
	snprintf(
	    req, sizeof req,
	    "{\"v\":1,\"op\":\"cancel\",\"ids\":[%lld],\"signal\":\"FOO\"}",
	    (long long)id);
	harness_raw_error(inst, req, "bad_request");
	assert_string_equal(harness_state(inst, id, st, sizeof st), "running");
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, id), 0);
	assert_intact(inst);
}

static void
test_jobctl_usage(void **state)
{
	const char *const *const cases[] = {
		(const char *const[]){ "frobnicate", NULL },
		(const char *const[]){ "submit", NULL },
		(const char *const[]){ "wait", NULL },
		(const char *const[]){ "wait", "1", "--timeout", "soon", NULL },
		(const char *const[]){ "logs", NULL },
		NULL,
	};
	struct jobd_inst *inst = *state;

	for (int i = 0; cases[i] != NULL; i++) {
		assert_jobctl_refuses(inst, 2, cases[i]);
	}
	assert_intact(inst);
}

/*
 * Run jobd with args after --socket ipc://DIR/<sock> --state-dir <state>:
 * returns its exit code, and its stderr in *err.
 */
static int
run_jobd(struct jobd_inst *inst, const char *sock, const char *state_dir,
         const char *arg1, const char *arg2, char **err)
{
	struct harness_proc p;
	char url[PATH_MAX + 16];
	const char *argv[] = { JOBD_PATH, "--socket", url,  "--state-dir",
		               state_dir, arg1,       arg2, NULL };
	int code;

	snprintf(url, sizeof url, "ipc://%s/%s", inst->dir, sock);
	harness_proc_start(&p, argv, NULL);
	code = harness_proc_finish(&p, HARNESS_READY_MS);
	*err = p.err;
	p.err = NULL;
	harness_proc_free(&p);
	return (code);
}

static void
test_jobd_bad_arguments(void **state)
{
	static const char *const bad[][2] = {
		{ "--parallel", "0" },
		{ "--parallel", "x" },
		{ "--bogus", NULL },
	};
	struct jobd_inst *inst = *state;
	char other[PATH_MAX + 16], sock[PATH_MAX + 16], *err;

	snprintf(other, sizeof other, "%s/other-state", inst->dir);
	snprintf(sock, sizeof sock, "%s/bad.sock", inst->dir);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int code = run_jobd(inst, "bad.sock", other, bad[i][0],
		                    bad[i][1], &err);

		if (code != 2 || strlen(err) == 0) {
			harness_msg("jobd %s %s: exit %d, stderr '%s'\n",
			            bad[i][0], bad[i][1] ? bad[i][1] : "", code,
			            err);
			free(err);
			fail();
		}
		free(err);
		assert_int_equal(access(sock, F_OK), -1);
	}
	assert_intact(inst);
}

static void
test_second_jobd_refused(void **state)
{
	struct jobd_inst *inst = *state;
	char *err;
	int code = run_jobd(inst, "second.sock", inst->state, NULL, NULL, &err);

	if (code != 1 || strstr(err, inst->state) == NULL) {
		harness_msg("second jobd on %s: exit %d, stderr '%s'\n",
		            inst->state, code, err);
		free(err);
		fail();
	}
	free(err);
	assert_intact(inst);
}

static void
test_unreachable(void **state)
{
	struct jobd_inst *inst = *state;
	char url[PATH_MAX + 16], var[PATH_MAX + 32];
	const char *env[] = { var, NULL };
	const char *flag[] = { "--socket", url, "ping", NULL };
	const char *status[] = { "--socket", url, "status", "1", NULL };
	const char *ping[] = { "ping", NULL };

	snprintf(url, sizeof url, "ipc://%s/nothing.sock", inst->dir);
	snprintf(var, sizeof var, "JOBD_SOCKET=%s", url);
	assert_int_equal(harness_jobctl_run(NULL, NULL, flag, NULL, NULL), 69);
	assert_int_equal(harness_jobctl_run(NULL, NULL, status, NULL, NULL),
	                 69);
	assert_int_equal(harness_jobctl_run(NULL, env, ping, NULL, NULL), 69);
	assert_intact(inst);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_not_json),           T(test_not_an_object),
		T(test_wrong_types),        T(test_unknown_op),
		T(test_versions),           T(test_oversize_message),
		T(test_bad_submits),        T(test_missing_program),
		T(test_unknown_id),         T(test_bad_ids),
		T(test_bad_signal),         T(test_jobctl_usage),
		T(test_jobd_bad_arguments), T(test_second_jobd_refused),
		T(test_unreachable),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
