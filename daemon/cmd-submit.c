/*
 * submit: store a new job (or an array's tasks, or a batch of shell
 * commands) and answer with it once it is on disk. The same owner and key
 * return the existing job instead (a resent request never makes a second
 * job).
 */
#include <sys/stat.h>
#include <string.h>

#include "jobd.h"

/* A start time this far in the past is refused: the clock, or a typo. */
#define CMD_SUBMIT_PAST_MS 60000

#define CMD_SUBMIT_STR_(x) #x
#define CMD_SUBMIT_STR(x)  CMD_SUBMIT_STR_(x)

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
	json_t *shells = json_object_get(req, "shells");
	json_t *env = json_object_get(req, "env"), *e;
	json_t *q = json_object_get(req, "queue"), *v;
	json_t *astart = json_object_get(req, "array_start");
	json_t *aend = json_object_get(req, "array_end");
	const char *cwd = json_string_value(json_object_get(req, "cwd"));
	struct stat sb;
	size_t i;

	if ((argv != NULL) + (json_object_get(req, "shell") != NULL) +
	        (shells != NULL) !=
	    1)
		return ("exactly one of 'argv', 'shell' and 'shells' is "
		        "required");
	json_array_foreach(shells, i, e)
	{
		if (json_string_length(e) == 0)
			return ("field 'shells': a command is empty");
	}
	if (shells != NULL && astart != NULL)
		return ("'shells' and an array do not go together");
	if (argv != NULL && json_string_length(json_array_get(argv, 0)) == 0)
		return ("field 'argv': the program name is empty");
	if (q != NULL && !proto_queue_name_ok(json_string_value(q)))
		return ("field 'queue': " PROTO_QUEUE_NAME_RULE);
	if ((v = json_object_get(req, "run_at")) != NULL &&
	    json_integer_value(v) < util_now_ms() - CMD_SUBMIT_PAST_MS)
		return ("field 'run_at': the time is in the past");
	if ((astart == NULL) != (aend == NULL))
		return ("fields 'array_start' and 'array_end' go together");
	if (astart != NULL &&
	    json_integer_value(astart) > json_integer_value(aend))
		return ("field 'array_end': the range is empty (end before "
		        "start)");
	if (astart != NULL &&
	    json_integer_value(aend) - json_integer_value(astart) + 1 >
	        PROTO_MAX_ARRAY)
		return ("an array has at most " CMD_SUBMIT_STR(
		    PROTO_MAX_ARRAY) " tasks");
	if (astart == NULL && json_object_get(req, "array_limit") != NULL)
		return ("field 'array_limit' needs an array");
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

/* How many jobs the request makes: its array's tasks, its shells, or 1. */
static int64_t
cmd_submit_tasks(json_t *req)
{
	json_t *start = json_object_get(req, "array_start");
	json_t *shells = json_object_get(req, "shells");

	if (shells != NULL)
		return (json_array_size(shells));
	if (start == NULL)
		return (1);
	return (json_integer_value(json_object_get(req, "array_end")) -
	        json_integer_value(start) + 1);
}

static void
cmd_submit_reply(struct request *r, int64_t id, int existing)
{
	json_t *reply;
	struct job j;

	if (dispatch_job_get(r, id, &j) != 0)
		return;
	reply = json_pack("{s:b, s:o, s:b}", "ok", 1, "job",
	                  dispatch_job_json(&j), "existing", existing);
	/* The tasks are A+1 .. A+N, so the request says how many. */
	if (j.array_id != 0)
		json_object_set_new(
		    reply, "array",
		    json_pack("{s:I, s:I}", "id", (json_int_t)j.array_id,
		              "count", (json_int_t)cmd_submit_tasks(r->req)));
	/* So are a batch's jobs: the first, then the next ids. */
	if (json_object_get(r->req, "shells") != NULL)
		json_object_set_new(
		    reply, "batch",
		    json_pack("{s:I}", "count",
		              (json_int_t)cmd_submit_tasks(r->req)));
	dispatch_reply(r, reply);
	job_clear(&j);
}

/* The dependencies of a submit: every id of after, after_any, after_fail. */
struct cmd_deps {
	int64_t *ids;
	int *types;
	int *met;
	size_t n;
	int64_t pending; /* not met yet */
};

static void
cmd_deps_free(struct cmd_deps *d)
{
	free(d->ids);
	free(d->types);
	free(d->met);
}

/*
 * Read and check every dependency of the request into d. A dependency that
 * has ended already either counts as met or, if it never can be, refuses
 * the submit. Returns 0, or -1 after answering r.
 */
static int
cmd_submit_deps(struct request *r, struct cmd_deps *d)
{
	static const char *const fields[] = { "after", "after_any",
		                              "after_fail" };
	static const int types[] = { DEP_OK, DEP_ANY, DEP_FAIL };
	json_t *ids, *e;
	struct job j;
	size_t i, k, k2;
	int rv = 0;

	memset(d, 0, sizeof *d);
	for (k = 0; k < 3 && rv == 0; k++) {
		if ((ids = json_object_get(r->req, fields[k])) == NULL)
			continue;
		if ((ids = dispatch_expand(r, ids, CMD_ANY)) == NULL) {
			rv = -1;
			break;
		}
		json_array_foreach(ids, i, e)
		{
			if (dispatch_job_get(r, json_integer_value(e), &j) !=
			    0) {
				rv = -1;
				break;
			}
			/* Listed twice: once, or refused if the types differ.
			 */
			for (k2 = 0; k2 < d->n && d->ids[k2] != j.id; k2++)
				;
			if (k2 < d->n && d->types[k2] != types[k]) {
				dispatch_error(r, PROTO_EBADMSG,
				               "job %lld is listed with two "
				               "dependency types",
				               (long long)j.id);
				job_clear(&j);
				rv = -1;
				break;
			}
			if (k2 < d->n) {
				job_clear(&j);
				continue;
			}
			if (d->n == PROTO_MAX_IDS) {
				dispatch_error(r, PROTO_EBADMSG,
				               "at most %d dependencies",
				               PROTO_MAX_IDS);
				job_clear(&j);
				rv = -1;
				break;
			}
			d->ids = xrealloc(d->ids, (d->n + 1) * sizeof *d->ids);
			d->types =
			    xrealloc(d->types, (d->n + 1) * sizeof *d->types);
			d->met = xrealloc(d->met, (d->n + 1) * sizeof *d->met);
			d->ids[d->n] = j.id;
			d->types[d->n] = types[k];
			d->met[d->n] = 0;
			if (JOB_TERMINAL(j.state)) {
				if (!sched_dep_ok(types[k], j.state)) {
					dispatch_error(
					    r, PROTO_ESTATE,
					    "job %lld has ended %s: --%s can "
					    "never be satisfied",
					    (long long)j.id,
					    proto_state_name(j.state),
					    types[k] == DEP_OK ? "after"
					                       : "after-fail");
					job_clear(&j);
					rv = -1;
					break;
				}
				d->met[d->n] = 1;
			} else
				d->pending++;
			d->n++;
			job_clear(&j);
		}
		json_decref(ids);
	}
	if (rv != 0)
		cmd_deps_free(d);
	return (rv);
}

/* Record job id's dependencies. */
static int
cmd_submit_deps_add(const struct cmd_deps *d, int64_t id)
{
	for (size_t i = 0; i < d->n; i++)
		if (queue_dep_add(id, d->ids[i], d->types[i], d->met[i]) < 0)
			return (-1);
	return (0);
}

/* Fill j, the job (or array task template) the request describes. */
static void
cmd_submit_job(struct request *r, const char *key, struct job *j)
{
	json_t *req = r->req, *v;

	memset(j, 0, sizeof *j);
	if ((v = json_object_get(req, "name")) != NULL)
		j->name = xstrdup(json_string_value(v));
	if ((v = json_object_get(req, "argv")) != NULL)
		j->argv = cmd_submit_strv(v);
	if ((v = json_object_get(req, "shell")) != NULL)
		j->shell = xstrdup(json_string_value(v));
	j->cwd = xstrdup(json_string_value(json_object_get(req, "cwd")));
	if ((v = json_object_get(req, "env")) != NULL)
		j->env = cmd_submit_strv(v);
	else
		j->env = xcalloc(1, sizeof *j->env);
	if (key != NULL)
		j->key = xstrdup(key);
	j->uid = (int64_t)r->uid;
	j->gid = (int64_t)r->gid;
	j->pid = (int64_t)r->pid;
	j->priority = json_integer_value(json_object_get(req, "priority"));
	j->submitted_at = util_now_ms();
	v = json_object_get(req, "queue");
	j->queue =
	    xstrdup(v != NULL ? json_string_value(v) : PROTO_DEFAULT_QUEUE);
	j->run_at = json_integer_value(json_object_get(req, "run_at"));
	j->timeout_ms = json_integer_value(json_object_get(req, "timeout_ms"));
	v = json_object_get(req, "kill_after_ms");
	j->kill_after_ms =
	    v != NULL ? json_integer_value(v) : PROTO_KILL_AFTER_MS;
	j->retries = json_integer_value(json_object_get(req, "retries"));
	v = json_object_get(req, "retry_delay_ms");
	j->retry_delay_ms =
	    v != NULL ? json_integer_value(v) : PROTO_RETRY_DELAY_MS;
	j->retry_on_lost = json_is_true(json_object_get(req, "retry_on_lost"));
	j->array_limit =
	    json_integer_value(json_object_get(req, "array_limit"));
}

/*
 * Insert the job j (or, with an array, its tasks; with shells, one job for
 * each: j is their template) with its dependencies. Returns the id to
 * answer with (the job's, or the first task's or command's), or -1. The
 * jobs of one request have consecutive ids: one writer, one transaction.
 */
static int64_t
cmd_submit_rows(struct request *r, struct job *j, const struct cmd_deps *d)
{
	json_t *as = json_object_get(r->req, "array_start");
	json_t *shells = json_object_get(r->req, "shells");
	int64_t first = 0, start = 0, end = 0;
	int64_t now = util_now_ms();

	if (queue_queue_set(j->queue, 0, -1) != 0)
		return (-1);
	if (as != NULL) {
		start = json_integer_value(as);
		end = json_integer_value(json_object_get(r->req, "array_end"));
		if ((j->array_id = queue_reserve_id()) < 0)
			return (-1);
	}
	if (shells != NULL)
		end = (int64_t)json_array_size(shells) - 1;
	for (int64_t i = start; i <= end; i++) {
		j->id = 0;
		if (shells != NULL) {
			free(j->shell);
			j->shell = xstrdup(
			    json_string_value(json_array_get(shells, i)));
		} else
			j->array_index = i;
		/* Tasks beyond the throttle wait for a slot of their array. */
		j->array_wait =
		    j->array_limit > 0 && i - start >= j->array_limit;
		j->deps_pending = d->pending + j->array_wait;
		if (j->deps_pending > 0)
			j->state = JOB_BLOCKED;
		else
			j->state = j->run_at > now ? JOB_SCHEDULED : JOB_QUEUED;
		if (queue_job_insert(j) != 0 ||
		    cmd_submit_deps_add(d, j->id) != 0)
			return (-1);
		if (first == 0)
			first = j->id;
		free(j->key); /* only the first job carries the key */
		j->key = NULL;
	}
	return (first);
}

/*
 * cmd_submit_rows, all or none: the loop's transaction is shared with other
 * requests and committed whatever becomes of this one, so a failure
 * midway must take back what it wrote already (jobs, dependencies, envs,
 * the queue, an array's id); else those jobs would be committed while the
 * client is told no, and a resend with the same key would find them.
 */
static int64_t
cmd_submit_insert(struct request *r, struct job *j, const struct cmd_deps *d)
{
	int64_t first;

	if (queue_savepoint() != 0)
		return (-1);
	if ((first = cmd_submit_rows(r, j, d)) < 0 || queue_release() != 0) {
		queue_rollback_to();
		return (-1);
	}
	return (first);
}

/*
 * A resent batch finds its first job by its key: the jobs after it must be
 * the rest of that batch (the same owner, stored in the same transaction,
 * the same commands), or the key was another submit's and the ids the
 * reply implies would not be this one's. Returns 0, or -1 after answering
 * r. Not a batch: 0.
 */
static int
cmd_submit_same_batch(struct request *r, int64_t first)
{
	json_t *shells = json_object_get(r->req, "shells");
	struct job head, j, *jp;
	size_t i;
	int rv = 0;

	if (shells == NULL)
		return (0);
	if (dispatch_job_get(r, first, &head) != 0)
		return (-1);
	for (i = 0; rv == 0 && i < json_array_size(shells); i++) {
		jp = &head;
		if (i > 0 && (rv = queue_job_get(first + (int64_t)i, &j)) != 0)
			break; /* 1: no such job; -1: storage */
		if (i > 0)
			jp = &j;
		if (jp->uid != head.uid ||
		    jp->submitted_at != head.submitted_at ||
		    jp->shell == NULL ||
		    strcmp(jp->shell,
		           json_string_value(json_array_get(shells, i))) != 0)
			rv = 1;
		if (i > 0)
			job_clear(&j);
	}
	job_clear(&head);
	if (rv > 0)
		dispatch_error(
		    r, PROTO_ESTATE,
		    "key '%s' belongs to another submit (job %lld)",
		    json_string_value(json_object_get(r->req, "key")),
		    (long long)first);
	else if (rv < 0)
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
	return (rv == 0 ? 0 : -1);
}

enum cmd_result
cmd_submit_exec(struct request *r)
{
	const char *key = json_string_value(json_object_get(r->req, "key"));
	const char *err;
	struct cmd_deps deps;
	json_t *v;
	struct job j;
	int64_t id;

	if ((err = cmd_submit_check(r->req)) != NULL) {
		dispatch_error(r, PROTO_EBADMSG, "%s", err);
		return (CMD_DONE);
	}
	if (key != NULL) {
		switch (queue_job_find_key((int64_t)r->uid, key, &id)) {
		case 0:
			if (cmd_submit_same_batch(r, id) == 0)
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
	v = json_object_get(r->req, "queue");
	if (cmd_queue_room(r, v != NULL ? json_string_value(v)
	                                : PROTO_DEFAULT_QUEUE) != 0 ||
	    cmd_submit_deps(r, &deps) != 0)
		return (CMD_DONE);
	/* Each task records each dependency: keep the rows one submit adds
	   (and one end may have to walk) bounded. */
	if (deps.n > 0 &&
	    deps.n * cmd_submit_tasks(r->req) > PROTO_MAX_DEP_ROWS) {
		dispatch_error(
		    r, PROTO_EBADMSG,
		    "%zu dependencies for each of %lld tasks: at most "
		    "%d in all",
		    deps.n, (long long)cmd_submit_tasks(r->req),
		    PROTO_MAX_DEP_ROWS);
		cmd_deps_free(&deps);
		return (CMD_DONE);
	}
	cmd_submit_job(r, key, &j);
	if ((id = cmd_submit_insert(r, &j, &deps)) < 0)
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
	else {
		log_debug("job %lld submitted by uid %lld", (long long)id,
		          (long long)j.uid);
		cmd_submit_reply(r, id, 0);
		sched_kick();
		if (j.run_at > 0)
			sched_times_changed();
	}
	cmd_deps_free(&deps);
	job_clear(&j);
	return (CMD_DONE);
}
