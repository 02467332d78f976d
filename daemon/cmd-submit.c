/*
 * submit: store a new job and answer with it once it is on disk. The same
 * owner and key return the existing job instead (a resent request never
 * makes a second job).
 */
#include <sys/stat.h>
#include <string.h>

#include "jobd.h"

/* A NULL-terminated copy of a JSON array of strings (checked by proto.c). */
static char **
cmd_submit_strv(json_t *a)
{
	char **v = xcalloc(json_array_size(a) + 1, sizeof *v);
	size_t i;
	json_t *e;

	json_array_foreach(a, i, e) v[i] = xstrdup(json_string_value(e));
	return (v);
}

/* Checks the table cannot express. Returns an error message or NULL. */
static const char *
cmd_submit_check(json_t *req)
{
	json_t *argv = json_object_get(req, "argv");
	json_t *env = json_object_get(req, "env"), *e;
	const char *cwd = json_string_value(json_object_get(req, "cwd"));
	struct stat sb;
	size_t i;

	if ((argv == NULL) == (json_object_get(req, "shell") == NULL))
		return ("exactly one of 'argv' and 'shell' is required");
	if (argv != NULL && json_string_length(json_array_get(argv, 0)) == 0)
		return ("field 'argv': the program name is empty");
	if (cwd[0] != '/')
		return ("field 'cwd': not an absolute path");
	if (stat(cwd, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return ("field 'cwd': no such folder");
	json_array_foreach(env, i, e)
	{
		const char *s = json_string_value(e);
		if (strchr(s, '=') == NULL || s[0] == '=')
			return ("field 'env': entries must be NAME=VALUE");
	}
	return (NULL);
}

static void
cmd_submit_reply(struct request *r, int64_t id, int existing)
{
	struct job j;

	if (dispatch_job_get(r, id, &j) != 0)
		return;
	dispatch_reply(r,
	               json_pack("{s:b, s:o, s:b}", "ok", 1, "job",
	                         dispatch_job_json(&j), "existing", existing));
	job_clear(&j);
}

enum cmd_result
cmd_submit_exec(struct request *r)
{
	json_t *req = r->req, *v;
	const char *key = json_string_value(json_object_get(req, "key"));
	const char *err;
	struct job j;
	int64_t id;

	if ((err = cmd_submit_check(req)) != NULL) {
		dispatch_error(r, PROTO_EBADMSG, "%s", err);
		return (CMD_DONE);
	}
	if (key != NULL) {
		switch (queue_job_find_key((int64_t)r->uid, key, &id)) {
		case 0:
			cmd_submit_reply(r, id, 1);
			return (CMD_DONE);
		case 1:
			break;
		default:
			dispatch_error(r, PROTO_ESTORAGE,
			               "storage unavailable");
			return (CMD_DONE);
		}
	}
	memset(&j, 0, sizeof j);
	j.state = JOB_QUEUED;
	if ((v = json_object_get(req, "name")) != NULL)
		j.name = xstrdup(json_string_value(v));
	if ((v = json_object_get(req, "argv")) != NULL)
		j.argv = cmd_submit_strv(v);
	if ((v = json_object_get(req, "shell")) != NULL)
		j.shell = xstrdup(json_string_value(v));
	j.cwd = xstrdup(json_string_value(json_object_get(req, "cwd")));
	if ((v = json_object_get(req, "env")) != NULL)
		j.env = cmd_submit_strv(v);
	else
		j.env = xcalloc(1, sizeof *j.env);
	if (key != NULL)
		j.key = xstrdup(key);
	j.uid = (int64_t)r->uid;
	j.gid = (int64_t)r->gid;
	j.pid = (int64_t)r->pid;
	j.priority = json_integer_value(json_object_get(req, "priority"));
	j.submitted_at = util_now_ms();
	if (queue_job_insert(&j) != 0)
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
	else {
		log_debug("job %lld submitted by uid %lld", (long long)j.id,
		          (long long)j.uid);
		cmd_submit_reply(r, j.id, 0);
		sched_kick();
	}
	job_clear(&j);
	return (CMD_DONE);
}
