/*
 * purge: delete ended jobs (of one state; finished at least older_than_ms
 * ago) with their output, oldest first, at most PROTO_PURGE_BATCH per
 * request so that no request stalls the loop; "more" asks the client to
 * send it again. Anyone but root purges only their own jobs.
 */
#include "jobd.h"

enum cmd_result
cmd_purge_exec(struct request *r)
{
	json_t *v;
	int64_t ids[PROTO_PURGE_BATCH], cutoff = util_now_ms();
	int state = -1, n;

	if ((v = json_object_get(r->req, "state")) != NULL &&
	    ((state = proto_state_parse(json_string_value(v))) < 0 ||
	     !JOB_TERMINAL(state))) {
		dispatch_error(r, PROTO_EBADMSG,
		               "field 'state': '%s' is not an ended state "
		               "(succeeded, failed, cancelled, lost)",
		               json_string_value(v));
		return (CMD_DONE);
	}
	if ((v = json_object_get(r->req, "older_than_ms")) != NULL)
		cutoff -= json_integer_value(v);
	n = queue_purge(cutoff, state, r->uid == 0 ? -1 : (int64_t)r->uid, ids,
	                PROTO_PURGE_BATCH);
	if (n < 0) {
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
		return (CMD_DONE);
	}
	sched_purged_add(ids, n);
	if (n > 0)
		log_info("uid %llu purged %d job(s)",
		         (unsigned long long)r->uid, n);
	dispatch_reply(r, json_pack("{s:b, s:i, s:b}", "ok", 1, "purged", n,
	                            "more", n == PROTO_PURGE_BATCH));
	return (CMD_DONE);
}
