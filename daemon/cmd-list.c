/* list: jobs newest first, optionally of one state, at most limit. */
#include "jobd.h"

#define CMD_LIST_DEFAULT 100

struct cmd_list_ctx {
	struct request *r;
	json_t *jobs;
};

static void
cmd_list_add(struct job *j, void *arg)
{
	struct cmd_list_ctx *ctx = arg;

	/* A root jobd lists to each user only that user's jobs. */
	if (ctx->r->uid != 0 && (int64_t)ctx->r->uid != j->uid)
		return;
	json_array_append_new(ctx->jobs, dispatch_job_json(j));
}

enum cmd_result
cmd_list_exec(struct request *r)
{
	struct cmd_list_ctx ctx = { r, NULL };
	json_t *v;
	int state = -1, limit = CMD_LIST_DEFAULT;

	if ((v = json_object_get(r->req, "state")) != NULL &&
	    (state = proto_state_parse(json_string_value(v))) < 0) {
		dispatch_error(r, PROTO_EBADMSG, "unknown state '%s'",
		               json_string_value(v));
		return (CMD_DONE);
	}
	if ((v = json_object_get(r->req, "limit")) != NULL)
		limit = (int)json_integer_value(v);
	ctx.jobs = json_array();
	if (queue_job_list(state, limit, cmd_list_add, &ctx) != 0) {
		json_decref(ctx.jobs);
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
		return (CMD_DONE);
	}
	dispatch_reply(r, json_pack("{s:b, s:o}", "ok", 1, "jobs", ctx.jobs));
	return (CMD_DONE);
}
