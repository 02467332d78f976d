/*
 * The wall clock jumps while jobd runs (issue 4): retry delays and timeouts
 * are durations and do not move with it; a start time (--in, --at) is a
 * wall-clock time, and a forward jump reaches it within jobd's re-read
 * interval (10 s). The machine's clock is left alone: jobd alone runs under
 * libfaketime (LD_PRELOAD), whose offset the test rewrites in a file, with
 * CLOCK_MONOTONIC left real. The supervisor is exec'd with an empty
 * environment, so neither it nor the jobs see the fake clock; the jobs'
 * "date" stamps and this program's monotonic clock are real time.
 *
 * libfaketime is the Debian package libfaketime; without it the tests skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define CLOCK_HOUR_MS  (3600 * INT64_C(1000))
#define CLOCK_DELAY    "5s" /* the retry delay: room to jump inside it */
#define CLOCK_DELAY_MS 5000
#define CLOCK_LATE_MS  15000 /* any due start this late is a failure */
#define CLOCK_POLL_MS  20

/* Where Debian (and a local build) put the library; JOBD_FAKETIME first. */
static const char *const clock_libs[] = {
	"/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
	"/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
	"/usr/lib/faketime/libfaketime.so.1",
	"/usr/local/lib/faketime/libfaketime.so.1",
};

/* The variables set around harness_start only: jobd alone is faked. */
static const char *const clock_vars[] = {
	"LD_PRELOAD",
	"FAKETIME_TIMESTAMP_FILE",
	"FAKETIME_NO_CACHE",
	"FAKETIME_DONT_FAKE_MONOTONIC",
};

struct clock_fix {
	struct jobd_inst inst;
	char rc[PATH_MAX]; /* the offset file libfaketime reads on each call */
	char *asan;        /* our ASAN_OPTIONS, restored after the start */
	int had_asan;
	pid_t pid; /* jobd's, for its libfaketime shared memory */
	int started;
};

static struct clock_fix fixture;

static const char *
clock_lib(void)
{
	const char *env = getenv("JOBD_FAKETIME");

	if (env != NULL && access(env, R_OK) == 0) {
		return (env);
	}
	for (size_t i = 0; i < sizeof clock_libs / sizeof clock_libs[0]; i++) {
		if (access(clock_libs[i], R_OK) == 0) {
			return (clock_libs[i]);
		}
	}
	return (NULL);
}

/* jobd's offset from real time becomes off ("+0", "-3600", "+3600"). */
static void
clock_set(struct clock_fix *c, const char *off)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	/* Renamed in place: libfaketime never reads half a file. */
	snprintf(tmp, sizeof tmp, "%s.tmp", c->rc);
	if ((f = fopen(tmp, "we")) == NULL || fprintf(f, "%s\n", off) < 0 ||
	    fclose(f) != 0 || rename(tmp, c->rc) != 0) {
		fail_msg("cannot write %s", c->rc);
	}
}

/* Our environment as it was before clock_setup (it may have failed). */
static void
clock_env_restore(struct clock_fix *c)
{
	for (size_t i = 0; i < sizeof clock_vars / sizeof clock_vars[0]; i++) {
		unsetenv(clock_vars[i]);
	}
	if (c->had_asan) {
		setenv("ASAN_OPTIONS", c->asan, 1);
	} else {
		unsetenv("ASAN_OPTIONS");
	}
	free(c->asan);
	c->asan = NULL;
	c->had_asan = 0;
}

/*
 * jobd under libfaketime, at offset +0. The harness passes our environment
 * to jobd, so the variables are set for harness_start only; jobctl and the
 * jobs never see them. Under ASan the preload comes before the ASan
 * runtime, which ASan accepts only when told not to check.
 */
static int
clock_setup(void **state)
{
	struct clock_fix *c = &fixture;
	const char *lib = clock_lib(), *asan = getenv("ASAN_OPTIONS");
	char *opts;
	int fd;

	memset(c, 0, sizeof *c);
	*state = c;
	if (lib == NULL) {
		return (0); /* each test skips */
	}
	snprintf(c->rc, sizeof c->rc, "/tmp/jobd-clock.XXXXXX");
	if ((fd = mkstemp(c->rc)) < 0) {
		fail_msg("mkstemp %s", c->rc);
	}
	close(fd);
	clock_set(c, "+0");

	c->had_asan = asan != NULL;
	c->asan = strdup(asan != NULL ? asan : "");
	assert_non_null(c->asan);
	assert_true(asprintf(&opts, "%s%sverify_asan_link_order=0", c->asan,
	                     *c->asan != '\0' ? ":" : "") > 0);
	setenv("ASAN_OPTIONS", opts, 1);
	free(opts);
	setenv("LD_PRELOAD", lib, 1);
	setenv("FAKETIME_TIMESTAMP_FILE", c->rc, 1);
	setenv("FAKETIME_NO_CACHE", "1", 1);
	setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
	harness_start(&c->inst, NULL);
	clock_env_restore(c);
	c->pid = c->inst.pid;
	c->started = 1;
	return (0);
}

/* Skip the test if clock_setup found no libfaketime. */
static struct clock_fix *
clock_need(void **state)
{
	struct clock_fix *c = *state;

	if (!c->started) {
		harness_msg("libfaketime is not installed (Debian: apt-get "
		            "install libfaketime; or set JOBD_FAKETIME=PATH): "
		            "skipped\n");
		skip();
	}
	return (c);
}

/*
 * Stop jobd, remove the offset file and the shared memory libfaketime
 * leaves behind a process that exec'd (setpriv execs jobd in place).
 */
static int
clock_teardown(void **state)
{
	struct clock_fix *c = *state;
	char path[64];
	int rv = 0;

	clock_env_restore(c);
	if (c->started) {
		rv = harness_stop(&c->inst);
	}
	if (c->rc[0] != '\0') {
		unlink(c->rc);
	}
	if (c->pid > 0) {
		snprintf(path, sizeof path, "/dev/shm/faketime_shm_%ld",
		         (long)c->pid);
		unlink(path);
		snprintf(path, sizeof path, "/dev/shm/sem.faketime_sem_%ld",
		         (long)c->pid);
		unlink(path);
	}
	return (rv);
}

/*
 * jobd's wall clock minus real time, in ms: the submit time jobd gives a
 * probe job (scheduled a day ahead, then cancelled).
 */
static int64_t
clock_offset_ms(struct jobd_inst *inst)
{
	char idbuf[32];
	int64_t before = harness_wall_ms(), after, at;
	json_t *job;
	char *out;

	job = harness_jobctl_json(inst, "submit", "--in", "1d", "--", "true",
	                          NULL);
	after = harness_wall_ms();
	at = harness_time_ms(job, "submitted_at");
	HARNESS_ID(idbuf, json_integer_value(json_object_get(job, "id")));
	json_decref(job);
	out = harness_jobctl_ok(inst, "cancel", idbuf, NULL);
	free(out);
	/* Somewhere between before and after, plus the offset. */
	return (at - (before + after) / 2);
}

/* jobd's clock is off by about want_ms: the jump really happened. */
static void
clock_assert_offset(struct jobd_inst *inst, int64_t want_ms)
{
	int64_t off = clock_offset_ms(inst);

	if (off < want_ms - 60000 || off > want_ms + 60000) {
		fail_msg("jobd's clock is %lld ms off real time, not about "
		         "%lld: is libfaketime working?",
		         (long long)off, (long long)want_ms);
	}
}

/* Poll job id's status until its state is want (bounded): the job object. */
static json_t *
clock_await_state(struct jobd_inst *inst, int64_t id, const char *want,
                  int timeout_ms)
{
	const struct timespec pause = { 0, CLOCK_POLL_MS * 1000000L };
	int64_t deadline = harness_now_ms() + timeout_ms;
	const char *s;
	json_t *job;

	for (;;) {
		job = harness_status(inst, id);
		s = json_string_value(json_object_get(job, "state"));
		if (s != NULL && strcmp(s, want) == 0) {
			return (job);
		}
		if (harness_now_ms() > deadline) {
			char *text = json_dumps(job, JSON_INDENT(2));

			harness_msg("job %lld not %s within %d ms:\n%s\n",
			            (long long)id, want, timeout_ms, text);
			free(text);
			json_decref(job);
			fail();
		}
		json_decref(job);
		nanosleep(&pause, NULL);
	}
}

/* The real wall-clock ms a job's "date +%s%N" wrote into DIR/name. */
static int64_t
clock_stamp_ms(struct jobd_inst *inst, const char *name)
{
	char path[PATH_MAX], *text;
	long long ns;

	snprintf(path, sizeof path, "%s/%s", inst->dir, name);
	assert_int_equal(harness_await_file(path, HARNESS_EVENT_MS), 0);
	text = harness_read_file(path, NULL);
	assert_non_null(text);
	if (sscanf(text, "%lld", &ns) != 1) {
		fail_msg("%s holds '%s'", path, text);
	}
	free(text);
	return (ns / 1000000);
}

/*
 * What jobctl shows of job id is sane: status works and shows state, no
 * negative number (a duration gone wrong), and list shows the job too.
 */
static void
clock_assert_shown(struct jobd_inst *inst, int64_t id, const char *state)
{
	char idbuf[32], *out;

	out = harness_jobctl_ok(inst, "status", HARNESS_ID(idbuf, id), NULL);
	if (strstr(out, state) == NULL) {
		fail_msg("status of job %s does not show '%s':\n%s", idbuf,
		         state, out);
	}
	for (const char *p = out; (p = strstr(p, " -")) != NULL; p++) {
		if (p[2] >= '0' && p[2] <= '9') {
			fail_msg(
			    "status of job %s shows a negative number:\n%s",
			    idbuf, out);
		}
	}
	free(out);
	out = harness_jobctl_ok(inst, "list", NULL);
	if (strstr(out, state) == NULL) {
		fail_msg("list does not show a job '%s':\n%s", state, out);
	}
	free(out);
}

/*
 * Submit a job whose first attempt fails (exit 3) at once and whose second
 * succeeds, each stamping the real time (end1, start2), with one retry
 * after CLOCK_DELAY; jump jobd's clock by off (off_ms) once the retry is
 * scheduled. The retry must start after its delay in real time (between
 * the stamps), whatever the jump.
 */
static void
clock_retry_across(struct clock_fix *c, const char *off, int64_t off_ms)
{
	struct jobd_inst *inst = &c->inst;
	char *cmd;
	int64_t id, t0, gap;
	json_t *job, *a;

	assert_true(asprintf(&cmd,
	                     "cd '%s' || exit 99; "
	                     "if [ \"$JOBD_ATTEMPT\" = 1 ]; then "
	                     "date +%%s%%N > end1.tmp; mv end1.tmp end1; "
	                     "exit 3; fi; "
	                     "date +%%s%%N > start2.tmp; mv start2.tmp start2",
	                     inst->dir) > 0);
	id = harness_submit(inst, "--retries", "1", "--retry-delay",
	                    CLOCK_DELAY, "-c", cmd, NULL);
	free(cmd);

	json_decref(clock_await_state(inst, id, "scheduled", HARNESS_EVENT_MS));
	clock_set(c, off);
	t0 = harness_now_ms();
	job = harness_status(inst, id);
	if (strcmp(json_string_value(json_object_get(job, "state")),
	           "scheduled") != 0) {
		fail_msg("the retry ran before the clock jumped: this machine "
		         "is too slow for a %s delay",
		         CLOCK_DELAY);
	}
	json_decref(job);
	/* The probe's submit also makes jobd look at its start times. */
	clock_assert_offset(inst, off_ms);

	assert_int_equal(harness_wait_within(inst, &id, 1, 20), 0);
	if (harness_now_ms() - t0 > CLOCK_DELAY_MS * 5 / 4 + CLOCK_LATE_MS) {
		fail_msg("the retry came %lld ms after the jump",
		         (long long)(harness_now_ms() - t0));
	}
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "succeeded");
	harness_assert_int(job, "attempt", 2);
	a = json_array_get(json_object_get(job, "attempts"), 0);
	harness_assert_str(a, "state", "failed");
	harness_assert_int(a, "exit_code", 3);
	json_decref(job);
	clock_assert_shown(inst, id, "succeeded");

	gap = clock_stamp_ms(inst, "start2") - clock_stamp_ms(inst, "end1");
	/* jobd saw the end after the stamp; the delay may grow a quarter. */
	if (gap < CLOCK_DELAY_MS - 20 ||
	    gap > CLOCK_DELAY_MS * 5 / 4 + CLOCK_LATE_MS) {
		fail_msg("the retry started %lld ms (real) after the first "
		         "attempt ended, not about %d ms",
		         (long long)gap, CLOCK_DELAY_MS);
	}
}

/*
 * The clock jumps back an hour while a retry waits out its delay: the retry
 * comes after the delay in real time, not an hour later.
 */
static void
test_retry_clock_back(void **state)
{
	clock_retry_across(clock_need(state), "-3600", -CLOCK_HOUR_MS);
}

/*
 * The clock jumps forward an hour while a retry waits: the retry still
 * waits its whole delay (a duration), not starting at once.
 */
static void
test_retry_clock_forward(void **state)
{
	clock_retry_across(clock_need(state), "+3600", CLOCK_HOUR_MS);
}

/*
 * A job scheduled 30 minutes ahead (by jobctl's clock, which is real), then
 * jobd's clock jumps an hour forward: the start time has passed, and the
 * job starts within jobd's re-read interval, not when the 30 minutes pass
 * in real time.
 */
static void
test_at_clock_forward(void **state)
{
	struct clock_fix *c = clock_need(state);
	struct jobd_inst *inst = &c->inst;
	int64_t id, wall0, took;
	json_t *job;
	char *cmd;

	assert_true(asprintf(&cmd,
	                     "date +%%s%%N > '%s/start.tmp'; "
	                     "mv '%s/start.tmp' '%s/start'",
	                     inst->dir, inst->dir, inst->dir) > 0);
	job =
	    harness_jobctl_json(inst, "submit", "--in", "30m", "-c", cmd, NULL);
	free(cmd);
	harness_assert_str(job, "state", "scheduled");
	id = json_integer_value(json_object_get(job, "id"));
	json_decref(job);

	/* Nothing else happens in jobd now: no submit, no status. */
	clock_set(c, "+3600");
	wall0 = harness_wall_ms();
	assert_int_equal(harness_wait_within(inst, &id, 1, 30), 0);
	took = clock_stamp_ms(inst, "start") - wall0;
	if (took > CLOCK_LATE_MS) {
		fail_msg("the job started %lld ms after the jump",
		         (long long)took);
	}
	/* After the wait: a probe submit would have woken jobd's timer. */
	clock_assert_offset(inst, CLOCK_HOUR_MS);
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "succeeded");
	harness_assert_time(job, "run_at");
	json_decref(job);
	clock_assert_shown(inst, id, "succeeded");
}

/*
 * A job with --timeout 2s that would run 100 s: the clock jumps back, then
 * (another job) forward while it runs. Each ends failed, reason timeout,
 * after about 2 s of real time.
 */
static void
test_timeout_clock_jumps(void **state)
{
	static const char *const timeout[] = { "--timeout", "2s", NULL };
	static const char *const offs[] = { "-3600", "+3600" };
	struct clock_fix *c = clock_need(state);
	struct jobd_inst *inst = &c->inst;
	int64_t id, t0, took;
	json_t *job;

	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
		clock_set(c, "+0");
		t0 = harness_now_ms();
		id = harness_submit_running_argv(inst, "sleep 100", timeout);
		clock_set(c, offs[i]);
		/* 128 + SIGTERM: the timeout's TERM ended it. */
		assert_int_equal(harness_wait_within(inst, &id, 1, 30), 143);
		took = harness_now_ms() - t0;
		if (took < 2000 || took > CLOCK_LATE_MS) {
			fail_msg("clock %s: a 2 s timeout took %lld ms",
			         offs[i], (long long)took);
		}
		job = harness_status(inst, id);
		harness_assert_str(job, "state", "failed");
		harness_assert_str(job, "reason", "timeout");
		harness_assert_int(job, "signal", 15);
		json_decref(job);
		clock_assert_shown(inst, id, "failed");
	}
	clock_assert_offset(inst, CLOCK_HOUR_MS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, clock_setup, clock_teardown)
		T(test_retry_clock_back),
		T(test_retry_clock_forward),
		T(test_at_clock_forward),
		T(test_timeout_clock_jumps),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
