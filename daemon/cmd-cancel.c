/*
 * cancel: a job that has not started ends cancelled at once; a running
 * job's process group gets the signal (then KILL after a grace period, from
 * its supervisor) and ends cancelled. A job cancelled before it started
 * is an end for its dependents (sched_job_done). An array id stands for its
 * tasks. All or nothing: if any job asked has already ended, or is not the
 * sender's, nothing changes.
 */
#include <signal.h>

#include "jobd.h"

/*
 * Cancel job id (checked: not ended when the request came) now or, if it
 * runs, via its signal. One that an earlier cancel of this request ended
 * (a dependent) is reported cancelled as it is.
 */
static int
cmd_cancel_one(int64_t id, int sig, int64_t now, json_t *out)
{
	struct job j;
	int running;

	if (queue_job_get(id, &j) != 0)
		return (-1);
	if (JOB_TERMINAL(j.state)) {
		json_array_append_new(out, json_pack("{s:I, s:s}", "id",
		                                     (json_int_t)id, "state",
		                                     "cancelled"));
		job_clear(&j);
		return (0);
	}
	running = j.state == JOB_RUNNING;
	if (queue_job_cancel(id, running, now, NULL) != 0 ||
	    (!running && sched_job_done(id, JOB_CANCELLED, j.array_id,
	                                sched_holds_slot(&j)) != 0)) {
		job_clear(&j);
		return (-1);
	}
	if (running)
		worker_cancel(id, sig);
	else
		dispatch_job_changed(id, 0);
	json_array_append_new(
	    out, json_pack("{s:I, s:s}", "id", (json_int_t)id, "state",
	                   running ? "running" : "cancelled"));
	job_clear(&j);
	return (0);
}

enum cmd_result
cmd_cancel_exec(struct request *r)
{
	json_t *ids, *e, *out;
	json_t *sv = json_object_get(r->req, "signal");
	int sig = SIGTERM;
	int64_t now = util_now_ms();
	size_t i;

	if (sv != NULL &&
	    (sig = proto_signal_parse(json_string_value(sv))) < 0) {
		dispatch_error(r, PROTO_EBADMSG, "unknown signal '%s'",
		               json_string_value(sv));
		return (CMD_DONE);
	}
	if (dispatch_expand_ids(r, CMD_WAITING | 1 << JOB_RUNNING) != 0 ||
	    dispatch_jobs_check(r, CMD_WAITING | 1 << JOB_RUNNING) != 0)
		return (CMD_DONE);
	ids = json_object_get(r->req, "ids");
	out = json_array();
	json_array_foreach(ids, i, e)
	{
		if (cmd_cancel_one(json_integer_value(e), sig, now, out) != 0) {
			json_decref(out);
			dispatch_error(r, PROTO_ESTORAGE,
			               "storage unavailable");
			return (CMD_DONE);
		}
	}
	dispatch_reply(r, json_pack("{s:b, s:o}", "ok", 1, "jobs", out));
	return (CMD_DONE);
}
