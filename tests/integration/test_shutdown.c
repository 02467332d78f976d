/*
 * jobctl shutdown (now, --drain, --stop-jobs; admin only), jobctl backup
 * (a copy sqlite opens, never over an existing file, a relative FILE), and
 * the requests that outlive a jobd restart: a wait or a logs --follow
 * started before jobd went away (SIGKILL, SIGTERM, jobctl shutdown) carries
 * on with the next jobd and ends as if nothing had happened.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "harness.h"
#include "proto.h"

/* The uid and gid a non-admin jobctl runs as (nobody). */
#define OTHER_ID "65534"

/*
 * test_backup_busy: BIG_JOBS jobs of BIG_ARGS arguments of BIG_ARG bytes
 * each (the kernel takes at most 128 KiB per argument, jobd a request of
 * at most 1 MiB) make a database of some 3900 pages, which jobd copies
 * BACKUP_PAGES a loop turn (cmd-backup.c): at least BACKUP_TURNS turns.
 * SUBMITTERS loops of submits run meanwhile: over that many turns, some
 * steps find the turn's transaction open and wait for its commit.
 */
#define BIG_JOBS     20
#define BIG_ARGS     8
#define BIG_ARG      100000
#define BACKUP_PAGES 256
#define BACKUP_TURNS 8
#define SUBMITTERS   3

/*
 * Into cmd: a shell command that runs pre, writes its pid to path (whole:
 * through a rename), then runs rest.
 */
static void
pid_cmd(char *cmd, size_t len, const char *pre, const char *path,
        const char *rest)
{
	int n =
	    snprintf(cmd, len, "%secho $$ > '%s.tmp' && mv '%s.tmp' '%s'; %s",
	             pre, path, path, path, rest);

	assert_true(n > 0 && (size_t)n < len);
}

/* Read the pid a job wrote to path (pid_cmd), waiting for it. */
static pid_t
read_pid(const char *path)
{
	char *text;
	long pid;

	assert_int_equal(harness_await_file(path, HARNESS_EVENT_MS), 0);
	text = harness_read_file(path, NULL);
	assert_non_null(text);
	pid = strtol(text, NULL, 10);
	free(text);
	assert_true(pid > 1);
	return ((pid_t)pid);
}

/* The parent of pid, from /proc/PID/stat. */
static pid_t
parent_of(pid_t pid)
{
	char path[64], buf[512], *end;
	int ppid = -1;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	assert_non_null(f = fopen(path, "r"));
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and parens. */
	assert_non_null(end = strrchr(buf, ')'));
	assert_int_equal(sscanf(end + 1, " %*c %d", &ppid), 1);
	return ((pid_t)ppid);
}

/* Is the process behind pidfd still there (not even a zombie)? */
static int
alive(int pidfd)
{
	return (harness_await_exit(pidfd, 0) != 0);
}

/*
 * Wait for jobd to exit by itself (harness_signal with signal 0 sends
 * nothing, then waits with its bound and kills a jobd that stays); it must
 * exit 0.
 */
static void
await_jobd_exit(struct jobd_inst *inst)
{
	int status = harness_signal(inst, 0);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *log = harness_read_file(inst->log, NULL);

		harness_msg("jobd ended with status 0x%x; its log:\n%s\n",
		            status, log != NULL ? log : "");
		free(log);
		fail();
	}
}

/* The socket inodes among pid's open files, into inodes; returns how many. */
static size_t
socket_inodes(pid_t pid, unsigned long *inodes, size_t max)
{
	char path[64], link[128], target[64];
	struct dirent *de;
	size_t n = 0;
	ssize_t len;
	DIR *d;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL) {
		return (0);
	}
	while ((de = readdir(d)) != NULL && n < max) {
		snprintf(link, sizeof link, "%s/%.16s", path, de->d_name);
		len = readlink(link, target, sizeof target - 1);
		if (len <= 0) {
			continue;
		}
		target[len] = '\0';
		if (sscanf(target, "socket:[%lu]", &inodes[n]) == 1) {
			n++;
		}
	}
	closedir(d);
	return (n);
}

/* Has pid a connected Unix socket (state 03 in /proc/net/unix)? */
static int
connected(pid_t pid)
{
	unsigned long inodes[64], inode;
	size_t n = socket_inodes(pid, inodes, 64);
	char line[512];
	unsigned st;
	int found = 0;
	FILE *f;

	if (n == 0 || (f = fopen("/proc/net/unix", "r")) == NULL) {
		return (0);
	}
	while (!found && fgets(line, sizeof line, f) != NULL) {
		/* Num RefCount Protocol Flags Type St Inode [Path] */
		if (sscanf(line, "%*s %*s %*s %*s %*s %x %lu", &st, &inode) !=
		        2 ||
		    st != 3) {
			continue;
		}
		for (size_t i = 0; i < n && !found; i++) {
			found = inodes[i] == inode;
		}
	}
	fclose(f);
	return (found);
}

/*
 * Wait (bounded) until a started jobctl is connected to jobd, so that jobd
 * goes away under a request in flight rather than before the first one.
 * Nothing signals a connect, so this looks every 10 ms.
 */
static void
await_connected(struct harness_proc *p)
{
	int64_t deadline = harness_now_ms() + HARNESS_EVENT_MS;
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	while (!connected(p->pid)) {
		if (harness_now_ms() >= deadline) {
			fail_msg("'%s' did not connect to jobd within %d ms",
			         p->what, HARNESS_EVENT_MS);
		}
		nanosleep(&tick, NULL);
	}
}

/* Finish a started jobctl: it must exit with code and print no error. */
static void
finish_quietly(struct harness_proc *p, int code)
{
	int got = harness_proc_finish(p, HARNESS_RUN_MS);

	if (got != code || p->err_len != 0) {
		harness_msg(
		    "'%s' exited %d (want %d); stdout:\n%s\nstderr:\n%s\n",
		    p->what, got, code, p->out, p->err);
		harness_proc_free(p);
		fail();
	}
}

/* Open a sqlite database (flags: SQLITE_OPEN_READONLY...) or fail. */
static sqlite3 *
db_open(const char *path, int flags)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		fail_msg("sqlite3_open_v2 %s: %s", path,
		         db != NULL ? sqlite3_errmsg(db) : "no memory");
	}
	return (db);
}

/* The one integer sql (with "?" bound to arg, if arg >= 0) selects. */
static long long
db_int(sqlite3 *db, const char *sql, long long arg)
{
	sqlite3_stmt *st;
	long long v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	}
	if (arg >= 0) {
		sqlite3_bind_int64(st, 1, arg);
	}
	if (sqlite3_step(st) != SQLITE_ROW) {
		fail_msg("%s (%lld): no row: %s", sql, arg, sqlite3_errmsg(db));
	}
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (v);
}

/* PRAGMA integrity_check must say ok. */
static void
db_assert_intact(sqlite3 *db)
{
	sqlite3_stmt *st;

	assert_int_equal(
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

/* A stopped jobd's record of job id: its state's name. */
static const char *
stored_state(struct jobd_inst *inst, int64_t id)
{
	char path[PATH_MAX + 16];
	sqlite3 *db;
	long long st;

	assert_int_equal(inst->pid, 0);
	snprintf(path, sizeof path, "%s/jobd.db", inst->state);
	db = db_open(path, SQLITE_OPEN_READWRITE);
	st = db_int(db, "SELECT state FROM jobs WHERE id = ?", id);
	sqlite3_close(db);
	assert_true(st >= 0 && st < JOB_STATE_MAX);
	return (proto_state_name((int)st));
}

/* Fail unless job id is in state. */
static void
assert_state(struct jobd_inst *inst, int64_t id, const char *state)
{
	char st[32];

	harness_state(inst, id, st, sizeof st);
	if (strcmp(st, state) != 0) {
		fail_msg("job %lld is %s, not %s", (long long)id, st, state);
	}
}

/*
 * shutdown (now): jobd exits at once; the running job and its supervisor go
 * on, a wait on it outlives the restart, and the next jobd records the job's
 * own exit code.
 */
static void
test_shutdown_now(void **state)
{
	struct jobd_inst *inst = *state;
	struct harness_proc waiter;
	char pidfile[PATH_MAX], cmd[4 * PATH_MAX], rest[PATH_MAX + 64];
	char idbuf[24], *out;
	int64_t id;
	pid_t job;
	int jobfd, supfd;
	json_t *j;

	snprintf(pidfile, sizeof pidfile, "%s/job.pid", inst->dir);
	snprintf(rest, sizeof rest, "%s; exit 7", harness_gate_cmd(inst));
	pid_cmd(cmd, sizeof cmd, "", pidfile, rest);
	id = harness_submit_running(inst, cmd);
	job = read_pid(pidfile);
	jobfd = harness_track(inst, job);
	supfd = harness_track(inst, parent_of(job));
	harness_jobctl_start(inst, &waiter, "wait", HARNESS_ID(idbuf, id),
	                     NULL);
	await_connected(&waiter);

	out = harness_jobctl_ok(inst, "shutdown", NULL);
	assert_string_equal(out, "jobd is stopping; 1 running job goes on "
	                         "under its supervisor\n");
	free(out);
	await_jobd_exit(inst);
	assert_true(alive(jobfd));
	assert_true(alive(supfd));
	assert_string_equal(stored_state(inst, id), "running");

	harness_restart(inst);
	assert_state(inst, id, "running");
	harness_gate_release(inst);
	finish_quietly(&waiter, 7);
	harness_proc_free(&waiter);
	j = harness_status(inst, id);
	harness_assert_str(j, "state", "failed");
	harness_assert_int(j, "exit_code", 7);
	json_decref(j);
}

/*
 * shutdown --drain: the running job ends and is recorded before jobd exits;
 * meanwhile no job starts, every request works and submits are taken; the
 * queued jobs run after the restart.
 */
static void
test_shutdown_drain(void **state)
{
	struct jobd_inst *inst = *state;
	char cmd[2 * PATH_MAX], ran_b[PATH_MAX], ran_c[PATH_MAX];
	char *out;
	int64_t a, b, c, ids[2];
	int jobd_fd;
	json_t *j;

	snprintf(cmd, sizeof cmd, "%s; exit 3", harness_gate_cmd(inst));
	a = harness_submit_running(inst, cmd);
	snprintf(ran_b, sizeof ran_b, "%s/b.ran", inst->dir);
	snprintf(ran_c, sizeof ran_c, "%s/c.ran", inst->dir);
	snprintf(cmd, sizeof cmd, ": > '%s'", ran_b);
	b = harness_submit(inst, "-c", cmd, NULL);
	assert_state(inst, b, "queued"); /* --parallel 1 */
	jobd_fd = harness_track(inst, inst->pid);

	j = harness_jobctl_json(inst, "shutdown", "--drain", NULL);
	harness_assert_str(j, "mode", "drain");
	harness_assert_int(j, "running", 1);
	json_decref(j);

	/* Draining: jobd answers, takes submits, starts nothing. */
	out = harness_jobctl_ok(inst, "ping", NULL);
	assert_non_null(strstr(out, "is up, stopping once no job runs\n"));
	free(out);
	j = harness_jobctl_json(inst, "ping", NULL);
	harness_assert_str(j, "stopping", "drain");
	json_decref(j);
	snprintf(cmd, sizeof cmd, ": > '%s'", ran_c);
	c = harness_submit(inst, "-c", cmd, NULL);
	assert_state(inst, c, "queued");
	assert_state(inst, b, "queued");
	assert_state(inst, a, "running");
	assert_true(alive(jobd_fd));

	/* The last running job ends: jobd records it, then exits. */
	harness_gate_release(inst);
	await_jobd_exit(inst);
	assert_string_equal(stored_state(inst, a), "failed");
	assert_string_equal(stored_state(inst, b), "queued");
	assert_string_equal(stored_state(inst, c), "queued");
	harness_assert_absent(ran_b);
	harness_assert_absent(ran_c);

	harness_restart(inst);
	assert_int_equal(harness_wait(inst, a), 3);
	ids[0] = b;
	ids[1] = c;
	assert_int_equal(harness_wait_ids(inst, ids, 2), 0);
	assert_int_equal(access(ran_b, F_OK), 0);
	assert_int_equal(access(ran_c, F_OK), 0);
}

/*
 * shutdown --stop-jobs: every running job is stopped (SIGKILL after its
 * --kill-after for one that ignores SIGTERM) and recorded cancelled with a
 * reason, then jobd exits.
 */
static void
test_shutdown_stop_jobs(void **state)
{
	static const char *const grace[] = { "--kill-after", "1s", NULL };
	struct jobd_inst *inst = *state;
	char pf[2][PATH_MAX], cmd[4 * PATH_MAX], *out;
	int64_t id[2];
	int fd[2];
	json_t *j;

	for (int i = 0; i < 2; i++) {
		snprintf(pf[i], sizeof pf[i], "%s/job%d.pid", inst->dir, i);
	}
	pid_cmd(cmd, sizeof cmd, "", pf[0], "sleep 600");
	id[0] = harness_submit_running(inst, cmd);
	pid_cmd(cmd, sizeof cmd, "trap '' TERM; ", pf[1], "sleep 600");
	id[1] = harness_submit_running_argv(inst, cmd, grace);
	for (int i = 0; i < 2; i++) {
		fd[i] = harness_track(inst, read_pid(pf[i]));
	}

	out = harness_jobctl_ok(inst, "shutdown", "--stop-jobs", NULL);
	assert_string_equal(out, "jobd is stopping 2 running jobs, then "
	                         "itself\n");
	free(out);
	await_jobd_exit(inst);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(harness_await_exit(fd[i], HARNESS_EVENT_MS),
		                 0);
		assert_string_equal(stored_state(inst, id[i]), "cancelled");
	}

	harness_restart(inst);
	for (int i = 0; i < 2; i++) {
		j = harness_status(inst, id[i]);
		harness_assert_str(j, "state", "cancelled");
		harness_assert_str(j, "reason",
		                   "stopped by jobctl shutdown --stop-jobs");
		json_decref(j);
	}
}

/* shutdown with both modes is a usage error, and jobd runs on. */
static void
test_shutdown_usage(void **state)
{
	struct jobd_inst *inst = *state;
	char *err;

	err = harness_jobctl_refused(inst, 2, "shutdown", "--drain",
	                             "--stop-jobs", NULL);
	assert_non_null(strstr(err, "not both"));
	free(err);
	err = harness_jobctl_refused(inst, 2, "shutdown", "now", NULL);
	free(err);
	err = harness_jobctl_refused(inst, 2, "backup", NULL);
	free(err);
	harness_ping(inst);
}

/* Run jobctl as uid/gid OTHER_ID with args; returns its exit code. */
static int
jobctl_as_other(struct jobd_inst *inst, const char *const *args, char **err)
{
	const char *argv[16] = {
		"/usr/bin/setpriv", "--reuid",        OTHER_ID, "--regid",
		OTHER_ID,           "--clear-groups", "--",     JOBCTL_PATH,
		"--socket",         inst->url
	};
	struct harness_proc p;
	size_t n = 10;
	int code;

	for (size_t i = 0; args[i] != NULL; i++) {
		assert_true(n < 15);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	harness_proc_start(&p, argv, NULL);
	code = harness_proc_finish(&p, HARNESS_RUN_MS);
	*err = p.err;
	p.err = NULL;
	harness_proc_free(&p);
	return (code);
}

/* Only root (or jobd's own user) may shut jobd down or back it up. */
static void
test_admin_only(void **state)
{
	static const char *const ping[] = { "ping", NULL };
	static const char *const shutdown[] = { "shutdown", NULL };
	static const char *const stop[] = { "shutdown", "--stop-jobs", NULL };
	struct jobd_inst *inst = *state;
	const char *backup[] = { "backup", NULL, NULL };
	char path[PATH_MAX], *err;
	int code;

	if (geteuid() != 0) {
		harness_msg("skipped: running jobctl as another user needs "
		            "root\n");
		skip();
	}
	/* Let another user reach the socket (0666 under a root jobd). */
	assert_int_equal(chmod(inst->dir, 0711), 0);
	if ((code = jobctl_as_other(inst, ping, &err)) != 0) {
		harness_msg("skipped: uid " OTHER_ID " cannot run %s (exit %d: "
		            "%s)\n",
		            JOBCTL_PATH, code, err);
		free(err);
		skip();
	}
	free(err);

	assert_int_equal(jobctl_as_other(inst, shutdown, &err), 1);
	assert_non_null(strstr(err, "root"));
	free(err);
	assert_int_equal(jobctl_as_other(inst, stop, &err), 1);
	free(err);
	snprintf(path, sizeof path, "%s/other.db", inst->dir);
	backup[1] = path;
	assert_int_equal(jobctl_as_other(inst, backup, &err), 1);
	assert_non_null(strstr(err, "root"));
	free(err);
	harness_assert_absent(path);
	harness_ping(inst);
}

/* No file in dir starts with prefix (a backup's temporary file). */
static void
assert_no_file_like(const char *dir, const char *prefix)
{
	struct dirent *de;
	DIR *d;

	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
			closedir(d);
			fail_msg("%s/%s is left behind", dir, de->d_name);
		}
	}
	closedir(d);
}

/* The size of path, which must exist. */
static long long
file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return ((long long)st.st_size);
}

/*
 * backup FILE: the copy is a whole database with the jobs; FILE as JSON; an
 * existing FILE is refused and left alone; a relative FILE is the client's.
 */
static void
test_backup(void **state)
{
	struct jobd_inst *inst = *state;
	char path[PATH_MAX + 16], want[PATH_MAX + 64], cwd[PATH_MAX];
	char here[PATH_MAX], *out, *err, *text;
	int64_t id[3];
	sqlite3 *db;
	json_t *j;
	int fd;

	for (int i = 0; i < 3; i++) {
		id[i] = harness_submit(inst, "--", "true", NULL);
	}
	assert_int_equal(harness_wait_ids(inst, id, 3), 0);

	snprintf(path, sizeof path, "%s/copy.db", inst->dir);
	out = harness_jobctl_ok(inst, "backup", path, NULL);
	snprintf(want, sizeof want, "wrote %s (%lld bytes)\n", path,
	         file_size(path));
	assert_string_equal(out, want);
	free(out);
	db = db_open(path, SQLITE_OPEN_READONLY);
	db_assert_intact(db);
	assert_int_equal(db_int(db, "SELECT count(*) FROM jobs", -1), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(
		    db_int(db, "SELECT count(*) FROM jobs WHERE id = ?", id[i]),
		    1);
	}
	sqlite3_close(db);

	snprintf(path, sizeof path, "%s/copy2.db", inst->dir);
	j = harness_jobctl_json(inst, "backup", path, NULL);
	harness_assert_str(j, "path", path);
	harness_assert_int(j, "bytes", file_size(path));
	json_decref(j);

	/* An existing file is refused and left as it was. */
	snprintf(path, sizeof path, "%s/precious.db", inst->dir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	assert_int_equal(write(fd, "precious\n", 9), 9);
	close(fd);
	err = harness_jobctl_refused(inst, 1, "backup", path, NULL);
	assert_non_null(strstr(err, "exists"));
	free(err);
	text = harness_read_file(path, NULL);
	assert_string_equal(text, "precious\n");
	free(text);

	/* A folder that does not exist. */
	snprintf(path, sizeof path, "%s/none/copy.db", inst->dir);
	err = harness_jobctl_refused(inst, 1, "backup", path, NULL);
	free(err);
	harness_assert_absent(path);

	/* A relative FILE is taken from jobctl's folder, not jobd's. */
	assert_non_null(getcwd(here, sizeof here));
	assert_int_equal(chdir(inst->dir), 0);
	assert_non_null(getcwd(cwd, sizeof cwd));
	out = harness_jobctl_ok(inst, "backup", "rel.db", NULL);
	assert_int_equal(chdir(here), 0);
	snprintf(path, sizeof path, "%s/rel.db", cwd);
	snprintf(want, sizeof want, "wrote %s (%lld bytes)\n", path,
	         file_size(path));
	assert_string_equal(out, want);
	free(out);
	db = db_open(path, SQLITE_OPEN_READONLY);
	assert_int_equal(db_int(db, "SELECT count(*) FROM jobs", -1), 3);
	sqlite3_close(db);

	assert_no_file_like(inst->dir, "copy.db.");
	assert_no_file_like(inst->dir, "precious.db.");
	assert_no_file_like(inst->dir, "rel.db.");
	harness_ping(inst);
}

/*
 * The ids that submitter i of test_backup_busy has printed so far, each
 * acknowledged by jobd: returns how many, and sets *most to the largest if
 * it is larger. Only whole lines count: the last one may be in writing.
 */
static size_t
acked_ids(struct jobd_inst *inst, int i, int64_t *most)
{
	char path[PATH_MAX + 16], *text, *line, *nl, keep;
	size_t n = 0;
	int64_t id;

	snprintf(path, sizeof path, "%s/ids.%d", inst->dir, i);
	if ((text = harness_read_file(path, NULL)) == NULL) {
		return (0);
	}
	for (line = text; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		keep = nl[1];
		nl[1] = '\0';
		id = harness_parse_id(line, "(a submitter's output)");
		nl[1] = keep;
		*most = id > *most ? id : *most;
		n++;
	}
	free(text);
	return (n);
}

/*
 * Start SUBMITTERS shell loops, each submitting small jobs one after the
 * other (--in 1h: they never run) and appending the ids jobd acknowledged
 * to DIR/ids.I, until DIR/stop exists; wait (bounded) until each has had
 * two acknowledged, so that submits are flowing.
 */
static void
submitters_start(struct jobd_inst *inst, struct harness_proc *p)
{
	char script[4 * PATH_MAX];
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	int64_t deadline = harness_now_ms() + HARNESS_EVENT_MS, most = 0;
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	for (int i = 0; i < SUBMITTERS; i++) {
		snprintf(
		    script, sizeof script,
		    "while [ ! -e '%s/stop' ]; do '%s' --socket '%s' "
		    "submit --in 1h -- true >> '%s/ids.%d' || exit 1; done",
		    inst->dir, JOBCTL_PATH, inst->url, inst->dir, i);
		harness_proc_start(&p[i], argv, NULL);
	}
	for (int i = 0; i < SUBMITTERS; i++) {
		while (acked_ids(inst, i, &most) < 2) {
			if (harness_now_ms() >= deadline) {
				fail_msg("submitter %d had no two jobs "
				         "acknowledged within %d ms",
				         i, HARNESS_EVENT_MS);
			}
			nanosleep(&tick, NULL);
		}
	}
}

/* Stop the submitters: each must end with exit code 0. */
static void
submitters_stop(struct jobd_inst *inst, struct harness_proc *p)
{
	char path[PATH_MAX + 16];
	int fd;

	snprintf(path, sizeof path, "%s/stop", inst->dir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) >=
	            0);
	close(fd);
	for (int i = 0; i < SUBMITTERS; i++) {
		finish_quietly(&p[i], 0);
		harness_proc_free(&p[i]);
	}
}

/*
 * backup while the database is many times the pages jobd copies per loop
 * turn, and submits keep coming: the copy takes several turns, and waits
 * for the commit of each turn that wrote. It is whole (integrity_check),
 * and consistent as of one moment between the request and the reply: its
 * jobs are 1..K with nothing missing, K at least the last id acknowledged
 * before the request, and no id jobd never acknowledged. The big jobs are
 * in it whole.
 */
static void
test_backup_busy(void **state)
{
	struct jobd_inst *inst = *state;
	struct harness_proc sub[SUBMITTERS], bk;
	const char *args[5 + BIG_ARGS];
	char path[PATH_MAX + 16], want[PATH_MAX + 64], *big;
	int64_t big_id[BIG_JOBS], before = 0, after = 0, k;
	size_t acked = 0;
	long long pages, count;
	sqlite3 *db;

	assert_non_null(big = malloc(BIG_ARG + 1));
	memset(big, 'x', BIG_ARG);
	big[BIG_ARG] = '\0';
	args[0] = "--in";
	args[1] = "1h";
	args[2] = "--";
	args[3] = "true";
	for (int i = 0; i < BIG_ARGS; i++) {
		args[4 + i] = big;
	}
	args[4 + BIG_ARGS] = NULL;
	for (int i = 0; i < BIG_JOBS; i++) {
		big_id[i] = harness_submit_argv(inst, args);
	}
	free(big);

	submitters_start(inst, sub);
	/* Every id printed by now was acknowledged before the request. */
	for (int i = 0; i < SUBMITTERS; i++) {
		(void)acked_ids(inst, i, &before);
	}
	snprintf(path, sizeof path, "%s/busy.db", inst->dir);
	harness_jobctl_start(inst, &bk, "backup", path, NULL);
	finish_quietly(&bk, 0);
	snprintf(want, sizeof want, "wrote %s (%lld bytes)\n", path,
	         file_size(path));
	assert_string_equal(bk.out, want);
	harness_proc_free(&bk);
	submitters_stop(inst, sub);
	for (int i = 0; i < SUBMITTERS; i++) {
		acked += acked_ids(inst, i, &after);
	}
	/* Every job is a big one or a submitter's. */
	assert_int_equal(after, BIG_JOBS + (int64_t)acked);

	db = db_open(path, SQLITE_OPEN_READONLY);
	db_assert_intact(db);
	pages = db_int(db, "PRAGMA page_count", -1);
	if (pages < BACKUP_TURNS * BACKUP_PAGES) {
		fail_msg("the copy has %lld pages: too few to take jobd %d "
		         "turns",
		         pages, BACKUP_TURNS);
	}
	k = db_int(db, "SELECT max(id) FROM jobs", -1);
	count = db_int(db, "SELECT count(*) FROM jobs", -1);
	if (count != k || db_int(db, "SELECT min(id) FROM jobs", -1) != 1 ||
	    k < before || k > after ||
	    db_int(db, "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'",
	           -1) != k) {
		fail_msg("the copy holds %lld jobs, ids up to %lld; want ids "
		         "1..K with K from %lld (acknowledged before the "
		         "request) to %lld (acknowledged at all)",
		         count, (long long)k, (long long)before,
		         (long long)after);
	}
	/* argv: "true" and each argument, each with its NUL. */
	for (int i = 0; i < BIG_JOBS; i++) {
		assert_int_equal(
		    db_int(db, "SELECT length(argv) FROM jobs WHERE id = ?",
		           big_id[i]),
		    5 + BIG_ARGS * (BIG_ARG + 1));
	}
	sqlite3_close(db);
	assert_no_file_like(inst->dir, "busy.db.");
	harness_ping(inst);
}

/*
 * A wait on a running job while jobd is killed (sig: SIGKILL, or SIGTERM,
 * which answers the parked wait shutting_down) and started again: the wait
 * goes on quietly and exits with the job's own code.
 */
static void
wait_across(struct jobd_inst *inst, int sig)
{
	struct harness_proc waiter;
	char cmd[PATH_MAX + 64], idbuf[24];
	int64_t id;
	int status;

	snprintf(cmd, sizeof cmd, "%s; exit 5", harness_gate_cmd(inst));
	id = harness_submit_running(inst, cmd);
	harness_jobctl_start(inst, &waiter, "wait", HARNESS_ID(idbuf, id),
	                     NULL);
	await_connected(&waiter);
	status = harness_signal(inst, sig);
	if (sig == SIGTERM) {
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	harness_restart(inst);
	harness_gate_release(inst);
	finish_quietly(&waiter, 5);
	assert_non_null(strstr(waiter.out, "state:"));
	harness_proc_free(&waiter);
}

static void
test_wait_across_kill9(void **state)
{
	wait_across(*state, SIGKILL);
}

static void
test_wait_across_sigterm(void **state)
{
	wait_across(*state, SIGTERM);
}

/*
 * Is the main thread of pid blocked in nanosleep (glibc's nanosleep makes
 * the clock_nanosleep call)? /proc/PID/syscall starts with the number of
 * the call the thread is blocked in, or says "running". Its first line
 * goes into what, for messages.
 */
static int
in_nanosleep(pid_t pid, char *what, size_t len)
{
	char path[64];
	long nr;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fail_msg("open %s: %s", path, strerror(errno));
	}
	n = read(fd, what, len - 1);
	close(fd);
	what[n > 0 ? n : 0] = '\0';
	what[strcspn(what, "\n")] = '\0';
	if (sscanf(what, "%ld", &nr) != 1) {
		return (0);
	}
	return (nr == SYS_nanosleep || nr == SYS_clock_nanosleep);
}

/*
 * Wait (bounded) until a started jobctl wait has failed to reach jobd and
 * is in its pause before the next try (ctl_call_resume: a failed dial
 * returns CTL_AGAIN, then ctl_backoff sleeps in nanosleep). That pause is
 * the only sleep of jobctl's main thread: its dial waits for nng's threads
 * on a condition variable (futex), and nng itself sleeps only when it
 * cannot make a mutex (out of memory). So the main thread seen in
 * nanosleep means the dial has failed and jobctl will try again. The
 * first pause lasts 50 ms, each next one longer: a look every 5 ms sees
 * one. Fails if jobctl ends first.
 */
static void
await_backoff(struct harness_proc *p)
{
	int64_t deadline = harness_now_ms() + HARNESS_EVENT_MS;
	struct timespec tick = { 0, 5 * 1000 * 1000 };
	char what[256];
	int fd, code;

	if ((fd = pidfd_open(p->pid, 0)) < 0) {
		fail_msg("pidfd_open %d: %s", (int)p->pid, strerror(errno));
	}
	while (!in_nanosleep(p->pid, what, sizeof what)) {
		if (harness_await_exit(fd, 0) == 0) {
			close(fd);
			code = harness_proc_finish(p, HARNESS_RUN_MS);
			harness_msg("'%s' exited %d before it paused to try "
			            "again; stdout:\n%s\nstderr:\n%s\n",
			            p->what, code, p->out, p->err);
			harness_proc_free(p);
			fail();
		}
		if (harness_now_ms() >= deadline) {
			close(fd);
			fail_msg("'%s' did not pause to try again within %d ms "
			         "(/proc/%d/syscall: %s)",
			         p->what, HARNESS_EVENT_MS, (int)p->pid, what);
		}
		nanosleep(&tick, NULL);
	}
	close(fd);
}

/*
 * A wait started while jobd is down finds it once it is back. jobd is
 * restarted only once the wait has failed to reach it and waits to try
 * again, so the wait truly starts while jobd is down.
 */
static void
test_wait_before_restart(void **state)
{
	struct jobd_inst *inst = *state;
	struct harness_proc waiter;
	char cmd[PATH_MAX + 64], idbuf[24];
	int64_t id;

	snprintf(cmd, sizeof cmd, "%s; exit 9", harness_gate_cmd(inst));
	id = harness_submit_running(inst, cmd);
	harness_kill9(inst);
	harness_jobctl_start(inst, &waiter, "wait", HARNESS_ID(idbuf, id),
	                     NULL);
	await_backoff(&waiter);
	harness_restart(inst);
	harness_gate_release(inst);
	finish_quietly(&waiter, 9);
	harness_proc_free(&waiter);
}

/*
 * JOBCTL_RECONNECT_S bounds the tries: a wait gives up with 69 and says so;
 * 0 gives up at once without that line; a bad value is a usage error. A
 * socket that does not exist is no jobd to wait for.
 */
static void
test_reconnect_bound(void **state)
{
	static const char *const one[] = { "JOBCTL_RECONNECT_S=1", NULL };
	static const char *const zero[] = { "JOBCTL_RECONNECT_S=0", NULL };
	static const char *const bad[] = { "JOBCTL_RECONNECT_S=1m", NULL };
	struct jobd_inst *inst = *state;
	const char *args[] = { "wait", NULL, NULL };
	char idbuf[24], none[PATH_MAX + 16], *err;
	const char *nosock[] = { "--socket", none, "wait", NULL, NULL };
	int64_t id;

	id = harness_blocker(inst);
	args[1] = nosock[3] = HARNESS_ID(idbuf, id);
	harness_kill9(inst);

	assert_int_equal(harness_jobctl_run(inst, one, args, NULL, &err), 69);
	assert_non_null(strstr(err, "cannot reach jobd"));
	assert_non_null(strstr(err, "did not come back within 1 s"));
	free(err);
	assert_int_equal(harness_jobctl_run(inst, zero, args, NULL, &err), 69);
	assert_non_null(strstr(err, "cannot reach jobd"));
	assert_null(strstr(err, "did not come back"));
	free(err);
	assert_int_equal(harness_jobctl_run(inst, bad, args, NULL, &err), 2);
	assert_non_null(strstr(err, "JOBCTL_RECONNECT_S"));
	free(err);
	/*
	 * No socket at all: no jobd to wait for (trying for the default 60 s
	 * would pass the harness's bound).
	 */
	snprintf(none, sizeof none, "%s/none.sock", inst->dir);
	assert_int_equal(harness_jobctl_run(NULL, NULL, nosock, NULL, &err),
	                 69);
	assert_non_null(strstr(err, "cannot reach jobd"));
	assert_null(strstr(err, "did not come back"));
	free(err);

	/* The job outlived it all. */
	harness_restart(inst);
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, id), 0);
}

/* Read a started process's output until it holds text, or fail. */
static void
await_output(struct jobd_inst *inst, struct harness_proc *p, const char *text)
{
	if (harness_proc_await_output(p, text, HARNESS_EVENT_MS) != 0) {
		harness_msg(
		    "'%s' printed no '%s' within %d ms; stdout:\n%.2000s"
		    "\nstderr:\n%s\n",
		    p->what, text, HARNESS_EVENT_MS,
		    p->out != NULL ? p->out : "", p->err != NULL ? p->err : "");
		harness_gate_release(inst);
		harness_gate_release(inst);
		harness_proc_finish(p, HARNESS_RUN_MS);
		harness_proc_free(p);
		fail();
	}
}

/*
 * logs --follow across a SIGKILL and a SIGTERM of jobd: the whole output,
 * once, in order.
 */
static void
test_follow_across_restarts(void **state)
{
	struct jobd_inst *inst = *state;
	struct harness_proc follow;
	char cmd[3 * PATH_MAX], idbuf[24], *want, *p;
	int64_t id;
	int status;

	snprintf(cmd, sizeof cmd,
	         "seq 1 1000; %s; seq 1001 2000; %s; seq 2001 3000",
	         harness_gate_cmd(inst), harness_gate_cmd(inst));
	id = harness_submit(inst, "-c", cmd, NULL);
	harness_jobctl_start(inst, &follow, "logs", HARNESS_ID(idbuf, id),
	                     "--follow", NULL);
	await_output(inst, &follow, "\n1000\n");

	harness_kill9(inst);
	harness_restart(inst);
	harness_gate_release(inst);
	await_output(inst, &follow, "\n2000\n");

	status = harness_signal(inst, SIGTERM);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	harness_restart(inst);
	harness_gate_release(inst);
	finish_quietly(&follow, 0);

	want = p = calloc(3000, 6);
	assert_non_null(want);
	for (int i = 1; i <= 3000; i++) {
		p += sprintf(p, "%d\n", i);
	}
	assert_string_equal(follow.out, want);
	free(want);
	harness_proc_free(&follow);
	assert_int_equal(harness_wait(inst, id), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_shutdown_now, harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_drain,
		                                harness_setup_parallel1,
		                                harness_teardown),
		cmocka_unit_test_setup_teardown(
		    test_shutdown_stop_jobs, harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(
		    test_shutdown_usage, harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_admin_only, harness_setup,
		                                harness_teardown),
		cmocka_unit_test_setup_teardown(test_backup, harness_setup,
		                                harness_teardown),
		cmocka_unit_test_setup_teardown(test_backup_busy, harness_setup,
		                                harness_teardown),
		cmocka_unit_test_setup_teardown(
		    test_wait_across_kill9, harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(
		    test_wait_across_sigterm, harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(
		    test_wait_before_restart, harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(
		    test_reconnect_bound, harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_follow_across_restarts,
		                                harness_setup,
		                                harness_teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
