/*
 * set: change the priority of jobs that have not started. All or nothing:
 * a job that runs or has ended refuses the whole request (an array's id
 * stands for its tasks that have not started).
 */
#include "jobd.h"

static int
cmd_set_one(struct request *r, int64_t id)
{
	return (queue_job_set_priority(
	    id, json_integer_value(json_object_get(r->req, "priority"))));
}

enum cmd_result
cmd_set_exec(struct request *r)
{
	return (dispatch_each_job(r, CMD_WAITING, cmd_set_one));
}
