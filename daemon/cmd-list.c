/*
 * list: jobs newest first, filtered by state, queue, name (a glob) and
 * submit time, at most limit. The filters are SQL (queue_job_list).
 */
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
	struct job_filter f = { .state = -1, .limit = CMD_LIST_DEFAULT };
	json_t *v, *jobs;

	if ((v = json_object_get(r->req, "state")) != NULL &&
	    (f.state = proto_state_parse(json_string_value(v))) < 0) {
		dispatch_error(r, PROTO_EBADMSG, "unknown state '%s'",
		               json_string_value(v));
		return (CMD_DONE);
	}
	if ((v = json_object_get(r->req, "limit")) != NULL)
		f.limit = (int)json_integer_value(v);
	f.queue = json_string_value(json_object_get(r->req, "queue"));
	f.name = json_string_value(json_object_get(r->req, "name"));
	f.since = json_integer_value(json_object_get(r->req, "since"));
	/* Root sees every job; anyone else, their own. */
	f.uid = r->uid == 0 ? -1 : (int64_t)r->uid;
	jobs = json_array();
	if (queue_job_list(&f, cmd_list_add, jobs) != 0) {
		json_decref(jobs);
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
		return (CMD_DONE);
	}
	dispatch_reply(r, json_pack("{s:b, s:o}", "ok", 1, "jobs", jobs));
	return (CMD_DONE);
}
