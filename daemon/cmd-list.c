/* list: jobs newest first, optionally of one state, at most limit. */
#include "jobd.h"

#define CMD_LIST_DEFAULT 100

static void
cmd_list_add(struct job *j, void *arg)
{
	json_array_append_new(arg, dispatch_job_json(j));
}

enum cmd_result
cmd_list_exec(struct request *r)
{
	json_t *v, *jobs;
	int state = -1, limit = CMD_LIST_DEFAULT;

	if ((v = json_object_get(r->req, "state")) != NULL &&
	    (state = proto_state_parse(json_string_value(v))) < 0) {
		dispatch_error(r, PROTO_EBADMSG, "unknown state '%s'",
		               json_string_value(v));
		return (CMD_DONE);
	}
	if ((v = json_object_get(r->req, "limit")) != NULL)
		limit = (int)json_integer_value(v);
	jobs = json_array();
	/* Root sees every job; anyone else, their own. */
	if (queue_job_list(state, r->uid == 0 ? -1 : (int64_t)r->uid, limit,
	                   cmd_list_add, jobs) != 0) {
		json_decref(jobs);
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
		return (CMD_DONE);
	}
	dispatch_reply(r, json_pack("{s:b, s:o}", "ok", 1, "jobs", jobs));
	return (CMD_DONE);
}
