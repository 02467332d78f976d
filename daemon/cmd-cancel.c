/*
 * cancel: a job that has not started ends cancelled at once; a running
 * job's process group gets the signal (then KILL after a grace period, from
 * its supervisor) and ends cancelled. All or nothing: if any job asked has
 * already ended, or is not the sender's, nothing changes.
 */
#include <signal.h>

#include "jobd.h"

/* Read and check every job; returns a new array of their states or NULL. */
static json_t *
cmd_cancel_check(struct request *r, json_t *ids)
{
	json_t *e, *states = json_array();
	struct job j;
	size_t i;

	json_array_foreach(ids, i, e)
	{
		if (dispatch_job_get(r, json_integer_value(e), &j) != 0)
			goto fail;
		if (JOB_TERMINAL(j.state)) {
			dispatch_error(
			    r, PROTO_ESTATE, "job %lld has already ended (%s)",
			    (long long)j.id, proto_state_name(j.state));
			job_clear(&j);
			goto fail;
		}
		json_array_append_new(states, json_integer(j.state));
		job_clear(&j);
	}
	return (states);
fail:
	json_decref(states);
	return (NULL);
}

enum cmd_result
cmd_cancel_exec(struct request *r)
{
	json_t *ids = json_object_get(r->req, "ids"), *e, *states, *out;
	json_t *sv = json_object_get(r->req, "signal");
	int sig = SIGTERM, running;
	int64_t id, now = util_now_ms();
	size_t i;

	if (sv != NULL &&
	    (sig = proto_signal_parse(json_string_value(sv))) < 0) {
		dispatch_error(r, PROTO_EBADMSG, "unknown signal '%s'",
		               json_string_value(sv));
		return (CMD_DONE);
	}
	if ((states = cmd_cancel_check(r, ids)) == NULL)
		return (CMD_DONE);
	out = json_array();
	json_array_foreach(ids, i, e)
	{
		id = json_integer_value(e);
		running = json_integer_value(json_array_get(states, i)) ==
		          JOB_RUNNING;
		if (queue_job_cancel(id, running, now) != 0) {
			json_decref(states);
			json_decref(out);
			dispatch_error(r, PROTO_ESTORAGE,
			               "storage unavailable");
			return (CMD_DONE);
		}
		if (running)
			worker_cancel(id, sig);
		else
			dispatch_job_changed(id, 0);
		json_array_append_new(
		    out, json_pack("{s:I, s:s}", "id", (json_int_t)id, "state",
		                   running ? "running" : "cancelled"));
	}
	json_decref(states);
	dispatch_reply(r, json_pack("{s:b, s:o}", "ok", 1, "jobs", out));
	return (CMD_DONE);
}
