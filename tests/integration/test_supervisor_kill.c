/*
 * A job's supervisor is killed with SIGKILL while the job runs (issue 4).
 * The attempt ends lost, with a reason that names the supervisor; jobd
 * kills what is left of the job (its process group: the leader and a
 * background child here), runs on, and retries the job if it asked for that
 * on a lost attempt. The same when the supervisor was adopted by a jobd
 * restarted after a SIGKILL, and when it dies while jobd is down.
 *
 * The job writes its leader's and its background child's pids into the
 * test's folder; the harness tracks both, so they are killed by pid when
 * the test ends, whatever happened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "util.h"

#define SK_GONE_MS 10000 /* the job's processes must be dead by then */

/* The processes of one running attempt. */
struct sk_job {
	int64_t id;
	pid_t sup, leader, bg;
	int leader_fd, bg_fd; /* pidfds, from harness_track */
};

/* The pid a job wrote into DIR/name (atomically, by mv). */
static pid_t
sk_pid_file(struct jobd_inst *inst, const char *name)
{
	char path[PATH_MAX], *text;
	long long pid;

	snprintf(path, sizeof path, "%s/%s", inst->dir, name);
	if (harness_await_file(path, HARNESS_EVENT_MS) != 0) {
		fail_msg("the job did not write %s", path);
	}
	text = harness_read_file(path, NULL);
	assert_non_null(text);
	/* "PID START" (or a bare pid): the pid is the first word. */
	text[strcspn(text, " \n")] = '\0';
	if (util_parse_int(text, 2, INT_MAX, &pid) != 0) {
		fail_msg("%s holds '%s'", path, text);
	}
	free(text);
	return ((pid_t)pid);
}

/* Field 4 (ppid) or the state letter of /proc/PID/stat; -1 if gone. */
static long
sk_stat(pid_t pid, int want_state)
{
	char path[64], buf[512], *end, st;
	FILE *f;
	size_t n;
	int ppid;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "re")) == NULL) {
		return (-1);
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and parens. */
	if ((end = strrchr(buf, ')')) == NULL ||
	    sscanf(end + 1, " %c %d", &st, &ppid) != 2) {
		return (-1);
	}
	return (want_state ? st : ppid);
}

/*
 * The supervisor's pid, from the first line of its run file
 * (STATE/run/ID.run); it must be the leader's parent.
 */
static pid_t
sk_supervisor(struct jobd_inst *inst, int64_t id, pid_t leader)
{
	char path[PATH_MAX + 64], *text;
	long long pid;

	snprintf(path, sizeof path, "%s/run/%lld.run", inst->state,
	         (long long)id);
	text = harness_read_file(path, NULL);
	if (text == NULL) {
		fail_msg("no run file %s", path);
	}
	/* "PID START" (or a bare pid): the pid is the first word. */
	text[strcspn(text, " \n")] = '\0';
	if (util_parse_int(text, 2, INT_MAX, &pid) != 0) {
		fail_msg("%s holds '%s'", path, text);
	}
	free(text);
	if (sk_stat(leader, 0) != pid) {
		fail_msg("job %lld: the run file names pid %lld, but the "
		         "leader's parent is %ld",
		         (long long)id, pid, sk_stat(leader, 0));
	}
	return ((pid_t)pid);
}

/*
 * Submit (with extra submit arguments, NULL-terminated, may be NULL) a job
 * whose first attempt leaves "sleep 1000" in the background and waits for
 * it, and whose later attempts succeed at once; wait until it runs and
 * track its processes.
 */
static void
sk_submit(struct jobd_inst *inst, const char *const *extra, struct sk_job *j)
{
	const char *args[16];
	char *cmd;
	size_t n = 0;

	assert_true(asprintf(&cmd,
	                     "cd '%s' || exit 99; "
	                     "if [ \"$JOBD_ATTEMPT\" != 1 ]; then exit 0; fi; "
	                     "sleep 1000 & echo $! > bg.tmp; mv bg.tmp bg; "
	                     "echo $$ > leader.tmp; mv leader.tmp leader; wait",
	                     inst->dir) > 0);
	while (extra != NULL && extra[n] != NULL) {
		args[n] = extra[n];
		n++;
	}
	args[n++] = "-c";
	args[n++] = cmd;
	args[n] = NULL;
	memset(j, 0, sizeof *j);
	j->id = harness_submit_argv(inst, args);
	free(cmd);
	j->bg = sk_pid_file(inst, "bg");
	j->bg_fd = harness_track(inst, j->bg);
	j->leader = sk_pid_file(inst, "leader");
	j->leader_fd = harness_track(inst, j->leader);
	j->sup = sk_supervisor(inst, j->id, j->leader);
}

/* Both of the attempt's processes end (or are zombies) within SK_GONE_MS. */
static void
sk_assert_killed(struct sk_job *j)
{
	int64_t deadline = harness_now_ms() + SK_GONE_MS;
	const struct {
		const char *what;
		pid_t pid;
		int fd;
	} p[] = { { "leader", j->leader, j->leader_fd },
		  { "background child", j->bg, j->bg_fd } };

	for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
		int64_t left = deadline - harness_now_ms();

		if (harness_await_exit(p[i].fd, left > 0 ? (int)left : 0) !=
		    0) {
			fail_msg("job %lld: its %s (pid %ld, state %c) still "
			         "runs %d ms after its supervisor was killed",
			         (long long)j->id, p[i].what, (long)p[i].pid,
			         (int)sk_stat(p[i].pid, 1), SK_GONE_MS);
		}
	}
}

/* jobd's log says that it killed what job id left running. */
static void
sk_assert_logged(struct jobd_inst *inst, int64_t id)
{
	char tag[32], *log = harness_read_file(inst->log, NULL), *line;

	assert_non_null(log);
	snprintf(tag, sizeof tag, "job %lld:", (long long)id);
	for (line = strtok(log, "\n"); line != NULL;
	     line = strtok(NULL, "\n")) {
		if (strstr(line, tag) != NULL &&
		    strstr(line, "killed") != NULL) {
			free(log);
			return;
		}
	}
	free(log);
	fail_msg("jobd's log (%s) does not say it killed what job %lld "
	         "left running",
	         inst->log, (long long)id);
}

/* attempt (the job object or one of its attempts) was lost by a kill. */
static void
sk_assert_lost(json_t *attempt)
{
	const char *reason;

	harness_assert_str(attempt, "state", "lost");
	harness_assert_null(attempt, "exit_code");
	reason = json_string_value(json_object_get(attempt, "reason"));
	if (reason == NULL || strstr(reason, "supervisor") == NULL) {
		harness_assert_str(attempt, "reason", "(about the supervisor)");
	}
}

/* jobd runs on: a new job runs and succeeds. */
static void
sk_assert_serving(struct jobd_inst *inst)
{
	int64_t id;

	harness_ping(inst);
	id = harness_submit(inst, "--", "true", NULL);
	assert_int_equal(harness_wait(inst, id), 0);
}

/*
 * What must follow the end of j's supervisor, whatever became of the job:
 * its processes are dead, jobd's log says it killed them, and jobd runs on.
 */
static void
sk_assert_aftermath(struct jobd_inst *inst, struct sk_job *j)
{
	sk_assert_killed(j);
	sk_assert_logged(inst, j->id);
	sk_assert_serving(inst);
}

/* The job of j ended lost, and only once (no retry). */
static void
sk_assert_job_lost(struct jobd_inst *inst, struct sk_job *j)
{
	json_t *job;

	/* 1: lost, with neither an exit code nor a signal. */
	assert_int_equal(harness_wait(inst, j->id), 1);
	job = harness_status(inst, j->id);
	sk_assert_lost(job);
	harness_assert_int(job, "attempt", 1);
	json_decref(job);
}

/* The supervisor dies: the job is lost and its processes are killed. */
static void
test_supervisor_killed(void **state)
{
	struct jobd_inst *inst = *state;
	struct sk_job j;

	sk_submit(inst, NULL, &j);
	assert_int_equal(kill(j.sup, SIGKILL), 0);
	sk_assert_job_lost(inst, &j);
	sk_assert_aftermath(inst, &j);
}

/*
 * With --retries 1 --retry-on-lost, the lost attempt is retried: attempt 2
 * runs and succeeds, and attempt 1's processes are dead.
 */
static void
test_supervisor_killed_retried(void **state)
{
	static const char *const on_lost[] = { "--retries",       "1",
		                               "--retry-delay",   "0",
		                               "--retry-on-lost", NULL };
	struct jobd_inst *inst = *state;
	struct sk_job j;
	json_t *job;

	sk_submit(inst, on_lost, &j);
	assert_int_equal(kill(j.sup, SIGKILL), 0);
	assert_int_equal(harness_wait(inst, j.id), 0);
	job = harness_status(inst, j.id);
	harness_assert_str(job, "state", "succeeded");
	harness_assert_int(job, "attempt", 2);
	/* Every ended attempt: the lost one, then the one that succeeded. */
	assert_int_equal(json_array_size(json_object_get(job, "attempts")), 2);
	sk_assert_lost(json_array_get(json_object_get(job, "attempts"), 0));
	json_decref(job);
	sk_assert_aftermath(inst, &j);
}

/*
 * jobd is killed with SIGKILL and restarted: it adopts the running
 * supervisor. That supervisor is then killed: the same outcome.
 */
static void
test_adopted_supervisor_killed(void **state)
{
	struct jobd_inst *inst = *state;
	struct sk_job j;
	json_t *job;

	sk_submit(inst, NULL, &j);
	harness_kill9(inst);
	harness_restart(inst);
	job = harness_status(inst, j.id);
	harness_assert_str(job, "state", "running");
	json_decref(job);
	assert_int_equal(kill(j.sup, SIGKILL), 0);
	sk_assert_job_lost(inst, &j);
	sk_assert_aftermath(inst, &j);
}

/*
 * The supervisor dies while jobd is down: the restarted jobd finds the job
 * lost (no supervisor, no outcome) and kills what is left of it.
 */
static void
test_supervisor_killed_while_down(void **state)
{
	struct jobd_inst *inst = *state;
	struct sk_job j;
	int fd;

	sk_submit(inst, NULL, &j);
	harness_kill9(inst);
	fd = harness_track(inst, j.sup);
	assert_int_equal(kill(j.sup, SIGKILL), 0);
	/* Dead before jobd looks, so it cannot be adopted. */
	assert_int_equal(harness_await_exit(fd, SK_GONE_MS), 0);
	harness_restart(inst);
	sk_assert_job_lost(inst, &j);
	sk_assert_aftermath(inst, &j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, harness_setup, harness_teardown)
		T(test_supervisor_killed),
		T(test_supervisor_killed_retried),
		T(test_adopted_supervisor_killed),
		T(test_supervisor_killed_while_down),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
