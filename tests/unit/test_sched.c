/*
 * Unit tests for daemon/sched.c (with worker.c): start order and the
 * parallel limit. The "supervisor" is /bin/true, which exits at once
 * without writing an outcome, so every job started ends lost; that is
 * enough to see which jobs start, when, and in what order. Each test has
 * its own state folder and store.
 */
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "jobd.h"

#define WAIT_GUARD_S 30 /* a supervisor that never exits fails the test */

struct fixture {
	char dir[64];
};

static int
group_setup(void **state)
{
	(void)state;
	server_init();
	sched_init();
	return (0);
}

static int
group_teardown(void **state)
{
	(void)state;
	sched_fini();
	worker_fini();
	return (0);
}

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	char db[128];

	if (fx == NULL)
		return (-1);
	if (fixture_mkdtemp(fx->dir, sizeof fx->dir, "sched") == -1) {
		free(fx);
		return (-1);
	}
	*state = fx;
	snprintf(jobd_conf.state_dir, sizeof jobd_conf.state_dir, "%s",
	         fx->dir);
	snprintf(jobd_conf.supervisor, sizeof jobd_conf.supervisor,
	         "/bin/true");
	jobd_conf.parallel = 2;
	jobd_instance = "test-sched";
	snprintf(db, sizeof db, "%s/jobs.db", fx->dir);
	return (queue_open(db));
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	int rv;

	queue_rollback();
	queue_close();
	worker_fini();
	rv = fixture_rmtree(fx->dir);
	free(fx);
	return (rv);
}

/* Insert a queued job with priority, committed; returns its id. */
static int64_t
insert_job(int64_t priority)
{
	struct job j;
	int64_t id;

	memset(&j, 0, sizeof j);
	j.state = JOB_QUEUED;
	j.argv = xcalloc(2, sizeof *j.argv);
	j.argv[0] = xstrdup("/bin/true");
	j.cwd = xstrdup("/");
	j.env = xcalloc(1, sizeof *j.env);
	j.uid = geteuid();
	j.gid = getegid();
	j.priority = priority;
	j.submitted_at = util_now_ms();
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_insert(&j), 0);
	assert_int_equal(queue_commit(), 0);
	id = j.id;
	job_clear(&j);
	return (id);
}

static void
get_job(int64_t id, struct job *j)
{
	assert_int_equal(queue_job_get(id, j), 0);
}

static int
job_state(int64_t id)
{
	struct job j;
	int s;

	get_job(id, &j);
	s = j.state;
	job_clear(&j);
	return (s);
}

/* One hook run of the loop: schedule, then commit what the starts wrote. */
static void
run_sched(void)
{
	sched_run();
	assert_int_equal(queue_commit(), 0);
}

/* The states of ids[0..n) must be want[0..n). */
static void
assert_states(const int64_t *ids, const int *want, int n)
{
	for (int i = 0; i < n; i++) {
		int s = job_state(ids[i]);

		if (s != want[i])
			fail_msg("job %lld is %s, expected %s",
			         (long long)ids[i], proto_state_name(s),
			         proto_state_name(want[i]));
	}
}

/* Block until the supervisor of running job id has exited (not reaped). */
static void
wait_supervisor(int64_t id)
{
	struct job j;
	siginfo_t info;
	pid_t pid;

	get_job(id, &j);
	assert_int_equal(j.state, JOB_RUNNING);
	pid = (pid_t)j.sup_pid;
	job_clear(&j);
	assert_true(pid > 0);
	alarm(WAIT_GUARD_S);
	for (;;) {
		memset(&info, 0, sizeof info);
		if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) == 0)
			break;
		assert_int_equal(errno, EINTR);
	}
	alarm(0);
	assert_int_equal(info.si_pid, pid);
}

/* The supervisors of running ids have exited: reap, record, commit. */
static void
reap(const int64_t *ids, int n)
{
	for (int i = 0; i < n; i++)
		wait_supervisor(ids[i]);
	worker_reap();
	assert_int_equal(queue_commit(), 0);
	worker_after_commit();
}

/* Job id started once and ended lost, as /bin/true leaves no outcome. */
static void
assert_lost(int64_t id)
{
	struct job j;

	get_job(id, &j);
	assert_int_equal(j.state, JOB_LOST);
	assert_int_equal(j.attempt, 1);
	assert_int_equal(j.has_exit, 0);
	assert_true(j.started_at > 0);
	assert_true(j.finished_at >= j.started_at);
	assert_non_null(j.reason);
	assert_non_null(strstr(j.reason, "without recording an outcome"));
	job_clear(&j);
}

static void
test_order_and_limit(void **state)
{
	int64_t ids[5];
	struct job j;

	(void)state;
	/* Start order: ids[1], ids[2], ids[3], ids[0], ids[4]. */
	ids[0] = insert_job(0);
	ids[1] = insert_job(5);
	ids[2] = insert_job(5);
	ids[3] = insert_job(1);
	ids[4] = insert_job(0);

	sched_kick();
	run_sched();
	assert_int_equal(worker_count(), 2);
	assert_states(ids,
	              (int[]){ JOB_QUEUED, JOB_RUNNING, JOB_RUNNING, JOB_QUEUED,
	                       JOB_QUEUED },
	              5);
	get_job(ids[1], &j);
	assert_int_equal(j.attempt, 1);
	assert_true(j.sup_pid > 0);
	assert_true(j.started_at > 0);
	job_clear(&j);

	/* Full: another run, even kicked, starts nothing. */
	sched_kick();
	run_sched();
	assert_int_equal(worker_count(), 2);
	assert_int_equal(job_state(ids[3]), JOB_QUEUED);

	reap((int64_t[]){ ids[1], ids[2] }, 2);
	assert_int_equal(worker_count(), 0);
	assert_lost(ids[1]);
	assert_lost(ids[2]);
	assert_states(
	    ids,
	    (int[]){ JOB_QUEUED, JOB_LOST, JOB_LOST, JOB_QUEUED, JOB_QUEUED },
	    5);

	/* The reap kicked the scheduler: the next two, in order. */
	run_sched();
	assert_int_equal(worker_count(), 2);
	assert_states(
	    ids,
	    (int[]){ JOB_RUNNING, JOB_LOST, JOB_LOST, JOB_RUNNING, JOB_QUEUED },
	    5);

	reap((int64_t[]){ ids[3], ids[0] }, 2);
	run_sched();
	assert_int_equal(worker_count(), 1);
	assert_int_equal(job_state(ids[4]), JOB_RUNNING);

	reap((int64_t[]){ ids[4] }, 1);
	run_sched();
	assert_int_equal(worker_count(), 0);
	for (int i = 0; i < 5; i++)
		assert_lost(ids[i]);
}

static void
test_parallel_one(void **state)
{
	int64_t a, b;

	(void)state;
	jobd_conf.parallel = 1;
	a = insert_job(-1);
	b = insert_job(3);
	sched_kick();
	run_sched();
	assert_int_equal(worker_count(), 1);
	assert_int_equal(job_state(b), JOB_RUNNING);
	assert_int_equal(job_state(a), JOB_QUEUED);
	reap(&b, 1);
	run_sched();
	assert_int_equal(job_state(a), JOB_RUNNING);
	reap(&a, 1);
	assert_int_equal(worker_count(), 0);
}

/* The scheduler looks at the store only when kicked. */
static void
test_runs_only_when_kicked(void **state)
{
	int64_t a, b;

	(void)state;
	a = insert_job(0);
	sched_kick();
	run_sched(); /* a starts; the queue is then empty */
	assert_int_equal(job_state(a), JOB_RUNNING);
	reap(&a, 1);
	run_sched(); /* the reap's kick: nothing queued */

	b = insert_job(0); /* written behind the scheduler's back */
	run_sched();
	assert_int_equal(job_state(b), JOB_QUEUED);
	assert_int_equal(worker_count(), 0);
	sched_kick();
	run_sched();
	assert_int_equal(job_state(b), JOB_RUNNING);
	reap(&b, 1);
}

/* Cancelled jobs are never started; a new higher priority one goes first. */
static void
test_skips_cancelled(void **state)
{
	int64_t a, b, c;

	(void)state;
	jobd_conf.parallel = 1;
	a = insert_job(9);
	b = insert_job(0);
	assert_int_equal(queue_job_cancel(a, 0, util_now_ms()), 0);
	c = insert_job(5);
	sched_kick();
	run_sched();
	assert_int_equal(job_state(a), JOB_CANCELLED);
	assert_int_equal(job_state(c), JOB_RUNNING);
	assert_int_equal(job_state(b), JOB_QUEUED);
	reap(&c, 1);
	run_sched();
	assert_int_equal(job_state(b), JOB_RUNNING);
	reap(&b, 1);
	assert_int_equal(job_state(a), JOB_CANCELLED);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_order_and_limit),
		T(test_parallel_one),
		T(test_runs_only_when_kicked),
		T(test_skips_cancelled),
	};
#undef T

	return (cmocka_run_group_tests(tests, group_setup, group_teardown));
}
