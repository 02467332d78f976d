/*
 * retry: run ended jobs again. Each becomes queued as a new attempt, with
 * its automatic retries counted afresh; what it ran before stays in its
 * attempts. Its dependents that ended with it stay as they are. A task of
 * a throttled array takes a free slot of its array, or waits (blocked) for
 * one. All or nothing: a job that has not ended refuses the whole request
 * (an array's id stands for its tasks that have ended).
 */
#include "jobd.h"

static int
cmd_retry_one(struct request *r, int64_t id)
{
	struct job j;
	int64_t holders;
	int state = JOB_QUEUED;

	if (queue_job_get(id, &j) != 0)
		return (-1);
	if (j.array_limit > 0) {
		if ((holders = queue_array_holders(j.array_id)) < 0) {
			job_clear(&j);
			return (-1);
		}
		if (holders >= j.array_limit)
			state = JOB_BLOCKED;
	}
	job_clear(&j);
	(void)r;
	return (queue_job_requeue(id, state, 0, NULL, 1));
}

enum cmd_result
cmd_retry_exec(struct request *r)
{
	return (dispatch_each_job(r, CMD_ENDED, cmd_retry_one));
}
