/*
 * Retention (issue 3): with --retention-count 2, jobd keeps only the two
 * newest finished jobs, and removes the others' output files. Purging runs
 * from a timer (every 60 s), so the test polls "jobctl list" (a real
 * condition, paced, bounded) for up to RETENTION_MS. Bad retention flags
 * stop jobd at startup.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define NJOBS        5
#define RETENTION_MS 75000 /* the 60 s timer, and then some */
#define POLL_MS      250

static struct jobd_inst fixture;

static int
setup_retention2(void **state)
{
	harness_start(&fixture, "--retention-count", "2", NULL);
	*state = &fixture;
	return (0);
}

static void
test_retention_count(void **state)
{
	struct jobd_inst *inst = *state;
	char out[NJOBS][PATH_MAX], want[64], idbuf[24], *got = NULL;
	int64_t id[NJOBS], deadline;
	json_t *jobs, *job;

	/* One after the other: ids and finish times agree. */
	for (int i = 0; i < NJOBS; i++) {
		id[i] = harness_submit(inst, "-c", "echo kept", NULL);
		assert_int_equal(harness_wait(inst, id[i]), 0);
		job = harness_status(inst, id[i]);
		snprintf(out[i], sizeof out[i], "%s",
		         json_string_value(json_object_get(job, "stdout")));
		json_decref(job);
		assert_int_equal(access(out[i], F_OK), 0);
	}
	snprintf(want, sizeof want, "[%lld,%lld]", (long long)id[4],
	         (long long)id[3]);
	deadline = harness_now_ms() + RETENTION_MS;
	for (;;) {
		free(got);
		jobs = harness_jobctl_json(inst, "list", NULL);
		got = harness_ids_text(jobs);
		json_decref(jobs);
		if (strcmp(got, want) == 0 || harness_now_ms() > deadline) {
			break;
		}
		(void)poll(NULL, 0, POLL_MS);
	}
	if (strcmp(got, want) != 0) {
		fail_msg("after %d ms with --retention-count 2, list gives %s, "
		         "expected %s",
		         RETENTION_MS, got, want);
	}
	free(got);
	for (int i = 0; i < NJOBS - 2; i++) {
		free(harness_jobctl_refused(inst, 1, "status",
		                            HARNESS_ID(idbuf, id[i]), NULL));
		harness_assert_absent(out[i]);
	}
	for (int i = NJOBS - 2; i < NJOBS; i++) {
		assert_int_equal(access(out[i], F_OK), 0);
	}
}

/* jobd with a bad retention flag exits 2 with a message, at once. */
static void
test_retention_bad_flags(void **state)
{
	static const char *const bad[][2] = {
		{ "--retention-count", "-1" },
		{ "--retention-count", "x" },
		{ "--retention-age", "soon" },
		{ "--retention-age", "-1d" },
	};
	struct jobd_inst *inst = *state;
	char url[PATH_MAX + 16], dir[PATH_MAX + 16];

	snprintf(url, sizeof url, "ipc://%s/bad.sock", inst->dir);
	snprintf(dir, sizeof dir, "%s/other-state", inst->dir);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *argv[] = { JOBD_PATH,     "--socket", url,
			               "--state-dir", dir,        bad[i][0],
			               bad[i][1],     NULL };
		struct harness_proc p;
		int code;

		harness_proc_start(&p, argv, NULL);
		code = harness_proc_finish(&p, HARNESS_READY_MS);
		if (code != 2 || strlen(p.err) == 0) {
			harness_msg("jobd %s %s: exit %d, stderr '%s'\n",
			            bad[i][0], bad[i][1], code, p.err);
			harness_proc_free(&p);
			fail();
		}
		harness_proc_free(&p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_retention_count, setup_retention2, harness_teardown),
		cmocka_unit_test_setup_teardown(
		    test_retention_bad_flags, harness_setup, harness_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
