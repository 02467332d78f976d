/*
 * status: the job objects of the ids asked (an array's id: its tasks), in
 * that order, each with its dependencies and its ended attempts.
 */
#include "jobd.h"

enum cmd_result
cmd_status_exec(struct request *r)
{
	json_t *e, *jobs, *o;
	struct job j;
	size_t i;

	if (dispatch_expand_ids(r, CMD_ANY) != 0)
		return (CMD_DONE);
	jobs = json_array();
	json_array_foreach(json_object_get(r->req, "ids"), i, e)
	{
		if (dispatch_job_get(r, json_integer_value(e), &j) != 0) {
			json_decref(jobs);
			return (CMD_DONE);
		}
		o = dispatch_job_detail(&j);
		job_clear(&j);
		if (o == NULL) {
			json_decref(jobs);
			dispatch_error(r, PROTO_ESTORAGE,
			               "storage unavailable");
			return (CMD_DONE);
		}
		json_array_append_new(jobs, o);
	}
	dispatch_reply(r, json_pack("{s:b, s:o}", "ok", 1, "jobs", jobs));
	return (CMD_DONE);
}
