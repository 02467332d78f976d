/*
 * Unit tests for daemon/dispatch.c and the cmd-*.c handlers, without a
 * socket: each request is a real nng message handed to dispatch_request();
 * its reply is read from r->reply while it waits in the batch, then
 * dispatch_flush() frees it (the send fails: no socket is open). Each test
 * has its own state folder and store.
 */
#include <sys/stat.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>

#include "jobd.h"
#include "fixture.h"

struct fixture {
	char dir[64];
};

static struct fixture *fx; /* the current test's */

/* Once per program: the event base exists for as long as the tests run. */
static int
group_setup(void **state)
{
	(void)state;
	server_init();
	return (0);
}

static int
group_teardown(void **state)
{
	(void)state;
	cmd_logs_fini();
	return (0);
}

static int
setup(void **state)
{
	char db[128];

	fx = calloc(1, sizeof *fx);
	if (fx == NULL)
		return (-1);
	if (fixture_mkdtemp(fx->dir, sizeof fx->dir, "dispatch") == -1)
		return (-1);
	snprintf(jobd_conf.state_dir, sizeof jobd_conf.state_dir, "%s",
	         fx->dir);
	snprintf(db, sizeof db, "%s/jobs.db", fx->dir);
	jobd_instance = "test-dispatch";
	server_stopping = 0;
	*state = fx;
	return (queue_open(db));
}

static int
teardown(void **state)
{
	int rv;

	(void)state;
	dispatch_flush(0);
	queue_rollback();
	queue_close();
	rv = fixture_rmtree(fx->dir);
	free(fx);
	fx = NULL;
	return (rv);
}

/* The uid a request comes from when the test does not care. */
static uint64_t
me(void)
{
	return ((uint64_t)geteuid());
}

/*
 * Send body as uid through dispatch_request() and return its reply (to
 * json_decref). The write transaction, if any, is committed as the loop
 * would before the flush.
 */
static json_t *
call(uint64_t uid, const char *body)
{
	struct request *r = xcalloc(1, sizeof *r);
	nng_msg *m;
	json_t *reply;

	assert_int_equal(nng_msg_alloc(&m, 0), 0);
	assert_int_equal(nng_msg_append(m, body, strlen(body)), 0);
	r->msg = m;
	r->uid = uid;
	r->gid = uid;
	r->pid = (uint64_t)getpid();
	dispatch_request(r);
	if (r->reply == NULL)
		fail_msg("no reply to %s (parked?)", body);
	reply = json_incref(r->reply);
	assert_int_equal(queue_commit(), 0);
	dispatch_flush(0);
	return (reply);
}

static json_t *callf(uint64_t uid, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static json_t *
callf(uint64_t uid, const char *fmt, ...)
{
	char body[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof body, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof body);
	return (call(uid, body));
}

/*
 * reply must be an error with code; its message must contain what. The
 * reply is released before any check fails, so a failure leaks nothing.
 */
static void
assert_error(json_t *reply, const char *code, const char *what)
{
	const char *err, *msg;
	char *text, got[512];
	int match;

	assert_non_null(reply);
	err = json_string_value(json_object_get(reply, "error"));
	msg = json_string_value(json_object_get(reply, "message"));
	match = json_is_false(json_object_get(reply, "ok")) && err != NULL &&
	        msg != NULL && strcmp(err, code) == 0 &&
	        (what == NULL || strstr(msg, what) != NULL);
	text = json_dumps(reply, JSON_COMPACT);
	snprintf(got, sizeof got, "%s", text != NULL ? text : "?");
	free(text);
	json_decref(reply);
	if (!match)
		fail_msg("expected error %s mentioning '%s', got %s", code,
		         what != NULL ? what : "", got);
}

/* reply must say ok; returns it (still to json_decref). */
static json_t *
assert_ok(json_t *reply)
{
	char *text, got[512];

	assert_non_null(reply);
	if (json_is_true(json_object_get(reply, "ok")))
		return (reply);
	text = json_dumps(reply, JSON_COMPACT);
	snprintf(got, sizeof got, "%s", text != NULL ? text : "?");
	free(text);
	json_decref(reply);
	fail_msg("expected ok, got %s", got);
	return (NULL);
}

/* Copy the ids of the jobs of an ok reply into ids; returns the count. */
static size_t
reply_ids(json_t *reply, int64_t *ids, size_t max)
{
	json_t *jobs;
	size_t n;

	reply = assert_ok(reply);
	jobs = json_object_get(reply, "jobs");
	n = json_array_size(jobs);
	for (size_t i = 0; i < n && i < max; i++)
		ids[i] = json_integer_value(
		    json_object_get(json_array_get(jobs, i), "id"));
	json_decref(reply);
	return (n);
}

/* Submit a simple job as uid; returns its id. */
static int64_t
submit(uint64_t uid, int priority)
{
	json_t *reply, *job;
	int64_t id;

	reply = assert_ok(callf(
	    uid,
	    "{\"v\":1,\"op\":\"submit\",\"cwd\":\"%s\",\"argv\":[\"true\"],"
	    "\"priority\":%d}",
	    fx->dir, priority));
	job = json_object_get(reply, "job");
	id = json_integer_value(json_object_get(job, "id"));
	assert_true(id > 0);
	json_decref(reply);
	return (id);
}

static void
count_cb(struct job *j, void *arg)
{
	(void)j;
	(*(int *)arg)++;
}

/* How many jobs are queued. */
static int
queued_count(void)
{
	struct job_filter f = { .state = JOB_QUEUED, .uid = -1, .limit = 100 };
	int n = 0;

	assert_int_equal(queue_job_list(&f, count_cb, &n), 0);
	return (n);
}

/* A valid request per operation; every one must reach a handler. */
static void
test_every_op_has_handler(void **state)
{
	char body[512];
	int64_t id, waiting, ended;

	(void)state;
	id = submit(me(), 0);
	waiting = submit(me(), 0);
	ended = submit(me(), 0);
	json_decref(assert_ok(callf(me(),
	                            "{\"v\":1,\"op\":\"cancel\","
	                            "\"ids\":[%lld]}",
	                            (long long)ended)));
	for (int op = 0; op < PROTO_OP_MAX; op++) {
		const char *name = proto_ops[op].name;
		json_t *reply;

		switch (op) {
		case PROTO_OP_SUBMIT:
			snprintf(body, sizeof body,
			         "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
			         "\"shell\":\"true\"}");
			break;
		case PROTO_OP_STATUS:
		case PROTO_OP_CANCEL:
			snprintf(body, sizeof body,
			         "{\"v\":1,\"op\":\"%s\",\"ids\":[%lld]}", name,
			         (long long)id);
			break;
		case PROTO_OP_WAIT:
			snprintf(body, sizeof body,
			         "{\"v\":1,\"op\":\"wait\",\"ids\":[%lld],"
			         "\"timeout_ms\":0}",
			         (long long)id);
			break;
		case PROTO_OP_LOGS:
			snprintf(body, sizeof body,
			         "{\"v\":1,\"op\":\"logs\",\"id\":%lld}",
			         (long long)id);
			break;
		case PROTO_OP_SET:
			snprintf(body, sizeof body,
			         "{\"v\":1,\"op\":\"set\",\"ids\":[%lld],"
			         "\"priority\":5}",
			         (long long)waiting);
			break;
		case PROTO_OP_HOLD:
		case PROTO_OP_RELEASE:
			snprintf(body, sizeof body,
			         "{\"v\":1,\"op\":\"%s\",\"ids\":[%lld]}", name,
			         (long long)waiting);
			break;
		case PROTO_OP_RETRY:
			snprintf(body, sizeof body,
			         "{\"v\":1,\"op\":\"retry\",\"ids\":[%lld]}",
			         (long long)ended);
			break;
		case PROTO_OP_QUEUE:
			snprintf(body, sizeof body,
			         "{\"v\":1,\"op\":\"queue\","
			         "\"action\":\"list\"}");
			break;
		case PROTO_OP_SHUTDOWN:
			/* drain: applied by the loop's hook, not run here. */
			snprintf(body, sizeof body,
			         "{\"v\":1,\"op\":\"shutdown\","
			         "\"mode\":\"drain\"}");
			break;
		case PROTO_OP_BACKUP:
			/* A real backup parks; this one is refused at once. */
			reply = callf(me(),
			              "{\"v\":1,\"op\":\"backup\","
			              "\"path\":\"%s\"}",
			              fx->dir);
			assert_error(reply, "invalid_state", "exists");
			continue;
		case PROTO_OP_LIST:
		case PROTO_OP_PURGE:
		case PROTO_OP_PING:
		case PROTO_OP_VERSION:
			snprintf(body, sizeof body, "{\"v\":1,\"op\":\"%s\"}",
			         name);
			break;
		default:
			fail_msg("operation '%s' has no test request", name);
		}
		reply = assert_ok(call(me(), body));
		json_decref(reply);
	}
}

static void
test_ping_version(void **state)
{
	json_t *reply;

	(void)state;
	reply = assert_ok(call(me(), "{\"v\":1,\"op\":\"ping\"}"));
	assert_int_equal(json_integer_value(json_object_get(reply, "pid")),
	                 getpid());
	assert_string_equal(
	    json_string_value(json_object_get(reply, "version")), JOBD_VERSION);
	json_decref(reply);
	reply = assert_ok(call(me(), "{\"v\":1,\"op\":\"version\"}"));
	assert_int_equal(json_integer_value(json_object_get(reply, "protocol")),
	                 PROTO_VERSION);
	json_decref(reply);
}

static void
test_bad_requests(void **state)
{
	(void)state;
	assert_error(call(me(), "not json"), "bad_request", "not JSON");
	assert_error(call(me(), ""), "bad_request", NULL);
	assert_error(call(me(), "[1]"), "bad_request", NULL);
	assert_error(call(me(), "{\"v\":2,\"op\":\"ping\"}"), "bad_version",
	             NULL);
	assert_error(call(me(), "{\"v\":1,\"op\":\"nope\"}"), "unknown_op",
	             "nope");
	assert_error(call(me(), "{\"v\":1,\"op\":\"status\",\"ids\":[0]}"),
	             "bad_request", "'ids'");
	assert_error(call(me(), "{\"v\":1,\"op\":\"ping\",\"x\":1}"),
	             "bad_request", "'x'");
}

static void
test_stopping(void **state)
{
	(void)state;
	server_stopping = 1;
	assert_error(call(me(), "{\"v\":1,\"op\":\"ping\"}"), "shutting_down",
	             NULL);
	/* Bad bytes are still answered as such. */
	assert_error(call(me(), "{"), "bad_request", NULL);
	server_stopping = 0;
}

/* A user's jobd answers that user only. */
static void
test_other_uid_on_user_jobd(void **state)
{
	(void)state;
	if (geteuid() == 0)
		skip();
	assert_error(call(me() + 1, "{\"v\":1,\"op\":\"ping\"}"), "denied",
	             NULL);
}

static void
test_submit_bad(void **state)
{
	(void)state;
	assert_error(callf(me(),
	                   "{\"v\":1,\"op\":\"submit\",\"cwd\":\"%s\","
	                   "\"argv\":[\"ls\"],\"shell\":\"ls\"}",
	                   fx->dir),
	             "bad_request", "exactly one");
	assert_error(
	    callf(me(), "{\"v\":1,\"op\":\"submit\",\"cwd\":\"%s\"}", fx->dir),
	    "bad_request", "exactly one");
	assert_error(call(me(), "{\"v\":1,\"op\":\"submit\","
	                        "\"cwd\":\"/nonexistent\",\"argv\":[\"ls\"]}"),
	             "bad_request", "'cwd'");
	assert_error(call(me(), "{\"v\":1,\"op\":\"submit\","
	                        "\"cwd\":\"tmp\",\"argv\":[\"ls\"]}"),
	             "bad_request", "'cwd'");
	assert_error(call(me(), "{\"v\":1,\"op\":\"submit\","
	                        "\"cwd\":\"/etc/passwd\",\"argv\":[\"ls\"]}"),
	             "bad_request", "'cwd'");
	assert_error(callf(me(),
	                   "{\"v\":1,\"op\":\"submit\",\"cwd\":\"%s\","
	                   "\"argv\":[\"ls\"],\"env\":[\"A=1\",\"NOEQUALS\"]}",
	                   fx->dir),
	             "bad_request", "'env'");
	assert_error(callf(me(),
	                   "{\"v\":1,\"op\":\"submit\",\"cwd\":\"%s\","
	                   "\"argv\":[\"ls\"],\"env\":[\"=x\"]}",
	                   fx->dir),
	             "bad_request", "'env'");
	assert_error(callf(me(),
	                   "{\"v\":1,\"op\":\"submit\",\"cwd\":\"%s\","
	                   "\"argv\":[\"\",\"x\"]}",
	                   fx->dir),
	             "bad_request", "'argv'");
	/* None of them made a job. */
	assert_int_equal(queued_count(), 0);
}

static void
test_submit_ok(void **state)
{
	json_t *reply, *job;
	int64_t id;
	const char *s;

	(void)state;
	reply = assert_ok(callf(
	    me(),
	    "{\"v\":1,\"op\":\"submit\",\"cwd\":\"%s\",\"argv\":[\"echo\","
	    "\"a b\",\"\"],\"name\":\"n1\",\"priority\":-3,"
	    "\"env\":[\"X=1\"]}",
	    fx->dir));
	assert_true(json_is_false(json_object_get(reply, "existing")));
	job = json_object_get(reply, "job");
	id = json_integer_value(json_object_get(job, "id"));
	assert_true(id > 0);
	assert_string_equal(json_string_value(json_object_get(job, "state")),
	                    "queued");
	assert_string_equal(json_string_value(json_object_get(job, "name")),
	                    "n1");
	assert_string_equal(json_string_value(json_object_get(job, "cwd")),
	                    fx->dir);
	assert_int_equal(json_array_size(json_object_get(job, "argv")), 3);
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(job, "argv"), 1)),
	    "a b");
	assert_true(json_is_null(json_object_get(job, "shell")));
	assert_int_equal(json_integer_value(json_object_get(job, "priority")),
	                 -3);
	assert_int_equal(json_integer_value(json_object_get(job, "attempt")),
	                 0);
	assert_int_equal(json_integer_value(json_object_get(
	                     json_object_get(job, "owner"), "uid")),
	                 me());
	assert_int_equal(json_integer_value(json_object_get(
	                     json_object_get(job, "owner"), "pid")),
	                 getpid());
	s = json_string_value(json_object_get(job, "submitted_at"));
	assert_non_null(s);
	assert_int_equal(s[strlen(s) - 1], 'Z');
	assert_true(json_is_null(json_object_get(job, "started_at")));
	json_decref(reply);
	/* Committed in the store, queued. */
	assert_int_equal(queue_in_txn(), 0);
	assert_int_equal(fixture_job_state(id), JOB_QUEUED);
}

static void
test_submit_key(void **state)
{
	const char *body = "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                   "\"argv\":[\"true\"],\"key\":\"same\"}";
	json_t *reply;
	int64_t first, second;

	(void)state;
	reply = assert_ok(call(me(), body));
	assert_true(json_is_false(json_object_get(reply, "existing")));
	first = json_integer_value(
	    json_object_get(json_object_get(reply, "job"), "id"));
	json_decref(reply);
	reply = assert_ok(call(me(), body));
	assert_true(json_is_true(json_object_get(reply, "existing")));
	second = json_integer_value(
	    json_object_get(json_object_get(reply, "job"), "id"));
	json_decref(reply);
	assert_int_equal(first, second);
	assert_int_equal(queued_count(), 1);
	if (geteuid() != 0)
		return;
	/* Another user's key is another job. */
	reply = assert_ok(call(1234, body));
	assert_true(json_is_false(json_object_get(reply, "existing")));
	assert_true(json_integer_value(json_object_get(
	                json_object_get(reply, "job"), "id")) != first);
	json_decref(reply);
	assert_int_equal(queued_count(), 2);
}

static void
test_status(void **state)
{
	int64_t a, b, ids[4] = { 0 };

	(void)state;
	a = submit(me(), 0);
	b = submit(me(), 0);
	/* In the order asked, repeats included. */
	assert_int_equal(
	    reply_ids(callf(me(),
	                    "{\"v\":1,\"op\":\"status\","
	                    "\"ids\":[%lld,%lld,%lld]}",
	                    (long long)b, (long long)a, (long long)b),
	              ids, 4),
	    3);
	assert_int_equal(ids[0], b);
	assert_int_equal(ids[1], a);
	assert_int_equal(ids[2], b);
	assert_error(call(me(), "{\"v\":1,\"op\":\"status\",\"ids\":[999]}"),
	             "not_found", "999");
	/* One unknown id fails the whole request. */
	assert_error(callf(me(),
	                   "{\"v\":1,\"op\":\"status\",\"ids\":[%lld,"
	                   "777]}",
	                   (long long)a),
	             "not_found", "777");
}

static void
test_status_other_user(void **state)
{
	json_t *reply;
	int64_t id;

	(void)state;
	if (geteuid() != 0)
		skip(); /* only a root jobd serves several users */
	id = submit(1234, 0);
	assert_error(callf(4321, "{\"v\":1,\"op\":\"status\",\"ids\":[%lld]}",
	                   (long long)id),
	             "denied", "another user");
	assert_error(callf(4321, "{\"v\":1,\"op\":\"cancel\",\"ids\":[%lld]}",
	                   (long long)id),
	             "denied", NULL);
	assert_int_equal(fixture_job_state(id), JOB_QUEUED);
	/* The owner and root see it. */
	reply = assert_ok(callf(1234,
	                        "{\"v\":1,\"op\":\"status\","
	                        "\"ids\":[%lld]}",
	                        (long long)id));
	json_decref(reply);
	reply = assert_ok(callf(0, "{\"v\":1,\"op\":\"status\",\"ids\":[%lld]}",
	                        (long long)id));
	json_decref(reply);
}

static void
test_list(void **state)
{
	int64_t a, b, c, ids[4] = { 0 };

	(void)state;
	a = submit(me(), 0);
	b = submit(me(), 0);
	c = submit(me(), 0);
	assert_error(
	    call(me(), "{\"v\":1,\"op\":\"list\",\"state\":\"bogus\"}"),
	    "bad_request", "bogus");
	/* Newest first. */
	assert_int_equal(
	    reply_ids(call(me(), "{\"v\":1,\"op\":\"list\"}"), ids, 4), 3);
	assert_int_equal(ids[0], c);
	assert_int_equal(ids[1], b);
	assert_int_equal(ids[2], a);
	json_decref(assert_ok(callf(
	    me(), "{\"v\":1,\"op\":\"cancel\",\"ids\":[%lld]}", (long long)b)));
	assert_int_equal(
	    reply_ids(call(me(), "{\"v\":1,\"op\":\"list\","
	                         "\"state\":\"queued\",\"limit\":1}"),
	              ids, 4),
	    1);
	assert_int_equal(ids[0], c);
	assert_int_equal(reply_ids(call(me(), "{\"v\":1,\"op\":\"list\","
	                                      "\"state\":\"cancelled\"}"),
	                           ids, 4),
	                 1);
	assert_int_equal(ids[0], b);
	assert_int_equal(reply_ids(call(me(), "{\"v\":1,\"op\":\"list\","
	                                      "\"state\":\"lost\"}"),
	                           ids, 4),
	                 0);
}

/*
 * On a root jobd a user lists only their own jobs, and "limit" counts
 * theirs: newer jobs of other users must not use up the limit.
 */
static void
test_list_limit_counts_own_jobs(void **state)
{
	int64_t mine, ids[4] = { 0 };

	(void)state;
	if (geteuid() != 0)
		skip();
	mine = submit(1234, 0);
	submit(0, 0);
	submit(4321, 0);
	assert_int_equal(
	    reply_ids(call(1234, "{\"v\":1,\"op\":\"list\"}"), ids, 4), 1);
	assert_int_equal(ids[0], mine);
	/* Root sees all three. */
	assert_int_equal(
	    reply_ids(call(0, "{\"v\":1,\"op\":\"list\"}"), ids, 4), 3);
	ids[0] = 0;
	assert_int_equal(reply_ids(call(1234, "{\"v\":1,\"op\":\"list\","
	                                      "\"limit\":1}"),
	                           ids, 4),
	                 1);
	assert_int_equal(ids[0], mine);
}

static void
test_cancel(void **state)
{
	json_t *reply, *jobs;
	int64_t a, b;

	(void)state;
	a = submit(me(), 0);
	b = submit(me(), 0);
	assert_error(callf(me(),
	                   "{\"v\":1,\"op\":\"cancel\",\"ids\":[%lld],"
	                   "\"signal\":\"FOO\"}",
	                   (long long)a),
	             "bad_request", "FOO");
	assert_int_equal(fixture_job_state(a), JOB_QUEUED);
	assert_error(call(me(), "{\"v\":1,\"op\":\"cancel\",\"ids\":[999]}"),
	             "not_found", "999");

	reply = assert_ok(callf(me(),
	                        "{\"v\":1,\"op\":\"cancel\","
	                        "\"ids\":[%lld],\"signal\":\"KILL\"}",
	                        (long long)a));
	jobs = json_object_get(reply, "jobs");
	assert_int_equal(json_array_size(jobs), 1);
	assert_int_equal(
	    json_integer_value(json_object_get(json_array_get(jobs, 0), "id")),
	    a);
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(jobs, 0), "state")),
	                    "cancelled");
	json_decref(reply);
	assert_int_equal(fixture_job_state(a), JOB_CANCELLED);

	assert_error(callf(me(), "{\"v\":1,\"op\":\"cancel\",\"ids\":[%lld]}",
	                   (long long)a),
	             "invalid_state", "cancelled");
	/* All or nothing: b stays queued. */
	assert_error(callf(me(),
	                   "{\"v\":1,\"op\":\"cancel\",\"ids\":[%lld,"
	                   "%lld]}",
	                   (long long)b, (long long)a),
	             "invalid_state", NULL);
	assert_int_equal(fixture_job_state(b), JOB_QUEUED);
}

static void
test_wait_and_logs(void **state)
{
	json_t *reply;
	char path[PATH_MAX];
	int64_t id;
	int fd;

	(void)state;
	id = submit(me(), 0);
	reply = assert_ok(callf(me(),
	                        "{\"v\":1,\"op\":\"wait\","
	                        "\"ids\":[%lld],\"timeout_ms\":0}",
	                        (long long)id));
	assert_true(json_is_false(json_object_get(reply, "done")));
	json_decref(reply);
	json_decref(assert_ok(callf(me(),
	                            "{\"v\":1,\"op\":\"cancel\","
	                            "\"ids\":[%lld]}",
	                            (long long)id)));
	reply = assert_ok(callf(me(),
	                        "{\"v\":1,\"op\":\"wait\","
	                        "\"ids\":[%lld]}",
	                        (long long)id));
	assert_true(json_is_true(json_object_get(reply, "done")));
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_array_get(json_object_get(reply, "jobs"), 0), "state")),
	    "cancelled");
	json_decref(reply);

	/* logs reads the output file from the offset, base64. */
	snprintf(path, sizeof path, "%s/out", fx->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(
	    outcome_path(path, sizeof path, fx->dir, id, OUTCOME_STDOUT), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello\n", 6), 6);
	close(fd);
	reply = assert_ok(callf(me(),
	                        "{\"v\":1,\"op\":\"logs\",\"id\":%lld,"
	                        "\"offset\":1}",
	                        (long long)id));
	assert_string_equal(json_string_value(json_object_get(reply, "data")),
	                    "ZWxsbwo=");
	assert_int_equal(json_integer_value(json_object_get(reply, "offset")),
	                 6);
	assert_true(json_is_true(json_object_get(reply, "eof")));
	json_decref(reply);
	assert_error(callf(me(),
	                   "{\"v\":1,\"op\":\"logs\",\"id\":%lld,"
	                   "\"stream\":\"stdin\"}",
	                   (long long)id),
	             "bad_request", "'stream'");
}

static const char *job_keys[] = {
	"id",           "name",           "state",
	"argv",         "shell",          "cwd",
	"owner",        "priority",       "attempt",
	"exit_code",    "signal",         "reason",
	"submitted_at", "started_at",     "finished_at",
	"queue",        "held",           "run_at",
	"deps_pending", "timeout_ms",     "kill_after_ms",
	"retries",      "retry_delay_ms", "retry_on_lost",
	"array_id",     "array_index",    "array_limit",
	"stdout",       "stderr",
};

/* o has exactly the keys of the job object. */
static void
assert_job_keys(json_t *o)
{
	const char *key;
	json_t *v;
	size_t i, n = sizeof job_keys / sizeof job_keys[0];

	assert_non_null(o);
	for (i = 0; i < n; i++)
		if (json_object_get(o, job_keys[i]) == NULL)
			fail_msg("job object without '%s'", job_keys[i]);
	json_object_foreach(o, key, v)
	{
		for (i = 0; i < n; i++)
			if (strcmp(key, job_keys[i]) == 0)
				break;
		if (i == n)
			fail_msg("unexpected key '%s' in a job object", key);
	}
	assert_int_equal(json_object_size(o), n);
}

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (s == NULL)
		fail_msg("'%s' is not a string", key);
	return (s);
}

static void
test_job_json_full(void **state)
{
	char *argv[] = { "make", "-j4", "", NULL };
	struct job j;
	json_t *o, *owner;

	(void)state;
	snprintf(jobd_conf.state_dir, sizeof jobd_conf.state_dir,
	         "/var/lib/jobd");
	memset(&j, 0, sizeof j);
	j.id = 42;
	j.name = "build";
	j.state = JOB_FAILED;
	j.argv = argv;
	j.cwd = "/home/alice/src";
	j.uid = 1000;
	j.gid = 1001;
	j.pid = 31337;
	j.priority = -7;
	j.attempt = 1;
	j.has_exit = 1;
	j.exit_code = 2;
	j.signal = 0;
	j.reason = "it broke";
	j.submitted_at = 1700000000123LL;
	j.started_at = 1700000000130LL;
	j.finished_at = 1700000004002LL;
	j.queue = "gpu";
	j.held = 1;
	j.run_at = 1700000001000LL;
	j.deps_pending = 2;
	j.timeout_ms = 90000;
	j.kill_after_ms = 0;
	j.retries = 3;
	j.retry_delay_ms = 250;
	j.retry_on_lost = 1;
	j.array_id = 40;
	j.array_index = 0;
	j.array_limit = 4;
	o = dispatch_job_json(&j);
	assert_job_keys(o);
	assert_int_equal(json_integer_value(json_object_get(o, "id")), 42);
	assert_string_equal(jstr(o, "name"), "build");
	assert_string_equal(jstr(o, "state"), "failed");
	assert_int_equal(json_array_size(json_object_get(o, "argv")), 3);
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(o, "argv"), 1)),
	    "-j4");
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(o, "argv"), 2)),
	    "");
	assert_true(json_is_null(json_object_get(o, "shell")));
	assert_string_equal(jstr(o, "cwd"), "/home/alice/src");
	owner = json_object_get(o, "owner");
	assert_int_equal(json_object_size(owner), 3);
	assert_int_equal(json_integer_value(json_object_get(owner, "uid")),
	                 1000);
	assert_int_equal(json_integer_value(json_object_get(owner, "gid")),
	                 1001);
	assert_int_equal(json_integer_value(json_object_get(owner, "pid")),
	                 31337);
	assert_int_equal(json_integer_value(json_object_get(o, "priority")),
	                 -7);
	assert_int_equal(json_integer_value(json_object_get(o, "attempt")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "exit_code")),
	                 2);
	assert_true(json_is_null(json_object_get(o, "signal")));
	assert_string_equal(jstr(o, "reason"), "it broke");
	assert_string_equal(jstr(o, "submitted_at"),
	                    "2023-11-14T22:13:20.123Z");
	assert_string_equal(jstr(o, "started_at"), "2023-11-14T22:13:20.130Z");
	assert_string_equal(jstr(o, "finished_at"), "2023-11-14T22:13:24.002Z");
	assert_string_equal(jstr(o, "stdout"), "/var/lib/jobd/out/42.out");
	assert_string_equal(jstr(o, "stderr"), "/var/lib/jobd/out/42.err");
	assert_string_equal(jstr(o, "queue"), "gpu");
	assert_true(json_is_true(json_object_get(o, "held")));
	assert_string_equal(jstr(o, "run_at"), "2023-11-14T22:13:21.000Z");
	assert_int_equal(json_integer_value(json_object_get(o, "deps_pending")),
	                 2);
	assert_int_equal(json_integer_value(json_object_get(o, "timeout_ms")),
	                 90000);
	/* 0 is a grace period of its own, not "none". */
	assert_true(json_is_integer(json_object_get(o, "kill_after_ms")));
	assert_int_equal(
	    json_integer_value(json_object_get(o, "kill_after_ms")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "retries")), 3);
	assert_int_equal(
	    json_integer_value(json_object_get(o, "retry_delay_ms")), 250);
	assert_true(json_is_true(json_object_get(o, "retry_on_lost")));
	assert_int_equal(json_integer_value(json_object_get(o, "array_id")),
	                 40);
	/* Index 0 of an array is an index. */
	assert_true(json_is_integer(json_object_get(o, "array_index")));
	assert_int_equal(json_integer_value(json_object_get(o, "array_index")),
	                 0);
	assert_int_equal(json_integer_value(json_object_get(o, "array_limit")),
	                 4);
	json_decref(o);

	/* Exit code 0 is a code, not null; a signal is a number. */
	j.exit_code = 0;
	j.signal = 9;
	o = dispatch_job_json(&j);
	assert_true(json_is_integer(json_object_get(o, "exit_code")));
	assert_int_equal(json_integer_value(json_object_get(o, "exit_code")),
	                 0);
	assert_int_equal(json_integer_value(json_object_get(o, "signal")), 9);
	json_decref(o);
}

static void
test_job_json_nulls(void **state)
{
	struct job j;
	json_t *o;

	(void)state;
	memset(&j, 0, sizeof j);
	j.id = 7;
	j.state = JOB_QUEUED;
	j.shell = "echo hi";
	j.cwd = "/";
	j.exit_code = 5; /* ignored: has_exit is 0 */
	o = dispatch_job_json(&j);
	assert_job_keys(o);
	assert_true(json_is_null(json_object_get(o, "name")));
	assert_true(json_is_null(json_object_get(o, "argv")));
	assert_string_equal(jstr(o, "shell"), "echo hi");
	assert_string_equal(jstr(o, "state"), "queued");
	assert_true(json_is_null(json_object_get(o, "exit_code")));
	assert_true(json_is_null(json_object_get(o, "signal")));
	assert_true(json_is_null(json_object_get(o, "reason")));
	assert_true(json_is_null(json_object_get(o, "submitted_at")));
	assert_true(json_is_null(json_object_get(o, "started_at")));
	assert_true(json_is_null(json_object_get(o, "finished_at")));
	assert_int_equal(json_integer_value(json_object_get(o, "attempt")), 0);
	assert_true(json_is_string(json_object_get(o, "stdout")));
	/* A job read from a version 1 record: the defaults of submit. */
	assert_string_equal(jstr(o, "queue"), PROTO_DEFAULT_QUEUE);
	assert_true(json_is_false(json_object_get(o, "held")));
	assert_true(json_is_null(json_object_get(o, "run_at")));
	assert_int_equal(json_integer_value(json_object_get(o, "deps_pending")),
	                 0);
	assert_true(json_is_null(json_object_get(o, "timeout_ms")));
	assert_true(json_is_false(json_object_get(o, "retry_on_lost")));
	assert_true(json_is_null(json_object_get(o, "array_id")));
	assert_true(json_is_null(json_object_get(o, "array_index")));
	assert_true(json_is_null(json_object_get(o, "array_limit")));
	json_decref(o);
}

/*
 * A reason comes from the supervisor's outcome file, cut to 255 bytes,
 * possibly inside a UTF-8 character ("cannot execute '<long name>'"). The
 * job object must still have its "reason" key.
 */
static void
test_job_json_reason_not_utf8(void **state)
{
	struct job j;
	json_t *o;
	int has_reason;

	(void)state;
	memset(&j, 0, sizeof j);
	j.id = 8;
	j.state = JOB_FAILED;
	j.shell = "x";
	j.cwd = "/";
	j.reason = "cannot execute '/opt/caf\xc3";
	o = dispatch_job_json(&j);
	assert_non_null(o);
	has_reason = json_object_get(o, "reason") != NULL;
	json_decref(o);
	if (!has_reason)
		fail_msg("the job object lost its 'reason' key");
}

/* Submit a shell job with the extra fields (",\"k\":v..."), as me. */
static json_t *
submit_with(const char *extra)
{
	return (callf(me(),
	              "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	              "\"shell\":\"true\"%s}",
	              extra));
}

/* The id of the job of an ok submit reply; the reply is released. */
static int64_t
submitted_id(json_t *reply)
{
	int64_t id;

	reply = assert_ok(reply);
	id = json_integer_value(
	    json_object_get(json_object_get(reply, "job"), "id"));
	json_decref(reply);
	assert_true(id > 0);
	return (id);
}

static void
test_submit_sched_fields(void **state)
{
	json_t *reply, *job;
	char extra[256];
	struct job j;
	int64_t id, at;

	(void)state;
	/* Defaults. */
	reply = assert_ok(submit_with(""));
	job = json_object_get(reply, "job");
	assert_string_equal(jstr(job, "queue"), PROTO_DEFAULT_QUEUE);
	assert_true(json_is_false(json_object_get(job, "held")));
	assert_true(json_is_null(json_object_get(job, "run_at")));
	assert_int_equal(
	    json_integer_value(json_object_get(job, "kill_after_ms")),
	    PROTO_KILL_AFTER_MS);
	assert_int_equal(
	    json_integer_value(json_object_get(job, "retry_delay_ms")),
	    PROTO_RETRY_DELAY_MS);
	assert_int_equal(json_integer_value(json_object_get(job, "retries")),
	                 0);
	assert_true(json_is_null(json_object_get(job, "array_id")));
	assert_null(json_object_get(reply, "array"));
	json_decref(reply);

	/* Everything given is kept; a new queue is made on first use. */
	at = util_now_ms() + 3600000;
	snprintf(extra, sizeof extra,
	         ",\"queue\":\"gpu\",\"run_at\":%lld,\"timeout_ms\":5000,"
	         "\"kill_after_ms\":0,\"retries\":2,\"retry_delay_ms\":10,"
	         "\"retry_on_lost\":true",
	         (long long)at);
	id = submitted_id(submit_with(extra));
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.state, JOB_SCHEDULED);
	assert_string_equal(j.queue, "gpu");
	assert_int_equal(j.run_at, at);
	assert_int_equal(j.timeout_ms, 5000);
	assert_int_equal(j.kill_after_ms, 0);
	assert_int_equal(j.retries, 2);
	assert_int_equal(j.retry_delay_ms, 10);
	assert_int_equal(j.retry_on_lost, 1);
	job_clear(&j);
	reply = assert_ok(
	    call(me(), "{\"v\":1,\"op\":\"queue\",\"action\":\"list\"}"));
	assert_int_equal(json_array_size(json_object_get(reply, "queues")), 2);
	assert_string_equal(
	    jstr(json_array_get(json_object_get(reply, "queues"), 1), "name"),
	    "gpu");
	json_decref(reply);

	/* A start time a little in the past starts now; a minute is a typo. */
	snprintf(extra, sizeof extra, ",\"run_at\":%lld",
	         (long long)(util_now_ms() - 1000));
	id = submitted_id(submit_with(extra));
	assert_int_equal(fixture_job_state(id), JOB_QUEUED);
	snprintf(extra, sizeof extra, ",\"run_at\":%lld",
	         (long long)(util_now_ms() - 120000));
	assert_error(submit_with(extra), "bad_request", "'run_at'");
	assert_error(submit_with(",\"queue\":\"-x\""), "bad_request",
	             "'queue'");
	assert_error(submit_with(",\"queue\":\"a b\""), "bad_request",
	             "'queue'");
}

static void
test_submit_array(void **state)
{
	json_t *reply, *job, *jobs;
	int64_t aid, ids[8];
	struct job j;

	(void)state;
	reply = assert_ok(submit_with(
	    ",\"array_start\":3,\"array_end\":5,\"array_limit\":1"));
	aid = json_integer_value(
	    json_object_get(json_object_get(reply, "array"), "id"));
	assert_true(aid > 0);
	assert_int_equal(json_integer_value(json_object_get(
	                     json_object_get(reply, "array"), "count")),
	                 3);
	/* The job is the first task, just after the array's id. */
	job = json_object_get(reply, "job");
	assert_int_equal(json_integer_value(json_object_get(job, "id")),
	                 aid + 1);
	assert_int_equal(json_integer_value(json_object_get(job, "array_id")),
	                 aid);
	assert_int_equal(
	    json_integer_value(json_object_get(job, "array_index")), 3);
	assert_string_equal(jstr(job, "state"), "queued");
	json_decref(reply);
	/* No job has the array's id. */
	assert_int_equal(queue_job_get(aid, &j), 1);

	/* The array's id stands for its tasks, in index order. */
	reply =
	    assert_ok(callf(me(), "{\"v\":1,\"op\":\"status\",\"ids\":[%lld]}",
	                    (long long)aid));
	jobs = json_object_get(reply, "jobs");
	assert_int_equal(json_array_size(jobs), 3);
	for (int i = 0; i < 3; i++) {
		job = json_array_get(jobs, i);
		assert_int_equal(json_integer_value(json_object_get(job, "id")),
		                 aid + 1 + i);
		assert_int_equal(
		    json_integer_value(json_object_get(job, "array_index")),
		    3 + i);
		assert_string_equal(jstr(job, "state"),
		                    i == 0 ? "queued" : "blocked");
		assert_int_equal(
		    json_integer_value(json_object_get(job, "deps_pending")),
		    i == 0 ? 0 : 1);
	}
	json_decref(reply);
	/* The next job's id is after the tasks. */
	assert_int_equal(submit(me(), 0), aid + 4);

	/* Cancelling the array cancels every task (slots pass on). */
	assert_int_equal(
	    reply_ids(callf(me(), "{\"v\":1,\"op\":\"cancel\",\"ids\":[%lld]}",
	                    (long long)aid),
	              ids, 8),
	    3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ids[i], aid + 1 + i);
		assert_int_equal(fixture_job_state(aid + 1 + i), JOB_CANCELLED);
	}

	assert_error(submit_with(",\"array_start\":5,\"array_end\":4"),
	             "bad_request", "'array_end'");
	assert_error(submit_with(",\"array_start\":5"), "bad_request",
	             "go together");
	assert_error(submit_with(",\"array_limit\":2"), "bad_request",
	             "'array_limit'");
	assert_error(submit_with(",\"array_start\":0,\"array_end\":1000"),
	             "bad_request", "at most");
	json_decref(
	    assert_ok(submit_with(",\"array_start\":0,\"array_end\":999")));
}

static void
test_submit_deps(void **state)
{
	char extra[128];
	struct job j;
	int64_t a, b, c, d, aid;
	json_t *reply;

	(void)state;
	a = submit(me(), 0);
	snprintf(extra, sizeof extra, ",\"after\":[%lld]", (long long)a);
	b = submitted_id(submit_with(extra));
	snprintf(extra, sizeof extra, ",\"after_fail\":[%lld,%lld]",
	         (long long)a, (long long)a);
	c = submitted_id(submit_with(extra));
	assert_int_equal(queue_job_get(b, &j), 0);
	assert_int_equal(j.state, JOB_BLOCKED);
	assert_int_equal(j.deps_pending, 1);
	job_clear(&j);
	assert_int_equal(queue_job_get(c, &j), 0);
	assert_int_equal(j.deps_pending, 1); /* listed twice, counted once */
	job_clear(&j);
	assert_error(submit_with(",\"after_any\":[99999]"), "not_found",
	             "99999");

	/* a cancelled: b can never start, c can. */
	json_decref(assert_ok(callf(
	    me(), "{\"v\":1,\"op\":\"cancel\",\"ids\":[%lld]}", (long long)a)));
	assert_int_equal(queue_job_get(b, &j), 0);
	assert_int_equal(j.state, JOB_CANCELLED);
	snprintf(extra, sizeof extra, "dependency %lld cancelled",
	         (long long)a);
	assert_string_equal(j.reason, extra);
	job_clear(&j);
	assert_int_equal(fixture_job_state(c), JOB_QUEUED);

	/* A dependency that has ended: met at once, or refused. */
	snprintf(extra, sizeof extra, ",\"after\":[%lld]", (long long)a);
	assert_error(submit_with(extra), "invalid_state", "never");
	snprintf(extra, sizeof extra, ",\"after_any\":[%lld],\"after\":[%lld]",
	         (long long)a, (long long)c);
	d = submitted_id(submit_with(extra));
	assert_int_equal(queue_job_get(d, &j), 0);
	assert_int_equal(j.state, JOB_BLOCKED);
	assert_int_equal(j.deps_pending, 1);
	job_clear(&j);

	/* An array's id: every task is a dependency. */
	reply = assert_ok(submit_with(",\"array_start\":1,\"array_end\":3"));
	aid = json_integer_value(
	    json_object_get(json_object_get(reply, "array"), "id"));
	json_decref(reply);
	snprintf(extra, sizeof extra, ",\"after\":[%lld]", (long long)aid);
	d = submitted_id(submit_with(extra));
	assert_int_equal(queue_job_get(d, &j), 0);
	assert_int_equal(j.deps_pending, 3);
	job_clear(&j);

	/* A purged dependency is named as such. */
	json_decref(assert_ok(
	    call(me(), "{\"v\":1,\"op\":\"purge\",\"state\":\"cancelled\"}")));
	assert_int_equal(fixture_job_state(a), -1);
	snprintf(extra, sizeof extra, ",\"after_any\":[%lld]", (long long)a);
	assert_error(submit_with(extra), "not_found", "purged");
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_every_op_has_handler),
		T(test_ping_version),
		T(test_bad_requests),
		T(test_stopping),
		T(test_other_uid_on_user_jobd),
		T(test_submit_bad),
		T(test_submit_ok),
		T(test_submit_key),
		T(test_status),
		T(test_status_other_user),
		T(test_list),
		T(test_list_limit_counts_own_jobs),
		T(test_cancel),
		T(test_wait_and_logs),
		T(test_job_json_full),
		T(test_job_json_nulls),
		T(test_job_json_reason_not_utf8),
		T(test_submit_sched_fields),
		T(test_submit_array),
		T(test_submit_deps),
	};
#undef T

	return (cmocka_run_group_tests(tests, group_setup, group_teardown));
}
