/*
 * Queues and priorities (issue 3): priority order across queues with one
 * slot held, set --priority while queued, a queue's own --parallel limit
 * checked from the jobs' own stamps, pause and resume, and queues with
 * their settings across a restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define LIMITED_JOBS 8

static struct jobd_inst fixture;

/* A jobd with --parallel 4, whatever the machine's CPU count. */
static int
setup_parallel4(void **state)
{
	harness_start(&fixture, "--parallel", "4", NULL);
	*state = &fixture;
	return (0);
}

/* The queue called name in a queue list reply, or NULL. */
static json_t *
queue_find(json_t *queues, const char *name)
{
	json_t *q;
	size_t i;

	assert_true(json_is_array(queues));
	json_array_foreach(queues, i, q)
	{
		const char *n = json_string_value(json_object_get(q, "name"));

		if (n != NULL && strcmp(n, name) == 0) {
			return (q);
		}
	}
	return (NULL);
}

/* "jobctl --json queue list" must show queue name: returns it (borrowed). */
static json_t *
queue_get(json_t *queues, const char *name)
{
	json_t *q = queue_find(queues, name);

	if (q == NULL) {
		char *dump = json_dumps(queues, 0);

		harness_msg("no queue '%s' in %s\n", name, dump);
		free(dump);
		fail();
	}
	return (q);
}

/* A command that appends "NAME NS" (its start stamp) to path. */
static char *
order_cmd(const char *path, const char *name)
{
	char *cmd;

	assert_true(asprintf(&cmd, "echo \"%s $(date +%%s%%N)\" >> '%s'", name,
	                     path) > 0);
	return (cmd);
}

struct start {
	char name[32];
	long long ns;
};

static int
start_cmp(const void *a, const void *b)
{
	const struct start *x = a, *y = b;

	return (x->ns < y->ns ? -1 : x->ns > y->ns);
}

/*
 * The names in the order file sorted by their start stamps, each followed
 * by a space, must be expected.
 */
static void
assert_run_order(const char *path, const char *expected)
{
	char *text = harness_read_file(path, NULL), *line, *save = NULL;
	struct start s[32];
	char got[32 * 33] = "";
	size_t n = 0;

	assert_non_null(text);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		assert_true(n < 32);
		if (sscanf(line, "%31s %lld", s[n].name, &s[n].ns) != 2) {
			fail_msg("%s: bad line '%s'", path, line);
		}
		n++;
	}
	free(text);
	qsort(s, n, sizeof *s, start_cmp);
	for (size_t i = 0; i < n; i++) {
		strcat(got, s[i].name);
		strcat(got, " ");
	}
	if (strcmp(got, expected) != 0) {
		fail_msg("jobs ran in the order '%s', expected '%s'", got,
		         expected);
	}
}

/*
 * With the one slot held, jobs of mixed priorities in three queues wait;
 * once the slot is free they run highest priority first, equal priorities
 * in submission order, whatever their queue.
 */
static void
test_priority_order(void **state)
{
	static const struct {
		const char *name, *prio, *queue;
	} jobs[] = {
		{ "low1", "-5", "default" }, { "mid1", "0", "qa" },
		{ "high", "10", "default" }, { "mid2", "0", "default" },
		{ "low2", "-5", "qa" },      { "mid3", "0", "qa" },
		{ "top", "1000000", "qb" },  { "bottom", "-1000000", "qb" },
		{ "mid4", "0", "qb" },
	};
	enum { NJOBS = sizeof jobs / sizeof jobs[0] };
	struct jobd_inst *inst = *state;
	int64_t id[NJOBS + 1];
	char order[PATH_MAX], *cmd;
	json_t *job;

	snprintf(order, sizeof order, "%s/order", inst->dir);
	id[NJOBS] = harness_blocker(inst);
	for (int i = 0; i < NJOBS; i++) {
		cmd = order_cmd(order, jobs[i].name);
		job = harness_jobctl_json(inst, "submit", "-q", jobs[i].queue,
		                          "-p", jobs[i].prio, "-c", cmd, NULL);
		free(cmd);
		harness_assert_str(job, "state", "queued");
		harness_assert_str(job, "queue", jobs[i].queue);
		harness_assert_int(job, "priority", atoi(jobs[i].prio));
		id[i] = json_integer_value(json_object_get(job, "id"));
		json_decref(job);
	}
	harness_gate_release(inst);
	assert_int_equal(harness_wait_ids(inst, id, NJOBS + 1), 0);
	assert_run_order(order,
	                 "top high mid1 mid2 mid3 mid4 low1 low2 bottom ");
}

/*
 * set --priority reorders queued jobs; it is refused, and changes nothing,
 * for a running or ended job, even with good ids beside it.
 */
static void
test_set_priority(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t blocker = harness_blocker(inst), id[3];
	char order[PATH_MAX], *cmd, *err, a[24], b[24], c[24], bl[24];
	char req[128];
	json_t *job;

	snprintf(order, sizeof order, "%s/order", inst->dir);
	for (int i = 0; i < 3; i++) {
		char name[2] = { (char)('A' + i), '\0' };

		cmd = order_cmd(order, name);
		id[i] = harness_submit(inst, "-c", cmd, NULL);
		free(cmd);
	}
	HARNESS_ID(a, id[0]);
	HARNESS_ID(b, id[1]);
	HARNESS_ID(c, id[2]);
	HARNESS_ID(bl, blocker);

	job = harness_jobctl_json(inst, "set", c, "--priority", "5", NULL);
	harness_assert_int(job, "id", id[2]);
	harness_assert_int(job, "priority", 5);
	harness_assert_str(job, "state", "queued");
	json_decref(job);
	free(harness_jobctl_ok(inst, "set", a, "-p", "-5", NULL));

	/* All or nothing: the running blocker spoils the whole request. */
	err = harness_jobctl_refused(inst, 1, "set", b, bl, "--priority", "9",
	                             NULL);
	free(err);
	snprintf(req, sizeof req,
	         "{\"v\":1,\"op\":\"set\",\"ids\":[%lld],\"priority\":1}",
	         (long long)blocker);
	harness_raw_error(inst, req, "invalid_state");
	snprintf(req, sizeof req,
	         "{\"v\":1,\"op\":\"set\",\"ids\":[999999],\"priority\":1}");
	harness_raw_error(inst, req, "not_found");
	job = harness_status(inst, id[1]);
	harness_assert_int(job, "priority", 0);
	json_decref(job);
	job = harness_status(inst, blocker);
	harness_assert_int(job, "priority", 0);
	json_decref(job);

	harness_gate_release(inst);
	assert_int_equal(harness_wait_ids(inst, id, 3), 0);
	assert_run_order(order, "C B A ");

	/* An ended job cannot be changed. */
	free(
	    harness_jobctl_refused(inst, 1, "set", a, "--priority", "1", NULL));
	snprintf(req, sizeof req,
	         "{\"v\":1,\"op\":\"set\",\"ids\":[%lld],\"priority\":1}",
	         (long long)id[0]);
	harness_raw_error(inst, req, "invalid_state");
	job = harness_status(inst, id[0]);
	harness_assert_int(job, "priority", -5);
	json_decref(job);
}

/*
 * A queue limited to 2, in a jobd that runs 4: its jobs' own start and end
 * stamps never show more than 2 at once.
 */
static void
test_queue_limit(void **state)
{
	struct jobd_inst *inst = *state;
	char stamps[PATH_MAX], *cmd;
	int64_t id[LIMITED_JOBS];
	json_t *queues;
	size_t n;
	int most;

	queues = harness_jobctl_json(inst, "queue", "set", "lim", "--parallel",
	                             "2", NULL);
	assert_int_equal(json_array_size(queues), 1);
	harness_assert_str(json_array_get(queues, 0), "name", "lim");
	harness_assert_int(json_array_get(queues, 0), "parallel", 2);
	harness_assert_json(json_array_get(queues, 0), "paused", "false");
	json_decref(queues);

	snprintf(stamps, sizeof stamps, "%s/stamps", inst->dir);
	cmd = harness_stamp_cmd(stamps, "x", "sleep 0.3");
	for (int i = 0; i < LIMITED_JOBS; i++) {
		id[i] = harness_submit(inst, "-q", "lim", "-c", cmd, NULL);
	}
	free(cmd);
	assert_int_equal(harness_wait_within(inst, id, LIMITED_JOBS, 60), 0);
	most = harness_stamps_overlap(stamps, &n);
	assert_int_equal(n, LIMITED_JOBS);
	if (most > 2) {
		fail_msg("%d jobs of queue lim (--parallel 2) ran at once",
		         most);
	}
}

/*
 * A full queue holds back only its own jobs: a job of another queue,
 * submitted later, runs to the end while the third job of the full queue
 * stays queued; it starts as soon as one of the two ends.
 */
static void
test_queue_limit_only_its_queue(void **state)
{
	static const char *const lim[] = { "-q", "lim", NULL };
	struct jobd_inst *inst = *state;
	char ran[PATH_MAX], cmd[PATH_MAX + 16], st[32];
	int64_t b[2], x, y;
	json_t *job, *queues;

	free(harness_jobctl_ok(inst, "queue", "set", "lim", "--parallel", "2",
	                       NULL));
	b[0] = harness_blocker_argv(inst, lim);
	b[1] = harness_blocker_argv(inst, lim);
	snprintf(ran, sizeof ran, "%s/ran", inst->dir);
	snprintf(cmd, sizeof cmd, ": > '%s'", ran);
	job = harness_jobctl_json(inst, "submit", "-q", "lim", "-c", cmd, NULL);
	harness_assert_str(job, "state", "queued");
	x = json_integer_value(json_object_get(job, "id"));
	json_decref(job);

	y = harness_submit(inst, "--", "true", NULL);
	assert_int_equal(harness_wait(inst, y), 0);
	assert_string_equal(harness_state(inst, x, st, sizeof st), "queued");
	harness_assert_absent(ran);
	queues = harness_jobctl_json(inst, "queue", "list", NULL);
	harness_assert_int(queue_get(queues, "lim"), "running", 2);
	json_decref(queues);

	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, x), 0);
	harness_gate_release(inst);
	assert_int_equal(harness_wait_ids(inst, b, 2), 0);
}

/*
 * A paused queue starts nothing (while another queue's job runs and ends),
 * resume starts it; a job already running in a queue goes on when the
 * queue is paused.
 */
static void
test_pause_resume(void **state)
{
	static const char *const q2[] = { "-q", "p2", NULL };
	struct jobd_inst *inst = *state;
	char ran[PATH_MAX], cmd[PATH_MAX + 16], st[32];
	int64_t x, y, b;
	json_t *job, *queues, *q;

	queues = harness_jobctl_json(inst, "queue", "pause", "p", NULL);
	assert_int_equal(json_array_size(queues), 1);
	q = json_array_get(queues, 0);
	harness_assert_str(q, "name", "p");
	harness_assert_json(q, "paused", "true");
	harness_assert_int(q, "running", 0);
	json_decref(queues);

	snprintf(ran, sizeof ran, "%s/ran", inst->dir);
	snprintf(cmd, sizeof cmd, ": > '%s'", ran);
	job = harness_jobctl_json(inst, "submit", "-q", "p", "-c", cmd, NULL);
	harness_assert_str(job, "state", "queued");
	x = json_integer_value(json_object_get(job, "id"));
	json_decref(job);
	y = harness_submit(inst, "--", "true", NULL);
	assert_int_equal(harness_wait(inst, y), 0);
	assert_string_equal(harness_state(inst, x, st, sizeof st), "queued");
	harness_assert_absent(ran);
	queues = harness_jobctl_json(inst, "queue", "list", NULL);
	harness_assert_json(queue_get(queues, "p"), "paused", "true");
	json_decref(queues);

	queues = harness_jobctl_json(inst, "queue", "resume", "p", NULL);
	harness_assert_json(json_array_get(queues, 0), "paused", "false");
	json_decref(queues);
	assert_int_equal(harness_wait(inst, x), 0);
	assert_int_equal(harness_await_file(ran, HARNESS_EVENT_MS), 0);

	/* Running jobs go on. */
	b = harness_blocker_argv(inst, q2);
	queues = harness_jobctl_json(inst, "queue", "pause", "p2", NULL);
	harness_assert_int(json_array_get(queues, 0), "running", 1);
	json_decref(queues);
	assert_string_equal(harness_state(inst, b, st, sizeof st), "running");
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, b), 0);
}

/*
 * Queues and their settings survive a restart, and a paused queue is still
 * paused afterwards.
 */
static void
test_queues_persist(void **state)
{
	struct jobd_inst *inst = *state;
	char st[32];
	int64_t x, y;
	json_t *before, *after;

	free(harness_jobctl_ok(inst, "queue", "set", "keep", "--parallel", "3",
	                       NULL));
	free(harness_jobctl_ok(inst, "queue", "pause", "keep", NULL));
	free(harness_jobctl_ok(inst, "queue", "set", "other", "--parallel", "5",
	                       NULL));
	before = harness_jobctl_json(inst, "queue", "list", NULL);
	harness_assert_int(queue_get(before, "keep"), "parallel", 3);
	harness_assert_json(queue_get(before, "keep"), "paused", "true");
	harness_assert_int(queue_get(before, "other"), "parallel", 5);
	harness_assert_json(queue_get(before, "other"), "paused", "false");

	(void)harness_signal(inst, SIGTERM);
	harness_restart(inst);

	after = harness_jobctl_json(inst, "queue", "list", NULL);
	if (!json_equal(before, after)) {
		char *a = json_dumps(before, 0), *b = json_dumps(after, 0);

		harness_msg("queues before restart: %s\nafter: %s\n", a, b);
		free(a);
		free(b);
		fail();
	}
	json_decref(before);
	json_decref(after);

	x = harness_submit(inst, "-q", "keep", "--", "true", NULL);
	y = harness_submit(inst, "--", "true", NULL);
	assert_int_equal(harness_wait(inst, y), 0);
	assert_string_equal(harness_state(inst, x, st, sizeof st), "queued");
	free(harness_jobctl_ok(inst, "queue", "resume", "keep", NULL));
	assert_int_equal(harness_wait(inst, x), 0);
}

/* A queue is made on first use, not paused. */
static void
test_queue_made_on_first_use(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t id =
	    harness_submit(inst, "-q", "fresh.Q_1-x", "--", "true", NULL);
	json_t *queues, *job;

	assert_int_equal(harness_wait(inst, id), 0);
	job = harness_status(inst, id);
	harness_assert_str(job, "queue", "fresh.Q_1-x");
	json_decref(job);
	queues = harness_jobctl_json(inst, "queue", "list", NULL);
	harness_assert_json(queue_get(queues, "fresh.Q_1-x"), "paused",
	                    "false");
	harness_assert_int(queue_get(queues, "fresh.Q_1-x"), "running", 0);
	json_decref(queues);

	/* A job without -q is in "default". */
	id = harness_submit(inst, "--", "true", NULL);
	job = harness_status(inst, id);
	harness_assert_str(job, "queue", "default");
	json_decref(job);
	assert_int_equal(harness_wait(inst, id), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T1(f)                                                                  \
	cmocka_unit_test_setup_teardown(f, harness_setup_parallel1,            \
	                                harness_teardown)
#define T4(f)                                                                  \
	cmocka_unit_test_setup_teardown(f, setup_parallel4, harness_teardown)
		T1(test_priority_order),
		T1(test_set_priority),
		T4(test_queue_limit),
		T4(test_queue_limit_only_its_queue),
		T4(test_pause_resume),
		T4(test_queues_persist),
		T4(test_queue_made_on_first_use),
#undef T1
#undef T4
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
