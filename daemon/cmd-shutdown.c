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
	const char *name = mv != NULL ? json_string_value(mv) : "now";
	int running = worker_count(), mode;

	for (mode = SERVER_DRAIN; mode <= SERVER_STOP_NOW; mode++)
		if (strcmp(name, server_mode_name(mode)) == 0)
			break;
	if (mode > SERVER_STOP_NOW) {
		dispatch_error(r, PROTO_EBADMSG,
		               "unknown mode '%s' (now, drain or stop_jobs)",
		               name);
		return (CMD_DONE);
	}
	if (mode == SERVER_STOP_JOBS &&
	    worker_cancel_all(CMD_SHUTDOWN_REASON) == -1) {
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
		return (CMD_DONE);
	}
	/* The reply names the mode in force: a stronger earlier one wins. */
	name = server_mode_name(server_shutdown(mode));
	log_info("shutdown (%s) asked by uid %llu; %d job%s running", name,
	         (unsigned long long)r->uid, running, running == 1 ? "" : "s");
	dispatch_reply(r, json_pack("{s:b, s:s, s:i}", "ok", 1, "mode", name,
	                            "running", running));
	return (CMD_DONE);
}
