/* status: the job objects of the ids asked, in that order. */
#include "jobd.h"

enum cmd_result
cmd_status_exec(struct request *r)
{
	json_t *ids = json_object_get(r->req, "ids"), *e, *jobs;
	struct job j;
	size_t i;

	jobs = json_array();
	json_array_foreach(ids, i, e)
	{
		if (dispatch_job_get(r, json_integer_value(e), &j) != 0) {
			json_decref(jobs);
			return (CMD_DONE);
		}
		json_array_append_new(jobs, dispatch_job_json(&j));
		job_clear(&j);
	}
	dispatch_reply(r, json_pack("{s:b, s:o}", "ok", 1, "jobs", jobs));
	return (CMD_DONE);
}
