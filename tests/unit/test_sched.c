/*
 * Unit tests for daemon/sched.c (with worker.c and queue.c): start order,
 * the global and per-queue limits, pause and hold; what an ended job does
 * to its dependents and its array; retries and their backoff. The
 * "supervisor" is /bin/true, which exits at once without writing an
 * outcome, so every job started ends lost; that is enough to see which jobs
 * start, when, and in what order. Each test has its own state folder and
 * store.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
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
	if (fixture_mkstate(fx->dir, sizeof fx->dir, "sched") == -1) {
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

/* Insert j (committed) and clear it; returns its id. */
static int64_t
insert_custom(struct job *j)
{
	int64_t id = fixture_job_insert(j);

	assert_true(id > 0);
	job_clear(j);
	return (id);
}

/* Insert a queued job of queue q with priority (held if held). */
static int64_t
insert_in(const char *q, int64_t priority, int held)
{
	struct job j;

	fixture_job_init(&j, q, priority);
	j.held = held;
	return (insert_custom(&j));
}

/* Insert a queued job with priority, committed; returns its id. */
static int64_t
insert_job(int64_t priority)
{
	return (insert_in(NULL, priority, 0));
}

static void
get_job(int64_t id, struct job *j)
{
	assert_int_equal(queue_job_get(id, j), 0);
}

/*
 * The pid of running job id's supervisor, from its run file ("PID START",
 * which jobd writes right after the spawn), or 0.
 */
static pid_t
sup_pid(int64_t id)
{
	char path[PATH_MAX], buf[64];
	ssize_t n;
	int fd;

	outcome_path(path, sizeof path, jobd_conf.state_dir, id, OUTCOME_RUN);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (0);
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return (0);
	buf[n] = '\0';
	return ((pid_t)strtol(buf, NULL, 10));
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

/*
 * One hook run of the loop: claim what can start, commit, start it, then
 * commit what the starts wrote (unclaims of failed spawns).
 */
static void
run_sched(void)
{
	sched_claim_next();
	assert_int_equal(queue_commit(), 0);
	sched_start_claimed(0);
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
	pid = sup_pid(id);
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
	assert_true(sup_pid(ids[1]) > 0);
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
	assert_int_equal(queue_job_cancel(a, 0, util_now_ms(), NULL), 0);
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

/* Queue limits, pause and hold, across queues, by priority then id. */
static void
test_claim_queues(void **state)
{
	int64_t q1a, q1b, p1, d1, d2, d3;

	(void)state;
	assert_int_equal(queue_queue_set("q1", 1, -1), 0);
	assert_int_equal(queue_queue_set("p", 0, 1), 0);
	q1a = insert_in("q1", 9, 0);
	q1b = insert_in("q1", 9, 0);
	p1 = insert_in("p", 20, 0);
	d1 = insert_in(NULL, 0, 0);
	d2 = insert_in(NULL, 50, 1); /* held */
	d3 = insert_in(NULL, -1, 0);

	/*
	 * q1a first (p is paused, d2 held); then q1 is full, so d1 goes
	 * before q1b despite its lower priority.
	 */
	sched_kick();
	run_sched();
	assert_int_equal(worker_count(), 2);
	assert_int_equal(worker_count_queue("q1"), 1);
	assert_int_equal(worker_count_queue(PROTO_DEFAULT_QUEUE), 1);
	assert_int_equal(worker_count_queue("p"), 0);
	assert_states((int64_t[]){ q1a, q1b, p1, d1, d2, d3 },
	              (int[]){ JOB_RUNNING, JOB_QUEUED, JOB_QUEUED, JOB_RUNNING,
	                       JOB_QUEUED, JOB_QUEUED },
	              6);

	reap((int64_t[]){ q1a, d1 }, 2);
	run_sched();
	assert_states(
	    (int64_t[]){ q1b, p1, d2, d3 },
	    (int[]){ JOB_RUNNING, JOB_QUEUED, JOB_QUEUED, JOB_RUNNING }, 4);
	reap((int64_t[]){ q1b, d3 }, 2);

	/* Only the paused queue and the held job are left: nothing starts. */
	sched_kick();
	run_sched();
	assert_int_equal(worker_count(), 0);

	/* Resume and release: both start, though the global limit is free. */
	assert_int_equal(queue_queue_set("p", 0, 0), 0);
	assert_int_equal(queue_job_set_held(d2, 0), 0);
	sched_kick();
	run_sched();
	assert_states((int64_t[]){ p1, d2 },
	              (int[]){ JOB_RUNNING, JOB_RUNNING }, 2);
	reap((int64_t[]){ p1, d2 }, 2);
	for (int64_t id = q1a; id <= d3; id++)
		assert_lost(id);
}

/* Pausing a queue stops new starts there; its limit counts its jobs. */
static void
test_claim_queue_limit(void **state)
{
	int64_t a, b, c;

	(void)state;
	jobd_conf.parallel = 3;
	assert_int_equal(queue_queue_set("two", 2, -1), 0);
	a = insert_in("two", 0, 0);
	b = insert_in("two", 0, 0);
	c = insert_in("two", 0, 0);
	sched_kick();
	run_sched();
	assert_states((int64_t[]){ a, b, c },
	              (int[]){ JOB_RUNNING, JOB_RUNNING, JOB_QUEUED }, 3);
	assert_int_equal(queue_queue_set("two", 0, 1), 0);
	reap((int64_t[]){ a, b }, 2);
	run_sched();
	assert_int_equal(job_state(c), JOB_QUEUED);
	/* A resume lets it go. */
	assert_int_equal(queue_queue_set("two", 0, 0), 0);
	sched_kick();
	run_sched();
	assert_int_equal(job_state(c), JOB_RUNNING);
	reap(&c, 1);
}

static void
test_retry_delay(void **state)
{
	static const uint32_t rnds[] = {
		0, 1, 12345, UINT32_MAX / 2, UINT32_MAX - 1, UINT32_MAX
	};
	int64_t d;

	(void)state;
	/* Retry 1 waits the delay plus up to a quarter of it. */
	assert_int_equal(sched_retry_delay(1000, 1, 0), 1000);
	assert_int_equal(sched_retry_delay(1000, 1, UINT32_MAX), 1250);
	for (size_t i = 0; i < sizeof rnds / sizeof rnds[0]; i++) {
		d = sched_retry_delay(1000, 1, rnds[i]);
		assert_in_range(d, 1000, 1250);
		d = sched_retry_delay(30000, 1, rnds[i]);
		assert_in_range(d, 30000, 37500);
	}
	d = sched_retry_delay(1000, 1, UINT32_MAX / 2);
	assert_in_range(d, 1124, 1126);

	/* Doubling from one retry to the next. */
	assert_int_equal(sched_retry_delay(1000, 2, 0), 2000);
	assert_int_equal(sched_retry_delay(1000, 3, 0), 4000);
	assert_int_equal(sched_retry_delay(1000, 4, 0), 8000);
	assert_int_equal(sched_retry_delay(1000, 4, UINT32_MAX), 10000);
	assert_int_equal(sched_retry_delay(1, 11, 0), 1024);

	/* Capped at one hour (before the jitter), however many retries. */
	assert_int_equal(sched_retry_delay(1000, 12, 0), 2048000);
	assert_int_equal(sched_retry_delay(1000, 13, 0), 3600000);
	assert_int_equal(sched_retry_delay(1000, 13, UINT32_MAX), 4500000);
	assert_int_equal(sched_retry_delay(1000, 1000, 0), 3600000);
	assert_int_equal(sched_retry_delay(1000, INT64_MAX, 0), 3600000);
	assert_int_equal(sched_retry_delay(3600000, 1, 0), 3600000);
	assert_int_equal(sched_retry_delay(3600000, 2, 0), 3600000);
	assert_int_equal(sched_retry_delay(2700000, 2, 0), 3600000);

	/* A delay above the cap: never less than the delay, no doubling. */
	assert_int_equal(sched_retry_delay(7200000, 1, 0), 7200000);
	assert_int_equal(sched_retry_delay(7200000, 5, 0), 7200000);
	assert_int_equal(sched_retry_delay(7200000, 5, UINT32_MAX), 9000000);
	for (size_t i = 0; i < sizeof rnds / sizeof rnds[0]; i++) {
		d = sched_retry_delay(PROTO_DAY_MS, 1000, rnds[i]);
		assert_in_range(d, PROTO_DAY_MS,
		                PROTO_DAY_MS + PROTO_DAY_MS / 4);
	}

	/* No delay: none, ever. Tiny delays have no room for jitter. */
	assert_int_equal(sched_retry_delay(0, 1, UINT32_MAX), 0);
	assert_int_equal(sched_retry_delay(0, 1000, UINT32_MAX), 0);
	assert_int_equal(sched_retry_delay(1, 1, UINT32_MAX), 1);
	assert_int_equal(sched_retry_delay(4, 1, UINT32_MAX), 5);
}

/* A blocked job waiting for deps[0..n) of types[0..n); run_at or 0. */
static int64_t
insert_dependent(const int64_t *deps, const int *types, int n, int64_t run_at)
{
	struct job j;
	int64_t id;

	fixture_job_init(&j, NULL, 0);
	j.state = JOB_BLOCKED;
	j.deps_pending = n;
	j.run_at = run_at;
	id = insert_custom(&j);
	assert_int_equal(queue_begin(), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(queue_dep_add(id, deps[i], types[i], 0), 1);
	assert_int_equal(queue_commit(), 0);
	return (id);
}

/* Job id ends in state as a worker records it, with what follows. */
static void
end_job(int64_t id, int state)
{
	struct job j;
	int64_t aid;
	int slot;

	get_job(id, &j);
	aid = j.array_id;
	slot = sched_holds_slot(&j);
	job_clear(&j);
	memset(&j, 0, sizeof j);
	j.id = id;
	j.state = state;
	j.finished_at = util_now_ms();
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_finish(&j), 0);
	assert_int_equal(sched_job_done(id, state, aid, slot), 0);
	assert_int_equal(queue_commit(), 0);
}

/* Cancel job id before it started, as cmd-cancel.c does. */
static void
cancel_job(int64_t id)
{
	struct job j;

	get_job(id, &j);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_cancel(id, 0, util_now_ms(), NULL), 0);
	assert_int_equal(
	    sched_job_done(id, JOB_CANCELLED, j.array_id, sched_holds_slot(&j)),
	    0);
	assert_int_equal(queue_commit(), 0);
	job_clear(&j);
}

/* Job id ended cancelled because dependency dep ended in dep_state. */
static void
assert_cancelled_by(int64_t id, int64_t dep, int dep_state)
{
	char want[128];
	struct job j;

	snprintf(want, sizeof want, "dependency %lld %s", (long long)dep,
	         proto_state_name(dep_state));
	get_job(id, &j);
	if (j.state != JOB_CANCELLED || j.reason == NULL ||
	    strcmp(j.reason, want) != 0)
		fail_msg("job %lld is %s (%s), expected cancelled (%s)",
		         (long long)id, proto_state_name(j.state),
		         j.reason != NULL ? j.reason : "no reason", want);
	assert_true(j.finished_at > 0);
	assert_int_equal(j.attempt, 0);
	job_clear(&j);
}

/* What each end of a dependency does to each type of dependent. */
static void
test_job_done_types(void **state)
{
	static const int ends[] = { JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED,
		                    JOB_LOST };
	struct job j;
	int64_t root, ok, any, fail, ids[4];
	int types[4];

	(void)state;
	for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
		int end = ends[i], succeeded = end == JOB_SUCCEEDED;

		root = insert_job(0);
		ok = insert_dependent(&root, (int[]){ DEP_OK }, 1, 0);
		any = insert_dependent(&root, (int[]){ DEP_ANY }, 1, 0);
		fail = insert_dependent(&root, (int[]){ DEP_FAIL }, 1, 0);
		end_job(root, end);
		assert_int_equal(job_state(any), JOB_QUEUED);
		if (succeeded) {
			assert_int_equal(job_state(ok), JOB_QUEUED);
			assert_cancelled_by(fail, root, end);
		} else {
			assert_cancelled_by(ok, root, end);
			assert_int_equal(job_state(fail), JOB_QUEUED);
		}
		get_job(any, &j);
		assert_int_equal(j.deps_pending, 0);
		assert_null(j.reason);
		job_clear(&j);
		/* Settled once: nothing waits for root any more. */
		assert_int_equal(queue_dependents(root, ids, types, 4), 0);
	}
}

/* Two dependencies: queued after both; scheduled if the time is ahead. */
static void
test_job_done_two_deps(void **state)
{
	int64_t r1, r2, r3, both, later, mixed;
	struct job j;

	(void)state;
	r1 = insert_job(0);
	r2 = insert_job(0);
	r3 = insert_job(0);
	both = insert_dependent((int64_t[]){ r1, r2 },
	                        (int[]){ DEP_OK, DEP_FAIL }, 2, 0);
	later =
	    insert_dependent((int64_t[]){ r1, r2 }, (int[]){ DEP_ANY, DEP_ANY },
	                     2, util_now_ms() + 3600000);
	mixed = insert_dependent((int64_t[]){ r1, r3 },
	                         (int[]){ DEP_OK, DEP_OK }, 2, 0);

	end_job(r1, JOB_SUCCEEDED);
	assert_int_equal(job_state(both), JOB_BLOCKED);
	assert_int_equal(job_state(later), JOB_BLOCKED);
	assert_int_equal(job_state(mixed), JOB_BLOCKED);
	get_job(both, &j);
	assert_int_equal(j.deps_pending, 1);
	job_clear(&j);

	end_job(r2, JOB_FAILED);
	assert_int_equal(job_state(both), JOB_QUEUED);
	assert_int_equal(job_state(later), JOB_SCHEDULED);
	get_job(later, &j);
	assert_int_equal(j.deps_pending, 0);
	job_clear(&j);

	/* One met does not save a job from one that never can be. */
	end_job(r3, JOB_LOST);
	assert_cancelled_by(mixed, r3, JOB_LOST);
}

/* A failed root cancels a chain; the cancels are ends for dependents. */
static void
test_job_done_chain(void **state)
{
	int64_t root, a, b, c, on_fail, on_any, other;

	(void)state;
	root = insert_job(0);
	other = insert_job(0);
	a = insert_dependent(&root, (int[]){ DEP_OK }, 1, 0);
	b = insert_dependent(&a, (int[]){ DEP_OK }, 1, 0);
	c = insert_dependent((int64_t[]){ other, b },
	                     (int[]){ DEP_ANY, DEP_OK }, 2, 0);
	on_fail = insert_dependent(&a, (int[]){ DEP_FAIL }, 1, 0);
	on_any = insert_dependent(&c, (int[]){ DEP_ANY }, 1, 0);

	end_job(root, JOB_FAILED);
	assert_cancelled_by(a, root, JOB_FAILED);
	assert_cancelled_by(b, a, JOB_CANCELLED);
	assert_cancelled_by(c, b, JOB_CANCELLED);
	assert_int_equal(job_state(on_fail), JOB_QUEUED);
	assert_int_equal(job_state(on_any), JOB_QUEUED);
	assert_int_equal(job_state(other), JOB_QUEUED);

	/* other ends later: c has ended already and stays as it is. */
	end_job(other, JOB_SUCCEEDED);
	assert_cancelled_by(c, b, JOB_CANCELLED);
}

/* Array task index of aid (limit), waiting for a slot if wait. */
static int64_t
insert_task(int64_t aid, int64_t index, int64_t limit, int wait)
{
	struct job j;

	fixture_job_init(&j, NULL, 0);
	j.array_id = aid;
	j.array_index = index;
	j.array_limit = limit;
	j.array_wait = wait;
	j.deps_pending = wait;
	j.state = wait ? JOB_BLOCKED : JOB_QUEUED;
	return (insert_custom(&j));
}

/* An ended task's slot goes to the next waiting task, in index order. */
static void
test_job_done_array_slot(void **state)
{
	int64_t aid, t[6];

	(void)state;
	assert_int_equal(queue_begin(), 0);
	aid = queue_reserve_id();
	assert_int_equal(queue_commit(), 0);
	assert_true(aid > 0);
	t[0] = insert_task(aid, 0, 2, 0);
	t[1] = insert_task(aid, 1, 2, 0);
	t[5] = insert_task(aid, 5, 2, 1); /* ids out of index order */
	t[3] = insert_task(aid, 3, 2, 1);
	t[2] = insert_task(aid, 2, 2, 1);
	t[4] = insert_task(aid, 4, 2, 1);

	end_job(t[0], JOB_SUCCEEDED);
	assert_states(t,
	              (int[]){ JOB_SUCCEEDED, JOB_QUEUED, JOB_QUEUED,
	                       JOB_BLOCKED, JOB_BLOCKED, JOB_BLOCKED },
	              6);
	/* Without a slot to give, nothing moves. */
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(sched_job_done(t[1], JOB_FAILED, aid, 0), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(job_state(t[3]), JOB_BLOCKED);
	/* Any end gives it back: a failure, a cancel before the start. */
	end_job(t[1], JOB_FAILED);
	assert_int_equal(job_state(t[3]), JOB_QUEUED);
	assert_int_equal(job_state(t[4]), JOB_BLOCKED);
	cancel_job(t[3]);
	assert_int_equal(job_state(t[4]), JOB_QUEUED);
	assert_int_equal(job_state(t[5]), JOB_BLOCKED);
	/* A task cancelled while it waits had no slot to give. */
	cancel_job(t[5]);
	end_job(t[4], JOB_LOST);
	end_job(t[2], JOB_SUCCEEDED);
	assert_states(t,
	              (int[]){ JOB_SUCCEEDED, JOB_FAILED, JOB_SUCCEEDED,
	                       JOB_CANCELLED, JOB_LOST, JOB_CANCELLED },
	              6);
}

/* An array whose tasks all wait for a root: its failure cancels them all. */
static void
test_job_done_array_deps(void **state)
{
	int64_t aid, root, t[3];
	struct job j;

	(void)state;
	root = insert_job(0);
	aid = queue_reserve_id();
	for (int i = 0; i < 3; i++) {
		fixture_job_init(&j, NULL, 0);
		j.state = JOB_BLOCKED;
		j.array_id = aid;
		j.array_index = i;
		j.array_limit = 1;
		j.array_wait = i > 0;
		j.deps_pending = 1 + j.array_wait;
		t[i] = insert_custom(&j);
		assert_int_equal(queue_dep_add(t[i], root, DEP_OK, 0), 1);
	}
	end_job(root, JOB_FAILED);
	for (int i = 0; i < 3; i++) {
		assert_cancelled_by(t[i], root, JOB_FAILED);
		get_job(t[i], &j);
		assert_int_equal(j.array_wait, 0);
		job_clear(&j);
	}

	/* The same, but the root succeeds: one at a time, in index order. */
	root = insert_job(0);
	aid = queue_reserve_id();
	for (int i = 0; i < 3; i++) {
		fixture_job_init(&j, NULL, 0);
		j.state = JOB_BLOCKED;
		j.array_id = aid;
		j.array_index = i;
		j.array_limit = 1;
		j.array_wait = i > 0;
		j.deps_pending = 1 + j.array_wait;
		t[i] = insert_custom(&j);
		assert_int_equal(queue_dep_add(t[i], root, DEP_OK, 0), 1);
	}
	end_job(root, JOB_SUCCEEDED);
	assert_states(t, (int[]){ JOB_QUEUED, JOB_BLOCKED, JOB_BLOCKED }, 3);
	end_job(t[0], JOB_SUCCEEDED);
	assert_states(t, (int[]){ JOB_SUCCEEDED, JOB_QUEUED, JOB_BLOCKED }, 3);
	end_job(t[1], JOB_FAILED);
	assert_states(t, (int[]){ JOB_SUCCEEDED, JOB_FAILED, JOB_QUEUED }, 3);
}

/* Claim queued job id for a new attempt; the job read is in j. */
static void
claim(int64_t id, struct job *j)
{
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_claim(id, j), 0);
	assert_int_equal(queue_commit(), 0);
}

/*
 * Start an attempt of queued job id and end it as state with exit code
 * code (-1: none), as worker.c records it; returns the time it ended.
 */
static int64_t
run_attempt(int64_t id, int state, int code, int cancel)
{
	struct job j;
	int64_t now;

	claim(id, &j);
	j.state = state;
	j.has_exit = code >= 0;
	j.exit_code = code >= 0 ? code : 0;
	j.cancel_requested = cancel;
	now = j.finished_at = util_now_ms();
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(sched_attempt_ended(&j), 0);
	assert_int_equal(queue_commit(), 0);
	job_clear(&j);
	return (now);
}

/* The scheduled job id is made due now (its backoff skipped). */
static void
make_due(int64_t id)
{
	struct job j;
	int64_t ids[8];

	get_job(id, &j);
	assert_int_equal(j.state, JOB_SCHEDULED);
	assert_int_equal(queue_jobs_due(j.run_at, ids, 8), 1);
	assert_int_equal(ids[0], id);
	job_clear(&j);
}

struct attempts {
	int64_t n[8];
	int state[8], exit_code[8], has_exit[8];
	int count;
};

static void
attempt_cb(const struct job *a, void *arg)
{
	struct attempts *as = arg;

	assert_true(as->count < 8);
	as->n[as->count] = a->attempt;
	as->state[as->count] = a->state;
	as->has_exit[as->count] = a->has_exit;
	as->exit_code[as->count++] = a->exit_code;
}

static int
attempts_of(int64_t id, struct attempts *as)
{
	memset(as, 0, sizeof *as);
	assert_int_equal(queue_attempts(id, attempt_cb, as), 0);
	return (as->count);
}

/* Insert a job with retries and retry_delay_ms. */
static int64_t
insert_retrying(int64_t retries, int64_t delay, int on_lost)
{
	struct job j;

	fixture_job_init(&j, NULL, 0);
	j.retries = retries;
	j.retry_delay_ms = delay;
	j.retry_on_lost = on_lost;
	return (insert_custom(&j));
}

static void
test_attempt_retry(void **state)
{
	struct attempts as;
	struct job j;
	int64_t id, dep, before, after;

	(void)state;
	id = insert_retrying(2, 1000, 0);
	dep = insert_dependent(&id, (int[]){ DEP_ANY }, 1, 0);

	/* Attempt 1 fails: scheduled for at least the delay ahead. */
	before = util_now_ms();
	run_attempt(id, JOB_FAILED, 3, 0);
	after = util_now_ms();
	get_job(id, &j);
	assert_int_equal(j.state, JOB_SCHEDULED);
	assert_int_equal(j.attempt, 1);
	assert_in_range(j.run_at, before + 1000, after + 1250);
	assert_non_null(j.reason);
	assert_non_null(strstr(j.reason, "attempt 1 failed"));
	assert_non_null(strstr(j.reason, "retry 1 of 2"));
	assert_int_equal(j.has_exit, 0);
	assert_int_equal(j.finished_at, 0);
	job_clear(&j);
	assert_int_equal(attempts_of(id, &as), 1);
	assert_int_equal(as.n[0], 1);
	assert_int_equal(as.state[0], JOB_FAILED);
	assert_int_equal(as.has_exit[0], 1);
	assert_int_equal(as.exit_code[0], 3);
	/* Not an end: the dependent still waits. */
	assert_int_equal(job_state(dep), JOB_BLOCKED);

	/* Attempt 2 fails: the delay doubles. */
	make_due(id);
	before = util_now_ms();
	run_attempt(id, JOB_FAILED, 4, 0);
	after = util_now_ms();
	get_job(id, &j);
	assert_int_equal(j.state, JOB_SCHEDULED);
	assert_int_equal(j.attempt, 2);
	assert_in_range(j.run_at, before + 2000, after + 2500);
	assert_non_null(strstr(j.reason, "retry 2 of 2"));
	job_clear(&j);
	assert_int_equal(job_state(dep), JOB_BLOCKED);

	/* Attempt 3 fails with none left: the job ends failed. */
	make_due(id);
	run_attempt(id, JOB_FAILED, 5, 0);
	get_job(id, &j);
	assert_int_equal(j.state, JOB_FAILED);
	assert_int_equal(j.attempt, 3);
	assert_int_equal(j.has_exit, 1);
	assert_int_equal(j.exit_code, 5);
	assert_true(j.finished_at > 0);
	job_clear(&j);
	assert_int_equal(attempts_of(id, &as), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(as.n[i], i + 1);
		assert_int_equal(as.state[i], JOB_FAILED);
		assert_int_equal(as.exit_code[i], 3 + i);
	}
	assert_int_equal(job_state(dep), JOB_QUEUED);

	/* A retry by hand counts the retries afresh. */
	assert_int_equal(queue_job_requeue(id, JOB_QUEUED, 0, NULL, 1), 0);
	run_attempt(id, JOB_FAILED, 6, 0);
	get_job(id, &j);
	assert_int_equal(j.state, JOB_SCHEDULED);
	assert_int_equal(j.attempt, 4);
	assert_non_null(strstr(j.reason, "retry 1 of 2"));
	job_clear(&j);
	assert_int_equal(attempts_of(id, &as), 4);
}

static void
test_attempt_no_retry(void **state)
{
	struct attempts as;
	struct job j;
	int64_t none, ok, after_none, zero;

	(void)state;
	/* No retries: the first failure ends the job, and its dependents. */
	none = insert_retrying(0, 1000, 0);
	after_none = insert_dependent(&none, (int[]){ DEP_OK }, 1, 0);
	run_attempt(none, JOB_FAILED, 1, 0);
	assert_int_equal(job_state(none), JOB_FAILED);
	assert_cancelled_by(after_none, none, JOB_FAILED);
	assert_int_equal(attempts_of(none, &as), 1);

	/* Success is never retried. */
	ok = insert_retrying(3, 1000, 1);
	run_attempt(ok, JOB_SUCCEEDED, 0, 0);
	get_job(ok, &j);
	assert_int_equal(j.state, JOB_SUCCEEDED);
	assert_int_equal(j.attempt, 1);
	assert_null(j.reason);
	job_clear(&j);
	assert_int_equal(attempts_of(ok, &as), 1);
	assert_int_equal(as.state[0], JOB_SUCCEEDED);

	/* A delay of 0: queued again at once. */
	zero = insert_retrying(1, 0, 0);
	run_attempt(zero, JOB_FAILED, 2, 0);
	get_job(zero, &j);
	assert_int_equal(j.state, JOB_QUEUED);
	assert_int_equal(j.run_at, 0);
	job_clear(&j);
	run_attempt(zero, JOB_FAILED, 2, 0);
	assert_int_equal(job_state(zero), JOB_FAILED);
}

static void
test_attempt_lost_cancelled(void **state)
{
	int64_t on_lost, not_lost, cancelled, before;
	struct job j;

	(void)state;
	/* retry_on_lost: a lost attempt is retried like a failed one. */
	on_lost = insert_retrying(1, 500, 1);
	before = util_now_ms();
	run_attempt(on_lost, JOB_LOST, -1, 0);
	get_job(on_lost, &j);
	assert_int_equal(j.state, JOB_SCHEDULED);
	assert_true(j.run_at >= before + 500);
	assert_non_null(strstr(j.reason, "attempt 1 lost"));
	job_clear(&j);
	make_due(on_lost);
	run_attempt(on_lost, JOB_LOST, -1, 0);
	assert_int_equal(job_state(on_lost), JOB_LOST);

	/* Without it, lost is the end. */
	not_lost = insert_retrying(5, 500, 0);
	run_attempt(not_lost, JOB_LOST, -1, 0);
	assert_int_equal(job_state(not_lost), JOB_LOST);

	/* A cancel is never retried, whatever the attempt's end. */
	cancelled = insert_retrying(5, 500, 1);
	run_attempt(cancelled, JOB_CANCELLED, -1, 1);
	assert_int_equal(job_state(cancelled), JOB_CANCELLED);
	/* (Even were the attempt's end recorded as a failure.) */
	cancelled = insert_retrying(5, 500, 1);
	run_attempt(cancelled, JOB_FAILED, 1, 1);
	assert_int_equal(job_state(cancelled), JOB_FAILED);
}

/* A throttled task gives its slot when its last attempt ends. */
static void
test_attempt_array_slot(void **state)
{
	int64_t aid, t[3];
	struct job j;

	(void)state;
	aid = queue_reserve_id();
	for (int i = 0; i < 3; i++) {
		fixture_job_init(&j, NULL, 0);
		j.array_id = aid;
		j.array_index = i;
		j.array_limit = 1;
		j.array_wait = i > 0;
		j.deps_pending = j.array_wait;
		j.state = i > 0 ? JOB_BLOCKED : JOB_QUEUED;
		j.retries = 1;
		j.retry_delay_ms = 0;
		t[i] = insert_custom(&j);
	}
	/* A retried attempt keeps the slot. */
	run_attempt(t[0], JOB_FAILED, 1, 0);
	assert_states(t, (int[]){ JOB_QUEUED, JOB_BLOCKED, JOB_BLOCKED }, 3);
	run_attempt(t[0], JOB_SUCCEEDED, 0, 0);
	assert_states(t, (int[]){ JOB_SUCCEEDED, JOB_QUEUED, JOB_BLOCKED }, 3);
	run_attempt(t[1], JOB_FAILED, 1, 0);
	run_attempt(t[1], JOB_FAILED, 1, 0);
	assert_states(t, (int[]){ JOB_SUCCEEDED, JOB_FAILED, JOB_QUEUED }, 3);
	/*
	 * Retried by hand while the slot is taken (as cmd-retry.c does), a
	 * task waits for a slot like the others, and gets the next one.
	 */
	assert_int_equal(queue_array_holders(aid), 1);
	assert_int_equal(queue_job_requeue(t[1], JOB_BLOCKED, 0, NULL, 1), 0);
	get_job(t[1], &j);
	assert_int_equal(sched_holds_slot(&j), 0);
	assert_int_equal(j.deps_pending, 1);
	job_clear(&j);
	get_job(t[2], &j);
	assert_int_equal(sched_holds_slot(&j), 1);
	job_clear(&j);
	run_attempt(t[2], JOB_SUCCEEDED, 0, 0);
	assert_states(t, (int[]){ JOB_SUCCEEDED, JOB_QUEUED, JOB_SUCCEEDED },
	              3);
	assert_int_equal(queue_array_holders(aid), 1);
}

/*
 * A supervisor holds its run file's lock from its first instruction: jobd
 * takes the lock before the fork and hands it over on fd 4, so a jobd that
 * dies at any moment after the fork leaves a supervisor its successor can
 * tell from a dead one. The "supervisor" here is a script that never locks
 * anything itself, and the run file carries its pid.
 */
static void
test_run_file_locked_before_exec(void **state)
{
	struct fixture *fx = *state;
	char script[128], ready[128], run[160], buf[32];
	int64_t id;
	pid_t pid;
	ssize_t n;
	FILE *f;
	int fd;

	snprintf(script, sizeof script, "%s/sup.sh", fx->dir);
	snprintf(ready, sizeof ready, "%s/ready", fx->dir);
	assert_non_null(f = fopen(script, "w"));
	/* Once exec'd, it checks that it got fd 4, says so, and waits. */
	fprintf(f,
	        "#!/bin/sh\n[ -e /dev/fd/4 ] || exit 9\n: > %s\n"
	        "exec sleep 30\n",
	        ready);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(script, 0700), 0);
	snprintf(jobd_conf.supervisor, sizeof jobd_conf.supervisor, "%s",
	         script);
	id = insert_job(0);
	sched_kick();
	run_sched();
	snprintf(jobd_conf.supervisor, sizeof jobd_conf.supervisor,
	         "/bin/true");
	assert_int_equal(job_state(id), JOB_RUNNING);
	/* After the exec: only fd 4 can hold the lock now. */
	alarm(WAIT_GUARD_S);
	while (access(ready, F_OK) != 0) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	alarm(0);

	snprintf(run, sizeof run, "%s/run/%lld.run", fx->dir, (long long)id);
	assert_true((fd = open(run, O_RDONLY)) != -1);
	errno = 0;
	assert_int_equal(flock(fd, LOCK_SH | LOCK_NB), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	assert_true(n > 1);
	buf[n] = '\0';
	pid = (pid_t)strtol(buf, NULL, 10);
	assert_true(pid > 0);
	/* Its end: the lock goes with it, and the job is lost (no outcome). */
	assert_int_equal(kill(pid, SIGKILL), 0);
	reap(&id, 1);
	assert_lost(id);
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
		T(test_claim_queues),
		T(test_claim_queue_limit),
		T(test_retry_delay),
		T(test_job_done_types),
		T(test_job_done_two_deps),
		T(test_job_done_chain),
		T(test_job_done_array_slot),
		T(test_job_done_array_deps),
		T(test_attempt_retry),
		T(test_attempt_no_retry),
		T(test_attempt_lost_cancelled),
		T(test_attempt_array_slot),
		T(test_run_file_locked_before_exec),
	};
#undef T

	return (cmocka_run_group_tests(tests, group_setup, group_teardown));
}
