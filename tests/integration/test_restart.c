/*
 * Durability: every job jobd acknowledged is still there after jobd is
 * killed with SIGKILL or stopped with SIGTERM and started again on the same
 * folder, and the queue carries on.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "harness.h"

#define QUEUED_JOBS 20

/* Fail unless state is one of the NULL-terminated list. */
static void
assert_state_in(struct jobd_inst *inst, int64_t id, const char *const *ok)
{
	char st[32];

	harness_state(inst, id, st, sizeof st);
	for (; *ok != NULL; ok++) {
		if (strcmp(st, *ok) == 0) {
			return;
		}
	}
	fail_msg("job %lld is %s", (long long)id, st);
}

static void
test_restart_after_kill9(void **state)
{
	static const char *const waiting[] = { "queued", "running", "succeeded",
		                               NULL };
	static const char *const blocker_now[] = { "running", "lost",
		                                   "succeeded", "failed",
		                                   NULL };
	static const char *const blocker_end[] = { "lost", "succeeded",
		                                   "failed", NULL };
	struct jobd_inst *inst = *state;
	int64_t blocker = harness_blocker(inst), id[QUEUED_JOBS];
	char n[16], want[16], *out;

	for (int i = 0; i < QUEUED_JOBS; i++) {
		snprintf(n, sizeof n, "%d", i);
		id[i] = harness_submit(inst, "--", "echo", n, NULL);
	}
	harness_kill9(inst);
	harness_restart(inst);

	assert_state_in(inst, blocker, blocker_now);
	for (int i = 0; i < QUEUED_JOBS; i++) {
		assert_state_in(inst, id[i], waiting);
	}
	/* If the new jobd adopted the blocker, let it end. */
	harness_gate_release(inst);
	assert_int_equal(harness_wait_ids(inst, id, QUEUED_JOBS), 0);
	for (int i = 0; i < QUEUED_JOBS; i++) {
		out = harness_logs(inst, id[i], 0);
		snprintf(want, sizeof want, "%d\n", i);
		assert_string_equal(out, want);
		free(out);
	}
	assert_state_in(inst, blocker, blocker_end);
}

static void
test_restart_after_sigterm(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id[2], later;
	json_t *before[2], *after;
	char *out;
	int status;

	id[0] = harness_submit(inst, "--", "true", NULL);
	id[1] = harness_submit(inst, "-c", "echo out; exit 4", NULL);
	assert_int_equal(harness_wait_ids(inst, id, 2), 4);
	for (int i = 0; i < 2; i++) {
		before[i] = harness_status(inst, id[i]);
	}

	status = harness_signal(inst, SIGTERM);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	harness_restart(inst);

	for (int i = 0; i < 2; i++) {
		after = harness_status(inst, id[i]);
		if (!json_equal(before[i], after)) {
			char *a = json_dumps(before[i], 0);
			char *b = json_dumps(after, 0);

			harness_msg("before restart: %s\nafter: %s\n", a, b);
			free(a);
			free(b);
			fail();
		}
		json_decref(after);
		json_decref(before[i]);
	}
	out = harness_logs(inst, id[1], 0);
	assert_string_equal(out, "out\n");
	free(out);
	/* Ids are never reused. */
	later = harness_submit(inst, "--", "true", NULL);
	assert_true(later > id[1]);
	assert_int_equal(harness_wait(inst, later), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_restart_after_kill9,
		                                harness_setup_parallel1,
		                                harness_teardown),
		cmocka_unit_test_setup_teardown(test_restart_after_sigterm,
		                                harness_setup,
		                                harness_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
