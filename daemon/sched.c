/*
 * The scheduler (docs/scheduling.md). It starts queued jobs while fewer
 * than --parallel run and their queue has room and is not paused: highest
 * priority first, then submission order, across queues. It runs from the
 * loop's hook, and only queries when something may have changed
 * (sched_kick); each start costs one indexed query per queue (at most
 * PROTO_MAX_QUEUES), never a scan of the jobs. A claim is committed before the
 * fork, so a crash can lose an attempt but never run one twice.
 *
 * It also moves jobs between the waiting states: scheduled jobs become
 * queued from one timer armed for the earliest start; an ended job releases
 * or cancels its dependents (through job_deps' index and each dependent's
 * counter) and gives its array slot to the next task; a failed attempt is
 * retried after a backoff; and ended jobs are purged by age and count, in
 * batches, from a timer.
 *
 * Start times (--at) are wall clock times; durations (retry delays here,
 * timeouts in the supervisor, parked requests' deadlines) are not. A timer
 * compares the wall clock with the time since boot every SCHED_CLOCK_MS:
 * when the wall clock has jumped, the retries waiting for their delay move
 * with it, and the start timer is armed again, so a job whose time the
 * jump has passed starts at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "jobd.h"

#define SCHED_CLAIM_MAX   64      /* jobs started per hook run */
#define SCHED_TIMER_MAX   60000   /* ms: look again at least this often */
#define SCHED_BACKOFF_MAX 3600000 /* ms: the longest retry delay (1 h) */
#define SCHED_PURGE_MS    60000   /* retention runs this often */
#define SCHED_CLOCK_MS    10000   /* ms: the wall clock is checked this often */
#define SCHED_CLOCK_JUMP  2000    /* ms: a step of more is a jump */

/* One queue while a start is being chosen. */
struct sched_queue {
	char *name;
	int64_t parallel; /* 0: only the global limit */
	int paused;
	int running;
};

static int sched_dirty;              /* there may be queued jobs to start */
static int sched_timer_dirty;        /* start times may have changed */
static int sched_store_failed;       /* the last commit failed */
static struct event *sched_retry_ev; /* armed after a failed start */
static struct event *sched_timer_ev; /* the earliest start time */
static struct event *sched_purge_ev; /* retention */
static struct event *sched_clock_ev; /* looks for wall clock jumps */
static int64_t sched_clock_off;      /* wall minus boot time, last seen */
static int64_t sched_clock_undo;     /* the one before a jump, till commit */
static int sched_clock_moved;        /* a jump's shift awaits the commit */
/* Ids of purged jobs whose output goes once the purge is committed. */
static int64_t *sched_purged;
static size_t sched_npurged, sched_purged_cap;

static void sched_timer_cb(evutil_socket_t, short, void *);
static void sched_purge_cb(evutil_socket_t, short, void *);

static void
sched_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sched_kick();
}

/*
 * Has the wall clock jumped since the last look? Then the retries keep
 * their delays: their start times move with the jump. Called before any use
 * of the wall clock for start times, and every SCHED_CLOCK_MS, since libevent
 * cannot tell when the wall clock is set.
 */
/*
 * The wall clock minus the time since boot: constant unless the wall clock
 * is set. (CLOCK_MONOTONIC stops while the machine sleeps, which would pass
 * for a jump; CLOCK_BOOTTIME does not.)
 */
static int64_t
sched_clock_offset(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (util_now_ms() -
	        ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
}

static void
sched_clock_check(void)
{
	int64_t off = sched_clock_offset(), jump = off - sched_clock_off;

	if (jump >= -SCHED_CLOCK_JUMP && jump <= SCHED_CLOCK_JUMP) {
		sched_clock_off = off;
		return;
	}
	if (queue_begin() != 0 || queue_shift_retries(jump) != 0) {
		log_warnx("cannot move the retries after a clock jump; "
		          "trying again");
		server_wake();
		return;
	}
	log_warnx("the wall clock jumped %s by %lld ms: start times follow "
	          "it, retry delays keep their length",
	          jump > 0 ? "forward" : "back",
	          (long long)(jump > 0 ? jump : -jump));
	/* If the commit fails, the jump is seen (and moved) again. */
	if (!sched_clock_moved)
		sched_clock_undo = sched_clock_off;
	sched_clock_moved = 1;
	sched_clock_off = off;
	sched_times_changed();
}

static void
sched_clock_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sched_clock_check();
}

void
sched_init(void)
{
	struct timeval now = { 0, 0 },
	               clock = { SCHED_CLOCK_MS / 1000,
		                 (SCHED_CLOCK_MS % 1000) * 1000 };

	sched_retry_ev = evtimer_new(server_base, sched_retry_cb, NULL);
	sched_timer_ev = evtimer_new(server_base, sched_timer_cb, NULL);
	sched_purge_ev = evtimer_new(server_base, sched_purge_cb, NULL);
	sched_clock_ev =
	    event_new(server_base, -1, EV_PERSIST, sched_clock_cb, NULL);
	sched_clock_off = sched_clock_offset();
	evtimer_add(sched_purge_ev, &now);
	evtimer_add(sched_clock_ev, &clock);
	sched_timer_dirty = 1;
	sched_kick();
}

void
sched_fini(void)
{
	struct event **evs[] = { &sched_retry_ev, &sched_timer_ev,
		                 &sched_purge_ev, &sched_clock_ev };

	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
		if (*evs[i] != NULL)
			event_free(*evs[i]);
		*evs[i] = NULL;
	}
	free(sched_purged);
	sched_purged = NULL;
	sched_npurged = sched_purged_cap = 0;
}

/* Something changed that may let a job start: look on the next hook. */
void
sched_kick(void)
{
	sched_dirty = 1;
	server_wake();
}

/* Start times changed: arm the timer again on the next hook. */
void
sched_times_changed(void)
{
	sched_timer_dirty = 1;
	server_wake();
}

/* A start failed (fork, most likely): stop trying for a moment. */
static void
sched_backoff(void)
{
	struct timeval tv = { JOBD_SPAWN_RETRY_MS / 1000,
		              (JOBD_SPAWN_RETRY_MS % 1000) * 1000 };

	evtimer_add(sched_retry_ev, &tv);
}

static void
sched_evtimer_ms(struct event *ev, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/*
 * Arm the start timer for the earliest scheduled job. Start times are wall
 * clock times, and libevent's timers run on the monotonic clock: a clock
 * jump arms it again (sched_clock_cb), and it fires at least once a minute
 * anyway.
 */
static void
sched_timer_arm(void)
{
	int64_t at, delay;

	sched_clock_check();
	sched_timer_dirty = 0;
	switch (queue_next_run_at(&at)) {
	case 0:
		delay = at - util_now_ms();
		/* Due jobs whose move was not saved: not again at once. */
		if (sched_store_failed && delay < JOBD_SPAWN_RETRY_MS)
			delay = JOBD_SPAWN_RETRY_MS;
		sched_evtimer_ms(sched_timer_ev, delay < SCHED_TIMER_MAX
		                                     ? delay
		                                     : SCHED_TIMER_MAX);
		break;
	case 1:
		evtimer_del(sched_timer_ev);
		break;
	default:
		sched_evtimer_ms(sched_timer_ev, JOBD_SPAWN_RETRY_MS);
		break;
	}
}

/* The earliest start time has come: those jobs become queued. */
static void
sched_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	int64_t ids[1];

	(void)fd;
	(void)what;
	(void)arg;
	sched_clock_check();
	/* The update takes every due job at once; one id is enough here. */
	if (queue_begin() != 0 || queue_jobs_due(util_now_ms(), ids, 1) < 0) {
		log_warnx("cannot queue the jobs whose start time came");
		sched_evtimer_ms(sched_timer_ev, JOBD_SPAWN_RETRY_MS);
		server_wake();
		return;
	}
	sched_times_changed();
	sched_kick();
}

/*
 * The delay before retry n (1, 2, ...) of a job whose first retry waits
 * delay ms: delay * 2^(n-1), at most SCHED_BACKOFF_MAX (or delay, if that
 * is longer), plus up to a quarter more from rnd, so that jobs that failed
 * together do not all come back together.
 */
int64_t
sched_retry_delay(int64_t delay, int64_t n, uint32_t rnd)
{
	int64_t d = delay,
	        cap = delay > SCHED_BACKOFF_MAX ? delay : SCHED_BACKOFF_MAX;

	for (int64_t i = 1; i < n && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	return (d + (int64_t)((double)(d / 4) * rnd / UINT32_MAX));
}

/* Does an end in state satisfy a dependency of this type? */
int
sched_dep_ok(int type, int state)
{
	switch (type) {
	case DEP_ANY:
		return (1);
	case DEP_FAIL:
		return (state != JOB_SUCCEEDED);
	default:
		return (state == JOB_SUCCEEDED);
	}
}

/* A job changed state without ending: wake the scheduler as needed. */
static void
sched_moved(int state)
{
	if (state == JOB_QUEUED)
		sched_kick();
	else if (state == JOB_SCHEDULED)
		sched_times_changed();
}

/*
 * Does job j hold one of its array's slots? A throttled task does unless
 * it is waiting for one (or has ended: the caller reads it before).
 */
int
sched_holds_slot(const struct job *j)
{
	return (j->array_limit > 0 && j->array_wait == 0);
}

/* One ended job whose dependents and array slot are still to settle. */
struct sched_end {
	int64_t id, array_id;
	int state, slot;
};

/*
 * Job id ended in state (already recorded in the transaction); array_id is
 * its array, and slot says whether it held one of its array's slots. Its
 * dependents that this satisfies move on; those it never can satisfy end
 * cancelled, which is an end for their own dependents in turn; the next
 * task of its array takes its slot. Returns 0, or -1 if the store failed
 * (the transaction is then lost anyway).
 */
int
sched_job_done(int64_t id, int state, int64_t array_id, int slot)
{
	struct sched_end *todo = NULL, e;
	size_t ntodo = 0, cap = 0;
	int64_t now = util_now_ms(), *ids = NULL, tid;
	int *types = NULL, n, k, tstate, rv = 0;
	char reason[128];
	struct job d;

	e = (struct sched_end){ id, array_id, state, slot };
	for (;;) {
		if (e.array_id != 0 && e.slot) {
			switch (
			    queue_array_slot(e.array_id, now, &tid, &tstate)) {
			case 1:
				sched_moved(tstate);
				break;
			case -1:
				rv = -1;
				break;
			}
		}
		/* Every waiting dependent: a job's fan-out, not the queue. */
		for (k = 64;; k *= 2) {
			ids = xrealloc(ids, k * sizeof *ids);
			types = xrealloc(types, k * sizeof *types);
			if ((n = queue_dependents(e.id, ids, types, k)) < k)
				break;
		}
		if (n < 0)
			rv = -1;
		for (int i = 0; i < n; i++) {
			if (sched_dep_ok(types[i], e.state)) {
				if ((tstate =
				         queue_dep_met(ids[i], e.id, now)) < 0)
					rv = -1;
				sched_moved(tstate);
				continue;
			}
			if (queue_job_get(ids[i], &d) != 0) {
				rv = -1;
				continue;
			}
			snprintf(reason, sizeof reason, "dependency %lld %s",
			         (long long)e.id, proto_state_name(e.state));
			if (queue_job_cancel(d.id, 0, now, reason) != 0)
				rv = -1;
			log_debug("job %lld cancelled: %s", (long long)d.id,
			          reason);
			dispatch_job_changed(d.id, 0);
			if (ntodo == cap) {
				cap = cap ? cap * 2 : 16;
				todo = xrealloc(todo, cap * sizeof *todo);
			}
			todo[ntodo++] =
			    (struct sched_end){ d.id, d.array_id, JOB_CANCELLED,
				                sched_holds_slot(&d) };
			job_clear(&d);
		}
		if (ntodo == 0 || rv != 0)
			break;
		e = todo[--ntodo];
	}
	free(todo);
	free(ids);
	free(types);
	return (rv);
}

/*
 * The current attempt of job j ended as j says (state, exit code, signal,
 * reason, times; the rest of j as read from the store before). Record the
 * attempt; retry it if the job asks for that; otherwise record the job's
 * end and settle what depended on it. Returns 0 or -1.
 */
int
sched_attempt_ended(struct job *j)
{
	int64_t n = j->attempt - j->retry_base, delay, now = util_now_ms();
	int retry, state;
	uint32_t rnd = 0;
	char reason[256];

	if (queue_attempt_add(j) != 0)
		return (-1);
	retry = !j->cancel_requested && n <= j->retries &&
	        (j->state == JOB_FAILED ||
	         (j->state == JOB_LOST && j->retry_on_lost));
	if (!retry) {
		if (queue_job_finish(j) != 0)
			return (-1);
		return (sched_job_done(j->id, j->state, j->array_id,
		                       sched_holds_slot(j)));
	}
	if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
		rnd = (uint32_t)random();
	delay = sched_retry_delay(j->retry_delay_ms, n, rnd);
	state = delay > 0 ? JOB_SCHEDULED : JOB_QUEUED;
	snprintf(
	    reason, sizeof reason, "attempt %lld %s%s%s; retry %lld of %lld",
	    (long long)j->attempt, proto_state_name(j->state),
	    j->reason != NULL ? ": " : "", j->reason != NULL ? j->reason : "",
	    (long long)n, (long long)j->retries);
	log_info("job %lld: %s", (long long)j->id, reason);
	if (queue_job_requeue(j->id, state, delay > 0 ? now + delay : 0, reason,
	                      0) != 0)
		return (-1);
	sched_moved(state);
	return (0);
}

/* The queues of one round of starts. */
struct sched_queues {
	struct sched_queue *q;
	size_t n, cap;
};

static void
sched_queue_add(const char *name, int64_t parallel, int paused, void *arg)
{
	struct sched_queues *qs = arg;

	if (qs->n == qs->cap) {
		qs->cap = qs->cap ? qs->cap * 2 : 8;
		qs->q = xrealloc(qs->q, qs->cap * sizeof *qs->q);
	}
	qs->q[qs->n++] = (struct sched_queue){ xstrdup(name), parallel, paused,
		                               worker_count_queue(name) };
}

static void
sched_queues_free(struct sched_queues *qs)
{
	for (size_t i = 0; i < qs->n; i++)
		free(qs->q[i].name);
	free(qs->q);
}

/*
 * Pick the next job to start: the best head of the queues that have room
 * (one indexed query each; there are at most PROTO_MAX_QUEUES). Returns 0
 * and its queue, 1 if none is ready, -1.
 */
static int
sched_pick(struct sched_queues *qs, int64_t *idp, struct sched_queue **qp)
{
	int64_t id, prio, best_prio = 0;
	int found = 0;

	for (size_t i = 0; i < qs->n; i++) {
		struct sched_queue *q = &qs->q[i];

		if (q->paused || (q->parallel > 0 && q->running >= q->parallel))
			continue;
		switch (queue_job_next(q->name, &id, &prio)) {
		case 0:
			break;
		case 1:
			continue;
		default:
			return (-1);
		}
		if (!found || prio > best_prio ||
		    (prio == best_prio && id < *idp)) {
			*idp = id;
			best_prio = prio;
			*qp = q;
			found = 1;
		}
	}
	return (found ? 0 : 1);
}

/* Jobs claimed by sched_claim_next, started once their claims commit. */
static struct job sched_claimed[SCHED_CLAIM_MAX];
static int sched_nclaimed;
static int sched_again; /* claim more in the next loop turn */

/*
 * Claim up to free_slots jobs into jobs, in the open transaction (under a
 * savepoint: a failure takes back these claims, not the rest of the
 * transaction); returns how many.
 */
static int
sched_claim(struct job *jobs, int free_slots)
{
	struct sched_queues qs = { NULL, 0, 0 };
	struct sched_queue *q = NULL;
	int64_t id = 0;
	int k = 0, rv, marked = 0;

	if (queue_queue_list(NULL, sched_queue_add, &qs) != 0)
		goto fail;
	while (k < free_slots) {
		if ((rv = sched_pick(&qs, &id, &q)) < 0)
			goto fail;
		if (rv == 1) {
			sched_dirty = 0; /* nothing more can start for now */
			break;
		}
		/* A job that just ended, at once again: after this commit. */
		if (worker_files_pending(id)) {
			sched_again = 1;
			break;
		}
		if (!marked && (queue_begin() != 0 || queue_savepoint() != 0))
			goto fail;
		marked = 1;
		if (queue_job_claim(id, &jobs[k]) != 0)
			goto fail;
		q->running++;
		k++;
	}
	sched_queues_free(&qs);
	if (marked && queue_release() != 0)
		goto undo;
	return (k);
fail:
	sched_queues_free(&qs);
	if (marked)
		queue_rollback_to();
undo:
	/* Undo every claim of this round; try again later. */
	while (k > 0)
		job_clear(&jobs[--k]);
	sched_backoff();
	return (0);
}

/*
 * Before the loop turn's commit: claim the jobs that can start now, in its
 * transaction, so that one commit (one fsync) records both the turn's
 * writes (a submit, a job's end) and the starts they allow.
 */
void
sched_claim_next(void)
{
	int free_slots;

	if (sched_timer_dirty)
		sched_timer_arm();
	if (sched_nclaimed > 0 || !sched_dirty ||
	    evtimer_pending(sched_retry_ev, NULL))
		return;
	free_slots = jobd_conf.parallel - worker_count();
	if (free_slots <= 0)
		return;
	if (free_slots > SCHED_CLAIM_MAX)
		free_slots = SCHED_CLAIM_MAX;
	sched_nclaimed = sched_claim(sched_claimed, free_slots);
}

/*
 * After that commit: start the claimed jobs, their claims durable before
 * the spawn (at most one start per attempt); or, if the commit failed,
 * forget them and try again shortly.
 */
void
sched_start_claimed(int failed)
{
	int i, k = sched_nclaimed;

	sched_nclaimed = 0;
	if (sched_again)
		server_wake();
	sched_again = 0;
	if (k == 0)
		return;
	if (failed) {
		log_warnx("cannot record job starts; retrying shortly");
		for (i = 0; i < k; i++)
			job_clear(&sched_claimed[i]);
		sched_backoff();
		return;
	}
	for (i = 0; i < k; i++) {
		if (worker_spawn(&sched_claimed[i]) != 0) {
			log_warn("cannot start job %lld; it stays queued",
			         (long long)sched_claimed[i].id);
			if (queue_begin() == 0)
				queue_job_unclaim(sched_claimed[i].id);
			sched_backoff();
		}
		dispatch_job_changed(sched_claimed[i].id, 0);
		job_clear(&sched_claimed[i]);
	}
	/* The unclaims, if any, and parked requests wait for the hook. */
	server_wake();
}

/* Output files of purged jobs: removed after the commit (below). */
void
sched_purged_add(const int64_t *ids, int n)
{
	if (sched_npurged + n > sched_purged_cap) {
		sched_purged_cap = sched_npurged + n + 64;
		sched_purged = xrealloc(sched_purged, sched_purged_cap *
		                                          sizeof *sched_purged);
	}
	memcpy(sched_purged + sched_npurged, ids, n * sizeof *ids);
	sched_npurged += n;
}

/* After the hook's commit: remove the output of jobs it purged. */
void
sched_after_commit(int failed)
{
	char path[PATH_MAX];

	sched_store_failed = failed;
	if (sched_clock_moved && failed)
		sched_clock_off = sched_clock_undo;
	sched_clock_moved = 0;
	for (size_t i = 0; !failed && i < sched_npurged; i++) {
		outcome_path(path, sizeof path, jobd_conf.state_dir,
		             sched_purged[i], OUTCOME_STDOUT);
		unlink(path);
		outcome_path(path, sizeof path, jobd_conf.state_dir,
		             sched_purged[i], OUTCOME_STDERR);
		unlink(path);
	}
	sched_npurged = 0;
}

/*
 * Retention: purge one batch of ended jobs older than --retention-age or
 * beyond the newest --retention-count, then look again soon if the batch
 * was full, else in a minute.
 */
static void
sched_purge_cb(evutil_socket_t fd, short what, void *arg)
{
	int64_t ids[PROTO_PURGE_BATCH], cutoff = -1, at;
	int n = 0;

	(void)fd;
	(void)what;
	(void)arg;
	if (jobd_conf.retention_age_ms > 0)
		cutoff = util_now_ms() - jobd_conf.retention_age_ms;
	if (jobd_conf.retention_count > 0 &&
	    queue_finished_nth(jobd_conf.retention_count, &at) == 0 &&
	    at > cutoff)
		cutoff = at;
	if (cutoff >= 0 && queue_begin() == 0) {
		/* The hook commits (and ends) the transaction. */
		server_wake();
		if ((n = queue_purge(cutoff, -1, -1, ids, PROTO_PURGE_BATCH)) >
		    0) {
			sched_purged_add(ids, n);
			log_debug("retention: purged %d job(s)", n);
		}
	}
	sched_evtimer_ms(sched_purge_ev,
	                 n == PROTO_PURGE_BATCH ? 0 : SCHED_PURGE_MS);
}
