/*
 * wait: answer when every job asked (an array's id: its tasks) has ended,
 * with the jobs as status shows them. Until then the request is parked on
 * the first job still going; each time that job changes it runs again. At
 * its deadline (timeout_ms, at most PROTO_MAX_PARK_MS) it answers
 * {"done": false} and the client asks again.
 */
#include "jobd.h"

enum cmd_result
cmd_wait_exec(struct request *r)
{
	json_t *t = json_object_get(r->req, "timeout_ms"), *e, *jobs;
	int64_t timeout = t != NULL ? json_integer_value(t) : PROTO_MAX_PARK_MS;
	int64_t pending = 0;
	struct job j;
	size_t i;

	if (dispatch_expand_ids(r, CMD_ANY) != 0)
		return (CMD_DONE);
	json_array_foreach(json_object_get(r->req, "ids"), i, e)
	{
		if (dispatch_job_get(r, json_integer_value(e), &j) != 0)
			return (CMD_DONE);
		/* Every id is checked, so a bad one is refused at once. */
		if (!JOB_TERMINAL(j.state) && pending == 0)
			pending = j.id;
		job_clear(&j);
	}
	if (pending == 0) {
		if ((jobs = dispatch_jobs_detail(r)) != NULL)
			dispatch_reply(r, json_pack("{s:b, s:b, s:o}", "ok", 1,
			                            "done", 1, "jobs", jobs));
		return (CMD_DONE);
	}
	if (r->expired || timeout == 0) {
		dispatch_reply(r, json_pack("{s:b, s:b}", "ok", 1, "done", 0));
		return (CMD_DONE);
	}
	if (timeout > PROTO_MAX_PARK_MS)
		timeout = PROTO_MAX_PARK_MS;
	dispatch_park(r, pending, util_mono_ms() + timeout);
	return (CMD_PARK);
}
