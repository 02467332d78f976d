/*
 * Bad scheduling input (issue 3, "Bad input"): jobctl refuses it with a
 * usage error (exit 2) before sending anything, or with exit 1 when only
 * jobd can know (an unknown, purged or ended dependency, holding a finished
 * job); sent raw, jobd answers bad_request, not_found or invalid_state.
 * After every case the job list and the queue list are unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>

#include "harness.h"

static struct {
	struct jobd_inst inst;
	int64_t purged, failed, succeeded;
	char p[24], f[24], s[24]; /* the same ids as text */
	json_t *jobs, *queues;    /* as they were after setup */
} fx;

#define CWD_TRUE "\"cwd\":\"/\",\"argv\":[\"true\"]"

/*
 * reply[key] of a raw request that must succeed (caller decrefs). Raw, not
 * through jobctl: these checks run after every case, and a jobctl process
 * is slow to start under the sanitizers.
 */
static json_t *
raw_get(const char *req, const char *key)
{
	json_t *reply, *v;

	assert_int_equal(harness_raw(&fx.inst, req, strlen(req), 5000, &reply),
	                 0);
	if (!json_is_true(json_object_get(reply, "ok")) ||
	    (v = json_object_get(reply, key)) == NULL) {
		char *dump = json_dumps(reply, 0);

		harness_msg("%s: %s\n", req, dump);
		free(dump);
		json_decref(reply);
		fail();
	}
	json_incref(v);
	json_decref(reply);
	return (v);
}

static json_t *
list_jobs(void)
{
	return (raw_get("{\"v\":1,\"op\":\"list\",\"limit\":10000}", "jobs"));
}

static json_t *
list_queues(void)
{
	return (raw_get("{\"v\":1,\"op\":\"queue\",\"action\":\"list\"}",
	                "queues"));
}

/* One purged, one failed and one succeeded job, and a queue. */
static int
setup(void **state)
{
	struct jobd_inst *inst = &fx.inst;
	json_t *reply;

	harness_start(inst, "--parallel", "4", NULL);
	*state = inst;
	fx.purged = harness_submit(inst, "--", "true", NULL);
	assert_int_equal(harness_wait(inst, fx.purged), 0);
	reply =
	    harness_jobctl_json(inst, "purge", "--state", "succeeded", NULL);
	harness_assert_int(reply, "purged", 1);
	json_decref(reply);
	fx.failed = harness_submit(inst, "-c", "exit 1", NULL);
	fx.succeeded = harness_submit(inst, "--", "true", NULL);
	assert_int_equal(harness_wait(inst, fx.failed), 1);
	assert_int_equal(harness_wait(inst, fx.succeeded), 0);
	free(harness_jobctl_ok(inst, "queue", "set", "q", "--parallel", "2",
	                       NULL));
	HARNESS_ID(fx.p, fx.purged);
	HARNESS_ID(fx.f, fx.failed);
	HARNESS_ID(fx.s, fx.succeeded);
	fx.jobs = list_jobs();
	fx.queues = list_queues();
	assert_int_equal(json_array_size(fx.jobs), 2);
	return (0);
}

static int
teardown(void **state)
{
	json_decref(fx.jobs);
	json_decref(fx.queues);
	fx.jobs = fx.queues = NULL;
	return (harness_teardown(state));
}

/* Nothing was created or changed: no job, no queue, jobd answers. */
static void
assert_unchanged(const char *what)
{
	json_t *jobs = list_jobs(), *queues = list_queues();
	int same = json_equal(jobs, fx.jobs) && json_equal(queues, fx.queues);

	if (!same) {
		char *a = json_dumps(jobs, 0), *b = json_dumps(queues, 0);

		harness_msg("after %s:\njobs %s\nqueues %s\n", what, a, b);
		free(a);
		free(b);
	}
	json_decref(jobs);
	json_decref(queues);
	if (!same) {
		fail_msg("%s changed the jobs or the queues", what);
	}
}

/*
 * jobctl ARGS... (NULL-terminated) exits with code and a message, and
 * changes nothing. Returns the message (caller frees).
 */
static char *refused(int, ...) __attribute__((sentinel));

static char *
refused(int code, ...)
{
	va_list ap;
	const char *args[24];
	char what[512];
	size_t n = 0, len = 0;
	char *err;

	va_start(ap, code);
	while ((args[n] = va_arg(ap, const char *)) != NULL) {
		len += (size_t)snprintf(what + len, sizeof what - len, "%s'%s'",
		                        n == 0 ? "jobctl " : " ", args[n]);
		assert_true(++n < 24 && len < sizeof what);
	}
	va_end(ap);
	err = harness_jobctl_refused_argv(&fx.inst, code, args);
	assert_unchanged(what);
	return (err);
}

#define REFUSED(code, ...) free(refused((code), __VA_ARGS__, NULL))

/* A raw request gets error code, and changes nothing. */
static void
raw(const char *req, const char *code)
{
	harness_raw_error(&fx.inst, req, code);
	assert_unchanged(req);
}

/* A raw request's error message (caller frees); it must be code. */
static char *
raw_message(const char *req, const char *code)
{
	json_t *reply;
	char *msg;

	assert_int_equal(harness_raw(&fx.inst, req, strlen(req), 5000, &reply),
	                 0);
	harness_assert_str(reply, "error", code);
	msg = strdup(json_string_value(json_object_get(reply, "message")));
	json_decref(reply);
	assert_non_null(msg);
	assert_unchanged(req);
	return (msg);
}

static void
test_bad_dependencies(void **state)
{
	char req[256], *msg;

	(void)state;
	/* Only jobd knows: exit 1, nothing submitted. */
	msg = refused(1, "submit", "--after", "999999", "--", "true", NULL);
	assert_non_null(strstr(msg, "999999"));
	free(msg);
	REFUSED(1, "submit", "--after-any", "999999", "--", "true");
	REFUSED(1, "submit", "--after-fail", "999999", "--", "true");
	msg = refused(1, "submit", "--after", fx.p, "--", "true", NULL);
	assert_non_null(strstr(msg, "purged"));
	free(msg);
	/* Ended so that it can never be satisfied. */
	REFUSED(1, "submit", "--after", fx.f, "--", "true");
	REFUSED(1, "submit", "--after-fail", fx.s, "--", "true");
	/* Good and bad ids together: nothing. */
	REFUSED(1, "submit", "--after", fx.s, "--after-any", "999999", "--",
	        "true");
	/* Not ids at all: usage. */
	REFUSED(2, "submit", "--after", "abc", "--", "true");
	REFUSED(2, "submit", "--after", "", "--", "true");
	REFUSED(2, "submit", "--after", "1,,2", "--", "true");
	REFUSED(2, "submit", "--after", "0", "--", "true");
	REFUSED(2, "submit", "--after", "-3", "--", "true");
	REFUSED(2, "submit", "--after-any", "1x", "--", "true");

	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"after\":[999999]}",
	    "not_found");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"after_any\":[999999]}",
	    "not_found");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"after_fail\":[999999]}",
	    "not_found");
	snprintf(req, sizeof req,
	         "{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"after\":[%s]}",
	         fx.p);
	msg = raw_message(req, "not_found");
	if (strstr(msg, "purged") == NULL || strstr(msg, fx.p) == NULL) {
		fail_msg("a purged dependency: message '%s'", msg);
	}
	free(msg);
	snprintf(req, sizeof req,
	         "{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"after\":[%s]}",
	         fx.f);
	raw(req, "invalid_state");
	snprintf(req, sizeof req,
	         "{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"after_fail\":[%s]}",
	         fx.s);
	raw(req, "invalid_state");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"after\":[]}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"after\":[\"1\"]}",
	    "bad_request");
}

static void
test_bad_times(void **state)
{
	char past[40], req[256];

	(void)state;
	REFUSED(2, "submit", "--in", "soon", "--", "true");
	REFUSED(2, "submit", "--in", "5x", "--", "true");
	REFUSED(2, "submit", "--in", "-1s", "--", "true");
	REFUSED(2, "submit", "--in", "", "--", "true");
	REFUSED(2, "submit", "--at", "tomorrow", "--", "true");
	REFUSED(2, "submit", "--at", "25:00", "--", "true");
	REFUSED(2, "submit", "--at", "12:60", "--", "true");
	REFUSED(2, "submit", "--at", "2026-13-01T00:00:00Z", "--", "true");
	REFUSED(2, "submit", "--at", "", "--", "true");
	/* In the past, where the future is required. */
	harness_format_time(harness_wall_ms() - 3600 * 1000, past, sizeof past);
	REFUSED(2, "submit", "--at", past, "--", "true");
	REFUSED(2, "submit", "--at", "2001-01-01T00:00:00Z", "--", "true");
	/* One start time only. */
	REFUSED(2, "submit", "--at", "12:00", "--in", "1s", "--", "true");
	REFUSED(2, "submit", "--timeout", "abc", "--", "true");
	REFUSED(2, "submit", "--timeout", "0", "--", "true");
	REFUSED(2, "submit", "--kill-after", "xyz", "--", "true");
	REFUSED(2, "submit", "--kill-after", "2d", "--", "true");
	REFUSED(2, "submit", "--retry-delay", "1y", "--", "true");
	REFUSED(2, "list", "--since", "garbage");
	REFUSED(2, "purge", "--older-than", "abc");

	snprintf(req, sizeof req,
	         "{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"run_at\":%lld}",
	         (long long)(harness_wall_ms() - 3600 * 1000));
	raw(req, "bad_request");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"run_at\":-1}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"timeout_ms\":0}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE
	    ",\"kill_after_ms\":86400001}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"retry_delay_ms\":-1}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"list\",\"since\":\"yesterday\"}", "bad_request");
}

static void
test_bad_retries(void **state)
{
	(void)state;
	REFUSED(2, "submit", "--retries", "-1", "--", "true");
	REFUSED(2, "submit", "--retries", "x", "--", "true");
	REFUSED(2, "submit", "--retries", "1001", "--", "true");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"retries\":-1}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"retries\":1001}",
	    "bad_request");
}

static void
test_bad_arrays(void **state)
{
	(void)state;
	REFUSED(2, "submit", "--array", "5-4", "--", "true");
	REFUSED(2, "submit", "--array", "1-1001", "--", "true");
	REFUSED(2, "submit", "--array", "0-1000", "--", "true");
	REFUSED(2, "submit", "--array", "", "--", "true");
	REFUSED(2, "submit", "--array", "1-", "--", "true");
	REFUSED(2, "submit", "--array", "-5", "--", "true");
	REFUSED(2, "submit", "--array", "a-b", "--", "true");
	REFUSED(2, "submit", "--array", "1-1000001", "--", "true");
	REFUSED(2, "submit", "--array", "1-5%0", "--", "true");
	REFUSED(2, "submit", "--array", "1-5%", "--", "true");
	REFUSED(2, "submit", "--array", "1-5%-1", "--", "true");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE
	    ",\"array_start\":5,\"array_end\":4}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE
	    ",\"array_start\":1,\"array_end\":1001}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"array_start\":1}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"array_end\":3}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE
	    ",\"array_start\":1,\"array_end\":5,\"array_limit\":0}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"submit\"," CWD_TRUE ",\"array_limit\":2}",
	    "bad_request");
}

static void
test_bad_queue_names(void **state)
{
	static const char long_name[] =
	    "q1234567890123456789012345678901234567890123456789012345678901234";
	static const char *const bad[] = { "",   "a b",  "x/y",     "-x",
		                           ".x", "a\tb", long_name, NULL };
	char req[256];

	(void)state;
	assert_int_equal(strlen(long_name), 65);
	for (int i = 0; bad[i] != NULL; i++) {
		REFUSED(2, "submit", "-q", bad[i], "--", "true");
		REFUSED(2, "queue", "set", bad[i], "--parallel", "2");
		REFUSED(2, "queue", "pause", bad[i]);
		REFUSED(2, "queue", "resume", bad[i]);
		snprintf(req, sizeof req,
		         "{\"v\":1,\"op\":\"submit\"," CWD_TRUE
		         ",\"queue\":\"%s\"}",
		         strcmp(bad[i], "a\tb") == 0 ? "a\\tb" : bad[i]);
		raw(req, "bad_request");
		snprintf(req, sizeof req,
		         "{\"v\":1,\"op\":\"queue\",\"action\":\"pause\","
		         "\"name\":\"%s\"}",
		         strcmp(bad[i], "a\tb") == 0 ? "a\\tb" : bad[i]);
		raw(req, "bad_request");
	}
	raw("{\"v\":1,\"op\":\"queue\",\"action\":\"set\",\"name\":\"a b\","
	    "\"parallel\":1}",
	    "bad_request");
}

static void
test_bad_queue_parallel(void **state)
{
	(void)state;
	REFUSED(2, "queue", "set", "q", "--parallel", "0");
	REFUSED(2, "queue", "set", "q", "--parallel", "-1");
	REFUSED(2, "queue", "set", "new", "--parallel", "0");
	REFUSED(2, "queue", "set", "new", "--parallel", "x");
	REFUSED(2, "queue", "set", "new", "--parallel", "100001");
	REFUSED(2, "queue", "set", "new");
	REFUSED(2, "queue", "frob", "new");
	raw("{\"v\":1,\"op\":\"queue\",\"action\":\"set\",\"name\":\"q\","
	    "\"parallel\":0}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"queue\",\"action\":\"set\",\"name\":\"new\","
	    "\"parallel\":-1}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"queue\",\"action\":\"set\",\"name\":\"new\","
	    "\"parallel\":100001}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"queue\",\"action\":\"set\",\"name\":\"new\"}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"queue\",\"action\":\"frob\",\"name\":\"new\"}",
	    "bad_request");
	raw("{\"v\":1,\"op\":\"queue\",\"action\":\"pause\"}", "bad_request");
}

static void
test_hold_finished(void **state)
{
	char req[128];

	(void)state;
	REFUSED(1, "hold", fx.f);
	REFUSED(1, "hold", fx.s);
	REFUSED(1, "hold", "999999");
	REFUSED(1, "hold", fx.p);
	REFUSED(2, "hold", "abc");
	snprintf(req, sizeof req, "{\"v\":1,\"op\":\"hold\",\"ids\":[%s]}",
	         fx.s);
	raw(req, "invalid_state");
	raw("{\"v\":1,\"op\":\"hold\",\"ids\":[999999]}", "not_found");
}

/* set, retry and purge with bad arguments. */
static void
test_bad_other(void **state)
{
	char *msg;

	(void)state;
	REFUSED(2, "set", fx.f);
	REFUSED(2, "set", fx.f, "--priority", "high");
	REFUSED(2, "set", fx.f, "--priority", "1000001");
	REFUSED(2, "set", "--priority", "1");
	REFUSED(1, "set", fx.f, "--priority", "1");
	REFUSED(2, "retry");
	REFUSED(1, "retry", "999999");
	REFUSED(2, "purge", "--state", "bogus");
	raw("{\"v\":1,\"op\":\"set\",\"ids\":[1]}", "bad_request");
	raw("{\"v\":1,\"op\":\"purge\",\"state\":\"queued\"}", "bad_request");
	/* A value given twice: refused rather than one of them dropped. */
	msg = refused(2, "submit", "-c", "true", "-c", "false", NULL);
	assert_non_null(strstr(msg, "given twice"));
	free(msg);
	REFUSED(2, "submit", "--retries", "1", "--retries", "2", "--", "true");
	/* Two types for one dependency: which one? */
	REFUSED(1, "submit", "--after", fx.s, "--after-any", fx.s, "--",
	        "true");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_bad_dependencies), T(test_bad_times),
		T(test_bad_retries),      T(test_bad_arrays),
		T(test_bad_queue_names),  T(test_bad_queue_parallel),
		T(test_hold_finished),    T(test_bad_other),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
