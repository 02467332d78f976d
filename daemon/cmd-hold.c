/*
 * hold and release: a held job keeps its state (blocked, scheduled or
 * queued) but is never started until it is released. All or nothing: a job
 * that runs or has ended refuses the whole request (an array's id stands
 * for its tasks that have not started). Releasing a job that is not held
 * changes nothing.
 */
#include "jobd.h"

static int
cmd_hold_one(struct request *r, int64_t id)
{
	return (queue_job_set_held(id, r->op == PROTO_OP_HOLD));
}

enum cmd_result
cmd_hold_exec(struct request *r)
{
	return (dispatch_each_job(r, CMD_WAITING, cmd_hold_one));
}

enum cmd_result
cmd_release_exec(struct request *r)
{
	return (dispatch_each_job(r, CMD_WAITING, cmd_hold_one));
}
