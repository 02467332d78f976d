/*
 * queue: list the queues, or set one's limit, pause or resume it (creating
 * it if need be). Settings live in the store. On a root jobd only root
 * changes queues: they are shared by every user.
 */
#include <string.h>
#include <unistd.h>

#include "jobd.h"

/*
 * May r use queue name (an existing one, or a new one while there are
 * fewer than PROTO_MAX_QUEUES)? Returns 0, or -1 after answering r.
 */
int
cmd_queue_room(struct request *r, const char *name)
{
	switch (queue_queue_room(name, PROTO_MAX_QUEUES)) {
	case 1:
		return (0);
	case 0:
		dispatch_error(r, PROTO_EBADMSG,
		               "there are %d queues already, the most jobd "
		               "keeps; use one of them",
		               PROTO_MAX_QUEUES);
		return (-1);
	default:
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
		return (-1);
	}
}

static void
cmd_queue_add(const char *name, int64_t parallel, int paused, void *arg)
{
	json_array_append_new(
	    arg,
	    json_pack("{s:s, s:o, s:b, s:i}", "name", name, "parallel",
	              parallel > 0 ? json_integer(parallel) : json_null(),
	              "paused", paused, "running", worker_count_queue(name)));
}

enum cmd_result
cmd_queue_exec(struct request *r)
{
	const char *action =
	    json_string_value(json_object_get(r->req, "action"));
	const char *name = json_string_value(json_object_get(r->req, "name"));
	json_t *par = json_object_get(r->req, "parallel"), *queues;
	int64_t parallel = 0;
	int paused = -1;

	if (strcmp(action, "list") == 0) {
		if (name != NULL || par != NULL) {
			dispatch_error(r, PROTO_EBADMSG,
			               "queue list takes no name or parallel");
			return (CMD_DONE);
		}
	} else if (strcmp(action, "set") == 0) {
		if (par == NULL) {
			dispatch_error(r, PROTO_EBADMSG,
			               "queue set needs 'parallel'");
			return (CMD_DONE);
		}
		parallel = json_integer_value(par);
	} else if (strcmp(action, "pause") == 0 ||
	           strcmp(action, "resume") == 0) {
		paused = strcmp(action, "pause") == 0;
		if (par != NULL) {
			dispatch_error(r, PROTO_EBADMSG,
			               "queue %s takes no 'parallel'", action);
			return (CMD_DONE);
		}
	} else {
		dispatch_error(r, PROTO_EBADMSG,
		               "unknown queue action '%s' (list, set, pause, "
		               "resume)",
		               action);
		return (CMD_DONE);
	}
	if (strcmp(action, "list") != 0) {
		if (name == NULL || !proto_queue_name_ok(name)) {
			dispatch_error(r, PROTO_EBADMSG,
			               "field 'name': " PROTO_QUEUE_NAME_RULE);
			return (CMD_DONE);
		}
		if (r->uid != 0 && r->uid != geteuid()) {
			dispatch_error(r, PROTO_EDENIED,
			               "only root changes queues");
			return (CMD_DONE);
		}
		if (cmd_queue_room(r, name) != 0)
			return (CMD_DONE);
		if (queue_queue_set(name, parallel, paused) != 0) {
			dispatch_error(r, PROTO_ESTORAGE,
			               "storage unavailable");
			return (CMD_DONE);
		}
		sched_kick();
	}
	queues = json_array();
	if (queue_queue_list(name, cmd_queue_add, queues) != 0) {
		json_decref(queues);
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
		return (CMD_DONE);
	}
	dispatch_reply(r, json_pack("{s:b, s:o}", "ok", 1, "queues", queues));
	return (CMD_DONE);
}
