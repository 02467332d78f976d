/*
 * Scheduling: the --parallel limit holds and is used, higher priority runs
 * first and equal priorities run in submission order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define PARALLEL_JOBS 8

struct stamp {
	long long ns;
	int delta; /* +1 start, -1 end */
};

static int
stamp_cmp(const void *a, const void *b)
{
	const struct stamp *x = a, *y = b;

	if (x->ns != y->ns) {
		return (x->ns < y->ns ? -1 : 1);
	}
	return (x->delta - y->delta); /* an end before a start at a tie */
}

/* The most jobs running at once according to their own start/end stamps. */
static int
max_overlap(struct stamp *s, size_t n)
{
	int now = 0, most = 0;

	qsort(s, n, sizeof *s, stamp_cmp);
	for (size_t i = 0; i < n; i++) {
		now += s[i].delta;
		most = now > most ? now : most;
	}
	return (most);
}

static void
test_parallel_limit(void **state)
{
	struct jobd_inst *inst = *state;
	struct stamp s[2 * PARALLEL_JOBS];
	int64_t id[PARALLEL_JOBS];
	char *out;

	for (int i = 0; i < PARALLEL_JOBS; i++) {
		id[i] = harness_submit(
		    inst, "-c", "date +%s%N; sleep 0.3; date +%s%N", NULL);
	}
	assert_int_equal(harness_wait_ids(inst, id, PARALLEL_JOBS), 0);
	for (int i = 0; i < PARALLEL_JOBS; i++) {
		out = harness_logs(inst, id[i], 0);
		if (sscanf(out, "%lld %lld", &s[2 * i].ns, &s[2 * i + 1].ns) !=
		    2) {
			fail_msg("job %lld printed '%s'", (long long)id[i],
			         out);
		}
		free(out);
		s[2 * i].delta = 1;
		s[2 * i + 1].delta = -1;
	}
	assert_int_equal(max_overlap(s, 2 * PARALLEL_JOBS), 2);
}

/*
 * With the one slot held, queue jobs of mixed priorities; each appends its
 * name to one file when it runs, so the file is the order they ran in.
 */
static void
test_priority_order(void **state)
{
	static const struct {
		const char *name, *prio;
	} jobs[] = {
		{ "low1", "-5" }, { "mid1", "0" },  { "high", "10" },
		{ "mid2", "0" },  { "low2", "-5" }, { "mid3", "0" },
	};
	struct jobd_inst *inst = *state;
	int64_t id[7];
	char order[PATH_MAX], cmd[PATH_MAX + 32], *text;

	snprintf(order, sizeof order, "%s/order", inst->dir);
	id[6] = harness_blocker(inst);
	for (int i = 0; i < 6; i++) {
		snprintf(cmd, sizeof cmd, "echo %s >> '%s'", jobs[i].name,
		         order);
		id[i] =
		    harness_submit(inst, "-p", jobs[i].prio, "-c", cmd, NULL);
	}
	harness_gate_release(inst);
	assert_int_equal(harness_wait_ids(inst, id, 7), 0);
	text = harness_read_file(order, NULL);
	assert_non_null(text);
	assert_string_equal(text, "high\nmid1\nmid2\nmid3\nlow1\nlow2\n");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_parallel_limit,
		                                harness_setup_parallel2,
		                                harness_teardown),
		cmocka_unit_test_setup_teardown(test_priority_order,
		                                harness_setup_parallel1,
		                                harness_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
