/*
 * status: the job objects of the ids asked (an array's id: its tasks), in
 * that order, each with its dependencies and its ended attempts.
 */
#include "jobd.h"

static const char *const cmd_status_dep_types[] = {
	[DEP_OK] = "ok",
	[DEP_ANY] = "any",
	[DEP_FAIL] = "fail",
};

static void
cmd_status_dep(int64_t id, int type, void *arg)
{
	if (type < 0 || type > DEP_FAIL)
		type = DEP_OK;
	json_array_append_new(arg,
	                      json_pack("{s:I, s:s}", "id", (json_int_t)id,
	                                "type", cmd_status_dep_types[type]));
}

static void
cmd_status_attempt(const struct job *a, void *arg)
{
	json_t *job = dispatch_job_json(a), *o;

	o = json_pack("{s:I, s:O, s:O, s:O, s:O, s:O, s:O}", "attempt",
	              (json_int_t)a->attempt, "state",
	              json_object_get(job, "state"), "exit_code",
	              json_object_get(job, "exit_code"), "signal",
	              json_object_get(job, "signal"), "reason",
	              json_object_get(job, "reason"), "started_at",
	              json_object_get(job, "started_at"), "finished_at",
	              json_object_get(job, "finished_at"));
	json_array_append_new(arg, o);
	json_decref(job);
}

enum cmd_result
cmd_status_exec(struct request *r)
{
	json_t *ids, *e, *jobs, *o, *deps, *attempts;
	struct job j;
	size_t i;

	if (dispatch_expand_ids(r, CMD_ANY) != 0)
		return (CMD_DONE);
	ids = json_object_get(r->req, "ids");
	jobs = json_array();
	json_array_foreach(ids, i, e)
	{
		if (dispatch_job_get(r, json_integer_value(e), &j) != 0) {
			json_decref(jobs);
			return (CMD_DONE);
		}
		o = dispatch_job_json(&j);
		deps = json_array();
		attempts = json_array();
		if (queue_deps(j.id, cmd_status_dep, deps) != 0 ||
		    queue_attempts(j.id, cmd_status_attempt, attempts) != 0) {
			json_decref(deps);
			json_decref(attempts);
			json_decref(o);
			json_decref(jobs);
			job_clear(&j);
			dispatch_error(r, PROTO_ESTORAGE,
			               "storage unavailable");
			return (CMD_DONE);
		}
		json_object_set_new(o, "after", deps);
		json_object_set_new(o, "attempts", attempts);
		json_array_append_new(jobs, o);
		job_clear(&j);
	}
	dispatch_reply(r, json_pack("{s:b, s:o}", "ok", 1, "jobs", jobs));
	return (CMD_DONE);
}
