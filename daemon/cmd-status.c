/*
 * status: the job objects of the ids asked (an array's id: its tasks), in
 * that order, each with its dependencies and its ended attempts.
 */
#include "jobd.h"

enum cmd_result
cmd_status_exec(struct request *r)
{
	json_t *jobs;

	if (dispatch_expand_ids(r, CMD_ANY) == 0 &&
	    (jobs = dispatch_jobs_detail(r)) != NULL)
		dispatch_reply(r,
		               json_pack("{s:b, s:o}", "ok", 1, "jobs", jobs));
	return (CMD_DONE);
}
