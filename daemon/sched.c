/*
 * The scheduler: starts queued jobs while fewer than --parallel run,
 * highest priority first, then in submission order. It runs from the loop's
 * hook and claims with an indexed query; it only queries when something may
 * have changed (sched_kick). A claim is committed before the fork, so a
 * crash can lose an attempt but never run one twice.
 */
#include "jobd.h"

#define SCHED_CLAIM_MAX 64 /* jobs started per hook run */

static int sched_dirty;              /* there may be queued jobs to start */
static struct event *sched_retry_ev; /* armed after a failed start */

static void
sched_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sched_kick();
}

void
sched_init(void)
{
	sched_retry_ev = evtimer_new(server_base, sched_retry_cb, NULL);
	sched_kick();
}

void
sched_fini(void)
{
	if (sched_retry_ev != NULL)
		event_free(sched_retry_ev);
	sched_retry_ev = NULL;
}

/* Something changed that may let a job start: look on the next hook. */
void
sched_kick(void)
{
	sched_dirty = 1;
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

void
sched_run(void)
{
	struct job jobs[SCHED_CLAIM_MAX];
	int64_t ids[SCHED_CLAIM_MAX];
	int free_slots, n, k = 0, i;

	if (!sched_dirty || evtimer_pending(sched_retry_ev, NULL))
		return;
	free_slots = jobd_conf.parallel - worker_count();
	if (free_slots <= 0)
		return;
	if (free_slots > SCHED_CLAIM_MAX)
		free_slots = SCHED_CLAIM_MAX;
	if ((n = queue_job_next(ids, free_slots)) < 0) {
		sched_backoff();
		return;
	}
	if (n < free_slots)
		sched_dirty = 0; /* the queue is empty for now */
	if (n == 0)
		return;
	if (queue_begin() != 0) {
		sched_backoff();
		return;
	}
	for (i = 0; i < n; i++) {
		switch (queue_job_claim(ids[i], &jobs[k])) {
		case 0:
			k++;
			break;
		case 1:
			break; /* no longer queued */
		default:
			/* Undo every claim of this round; try again later. */
			queue_rollback();
			while (k > 0)
				job_clear(&jobs[--k]);
			sched_backoff();
			return;
		}
	}
	/* Durable before the fork: at most one start per attempt. */
	if (queue_commit() != 0) {
		log_warnx("cannot record job starts; retrying shortly");
		for (i = 0; i < k; i++)
			job_clear(&jobs[i]);
		sched_backoff();
		return;
	}
	for (i = 0; i < k; i++) {
		if (worker_spawn(&jobs[i]) != 0) {
			log_warn("cannot start job %lld; it stays queued",
			         (long long)jobs[i].id);
			if (queue_begin() == 0)
				queue_job_unclaim(jobs[i].id);
			sched_backoff();
		}
		dispatch_job_changed(jobs[i].id, 0);
		job_clear(&jobs[i]);
	}
	/* The supervisors' pids (or the unclaims) wait for a commit. */
	server_wake();
}
