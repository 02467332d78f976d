/*
 * Scale: a thousand jobs are all accepted, all run, can be waited for in one
 * request (the most ids one request takes) and are all listed; a thousand
 * queued jobs can be shown, cancelled and waited for in one request each. A
 * program of its own, so it has its own ctest timeout.
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

#define MANY_JOBS PROTO_MAX_IDS
/*
 * Jobs that run to the end. Under the sanitizers every job starts an
 * instrumented jobd-supervisor, about three times slower; the plain build
 * runs the full thousand and test_thousand_queued keeps the thousand-id
 * requests under the sanitizers.
 */
#ifdef HARNESS_SANITIZED
#define RUN_JOBS 200
#else
#define RUN_JOBS MANY_JOBS
#endif

/*
 * Submit n "true" jobs over the raw protocol: a thousand jobctl processes
 * would measure process start-up, not jobd. jobctl submit has its own tests.
 */
static void
submit_many(struct jobd_inst *inst, int64_t *ids, int n)
{
	char req[128];
	json_t *reply;

	for (int i = 0; i < n; i++) {
		snprintf(req, sizeof req,
		         "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
		         "\"argv\":[\"true\"],\"key\":\"many-%d\"}",
		         i);
		assert_int_equal(
		    harness_raw(inst, req, strlen(req), 5000, &reply), 0);
		if (!json_is_true(json_object_get(reply, "ok"))) {
			char *dump = json_dumps(reply, 0);

			harness_msg("submit %d: %s\n", i, dump);
			free(dump);
			json_decref(reply);
			fail();
		}
		ids[i] = json_integer_value(
		    json_object_get(json_object_get(reply, "job"), "id"));
		json_decref(reply);
	}
}

static int
id_cmp(const void *a, const void *b)
{
	const int64_t *x = a, *y = b;

	return (*x < *y ? -1 : *x > *y);
}

/* "jobctl ARGS... ID..." with ids appended; returns its exit code. */
static int
jobctl_ids(struct jobd_inst *inst, const char *const *args, const int64_t *ids,
           size_t n, char **out)
{
	const char **argv;
	char(*num)[24] = calloc(n, sizeof *num);
	size_t k = 0;
	int code;

	assert_non_null(num);
	argv = calloc(n + 8, sizeof *argv);
	assert_non_null(argv);
	while (args[k] != NULL) {
		argv[k] = args[k];
		k++;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(num[i], sizeof num[i], "%lld", (long long)ids[i]);
		argv[k++] = num[i];
	}
	argv[k] = NULL;
	code = harness_jobctl_run(inst, NULL, argv, out, NULL);
	free(argv);
	free(num);
	return (code);
}

/* "jobctl --json list --state STATE" has exactly these n ids. */
static void
assert_listed(struct jobd_inst *inst, const char *state, int64_t *ids, size_t n)
{
	const char *args[] = { "--json",  "list",  "--state", state,
		               "--limit", "10000", NULL };
	int64_t *listed = calloc(n, sizeof *listed);
	json_t *jobs, *job;
	char *out;
	size_t i;

	assert_non_null(listed);
	assert_int_equal(harness_jobctl_run(inst, NULL, args, &out, NULL), 0);
	jobs = harness_json(out);
	free(out);
	assert_int_equal(json_array_size(jobs), n);
	json_array_foreach(jobs, i, job)
	{
		listed[i] = json_integer_value(json_object_get(job, "id"));
	}
	json_decref(jobs);
	qsort(ids, n, sizeof *ids, id_cmp);
	qsort(listed, n, sizeof *listed, id_cmp);
	assert_memory_equal(ids, listed, n * sizeof *ids);
	free(listed);
}

static void
test_thousand_jobs(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t *ids = calloc(RUN_JOBS, sizeof *ids);

	assert_non_null(ids);
	submit_many(inst, ids, RUN_JOBS);
	assert_int_equal(harness_wait_within(inst, ids, RUN_JOBS, 90), 0);
	assert_listed(inst, "succeeded", ids, RUN_JOBS);
	free(ids);
}

/* With the one slot held, a thousand queued jobs: status, cancel, wait. */
static void
test_thousand_queued(void **state)
{
	static const char *const status[] = { "--json", "status", NULL };
	static const char *const cancel[] = { "cancel", NULL };
	static const char *const wait[] = { "wait", NULL };
	struct jobd_inst *inst = *state;
	int64_t *ids = calloc(MANY_JOBS, sizeof *ids);
	int64_t blocker = harness_blocker(inst);
	json_t *jobs, *job;
	char *out;
	size_t i;

	assert_non_null(ids);
	submit_many(inst, ids, MANY_JOBS);

	assert_int_equal(jobctl_ids(inst, status, ids, MANY_JOBS, &out), 0);
	jobs = harness_json(out);
	free(out);
	assert_int_equal(json_array_size(jobs), MANY_JOBS);
	json_array_foreach(jobs, i, job)
	{
		harness_assert_int(job, "id", ids[i]);
		harness_assert_str(job, "state", "queued");
	}
	json_decref(jobs);

	assert_int_equal(jobctl_ids(inst, cancel, ids, MANY_JOBS, NULL), 0);
	/* Cancelled while queued: no exit code, no signal. */
	assert_int_equal(jobctl_ids(inst, wait, ids, MANY_JOBS, NULL), 1);
	assert_listed(inst, "cancelled", ids, MANY_JOBS);

	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, blocker), 0);
	free(ids);
}

/* Short jobs: more slots keep jobd busy while its commits wait on disk. */
static int
setup_parallel8(void **state)
{
	static struct jobd_inst inst;

	harness_start(&inst, "--parallel", "8", NULL);
	*state = &inst;
	return (0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_thousand_jobs, setup_parallel8, harness_teardown),
		cmocka_unit_test_setup_teardown(test_thousand_queued,
		                                harness_setup_parallel1,
		                                harness_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
