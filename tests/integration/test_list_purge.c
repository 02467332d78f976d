/*
 * list filters and purge (issue 3): list by --queue, --name (a glob),
 * --since (a time or a duration), --state and --limit, always newest first;
 * purge by --state and --older-than removes the jobs and their output
 * files, and never a job that has not ended.
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

#define NJOBS 5

/* "jobctl --json list ARGS..." gives exactly the ids in want ("[3,1]"). */
static void
assert_list(struct jobd_inst *inst, const char *want, const char *a1,
            const char *a2, const char *a3, const char *a4)
{
	json_t *jobs = harness_jobctl_json(inst, "list", a1, a2, a3, a4, NULL);
	char *got = harness_ids_text(jobs);

	json_decref(jobs);
	if (strcmp(got, want) != 0) {
		fail_msg("list %s %s %s %s: %s, expected %s", a1 ? a1 : "",
		         a2 ? a2 : "", a3 ? a3 : "", a4 ? a4 : "", got, want);
	}
	free(got);
}

/* "[ids[from], ..., ids[to]]" newest (highest index) first, into buf. */
static const char *
ids_desc(const int64_t *ids, int from, int to, char *buf, size_t len)
{
	size_t n = 0;

	n += (size_t)snprintf(buf + n, len - n, "[");
	for (int i = to; i >= from; i--) {
		n += (size_t)snprintf(buf + n, len - n, "%s%lld",
		                      i == to ? "" : ",", (long long)ids[i]);
	}
	snprintf(buf + n, len - n, "]");
	return (buf);
}

static void
test_list_filters(void **state)
{
	static const struct {
		const char *name, *queue, *cmd;
	} jobs[NJOBS] = {
		{ "build-1", "qa", "true" },  { "build-2", "qb", "true" },
		{ "test-1", "qa", "exit 1" }, { "Build-3", "qb", "true" },
		{ "build-10", "qa", "true" },
	};
	struct jobd_inst *inst = *state;
	int64_t id[NJOBS], sub[NJOBS];
	char want[256], since[40];
	json_t *job;
	int k;

	for (int i = 0; i < NJOBS; i++) {
		id[i] = harness_submit(inst, "-n", jobs[i].name, "-q",
		                       jobs[i].queue, "-c", jobs[i].cmd, NULL);
	}
	for (int i = 0; i < NJOBS; i++) {
		(void)harness_wait(inst, id[i]);
		job = harness_status(inst, id[i]);
		sub[i] = harness_time_ms(job, "submitted_at");
		json_decref(job);
	}

	assert_list(inst, ids_desc(id, 0, 4, want, sizeof want), NULL, NULL,
	            NULL, NULL);
	snprintf(want, sizeof want, "[%lld,%lld,%lld]", (long long)id[4],
	         (long long)id[2], (long long)id[0]);
	assert_list(inst, want, "--queue", "qa", NULL, NULL);
	snprintf(want, sizeof want, "[%lld,%lld,%lld]", (long long)id[4],
	         (long long)id[1], (long long)id[0]);
	assert_list(inst, want, "--name", "build-*", NULL, NULL);
	snprintf(want, sizeof want, "[%lld,%lld]", (long long)id[1],
	         (long long)id[0]);
	assert_list(inst, want, "--name", "build-?", NULL, NULL);
	snprintf(want, sizeof want, "[%lld,%lld,%lld]", (long long)id[4],
	         (long long)id[3], (long long)id[0]);
	assert_list(inst, want, "--name", "[bB]uild-[13]*", NULL, NULL);
	snprintf(want, sizeof want, "[%lld,%lld]", (long long)id[2],
	         (long long)id[0]);
	assert_list(inst, want, "--name", "*-1", NULL, NULL);
	assert_list(inst, "[]", "--name", "BUILD-*", NULL, NULL);
	snprintf(want, sizeof want, "[%lld]", (long long)id[2]);
	assert_list(inst, want, "--state", "failed", NULL, NULL);
	snprintf(want, sizeof want, "[%lld,%lld]", (long long)id[4],
	         (long long)id[0]);
	assert_list(inst, want, "--state", "succeeded", "--queue", "qa");
	assert_list(inst, ids_desc(id, 3, 4, want, sizeof want), "--limit", "2",
	            NULL, NULL);
	snprintf(want, sizeof want, "[%lld]", (long long)id[4]);
	assert_list(inst, want, "--queue", "qa", "--limit", "1");
	assert_list(inst, "[]", "--queue", "nosuch", NULL, NULL);

	/* --since DURATION: within the last hour, all; the last 1 ms, none. */
	assert_list(inst, ids_desc(id, 0, 4, want, sizeof want), "--since",
	            "1h", NULL, NULL);
	assert_list(inst, "[]", "--since", "1ms", NULL, NULL);
	/* --since TIME: at or after the first submit time that moved on. */
	for (k = 1; k < NJOBS && sub[k] == sub[k - 1]; k++) {
		continue;
	}
	if (k == NJOBS) {
		fail_msg("all jobs were submitted in the same ms");
	}
	harness_format_time(sub[k], since, sizeof since);
	assert_list(inst, ids_desc(id, k, 4, want, sizeof want), "--since",
	            since, NULL, NULL);
	assert_list(inst, ids_desc(id, 0, 4, want, sizeof want), "--since",
	            harness_format_time(sub[0], since, sizeof since), NULL,
	            NULL);
}

/* The job's output file (stdout or stderr) path, copied into buf. */
static const char *
output_path(struct jobd_inst *inst, int64_t id, const char *stream, char *buf,
            size_t len)
{
	json_t *job = harness_status(inst, id);
	const char *p = json_string_value(json_object_get(job, stream));

	assert_non_null(p);
	snprintf(buf, len, "%s", p);
	json_decref(job);
	return (buf);
}

/* status of id is refused with not_found. */
static void
assert_gone(struct jobd_inst *inst, int64_t id)
{
	char idbuf[24], req[128];

	free(harness_jobctl_refused(inst, 1, "status", HARNESS_ID(idbuf, id),
	                            NULL));
	snprintf(req, sizeof req, "{\"v\":1,\"op\":\"status\",\"ids\":[%lld]}",
	         (long long)id);
	harness_raw_error(inst, req, "not_found");
}

/*
 * purge --state succeeded removes those jobs and their output files;
 * --older-than 1h removes nothing recent; a plain purge takes every ended
 * job but never a running one.
 */
static void
test_purge(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t s1, s2, f1, blocker, ids[3];
	char out1[PATH_MAX], err1[PATH_MAX], outf[PATH_MAX], st[32], *text;
	json_t *reply;

	s1 = harness_submit(inst, "-c", "echo out; echo err >&2", NULL);
	s2 = harness_submit(inst, "--", "true", NULL);
	f1 = harness_submit(inst, "-c", "echo failed; exit 1", NULL);
	ids[0] = s1;
	ids[1] = s2;
	ids[2] = f1;
	assert_int_equal(harness_wait_ids(inst, ids, 3), 1);
	blocker = harness_blocker(inst);
	output_path(inst, s1, "stdout", out1, sizeof out1);
	output_path(inst, s1, "stderr", err1, sizeof err1);
	output_path(inst, f1, "stdout", outf, sizeof outf);
	assert_int_equal(access(out1, F_OK), 0);
	assert_int_equal(access(err1, F_OK), 0);
	assert_int_equal(access(outf, F_OK), 0);

	text = harness_jobctl_ok(inst, "purge", "--state", "succeeded", NULL);
	assert_string_equal(text, "purged 2 jobs\n");
	free(text);
	assert_gone(inst, s1);
	assert_gone(inst, s2);
	harness_assert_absent(out1);
	harness_assert_absent(err1);
	assert_string_equal(harness_state(inst, f1, st, sizeof st), "failed");
	assert_int_equal(access(outf, F_OK), 0);

	reply = harness_jobctl_json(inst, "purge", "--older-than", "1h", NULL);
	harness_assert_int(reply, "purged", 0);
	json_decref(reply);
	assert_string_equal(harness_state(inst, f1, st, sizeof st), "failed");

	reply = harness_jobctl_json(inst, "purge", NULL);
	harness_assert_int(reply, "purged", 1);
	json_decref(reply);
	assert_gone(inst, f1);
	harness_assert_absent(outf);
	assert_string_equal(harness_state(inst, blocker, st, sizeof st),
	                    "running");

	harness_raw_error(inst,
	                  "{\"v\":1,\"op\":\"purge\",\"state\":\"running\"}",
	                  "bad_request");
	harness_raw_error(inst,
	                  "{\"v\":1,\"op\":\"purge\",\"older_than_ms\":-1}",
	                  "bad_request");
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, blocker), 0);
	assert_string_equal(harness_state(inst, blocker, st, sizeof st),
	                    "succeeded");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, harness_setup, harness_teardown)
		T(test_list_filters),
		T(test_purge),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
