/*
 * shutdown: stop jobd now (running jobs go on under their supervisors and
 * are adopted by the next jobd), once the running jobs have ended (drain),
 * or after cancelling them (stop_jobs). Until it stops, no job starts and
 * every request is served. A later request may only make it stronger:
 * drain, then stop_jobs, then now.
 */
#include <string.h>

#include "jobd.h"

#define CMD_SHUTDOWN_REASON "stopped by jobctl shutdown --stop-jobs"

enum cmd_result
cmd_shutdown_exec(struct request *r)
{
	json_t *mv = json_object_get(r->req, "mode");
	const char *mode = mv != NULL ? json_string_value(mv) : "now";
	int running = worker_count();

	if (strcmp(mode, "now") != 0 && strcmp(mode, "drain") != 0 &&
	    strcmp(mode, "stop_jobs") != 0) {
		dispatch_error(r, PROTO_EBADMSG,
		               "unknown mode '%s' (now, drain or stop_jobs)",
		               mode);
		return (CMD_DONE);
	}
	if (strcmp(mode, "stop_jobs") == 0 &&
	    worker_cancel_all(CMD_SHUTDOWN_REASON) == -1) {
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
		return (CMD_DONE);
	}
	if (strcmp(mode, "now") != 0) {
		server_drain(strcmp(mode, "drain") == 0 ? SERVER_DRAIN
		                                        : SERVER_STOP_JOBS);
		/* The mode in force: an earlier stop_jobs outranks drain. */
		mode = server_draining == SERVER_DRAIN ? "drain" : "stop_jobs";
	}
	log_info("shutdown (%s) asked by uid %llu; %d job%s running", mode,
	         (unsigned long long)r->uid, running, running == 1 ? "" : "s");
	dispatch_reply(r, json_pack("{s:b, s:s, s:i}", "ok", 1, "mode", mode,
	                            "running", running));
	if (strcmp(mode, "now") == 0)
		server_stop("jobctl shutdown");
	return (CMD_DONE);
}
