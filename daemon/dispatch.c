/*
 * Requests from decode to reply. Every request passes the central checks
 * (proto_request_decode: JSON, version, operation, every field's type and
 * range; then who may ask) before its handler runs. A reply is not sent at
 * once: it joins the iteration's batch and goes out after the commit
 * (dispatch_flush). A request that must wait is parked on a job and run
 * again when that job changes, or when its deadline passes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd.h"

static const cmd_exec_fn dispatch_cmds[PROTO_OP_MAX] = {
	[PROTO_OP_SUBMIT] = cmd_submit_exec,
	[PROTO_OP_STATUS] = cmd_status_exec,
	[PROTO_OP_LIST] = cmd_list_exec,
	[PROTO_OP_LOGS] = cmd_logs_exec,
	[PROTO_OP_WAIT] = cmd_wait_exec,
	[PROTO_OP_CANCEL] = cmd_cancel_exec,
	[PROTO_OP_SET] = cmd_set_exec,
	[PROTO_OP_HOLD] = cmd_hold_exec,
	[PROTO_OP_RELEASE] = cmd_release_exec,
	[PROTO_OP_RETRY] = cmd_retry_exec,
	[PROTO_OP_QUEUE] = cmd_queue_exec,
	[PROTO_OP_PURGE] = cmd_purge_exec,
	[PROTO_OP_SHUTDOWN] = cmd_shutdown_exec,
	[PROTO_OP_BACKUP] = cmd_backup_exec,
	[PROTO_OP_PING] = cmd_ping_exec,
	[PROTO_OP_VERSION] = cmd_version_exec,
};

/* Answered, waiting for the commit. */
static struct request_list dispatch_batch =
    TAILQ_HEAD_INITIALIZER(dispatch_batch);
/* Parked on a job. */
static struct request_list dispatch_parked =
    TAILQ_HEAD_INITIALIZER(dispatch_parked);

/* Run r's handler; the request is parked or answered when it returns. */
static void
dispatch_exec(struct request *r)
{
	if ((proto_ops[r->op].flags & OPF_WRITE) && queue_begin() != 0) {
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
		return;
	}
	if (dispatch_cmds[r->op](r) == CMD_DONE && r->reply == NULL)
		dispatch_error(r, PROTO_EINTERNAL, "no reply");
}

/*
 * Take a new request from ipc.c. Bytes from outside: nothing here aborts;
 * a bad request gets an error reply and the daemon carries on.
 */
void
dispatch_request(struct request *r)
{
	const void *buf;
	size_t len;
	char err[256];
	int st;

	/* Who asks comes first: a user's jobd serves that user only. */
	if (geteuid() != 0 && r->uid != geteuid()) {
		dispatch_error(r, PROTO_EDENIED, "this jobd serves uid %u only",
		               (unsigned)geteuid());
		return;
	}
	ipc_request_body(r, &buf, &len);
	st = proto_request_decode(buf, len, &r->req, &r->op, err, sizeof err);
	if (st != PROTO_OK) {
		log_debug("bad request from pid %llu: %s",
		          (unsigned long long)r->pid, err);
		dispatch_error(r, st, "%s", err);
		return;
	}
	if ((proto_ops[r->op].flags & OPF_ADMIN) && r->uid != 0 &&
	    r->uid != geteuid()) {
		dispatch_error(r, PROTO_EDENIED, "%s is for root only",
		               proto_ops[r->op].name);
		return;
	}
	if (server_stopping) {
		dispatch_error(r, PROTO_ESHUTDOWN, "jobd is stopping");
		return;
	}
	dispatch_exec(r);
}

/* Answer r with reply (the function takes the reference). */
void
dispatch_reply(struct request *r, json_t *reply)
{
	json_decref(r->reply);
	r->reply = reply;
	TAILQ_INSERT_TAIL(&dispatch_batch, r, entry);
	server_wake();
}

void
dispatch_error(struct request *r, int st, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dispatch_reply(r, proto_reply_error(st, "%s", msg));
}

/*
 * Send the batch's replies; called after the commit. If the commit failed,
 * nothing the batch did happened, so every reply becomes a storage error.
 */
void
dispatch_flush(int failed)
{
	struct request *r;

	while ((r = TAILQ_FIRST(&dispatch_batch)) != NULL) {
		TAILQ_REMOVE(&dispatch_batch, r, entry);
		if (failed) {
			json_decref(r->reply);
			r->reply = proto_reply_error(
			    PROTO_ESTORAGE,
			    "storage unavailable: the change was not saved; "
			    "try again");
		}
		ipc_send(r);
	}
}

static void
dispatch_unpark(struct request *r)
{
	TAILQ_REMOVE(&dispatch_parked, r, entry);
	event_del(r->timer);
	r->park_job = 0;
}

static void
dispatch_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct request *r = arg;

	(void)fd;
	(void)what;
	dispatch_unpark(r);
	/* A handler may set the timer early, to look again. */
	r->expired = util_mono_ms() >= r->deadline;
	dispatch_exec(r);
	server_wake();
}

/*
 * Park r until job id changes, or at the latest until monotonic time
 * deadline (ms). The first deadline given to a request stays. The handler
 * returns CMD_PARK after this; r must not be touched by it afterwards.
 */
void
dispatch_park(struct request *r, int64_t id, int64_t deadline)
{
	struct timeval tv;
	int64_t left;

	if (r->deadline == 0)
		r->deadline = deadline;
	if (r->timer == NULL)
		r->timer = evtimer_new(server_base, dispatch_deadline_cb, r);
	left = r->deadline - util_mono_ms();
	if (left < 0)
		left = 0;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	evtimer_add(r->timer, &tv);
	r->park_job = id;
	TAILQ_INSERT_TAIL(&dispatch_parked, r, entry);
}

/*
 * Job id changed: rerun what waits on it. When only its output grew
 * (output_only), only the logs requests that follow it.
 */
void
dispatch_job_changed(int64_t id, int output_only)
{
	struct request_list woken = TAILQ_HEAD_INITIALIZER(woken);
	struct request *r, *next;

	for (r = TAILQ_FIRST(&dispatch_parked); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (r->park_job != id ||
		    (output_only && r->op != PROTO_OP_LOGS))
			continue;
		dispatch_unpark(r);
		TAILQ_INSERT_TAIL(&woken, r, entry);
	}
	while ((r = TAILQ_FIRST(&woken)) != NULL) {
		TAILQ_REMOVE(&woken, r, entry);
		dispatch_exec(r);
	}
}

/* jobd is stopping: answer every parked request so clients can retry. */
void
dispatch_shutdown(void)
{
	struct request *r;

	while ((r = TAILQ_FIRST(&dispatch_parked)) != NULL) {
		dispatch_unpark(r);
		dispatch_error(r, PROTO_ESHUTDOWN, "jobd is stopping");
	}
}

/* Answer r: no job id (or none any more: ids are never reused). */
static void
dispatch_not_found(struct request *r, int64_t id)
{
	int64_t last = queue_last_id(), task;

	if (queue_array_tasks(id, CMD_ANY, &task, 1) == 1)
		dispatch_error(
		    r, PROTO_ENOTFOUND,
		    "%lld is an array's id, not a job's: give one of "
		    "its tasks (%lld, ...)",
		    (long long)id, (long long)task);
	else if (last >= id)
		dispatch_error(r, PROTO_ENOTFOUND,
		               "job %lld was purged (or never was a job)",
		               (long long)id);
	else
		dispatch_error(r, PROTO_ENOTFOUND, "job %lld not found",
		               (long long)id);
}

/*
 * The jobs that ids (a JSON array of ids) stand for, as a new array: a
 * job's id stands for the job, an array's id for those of its tasks in a
 * state of mask (bit 1 << state; CMD_ANY: all), in index order. NULL after
 * answering r: an id that is neither, an array with no such task, or too
 * many jobs.
 */
json_t *
dispatch_expand(struct request *r, json_t *ids, int mask)
{
	int64_t id, *tasks = xcalloc(PROTO_MAX_ARRAY, sizeof *tasks);
	json_t *out = json_array(), *e;
	struct job j;
	size_t i;
	int n;

	json_array_foreach(ids, i, e)
	{
		id = json_integer_value(e);
		switch (queue_job_get(id, &j)) {
		case 0:
			job_clear(&j);
			json_array_append_new(out, json_integer(id));
			continue;
		case 1:
			break;
		default:
			goto storage;
		}
		if ((n = queue_array_tasks(id, mask, tasks, PROTO_MAX_ARRAY)) <
		    0)
			goto storage;
		if (n == 0) {
			/* No array, or none of its tasks this op applies to. */
			if ((n = queue_array_tasks(id, CMD_ANY, tasks, 1)) < 0)
				goto storage;
			if (n == 0)
				dispatch_not_found(r, id);
			else
				dispatch_error(r, PROTO_ESTATE,
				               "no task of array %lld is in a "
				               "state for %s",
				               (long long)id,
				               proto_ops[r->op].name);
			goto fail;
		}
		for (int k = 0; k < n; k++)
			json_array_append_new(out, json_integer(tasks[k]));
		if (json_array_size(out) > PROTO_MAX_EXPANDED) {
			dispatch_error(r, PROTO_EBADMSG,
			               "these ids stand for more than %d jobs",
			               PROTO_MAX_EXPANDED);
			goto fail;
		}
	}
	free(tasks);
	return (out);
storage:
	dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
fail:
	free(tasks);
	json_decref(out);
	return (NULL);
}

/* Replace r's "ids" by the jobs they stand for (dispatch_expand). */
int
dispatch_expand_ids(struct request *r, int mask)
{
	json_t *ids;

	if ((ids = dispatch_expand(r, json_object_get(r->req, "ids"), mask)) ==
	    NULL)
		return (-1);
	json_object_set_new(r->req, "ids", ids);
	return (0);
}

/*
 * The jobs of r's "ids" as status shows them (dispatch_job_detail), each
 * checked to be the sender's. NULL after answering r.
 */
json_t *
dispatch_jobs_detail(struct request *r)
{
	json_t *jobs = json_array(), *e, *o;
	struct job j;
	size_t i;

	json_array_foreach(json_object_get(r->req, "ids"), i, e)
	{
		if (dispatch_job_get(r, json_integer_value(e), &j) != 0)
			goto fail;
		o = dispatch_job_detail(&j);
		job_clear(&j);
		if (o == NULL) {
			dispatch_error(r, PROTO_ESTORAGE,
			               "storage unavailable");
			goto fail;
		}
		json_array_append_new(jobs, o);
	}
	return (jobs);
fail:
	json_decref(jobs);
	return (NULL);
}

/*
 * Check that the sender may act on every job of r's "ids" and that each is
 * in a state of mask (bit 1 << state). All or nothing: returns 0, or -1
 * after answering r.
 */
int
dispatch_jobs_check(struct request *r, int mask)
{
	json_t *e;
	struct job j;
	size_t i;

	json_array_foreach(json_object_get(r->req, "ids"), i, e)
	{
		if (dispatch_job_get(r, json_integer_value(e), &j) != 0)
			return (-1);
		if (!(mask & (1 << j.state))) {
			dispatch_error(r, PROTO_ESTATE,
			               JOB_TERMINAL(j.state)
			                   ? "job %lld has already ended (%s)"
			               : mask == CMD_ENDED
			                   ? "job %lld has not ended (it is %s)"
			                   : "job %lld is %s",
			               (long long)j.id,
			               proto_state_name(j.state));
			job_clear(&j);
			return (-1);
		}
		job_clear(&j);
	}
	return (0);
}

/*
 * The shape of set, hold, release and retry: expand r's ids (an array's
 * tasks in a state of mask), check that every job is the sender's and in a
 * state of mask (all or nothing), apply fn to each, and answer with the
 * jobs as they are then.
 */
enum cmd_result
dispatch_each_job(struct request *r, int mask,
                  int (*fn)(struct request *, int64_t))
{
	json_t *jobs, *e;
	size_t i;

	if (dispatch_expand_ids(r, mask) != 0 ||
	    dispatch_jobs_check(r, mask) != 0)
		return (CMD_DONE);
	json_array_foreach(json_object_get(r->req, "ids"), i, e)
	{
		if (fn(r, json_integer_value(e)) != 0) {
			dispatch_error(r, PROTO_ESTORAGE,
			               "storage unavailable");
			return (CMD_DONE);
		}
	}
	sched_kick();
	if ((jobs = dispatch_jobs_detail(r)) != NULL)
		dispatch_reply(r,
		               json_pack("{s:b, s:o}", "ok", 1, "jobs", jobs));
	return (CMD_DONE);
}

/*
 * Read job id for r into j, checking that the sender may see it. Returns 0,
 * or -1 after answering r with the error.
 */
int
dispatch_job_get(struct request *r, int64_t id, struct job *j)
{
	switch (queue_job_get(id, j)) {
	case 0:
		break;
	case 1:
		dispatch_not_found(r, id);
		return (-1);
	default:
		dispatch_error(r, PROTO_ESTORAGE, "storage unavailable");
		return (-1);
	}
	if (r->uid != 0 && (int64_t)r->uid != j->uid) {
		dispatch_error(r, PROTO_EDENIED,
		               "job %lld belongs to another user",
		               (long long)id);
		job_clear(j);
		return (-1);
	}
	return (0);
}

static json_t *
dispatch_time(int64_t ms)
{
	char buf[UTIL_TIME_LEN];

	if (ms <= 0)
		return (json_null());
	util_time_format(ms, buf, sizeof buf);
	return (json_string(buf));
}

/* An optional number: 0 is null. */
static json_t *
dispatch_opt(int64_t v)
{
	return (v != 0 ? json_integer(v) : json_null());
}

static json_t *
dispatch_strv(char **v)
{
	json_t *a;

	if (v == NULL)
		return (json_null());
	a = json_array();
	for (int i = 0; v[i] != NULL; i++)
		json_array_append_new(a, json_string(v[i]));
	return (a);
}

static json_t *
dispatch_path(int64_t id, enum outcome_file which)
{
	char path[PATH_MAX];

	if (outcome_path(path, sizeof path, jobd_conf.state_dir, id, which) !=
	    0)
		return (json_null());
	return (json_string(path));
}

/* The job object of docs/protocol.md. */
json_t *
dispatch_job_json(const struct job *j)
{
	json_t *o;

	o = json_pack(
	    "{s:I, s:o, s:s, s:o, s:o, s:s, s:{s:I, s:I, s:I}, "
	    "s:I, s:I}",
	    "id", (json_int_t)j->id, "name",
	    j->name != NULL ? json_string(j->name) : json_null(), "state",
	    proto_state_name(j->state), "argv", dispatch_strv(j->argv), "shell",
	    j->shell != NULL ? json_string(j->shell) : json_null(), "cwd",
	    j->cwd != NULL ? j->cwd : "", "owner", "uid", (json_int_t)j->uid,
	    "gid", (json_int_t)j->gid, "pid", (json_int_t)j->pid, "priority",
	    (json_int_t)j->priority, "attempt", (json_int_t)j->attempt);
	if (o == NULL)
		fatalx("cannot build a job object");
	json_object_set_new(o, "exit_code",
	                    j->has_exit ? json_integer(j->exit_code)
	                                : json_null());
	json_object_set_new(
	    o, "signal", j->signal > 0 ? json_integer(j->signal) : json_null());
	json_object_set_new(o, "reason", proto_text(j->reason));
	json_object_set_new(o, "submitted_at", dispatch_time(j->submitted_at));
	json_object_set_new(o, "started_at", dispatch_time(j->started_at));
	json_object_set_new(o, "finished_at", dispatch_time(j->finished_at));
	json_object_set_new(
	    o, "queue",
	    json_string(j->queue != NULL ? j->queue : PROTO_DEFAULT_QUEUE));
	json_object_set_new(o, "held", json_boolean(j->held));
	json_object_set_new(o, "run_at", dispatch_time(j->run_at));
	json_object_set_new(o, "deps_pending", json_integer(j->deps_pending));
	json_object_set_new(o, "timeout_ms", dispatch_opt(j->timeout_ms));
	json_object_set_new(o, "kill_after_ms", json_integer(j->kill_after_ms));
	json_object_set_new(o, "retries", json_integer(j->retries));
	json_object_set_new(o, "retry_delay_ms",
	                    json_integer(j->retry_delay_ms));
	json_object_set_new(o, "retry_on_lost", json_boolean(j->retry_on_lost));
	json_object_set_new(o, "array_id", dispatch_opt(j->array_id));
	json_object_set_new(o, "array_index",
	                    j->array_id != 0 ? json_integer(j->array_index)
	                                     : json_null());
	json_object_set_new(o, "array_limit", dispatch_opt(j->array_limit));
	json_object_set_new(o, "stdout", dispatch_path(j->id, OUTCOME_STDOUT));
	json_object_set_new(o, "stderr", dispatch_path(j->id, OUTCOME_STDERR));
	return (o);
}

static const char *const dispatch_dep_types[] = {
	[DEP_OK] = "ok",
	[DEP_ANY] = "any",
	[DEP_FAIL] = "fail",
};

static void
dispatch_dep_json(int64_t id, int type, void *arg)
{
	if (type < 0 || type > DEP_FAIL)
		type = DEP_OK;
	json_array_append_new(arg, json_pack("{s:I, s:s}", "id", (json_int_t)id,
	                                     "type", dispatch_dep_types[type]));
}

static void
dispatch_attempt_json(const struct job *a, void *arg)
{
	json_t *o = json_pack("{s:I, s:s}", "attempt", (json_int_t)a->attempt,
	                      "state", proto_state_name(a->state));

	json_object_set_new(o, "exit_code",
	                    a->has_exit ? json_integer(a->exit_code)
	                                : json_null());
	json_object_set_new(
	    o, "signal", a->signal > 0 ? json_integer(a->signal) : json_null());
	json_object_set_new(o, "reason", proto_text(a->reason));
	json_object_set_new(o, "started_at", dispatch_time(a->started_at));
	json_object_set_new(o, "finished_at", dispatch_time(a->finished_at));
	json_array_append_new(arg, o);
}

/*
 * The job object with what status shows beside it: "after" (its
 * dependencies) and "attempts" (its ended attempts, oldest first). NULL if
 * the store fails.
 */
json_t *
dispatch_job_detail(const struct job *j)
{
	json_t *o = dispatch_job_json(j), *deps, *attempts;

	deps = json_array();
	attempts = json_array();
	json_object_set_new(o, "after", deps);
	json_object_set_new(o, "attempts", attempts);
	if (queue_deps(j->id, dispatch_dep_json, deps) != 0 ||
	    queue_attempts(j->id, dispatch_attempt_json, attempts) != 0) {
		json_decref(o);
		return (NULL);
	}
	return (o);
}
