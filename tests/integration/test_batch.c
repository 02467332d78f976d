/*
 * submit --stdin: one job per line of standard input (empty lines skipped),
 * all with the same options, sent as "shells" requests of at most
 * PROTO_MAX_BATCH commands (and under PROTO_MAX_MSG bytes) whose jobs have
 * consecutive ids; the n-th request of a --key carries "KEY.n". Then the
 * refusals: jobctl's usage errors (nothing sent) and jobd's bad_request
 * over the raw protocol.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "proto.h"

/* The paused queue of the tests whose jobs must not run. */
#define HELD "held"

/* The start of a raw submit; the test adds the fields and the "}". */
#define RAW_SUBMIT "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","

/*
 * Run "jobctl --socket URL ARGS..." (NULL-terminated) with len bytes of
 * input as its standard input, and return its exit code; *out and *err
 * (each may be NULL) get its whole stdout and stderr, as harness_jobctl_run.
 * The harness gives jobctl /dev/null: the bytes go to a file of the test's
 * folder, and a shell execs jobctl on it (so the pid is jobctl's).
 */
static int
batch_run(struct jobd_inst *inst, const char *input, size_t len,
          const char *const *args, char **out, char **err)
{
	static int seq;
	const char **argv;
	char path[PATH_MAX];
	struct harness_proc p;
	size_t n = 0, k = 0;
	FILE *f;
	int code;

	snprintf(path, sizeof path, "%s/input.%d", inst->dir, ++seq);
	if ((f = fopen(path, "w")) == NULL || fwrite(input, 1, len, f) != len ||
	    fclose(f) != 0) {
		fail_msg("cannot write %s", path);
	}
	while (args[n] != NULL) {
		n++;
	}
	argv = calloc(n + 9, sizeof *argv);
	assert_non_null(argv);
	argv[k++] = "/bin/sh";
	argv[k++] = "-c";
	argv[k++] = "f=$1; shift; exec \"$@\" < \"$f\"";
	argv[k++] = "sh";
	argv[k++] = path;
	argv[k++] = JOBCTL_PATH;
	argv[k++] = "--socket";
	argv[k++] = inst->url;
	memcpy(argv + k, args, (n + 1) * sizeof *argv);
	harness_proc_start(&p, argv, NULL);
	free(argv);
	code = harness_proc_finish(&p, HARNESS_RUN_MS);
	harness_proc_take(&p, out, err);
	if (out != NULL && *out == NULL)
		*out = strdup("");
	if (err != NULL && *err == NULL)
		*err = strdup("");
	return (code);
}

/*
 * batch_run that must succeed, say nothing on stderr and print n ids, one
 * per line, consecutive: returns the first.
 */
static int64_t
batch_ok(struct jobd_inst *inst, const char *input, size_t len,
         const char *const *args, size_t n)
{
	char *out, *err, *line, *end, *num;
	int64_t first = 0;
	long long id;
	size_t i = 0;
	int code = batch_run(inst, input, len, args, &out, &err);

	if (code != 0 || err[0] != '\0') {
		harness_msg("submit --stdin exited %d; stderr:\n%s\n", code,
		            err);
		fail();
	}
	for (line = out; *line != '\0'; line = end + 1, i++) {
		if ((end = strchr(line, '\n')) == NULL) {
			fail_msg("submit --stdin: no newline after '%s'", line);
		}
		id = strtoll(line, &num, 10);
		if (i == 0) {
			first = id;
		}
		if (num != end || id < 1 || id != first + (int64_t)i) {
			fail_msg("submit --stdin: line %zu is '%.*s', not id "
			         "%lld",
			         i + 1, (int)(end - line), line,
			         (long long)(first + (int64_t)i));
		}
	}
	if (i != n) {
		fail_msg("submit --stdin printed %zu ids, not %zu", i, n);
	}
	free(out);
	free(err);
	return (first);
}

/*
 * How many jobs "list" shows (of queue, if not NULL), up to 10000: its
 * lines after the header (the table is quicker than --json for 10000).
 */
static size_t
count_jobs(struct jobd_inst *inst, const char *queue)
{
	char *out, *p;
	size_t n = 0;

	if (queue != NULL) {
		out = harness_jobctl_ok(inst, "list", "--queue", queue,
		                        "--limit", "10000", NULL);
	} else {
		out = harness_jobctl_ok(inst, "list", "--limit", "10000", NULL);
	}
	if (strncmp(out, "ID ", 3) != 0) {
		fail_msg("list: no header in '%.200s'", out);
	}
	for (p = out; (p = strchr(p, '\n')) != NULL; p++) {
		n++;
	}
	free(out);
	return (n - 1);
}

/*
 * jobctl with this input must refuse: exit 2, nothing on stdout, want on
 * stderr; and no job may exist.
 */
static void
assert_refused(struct jobd_inst *inst, const char *input, size_t len,
               const char *const *args, const char *want)
{
	char *out, *err;
	int code = batch_run(inst, input, len, args, &out, &err);

	if (code != 2 || out[0] != '\0' || strstr(err, want) == NULL) {
		harness_msg("%s %s: exited %d, not 2; stdout:\n%s\n"
		            "stderr (want '%s'):\n%s\n",
		            args[0], args[1], code, out, want, err);
		fail();
	}
	free(out);
	free(err);
	assert_int_equal(count_jobs(inst, NULL), 0);
}

static void
pause_held(struct jobd_inst *inst)
{
	free(harness_jobctl_ok(inst, "queue", "pause", HELD, NULL));
}

/* "true 1\ntrue 2\n...": n commands (caller frees), *len its length. */
static char *
numbered_lines(int n, size_t *len)
{
	char *buf = malloc((size_t)n * 16 + 1);
	size_t off = 0;

	assert_non_null(buf);
	for (int i = 1; i <= n; i++) {
		off += (size_t)sprintf(buf + off, "true %d\n", i);
	}
	*len = off;
	return (buf);
}

/* Job id must be a queued job of HELD running "true N". */
static void
assert_held_line(struct jobd_inst *inst, int64_t id, int n)
{
	json_t *job = harness_status(inst, id);
	char want[32];

	snprintf(want, sizeof want, "true %d", n);
	harness_assert_str(job, "shell", want);
	harness_assert_str(job, "queue", HELD);
	harness_assert_str(job, "state", "queued");
	json_decref(job);
}

/*
 * Three lines, one empty, the last without a newline: two jobs with
 * consecutive ids, printed one per line, each running its own command.
 */
static void
test_lines(void **state)
{
	static const char input[] = "echo one $JOBD_JOB_ID\n"
	                            "\n"
	                            "echo two $JOBD_JOB_ID";
	static const char *const cmds[] = { "echo one $JOBD_JOB_ID",
		                            "echo two $JOBD_JOB_ID" };
	const char *const args[] = { "submit", "--stdin", NULL };
	struct jobd_inst *inst = *state;
	int64_t ids[2];
	char want[64], *out;
	json_t *job;

	ids[0] = batch_ok(inst, input, sizeof input - 1, args, 2);
	ids[1] = ids[0] + 1;
	assert_int_equal(harness_wait_ids(inst, ids, 2), 0);
	for (int i = 0; i < 2; i++) {
		job = harness_status(inst, ids[i]);
		harness_assert_str(job, "state", "succeeded");
		harness_assert_str(job, "shell", cmds[i]);
		harness_assert_null(job, "argv");
		harness_assert_null(job, "array_id");
		json_decref(job);
		out = harness_logs(inst, ids[i], 0);
		snprintf(want, sizeof want, "%s %lld\n", i == 0 ? "one" : "two",
		         (long long)ids[i]);
		assert_string_equal(out, want);
		free(out);
	}
	assert_int_equal(count_jobs(inst, NULL), 2);
}

/* -n, -q and -p apply to every job of the input. */
static void
test_options_apply(void **state)
{
	static const char input[] = "true 1\ntrue 2\ntrue 3\n";
	const char *const args[] = { "submit", "--stdin", "-n", "batch", "-q",
		                     HELD,     "-p",      "42", NULL };
	struct jobd_inst *inst = *state;
	int64_t first;
	json_t *job;

	pause_held(inst);
	first = batch_ok(inst, input, sizeof input - 1, args, 3);
	for (int i = 0; i < 3; i++) {
		assert_held_line(inst, first + i, i + 1);
		job = harness_status(inst, first + i);
		harness_assert_str(job, "name", "batch");
		harness_assert_int(job, "priority", 42);
		json_decref(job);
	}
	assert_int_equal(count_jobs(inst, HELD), 3);
	assert_int_equal(count_jobs(inst, NULL), 3);
}

/* With --json: one JSON array of the ids, and nothing else. */
static void
test_json_ids(void **state)
{
	static const char input[] = "true 1\n\ntrue 2\ntrue 3\n";
	const char *const args[] = { "--json", "submit", "--stdin",
		                     "-q",     HELD,     NULL };
	struct jobd_inst *inst = *state;
	char *out, *err, want[96];
	int64_t first;
	json_t *ids, *expect;
	int code;

	pause_held(inst);
	code = batch_run(inst, input, sizeof input - 1, args, &out, &err);
	if (code != 0) {
		harness_msg("--json submit --stdin exited %d; stderr:\n%s\n",
		            code, err);
		fail();
	}
	ids = harness_json(out);
	first = json_integer_value(json_array_get(ids, 0));
	snprintf(want, sizeof want, "[%lld,%lld,%lld]", (long long)first,
	         (long long)first + 1, (long long)first + 2);
	expect = harness_json(want);
	if (first < 1 || !json_equal(ids, expect)) {
		harness_msg(
		    "--json submit --stdin printed %s, not [N,N+1,N+2]\n", out);
		fail();
	}
	json_decref(expect);
	json_decref(ids);
	free(out);
	free(err);
	for (int i = 0; i < 3; i++) {
		assert_held_line(inst, first + i, i + 1);
	}
	assert_int_equal(count_jobs(inst, HELD), 3);
}

/*
 * 10001 lines: two requests (10000 commands, then 1), 10001 jobs with
 * consecutive ids. The same --key again returns the same ids and makes
 * nothing; the second request's key is "KEY.2".
 */
static void
test_two_requests(void **state)
{
	const char *const args[] = { "submit", "--stdin", "-q", HELD,
		                     "--key",  "big",     NULL };
	struct jobd_inst *inst = *state;
	int n = PROTO_MAX_BATCH + 1;
	char idbuf[24], *input;
	int64_t first, again;
	size_t len;

	pause_held(inst);
	input = numbered_lines(n, &len);
	first = batch_ok(inst, input, len, args, (size_t)n);
	assert_int_equal(count_jobs(inst, HELD), PROTO_MAX_BATCH);
	assert_held_line(inst, first, 1);
	assert_held_line(inst, first + PROTO_MAX_BATCH - 1, PROTO_MAX_BATCH);
	assert_held_line(inst, first + PROTO_MAX_BATCH, n);
	free(harness_jobctl_refused(inst, 1, "status",
	                            HARNESS_ID(idbuf, first + n), NULL));

	/* Sent again: the same ids, no new job. */
	again = batch_ok(inst, input, len, args, (size_t)n);
	free(input);
	assert_int_equal(again, first);
	free(harness_jobctl_refused(inst, 1, "status",
	                            HARNESS_ID(idbuf, first + n), NULL));

	/* Only the first job of a request carries its key: big, big.2. */
	assert_int_equal(harness_submit(inst, "-q", HELD, "--key", "big", "-c",
	                                "true", NULL),
	                 first);
	assert_int_equal(harness_submit(inst, "-q", HELD, "--key", "big.2",
	                                "-c", "true", NULL),
	                 first + PROTO_MAX_BATCH);
	free(harness_jobctl_refused(inst, 1, "status",
	                            HARNESS_ID(idbuf, first + n), NULL));
}

/* "true I www...": the I-th line of test_split_by_size, in buf. */
#define WIDE_WIDTH 1000
static size_t
wide_line(int i, char *buf)
{
	size_t len = (size_t)sprintf(buf, "true %d ", i);

	memset(buf + len, 'w', WIDE_WIDTH);
	len += WIDE_WIDTH;
	buf[len] = '\0';
	return (len);
}

/*
 * Lines that do not fit in one message: more requests, still one job per
 * line with consecutive ids, each line intact on both sides of the split.
 */
static void
test_split_by_size(void **state)
{
	enum { LINES = 1500 };
	const char *const args[] = { "submit", "--stdin", "-q", HELD,
		                     "--key",  "wide",    NULL };
	struct jobd_inst *inst = *state;
	char *input = malloc((size_t)LINES * (WIDE_WIDTH + 16));
	char want[WIDE_WIDTH + 16];
	int64_t first, second;
	size_t len = 0;
	json_t *job;

	/* 1.5 MB: at least two requests of at most PROTO_MAX_MSG. */
	assert_non_null(input);
	for (int i = 1; i <= LINES; i++) {
		len += wide_line(i, input + len);
		input[len++] = '\n';
	}
	pause_held(inst);
	first = batch_ok(inst, input, len, args, LINES);
	free(input);
	assert_int_equal(count_jobs(inst, HELD), LINES);

	/* The second request starts past the first line, before the end. */
	second = harness_submit(inst, "-q", HELD, "--key", "wide.2", "-c",
	                        "true", NULL);
	if (second <= first || second >= first + LINES) {
		fail_msg("wide.2 is job %lld, not one of %lld..%lld",
		         (long long)second, (long long)first + 1,
		         (long long)first + LINES - 1);
	}
	assert_int_equal(count_jobs(inst, HELD), LINES);
	{
		const int64_t check[] = { first, second - 1, second,
			                  first + LINES - 1 };

		for (size_t k = 0; k < 4; k++) {
			wide_line((int)(check[k] - first) + 1, want);
			job = harness_status(inst, check[k]);
			harness_assert_str(job, "shell", want);
			json_decref(job);
		}
	}
}

/*
 * jobctl refuses, before it sends anything: no command at all, a line with
 * a NUL byte or not UTF-8 (named by its number), --stdin with -c, with a
 * PROGRAM or with --array.
 */
static void
test_refusals(void **state)
{
	static const char nul[] = "echo a\necho \0b\n";
	static const char utf8[] = "echo a\n\necho \xff\xfe\n";
	const char *const plain[] = { "submit", "--stdin", NULL };
	const char *const with_c[] = { "submit", "--stdin", "-c", "true",
		                       NULL };
	const char *const c_first[] = { "submit", "-c", "true", "--stdin",
		                        NULL };
	const char *const with_prog[] = { "submit", "--stdin", "--", "true",
		                          NULL };
	const char *const with_array[] = { "submit", "--stdin", "--array",
		                           "1-2", NULL };
	struct jobd_inst *inst = *state;

	assert_refused(inst, "", 0, plain, "no commands in the input");
	assert_refused(inst, "\n\n\n", 3, plain, "no commands in the input");
	assert_refused(inst, nul, sizeof nul - 1, plain,
	               "line 2 of the input has a NUL byte");
	assert_refused(inst, utf8, sizeof utf8 - 1, plain,
	               "line 3 of the input is not valid UTF-8");
	assert_refused(inst, "true\n", 5, with_c, "--stdin");
	assert_refused(inst, "true\n", 5, c_first, "--stdin");
	assert_refused(inst, "true\n", 5, with_prog, "--stdin");
	assert_refused(inst, "true\n", 5, with_array, "--array");
	harness_ping(inst);
}

/*
 * jobd refuses a "shells" with "argv" or "shell", an empty or non-string
 * command, none or more than PROTO_MAX_BATCH of them, and an array; none of
 * it makes a job. A good one answers with its first job and the count.
 */
static void
test_raw_shells(void **state)
{
	struct jobd_inst *inst = *state;
	size_t n = PROTO_MAX_BATCH + 1, off;
	char *big;
	json_t *reply, *job;
	int64_t first = 0;

	harness_raw_error(
	    inst, RAW_SUBMIT "\"shells\":[\"true\"],\"argv\":[\"true\"]}",
	    "bad_request");
	harness_raw_error(
	    inst, RAW_SUBMIT "\"shells\":[\"true\"],\"shell\":\"true\"}",
	    "bad_request");
	harness_raw_error(inst, RAW_SUBMIT "\"shells\":[\"true\",\"\"]}",
	                  "bad_request");
	harness_raw_error(inst, RAW_SUBMIT "\"shells\":[\"\"]}", "bad_request");
	harness_raw_error(inst, RAW_SUBMIT "\"shells\":[\"true\",7]}",
	                  "bad_request");
	harness_raw_error(inst, RAW_SUBMIT "\"shells\":\"true\"}",
	                  "bad_request");
	harness_raw_error(inst, RAW_SUBMIT "\"shells\":[]}", "bad_request");
	harness_raw_error(inst,
	                  RAW_SUBMIT "\"shells\":[\"true\"],\"array_start\":1,"
	                             "\"array_end\":2}",
	                  "bad_request");
	harness_raw_error(inst,
	                  RAW_SUBMIT "\"shells\":[\"true\"],\"array_limit\":1}",
	                  "bad_request");

	/* PROTO_MAX_BATCH + 1 commands. */
	big = malloc(sizeof RAW_SUBMIT + 16 + n * 8);
	assert_non_null(big);
	off = (size_t)sprintf(big, RAW_SUBMIT "\"shells\":[");
	for (size_t i = 0; i < n; i++) {
		off += (size_t)sprintf(big + off, "%s\"true\"", i ? "," : "");
	}
	sprintf(big + off, "]}");
	harness_raw_error(inst, big, "bad_request");
	free(big);
	assert_int_equal(count_jobs(inst, NULL), 0);

	/* A good one, then the same key again. */
	pause_held(inst);
	for (int again = 0; again < 2; again++) {
		static const char req[] =
		    RAW_SUBMIT "\"queue\":\"" HELD "\",\"key\":\"raw\","
		               "\"shells\":[\"true x\",\"true y\"]}";

		assert_int_equal(
		    harness_raw(inst, req, sizeof req - 1, 5000, &reply), 0);
		harness_assert_json(reply, "ok", "true");
		harness_assert_json(reply, "existing",
		                    again ? "true" : "false");
		harness_assert_json(reply, "batch", "{\"count\":2}");
		assert_null(json_object_get(reply, "array"));
		job = json_object_get(reply, "job");
		harness_assert_str(job, "shell", "true x");
		if (again == 0) {
			first = json_integer_value(json_object_get(job, "id"));
		} else {
			harness_assert_int(job, "id", first);
		}
		json_decref(reply);
	}
	job = harness_status(inst, first + 1);
	harness_assert_str(job, "shell", "true y");
	harness_assert_str(job, "queue", HELD);
	json_decref(job);
	assert_int_equal(count_jobs(inst, NULL), 2);
}

/*
 * --after ID: every job of the input waits for ID (blocked, with the
 * dependency), and runs once it has succeeded.
 */
static void
test_after(void **state)
{
	static const char input[] = "echo x1\necho x2\necho x3\n";
	struct jobd_inst *inst = *state;
	char idbuf[24], want[64], *out;
	const char *const args[] = { "submit", "--stdin", "--after", idbuf,
		                     NULL };
	int64_t gate, first, ids[4];
	int64_t gate_end;
	json_t *job;

	gate = harness_blocker(inst);
	HARNESS_ID(idbuf, gate);
	first = batch_ok(inst, input, sizeof input - 1, args, 3);
	snprintf(want, sizeof want, "[{\"id\":%lld,\"type\":\"ok\"}]",
	         (long long)gate);
	for (int i = 0; i < 3; i++) {
		job = harness_status(inst, first + i);
		harness_assert_str(job, "state", "blocked");
		harness_assert_int(job, "deps_pending", 1);
		harness_assert_json(job, "after", want);
		json_decref(job);
	}

	harness_gate_release(inst);
	ids[0] = gate;
	for (int i = 0; i < 3; i++) {
		ids[i + 1] = first + i;
	}
	assert_int_equal(harness_wait_ids(inst, ids, 4), 0);
	job = harness_status(inst, gate);
	gate_end = harness_time_ms(job, "finished_at");
	json_decref(job);
	for (int i = 0; i < 3; i++) {
		job = harness_status(inst, first + i);
		harness_assert_str(job, "state", "succeeded");
		harness_assert_int(job, "deps_pending", 0);
		if (harness_time_ms(job, "started_at") < gate_end) {
			fail_msg("job %lld started before job %lld ended",
			         (long long)(first + i), (long long)gate);
		}
		json_decref(job);
		out = harness_logs(inst, first + i, 0);
		snprintf(want, sizeof want, "x%d\n", i + 1);
		assert_string_equal(out, want);
		free(out);
	}
}

/*
 * A key already used by another submit (a shorter batch, a single job) is
 * refused for a batch, not taken as this batch's first job; a key with no
 * room for ".N" is refused before anything is sent; with dependencies, a
 * request takes at most PROTO_MAX_DEP_ROWS / (their number) commands.
 */
static void
test_key_reuse_and_limits(void **state)
{
	const char *const one[] = { "submit", "--stdin", "-q", HELD,
		                    "--key",  "k1",      NULL };
	const char *const two[] = { "submit", "--stdin", "-q", HELD,
		                    "--key",  "k2",      NULL };
	struct jobd_inst *inst = *state;
	char longkey[241 + 1], idbuf[24], *out, *err, *input;
	char after[64];
	int64_t first, a, b;
	size_t len;
	int n = PROTO_MAX_DEP_ROWS / 2 + 1;

	pause_held(inst);
	first = batch_ok(inst, "true a\n", 7, one, 1);
	assert_int_equal(
	    batch_run(inst, "true a\ntrue b\ntrue c\n", 21, one, &out, &err),
	    1);
	assert_non_null(strstr(err, "belongs to another submit"));
	assert_string_equal(out, "");
	free(out);
	free(err);
	free(harness_jobctl_refused(inst, 1, "status",
	                            HARNESS_ID(idbuf, first + 1), NULL));

	assert_true(harness_submit(inst, "-q", HELD, "--key", "k2", "-c",
	                           "true", NULL) > first);
	assert_int_equal(batch_run(inst, "true\ntrue\n", 10, two, &out, &err),
	                 1);
	assert_non_null(strstr(err, "belongs to another submit"));
	free(out);
	free(err);
	assert_int_equal(count_jobs(inst, HELD), 2);

	memset(longkey, 'k', 241);
	longkey[241] = '\0';
	{
		const char *const args[] = { "submit", "--stdin", "-q", HELD,
			                     "--key",  longkey,   NULL };

		assert_int_equal(batch_run(inst, "true\n", 5, args, &out, &err),
		                 2);
		assert_non_null(strstr(err, "at most 240 bytes"));
		free(out);
		free(err);
	}
	assert_int_equal(count_jobs(inst, HELD), 2);

	a = harness_submit(inst, "-q", HELD, "-c", "true", NULL);
	b = harness_submit(inst, "-q", HELD, "-c", "true", NULL);
	snprintf(after, sizeof after, "%lld,%lld", (long long)a, (long long)b);
	{
		const char *const args[] = { "submit",  "--stdin", "-q", HELD,
			                     "--after", after,     NULL };

		input = numbered_lines(n, &len);
		first = batch_ok(inst, input, len, args, (size_t)n);
		free(input);
	}
	assert_int_equal(count_jobs(inst, HELD), (size_t)(4 + n));
	{
		json_t *job = harness_status(inst, first + n - 1);
		char want[32];

		snprintf(want, sizeof want, "true %d", n);
		harness_assert_str(job, "shell", want);
		harness_assert_str(job, "state", "blocked");
		json_decref(job);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, harness_setup, harness_teardown)
		T(test_lines),
		T(test_options_apply),
		T(test_json_ids),
		T(test_two_requests),
		T(test_split_by_size),
		T(test_refusals),
		T(test_raw_shells),
		T(test_after),
		T(test_key_reuse_and_limits),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
