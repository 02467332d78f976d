/*
 * Faults jobd must survive (issue 4), each produced for real against the
 * real jobd and jobctl: a full disk (a small tmpfs), a file size limit
 * (RLIMIT_FSIZE), a state folder gone read-only (a read-only bind mount),
 * fork failing (a pids cgroup, or RLIMIT_NPROC), an output file that
 * cannot be created, a corrupt or newer database, and clients that
 * misbehave on the socket.
 *
 * Mounts happen in a private mount namespace that this program enters
 * first thing, while it has one thread (nng starts none in it: the raw
 * clients here are plain AF_UNIX sockets). Tests that need root skip,
 * saying why, for anyone else. Every test ends by stopping jobd with
 * SIGTERM and requiring exit status 0: under the sanitizer build,
 * LeakSanitizer turns a leak into a non-zero exit, so that is the leak
 * check. A raw connection that has not finished the SP handshake is
 * closed only after jobd has stopped, and lives well under nng's 10 s
 * handshake timeout: either end would trip nng 1.5.2's issue #1518
 * (test_listener.c covers that one).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define FAULTS_TMPFS      "size=8m,mode=0700" /* the small state folder */
#define FAULTS_CPU_MAX_MS 500  /* jobd's CPU over 1 s of failing forks */
#define FAULTS_PROMPT_MS  5000 /* a ping, a submit and its wait, at most */
#define FAULTS_IDLE_CONNS 50
#define FAULTS_FLOOD      2000 /* requests sent by a client that never reads */
#define FAULTS_SCHEMA_NEW 99   /* a schema version no jobd knows */

/* The one jobd of each test, stopped by faults_teardown. */
static struct jobd_inst faults_inst;
/* The private mount namespace: ready, or why not. */
static int faults_ns_ready;
static char faults_ns_why[160];
/* The pids cgroup a test made, removed by faults_teardown. */
static char faults_cgroup[PATH_MAX];
static char faults_cgroup_parent[PATH_MAX / 2];

static void
faults_skip(const char *why)
{
	harness_msg("skipped: %s\n", why);
	skip();
}

static void
faults_need_root(const char *what)
{
	char why[200];

	if (geteuid() != 0) {
		snprintf(why, sizeof why, "%s needs root", what);
		faults_skip(why);
	}
}

/* Skip unless this test may mount (what) on the state folder. */
static void
faults_need_mounts(const char *what)
{
	faults_need_root(what);
	if (!faults_ns_ready) {
		faults_skip(faults_ns_why);
	}
}

static int
faults_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return (0);
}

/* Write text to a file that exists (a cgroup control file); 0 or -1. */
static int
faults_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rv = 0;

	if (fd < 0) {
		return (-1);
	}
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		rv = -1;
	}
	close(fd);
	return (rv);
}

/* Move every task of the test's cgroup to its parent, then remove it. */
static void
faults_cgroup_remove(void)
{
	char path[PATH_MAX + 32], *procs, *line, *save = NULL;

	if (faults_cgroup[0] == '\0') {
		return;
	}
	snprintf(path, sizeof path, "%s/cgroup.procs", faults_cgroup);
	if ((procs = harness_read_file(path, NULL)) != NULL) {
		snprintf(path, sizeof path, "%s/cgroup.procs",
		         faults_cgroup_parent);
		for (line = strtok_r(procs, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			(void)faults_write_file(path, line);
		}
		free(procs);
	}
	if (rmdir(faults_cgroup) != 0) {
		harness_msg("rmdir %s: %s\n", faults_cgroup, strerror(errno));
	}
	faults_cgroup[0] = '\0';
}

static int
faults_setup(void **state)
{
	*state = &faults_inst;
	return (0);
}

/*
 * Stop jobd (harness_stop: SIGTERM, exit status 0 required), then undo
 * what the test did outside the harness: its cgroup, and any mount on the
 * state folder (which harness_stop could not remove).
 */
static int
faults_teardown(void **state)
{
	struct jobd_inst *inst = &faults_inst;
	char dir[sizeof inst->dir], st[sizeof inst->state];
	int rv;

	(void)state;
	memcpy(dir, inst->dir, sizeof dir);
	memcpy(st, inst->state, sizeof st);
	rv = harness_stop(inst);
	faults_cgroup_remove();
	if (dir[0] != '\0' && faults_ns_ready) {
		while (umount2(st, MNT_DETACH) == 0) {
			continue;
		}
		if (getenv("JOBD_TEST_KEEP") == NULL) {
			nftw(dir, faults_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		}
	}
	return (rv);
}

/* Stop jobd with SIGTERM; it must exit 0 (no leak under LeakSanitizer). */
static void
faults_stop_clean(struct jobd_inst *inst)
{
	int status = harness_signal(inst, SIGTERM);
	char *log;

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log = harness_read_file(inst->log, NULL);
		harness_msg("jobd ended with wait status 0x%x on SIGTERM; its "
		            "stderr:\n%s\n",
		            status, log != NULL ? log : "(none)");
		free(log);
		fail();
	}
}

/*
 * Start jobd with --parallel parallel and its state folder on a fresh
 * tmpfs of FAULTS_TMPFS. The harness picks the folder and starts jobd at
 * once, so jobd is started, stopped, and started again on the tmpfs.
 */
static void
faults_start_on_tmpfs(struct jobd_inst *inst, const char *parallel)
{
	harness_start(inst, "--parallel", parallel, NULL);
	faults_stop_clean(inst);
	if (mount("jobd-faults", inst->state, "tmpfs", MS_NOSUID | MS_NODEV,
	          FAULTS_TMPFS) != 0) {
		fail_msg("mount tmpfs on %s: %s", inst->state, strerror(errno));
	}
	harness_restart(inst);
}

/* Fill the file system of path with a file at path until ENOSPC. */
static void
faults_fill(const char *path)
{
	static char chunk[1 << 16];
	size_t size = sizeof chunk;
	struct statvfs sv;
	ssize_t n;
	int fd;

	memset(chunk, 'x', sizeof chunk);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) <
	    0) {
		fail_msg("open %s: %s", path, strerror(errno));
	}
	for (;;) {
		n = write(fd, chunk, size);
		if (n >= 0) {
			continue;
		}
		if (errno != ENOSPC) {
			fail_msg("write %s: %s", path, strerror(errno));
		}
		if (size == 1) {
			break;
		}
		size = size > 4096 ? 4096 : 1;
	}
	close(fd);
	assert_int_equal(statvfs(path, &sv), 0);
	if (sv.f_bavail != 0) {
		fail_msg("%s: %llu blocks still free after ENOSPC", path,
		         (unsigned long long)sv.f_bavail);
	}
}

/* How many times jobd's log holds text. */
static int
faults_log_count(struct jobd_inst *inst, const char *text)
{
	char *log = harness_read_file(inst->log, NULL), *at = log;
	int n = 0;

	while (at != NULL && (at = strstr(at, text)) != NULL) {
		n++;
		at += strlen(text);
	}
	free(log);
	return (n);
}

/*
 * Wait (bounded) until jobd's log, which also has its supervisors'
 * stderr, says text.
 */
static void
faults_await_log(struct jobd_inst *inst, const char *text)
{
	int64_t deadline = harness_now_ms() + HARNESS_EVENT_MS;
	struct pollfd pfd = { .events = POLLIN };
	char buf[4096];

	if ((pfd.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0 ||
	    inotify_add_watch(pfd.fd, inst->log, IN_MODIFY) < 0) {
		fail_msg("inotify on %s: %s", inst->log, strerror(errno));
	}
	/* The watch is in place before the check: nothing is missed. */
	while (faults_log_count(inst, text) == 0) {
		if (harness_now_ms() >= deadline) {
			close(pfd.fd);
			fail_msg(
			    "jobd's log (%s) did not say '%s' within %d ms",
			    inst->log, text, HARNESS_EVENT_MS);
		}
		if (poll(&pfd, 1, (int)(deadline - harness_now_ms())) > 0) {
			while (read(pfd.fd, buf, sizeof buf) > 0) {
				continue;
			}
		}
	}
	close(pfd.fd);
}

/* Fail, showing every job: they did not end as they should have. */
static void
faults_dump_jobs(struct jobd_inst *inst, const char *when)
{
	json_t *jobs = harness_jobctl_json(inst, "list", NULL);
	char *dump = json_dumps(jobs, JSON_INDENT(2));

	harness_msg("jobs %s, ending otherwise than succeeded:\n%s\n", when,
	            dump);
	free(dump);
	json_decref(jobs);
	fail();
}

/* Fail unless err (freed here) holds text. */
static void
faults_assert_says(char *err, const char *text)
{
	int bad = strstr(err, text) == NULL;

	if (bad)
		harness_msg("expected '%s' in:\n%s\n", text, err);
	free(err);
	if (bad)
		fail();
}

/* The job's output must be exactly want. */
static void
faults_assert_logs(struct jobd_inst *inst, int64_t id, const char *want)
{
	char *out = harness_logs(inst, id, 0);
	int bad = strcmp(out, want) != 0;

	if (bad)
		harness_msg("job %lld printed '%s', expected '%s'\n",
		            (long long)id, out, want);
	free(out);
	if (bad)
		fail();
}

/* Fail with the job object unless the job is in state want. */
static void
faults_assert_state(struct jobd_inst *inst, int64_t id, const char *want)
{
	json_t *job = harness_status(inst, id);

	harness_assert_str(job, "state", want);
	json_decref(job);
}

/*
 * The disk fills up while jobd runs: submits are refused with "storage
 * unavailable", the jobs accepted before are untouched and can be read,
 * jobd answers all along, and once space is back it takes submits again
 * and runs everything, without a restart.
 */
static void
test_disk_full(void **state)
{
	struct jobd_inst *inst = *state;
	char filler[PATH_MAX * 2];
	json_t *before_a, *before_b;
	int64_t blocker, a, b, c, ids[4];
	pid_t pid;

	faults_need_mounts("a small tmpfs for the state folder");
	faults_start_on_tmpfs(inst, "1");
	pid = inst->pid;
	blocker = harness_blocker(inst);
	a = harness_submit(inst, "-n", "before-a", "--", "echo", "a-ran", NULL);
	b = harness_submit(inst, "-n", "before-b", "-c", "echo b-ran", NULL);
	before_a = harness_status(inst, a);
	before_b = harness_status(inst, b);
	harness_assert_str(before_a, "state", "queued");
	harness_assert_str(before_b, "state", "queued");

	/*
	 * Each commit appends to the write-ahead log, which jobd never
	 * checkpoints this early (sqlite: at 1000 pages): it needs new space.
	 */
	snprintf(filler, sizeof filler, "%s/filler", inst->state);
	faults_fill(filler);
	for (int i = 0; i < 2; i++) {
		faults_assert_says(harness_jobctl_refused(inst, 1, "submit",
		                                          "--key", "full", "--",
		                                          "true", NULL),
		                   "storage unavailable");
		harness_ping(inst);
		harness_assert_unchanged(inst, a, before_a);
		harness_assert_unchanged(inst, b, before_b);
		faults_assert_state(inst, blocker, "running");
	}

	assert_int_equal(unlink(filler), 0);
	/* The key was never saved: this is a new job. */
	c = harness_submit(inst, "--key", "full", "--", "echo", "c-ran", NULL);
	assert_true(c > b);
	/* The same jobd all along. */
	assert_int_equal(inst->pid, pid);
	assert_int_equal(kill(pid, 0), 0);
	harness_assert_unchanged(inst, a, before_a);
	harness_assert_unchanged(inst, b, before_b);
	harness_gate_release(inst);
	ids[0] = blocker;
	ids[1] = a;
	ids[2] = b;
	ids[3] = c;
	assert_int_equal(harness_wait_ids(inst, ids, 4), 0);
	faults_assert_logs(inst, a, "a-ran\n");
	faults_assert_logs(inst, b, "b-ran\n");
	faults_assert_logs(inst, c, "c-ran\n");
	json_decref(before_a);
	json_decref(before_b);
	faults_stop_clean(inst);
}

/*
 * A running job ends while the disk is full, so its supervisor cannot
 * write the outcome then. The job must not be called lost meanwhile, and
 * once space is back it ends with its true exit code; the job queued
 * behind it runs.
 */
static void
test_disk_full_job_ends(void **state)
{
	struct jobd_inst *inst = *state;
	char filler[PATH_MAX * 2], text[96];
	int64_t blocker, next;

	faults_need_mounts("a small tmpfs for the state folder");
	faults_start_on_tmpfs(inst, "1");
	blocker = harness_blocker(inst);
	next = harness_submit(inst, "--", "echo", "next-ran", NULL);

	snprintf(filler, sizeof filler, "%s/filler", inst->state);
	faults_fill(filler);
	harness_gate_release(inst);
	snprintf(text, sizeof text, "cannot write the outcome of job %lld",
	         (long long)blocker);
	faults_await_log(inst, text);
	harness_ping(inst);
	faults_assert_state(inst, blocker, "running");
	faults_assert_state(inst, next, "queued");
	assert_int_equal(unlink(filler), 0);

	if (harness_wait(inst, blocker) != 0 || harness_wait(inst, next) != 0) {
		faults_dump_jobs(inst, "after the disk was full");
	}
	faults_assert_logs(inst, next, "next-ran\n");
	faults_stop_clean(inst);
}

/* The size of the file, or 0 if it is not there. */
static off_t
faults_size(const char *path)
{
	struct stat st;

	return (stat(path, &st) == 0 ? st.st_size : 0);
}

/*
 * jobd's files may not grow (RLIMIT_FSIZE at their present size, as a
 * LimitFSIZE= in its unit would do; any user can do this, root or not):
 * a write past the limit fails with EFBIG and raises SIGXFSZ. jobd must
 * not die of it: submits are refused with "storage unavailable", earlier
 * jobs are untouched, and once the limit is lifted it takes submits again.
 */
static void
test_file_size_limit(void **state)
{
	struct jobd_inst *inst = *state;
	char path[PATH_MAX * 2];
	struct rlimit old, lim;
	json_t *before;
	int64_t a, b, c;
	off_t most = 0;

	harness_start(inst, NULL);
	a = harness_submit(inst, "--", "echo", "a-ran", NULL);
	assert_int_equal(harness_wait(inst, a), 0);
	b = harness_submit(inst, "--in", "1h", "--", "true", NULL);
	before = harness_status(inst, b);

	/* No file of jobd's may grow: its database, its log. */
	snprintf(path, sizeof path, "%s/jobd.db-wal", inst->state);
	most = faults_size(path);
	snprintf(path, sizeof path, "%s/jobd.db", inst->state);
	most = faults_size(path) > most ? faults_size(path) : most;
	most = faults_size(inst->log) > most ? faults_size(inst->log) : most;
	assert_int_equal(prlimit(inst->pid, RLIMIT_FSIZE, NULL, &old), 0);
	lim.rlim_cur = (rlim_t)most;
	lim.rlim_max = old.rlim_max;
	assert_int_equal(prlimit(inst->pid, RLIMIT_FSIZE, &lim, NULL), 0);

	for (int i = 0; i < 2; i++) {
		faults_assert_says(harness_jobctl_refused(inst, 1, "submit",
		                                          "--", "true", NULL),
		                   "storage unavailable");
		harness_ping(inst);
		harness_assert_unchanged(inst, b, before);
	}

	assert_int_equal(prlimit(inst->pid, RLIMIT_FSIZE, &old, NULL), 0);
	c = harness_submit(inst, "--", "echo", "c-ran", NULL);
	assert_true(c > b);
	assert_int_equal(harness_wait(inst, c), 0);
	faults_assert_logs(inst, a, "a-ran\n");
	faults_assert_logs(inst, c, "c-ran\n");
	harness_assert_unchanged(inst, b, before);
	json_decref(before);
	faults_stop_clean(inst);
}

/* Put a read-only bind mount of the state folder over it. */
static void
faults_state_readonly(struct jobd_inst *inst)
{
	char probe[PATH_MAX * 2];

	if (mount(inst->state, inst->state, NULL, MS_BIND, NULL) != 0 ||
	    mount(NULL, inst->state, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY,
	          NULL) != 0) {
		fail_msg("read-only bind mount on %s: %s", inst->state,
		         strerror(errno));
	}
	snprintf(probe, sizeof probe, "%s/probe", inst->state);
	if (open(probe, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) >= 0 ||
	    errno != EROFS) {
		fail_msg("%s: created, or not EROFS (%s)", probe,
		         strerror(errno));
	}
}

static void
faults_state_writable(struct jobd_inst *inst)
{
	if (umount2(inst->state, 0) != 0) {
		fail_msg("umount %s: %s", inst->state, strerror(errno));
	}
}

/*
 * "jobctl submit -- echo WORD" while the state folder is read-only: jobd
 * either stores the job or refuses it with "storage unavailable", never
 * anything else. Returns the new job's id, or 0 if it was refused.
 */
static int64_t
faults_submit_readonly(struct jobd_inst *inst, const char *word)
{
	char *out, *err;
	int64_t id = 0;
	int code;

	code = harness_jobctl(inst, &out, &err, "submit", "--", "echo", word,
	                      NULL);
	if (code == 0) {
		id = harness_parse_id(out, err);
	} else if (code != 1 || strstr(err, "storage unavailable") == NULL) {
		fail_msg("submit on a read-only state folder: exit %d, stdout "
		         "'%s', stderr '%s'",
		         code, out, err);
	}
	free(out);
	free(err);
	return (id);
}

/*
 * The state folder turns read-only under a running jobd. (A read-only
 * remount of the file system is refused, EBUSY, while jobd holds its
 * database open for writing; a read-only bind mount over the folder is
 * what can happen: every file jobd or a supervisor opens anew fails with
 * EROFS, while the database's open descriptors still write.) A submit is
 * either stored or refused with "storage unavailable", never half-done;
 * jobs accepted before are untouched; jobd answers; once the folder is
 * writable again everything runs.
 */
static void
test_state_readonly(void **state)
{
	struct jobd_inst *inst = *state;
	json_t *before;
	int64_t blocker, a, b, c, ids[4];
	int n = 0;

	faults_need_mounts("a read-only bind mount on the state folder");
	harness_start(inst, "--parallel", "1", NULL);
	blocker = harness_blocker(inst);
	a = harness_submit(inst, "--", "echo", "a-ran", NULL);
	before = harness_status(inst, a);

	faults_state_readonly(inst);
	b = faults_submit_readonly(inst, "b-ran");
	harness_ping(inst);
	harness_assert_unchanged(inst, a, before);
	faults_assert_state(inst, blocker, "running");

	faults_state_writable(inst);
	c = harness_submit(inst, "--", "echo", "c-ran", NULL);
	harness_gate_release(inst);
	ids[n++] = blocker;
	ids[n++] = a;
	if (b != 0) {
		ids[n++] = b;
	}
	ids[n++] = c;
	assert_int_equal(harness_wait_ids(inst, ids, (size_t)n), 0);
	faults_assert_logs(inst, a, "a-ran\n");
	if (b != 0) {
		faults_assert_logs(inst, b, "b-ran\n");
	}
	faults_assert_logs(inst, c, "c-ran\n");
	json_decref(before);
	faults_stop_clean(inst);
}

/*
 * The state folder is read-only while a job ends and while the next one
 * is due to start. Neither is harmed: the first ends with its true exit
 * code once the folder is writable again, the next waits (queued) and
 * then runs.
 */
static void
test_state_readonly_jobs_start(void **state)
{
	struct jobd_inst *inst = *state;
	char text[96];
	int64_t blocker, a;

	faults_need_mounts("a read-only bind mount on the state folder");
	/* A slot for the blocker, and one free for a. */
	harness_start(inst, "--parallel", "2", NULL);
	blocker = harness_blocker(inst);

	faults_state_readonly(inst);
	harness_gate_release(inst);
	snprintf(text, sizeof text, "cannot write the outcome of job %lld",
	         (long long)blocker);
	faults_await_log(inst, text);
	a = faults_submit_readonly(inst, "a-ran");
	/*
	 * jobd tries to start a job in the loop iteration that commits it,
	 * so after this round trip it has tried to start a.
	 */
	harness_ping(inst);
	faults_assert_state(inst, blocker, "running");
	if (a != 0) {
		faults_assert_state(inst, a, "queued");
	}
	faults_state_writable(inst);

	if (harness_wait(inst, blocker) != 0 ||
	    (a != 0 && harness_wait(inst, a) != 0)) {
		faults_dump_jobs(inst, "after the state folder was read-only");
	}
	if (a != 0) {
		faults_assert_logs(inst, a, "a-ran\n");
	}
	faults_stop_clean(inst);
}

/* jobd's CPU time so far (all threads), in ms. */
static int64_t
faults_cpu_ms(pid_t pid)
{
	char path[64], *text, *end;
	unsigned long long utime, stime;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((text = harness_read_file(path, NULL)) == NULL ||
	    (end = strrchr(text, ')')) == NULL ||
	    sscanf(end + 1,
	           " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	           &utime, &stime) != 2) {
		fail_msg("cannot read %s", path);
	}
	free(text);
	return ((int64_t)(utime + stime) * 1000 / sysconf(_SC_CLK_TCK));
}

/*
 * Make jobd's forks fail: as root, a pids cgroup holding jobd with
 * pids.max at its current count (cgroup v1, else v2); otherwise
 * RLIMIT_NPROC 1 on jobd (which root would ignore). Returns 0, or -1 if
 * this machine offers neither (the test skips).
 */
static int
faults_fork_limit(struct jobd_inst *inst, struct rlimit *old)
{
	struct rlimit one = { 1, 1 };
	char path[PATH_MAX + 32], pid[32], *current;

	if (geteuid() != 0) {
		/* The soft limit only: it can be raised again. */
		if (prlimit(inst->pid, RLIMIT_NPROC, NULL, old) != 0) {
			return (-1);
		}
		one.rlim_max = old->rlim_max;
		return (prlimit(inst->pid, RLIMIT_NPROC, &one, NULL));
	}
	if (access("/sys/fs/cgroup/pids/cgroup.procs", W_OK) == 0) {
		snprintf(faults_cgroup_parent, sizeof faults_cgroup_parent,
		         "/sys/fs/cgroup/pids");
	} else if (access("/sys/fs/cgroup/cgroup.controllers", R_OK) == 0) {
		snprintf(faults_cgroup_parent, sizeof faults_cgroup_parent,
		         "/sys/fs/cgroup");
	} else {
		return (-1);
	}
	snprintf(faults_cgroup, sizeof faults_cgroup, "%s/jobd-faults.%d",
	         faults_cgroup_parent, (int)getpid());
	if (mkdir(faults_cgroup, 0755) != 0) {
		faults_cgroup[0] = '\0';
		return (-1);
	}
	snprintf(path, sizeof path, "%s/pids.max", faults_cgroup);
	if (access(path, W_OK) != 0) {
		faults_cgroup_remove(); /* cgroup v2 without the pids controller
		                         */
		return (-1);
	}
	snprintf(path, sizeof path, "%s/cgroup.procs", faults_cgroup);
	snprintf(pid, sizeof pid, "%d", (int)inst->pid);
	if (faults_write_file(path, pid) != 0) {
		fail_msg("cannot move jobd into %s: %s", faults_cgroup,
		         strerror(errno));
	}
	snprintf(path, sizeof path, "%s/pids.current", faults_cgroup);
	if ((current = harness_read_file(path, NULL)) == NULL) {
		fail_msg("cannot read %s", path);
	}
	snprintf(path, sizeof path, "%s/pids.max", faults_cgroup);
	if (faults_write_file(path, current) != 0) {
		fail_msg("cannot write %s: %s", path, strerror(errno));
	}
	free(current);
	return (0);
}

static void
faults_fork_unlimit(struct jobd_inst *inst, const struct rlimit *old)
{
	char path[PATH_MAX + 32];

	if (geteuid() != 0) {
		assert_int_equal(prlimit(inst->pid, RLIMIT_NPROC, old, NULL),
		                 0);
		return;
	}
	snprintf(path, sizeof path, "%s/pids.max", faults_cgroup);
	if (faults_write_file(path, "max") != 0) {
		fail_msg("cannot write %s: %s", path, strerror(errno));
	}
}

/*
 * fork fails in jobd: the job stays queued (not failed, not lost), jobd
 * answers and does not spin while it waits to try again, and once forks
 * work again the job starts and succeeds.
 */
static void
test_fork_fails(void **state)
{
	struct jobd_inst *inst = *state;
	struct rlimit old;
	char text[96];
	int64_t id, cpu, t0;
	json_t *job;
	int tries;

	harness_start(inst, NULL);
	if (faults_fork_limit(inst, &old) != 0) {
		faults_skip("no pids cgroup to limit jobd's forks");
	}
	id = harness_submit(inst, "--", "echo", "forked", NULL);
	snprintf(text, sizeof text, "cannot start job %lld; it stays queued",
	         (long long)id);
	cpu = faults_cpu_ms(inst->pid);
	t0 = harness_now_ms();
	/* A real wait of 1 s, during which jobd keeps failing to fork. */
	assert_int_equal(harness_wait_within(inst, &id, 1, 1), 124);
	cpu = faults_cpu_ms(inst->pid) - cpu;
	harness_ping(inst);
	tries = faults_log_count(inst, text);
	t0 = harness_now_ms() - t0;
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "queued");
	harness_assert_int(job, "attempt", 0);
	harness_assert_null(job, "reason");
	json_decref(job);
	/* Once at submit, then once per JOBD_SPAWN_RETRY_MS (1 s). */
	if (tries < 1 || tries > 2 + t0 / 1000) {
		fail_msg("jobd tried %d times to start job %lld in %lld ms "
		         "(log: %s)",
		         tries, (long long)id, (long long)t0, inst->log);
	}
	if (cpu >= FAULTS_CPU_MAX_MS) {
		fail_msg("jobd used %lld ms of CPU in 1 s of failing forks",
		         (long long)cpu);
	}

	faults_fork_unlimit(inst, &old);
	assert_int_equal(harness_wait(inst, id), 0);
	faults_assert_logs(inst, id, "forked\n");
	faults_cgroup_remove();
	faults_stop_clean(inst);
}

/* Submit a job whose output file (stdout or stderr) is a directory. */
static void
faults_output_blocked(struct jobd_inst *inst, int64_t next, const char *ext)
{
	char path[PATH_MAX + 64];
	int64_t id;
	json_t *job;
	const char *reason;

	snprintf(path, sizeof path, "%s/out/%lld.%s", inst->state,
	         (long long)next, ext);
	assert_int_equal(mkdir(path, 0700), 0);
	id = harness_submit(inst, "--", "echo", "never", NULL);
	assert_int_equal(id, next);
	assert_int_equal(harness_wait(inst, id), 1);
	job = harness_status(inst, id);
	harness_assert_str(job, "state", "failed");
	reason = json_string_value(json_object_get(job, "reason"));
	if (reason == NULL || strstr(reason, path) == NULL) {
		harness_msg("reason does not name %s\n", path);
		harness_assert_str(job, "reason", path);
	}
	json_decref(job);
}

/*
 * A job's output file cannot be created (a directory has its name): the
 * job ends failed with a reason naming the file; jobd runs on and the
 * next job is fine.
 */
static void
test_output_file_unwritable(void **state)
{
	struct jobd_inst *inst = *state;
	int64_t first, good;

	harness_start(inst, NULL);
	first = harness_submit(inst, "--", "true", NULL);
	assert_int_equal(harness_wait(inst, first), 0);
	faults_output_blocked(inst, first + 1, "out");
	faults_output_blocked(inst, first + 2, "err");
	harness_ping(inst);
	good = harness_submit(inst, "--", "echo", "fine", NULL);
	assert_int_equal(harness_wait(inst, good), 0);
	faults_assert_logs(inst, good, "fine\n");
	faults_stop_clean(inst);
}

/* Write len bytes at offset of path (which exists). */
static void
faults_patch(const char *path, off_t offset, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || pwrite(fd, buf, len, offset) != (ssize_t)len) {
		fail_msg("write %s: %s", path, strerror(errno));
	}
	close(fd);
}

static void
faults_write_whole(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
		fail_msg("write %s: %s", path, strerror(errno));
	}
	close(fd);
}

/* len bytes that are not a database header, the same every run. */
static void
faults_garbage(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245 + 12345;
		buf[i] = (unsigned char)(seed >> 16);
	}
	buf[0] = 0xff;
}

/*
 * Start jobd on the folder of inst, which holds a bad database: it must
 * exit non-zero before it is ready, say why on stderr (naming the file and
 * what), and leave the file byte for byte as it was, with no write-ahead
 * log holding changes beside it.
 */
static void
faults_refused(struct jobd_inst *inst, const char *what, const char *says)
{
	char db[PATH_MAX * 2], side[PATH_MAX * 2 + 16], *before, *after;
	const char *argv[] = { JOBD_PATH,     "--socket",  inst->url,
		               "--state-dir", inst->state, NULL };
	struct harness_proc p;
	size_t len_before, len_after;
	struct stat st;
	int code;

	snprintf(db, sizeof db, "%s/jobd.db", inst->state);
	before = harness_read_file(db, &len_before);
	assert_non_null(before);
	harness_proc_start(&p, argv, NULL);
	code = harness_proc_finish(&p, HARNESS_READY_MS);
	if (code == 0 || strstr(p.err, db) == NULL ||
	    strstr(p.err, says) == NULL) {
		harness_msg("jobd on %s: exit %d, expected non-zero and '%s' "
		            "and the file named on stderr; stderr:\n%s\n",
		            what, code, says, p.err);
		harness_proc_free(&p);
		fail();
	}
	harness_proc_free(&p);
	after = harness_read_file(db, &len_after);
	assert_non_null(after);
	if (len_after != len_before || memcmp(before, after, len_before) != 0) {
		fail_msg("jobd changed the database on %s (%zu bytes, then "
		         "%zu)",
		         what, len_before, len_after);
	}
	free(before);
	free(after);
	for (int i = 0; i < 2; i++) {
		snprintf(side, sizeof side, "%s%s", db,
		         i == 0 ? "-wal" : "-journal");
		if (stat(side, &st) == 0 && st.st_size > 0) {
			fail_msg(
			    "jobd left %s (%lld bytes) beside the database "
			    "on %s",
			    side, (long long)st.st_size, what);
		}
	}
}

/*
 * A corrupt database, or one of a newer schema, stops jobd at start with a
 * clear message naming the file, and the file is left exactly as it was;
 * the good database, put back, still holds the jobs.
 */
static void
test_bad_database(void **state)
{
	struct jobd_inst *inst = *state;
	char db[PATH_MAX * 2], says[64];
	unsigned char junk[8192], version[4] = { 0, 0, 0, FAULTS_SCHEMA_NEW };
	char *good;
	size_t good_len;
	int64_t id;

	harness_start(inst, NULL);
	id = harness_submit(inst, "--", "echo", "kept", NULL);
	assert_int_equal(harness_wait(inst, id), 0);
	faults_stop_clean(inst);
	snprintf(db, sizeof db, "%s/jobd.db", inst->state);
	good = harness_read_file(db, &good_len);
	assert_non_null(good);
	assert_true(good_len >= 3 * 4096);
	assert_memory_equal(good, "SQLite format 3", 16);

	faults_garbage(junk, 100, 1);
	faults_patch(db, 0, junk, 100);
	faults_refused(inst, "garbage over its first 100 bytes", "damaged");

	faults_garbage(junk, sizeof junk, 2);
	faults_write_whole(db, (const char *)junk, sizeof junk);
	faults_refused(inst, "a file of random bytes", "damaged");

	/* The header is sound; the schema after it on page 1 is not. */
	faults_write_whole(db, good, good_len);
	faults_garbage(junk, 3000, 3);
	faults_patch(db, 100, junk, 3000);
	faults_refused(inst, "a garbled schema", "damaged");

	/* The header and schema are sound; a b-tree page is not. */
	faults_write_whole(db, good, good_len);
	faults_garbage(junk, 4096, 4);
	faults_patch(db, 2 * 4096, junk, 4096);
	faults_refused(inst, "a garbled page", "damaged");

	/* PRAGMA user_version lives at offset 60 of the header. */
	faults_write_whole(db, good, good_len);
	faults_patch(db, 60, version, sizeof version);
	snprintf(says, sizeof says, "schema version %d", FAULTS_SCHEMA_NEW);
	faults_refused(inst, "a newer schema version", says);

	faults_write_whole(db, good, good_len);
	free(good);
	harness_restart(inst);
	faults_assert_state(inst, id, "succeeded");
	faults_assert_logs(inst, id, "kept\n");
	faults_stop_clean(inst);
}

/* A plain AF_UNIX connection to jobd's socket, no nng. */
static int
faults_connect(struct jobd_inst *inst)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s",
	         inst->url + strlen("ipc://"));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		fail_msg("connect %s: %s", sa.sun_path, strerror(errno));
	}
	return (fd);
}

static void
faults_send(int fd, const void *buf, size_t len)
{
	if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
		fail_msg("send: %s", strerror(errno));
	}
}

/* The SP handshake of a REQ peer (protocol 0x30), as nng's ipc sends it. */
static const unsigned char faults_req_hello[8] = {
	0, 'S', 'P', 0, 0, 0x30, 0, 0
};

/*
 * jobd's side of the handshake (REP, 0x31) must arrive on fd: nng really
 * took the connection, and has not closed it.
 */
static void
faults_expect_hello(int fd)
{
	static const unsigned char rep[8] = { 0, 'S', 'P', 0, 0, 0x31, 0, 0 };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	unsigned char buf[8];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof buf) {
		n = -1;
		if (poll(&pfd, 1, HARNESS_EVENT_MS) == 1) {
			n = recv(fd, buf + got, sizeof buf - got, 0);
		}
		if (n <= 0) {
			fail_msg("no SP handshake from jobd");
		}
		got += (size_t)n;
	}
	assert_memory_equal(buf, rep, sizeof rep);
}

/* The connection must still be open: nothing to read, no hang-up. */
static void
faults_expect_open(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 0) != 0) {
		fail_msg("jobd sent something or hung up (revents 0x%x)",
		         pfd.revents);
	}
}

/*
 * jobd answers others promptly: a ping, then a submit and its wait, well
 * within nng's 10 s handshake timeout (a jobd stuck on a client would
 * not answer at all).
 */
static void
faults_responsive(struct jobd_inst *inst)
{
	int64_t t0 = harness_now_ms(), id;

	harness_ping(inst);
	id = harness_submit(inst, "--", "true", NULL);
	assert_int_equal(harness_wait(inst, id), 0);
	if (harness_now_ms() - t0 > FAULTS_PROMPT_MS) {
		fail_msg("a ping, a submit and its wait took %lld ms",
		         (long long)(harness_now_ms() - t0));
	}
}

/* A REQ frame: type 1, the 64-bit length, the request id, then body. */
static size_t
faults_frame(unsigned char *buf, uint32_t reqid, const char *body)
{
	size_t len = strlen(body) + 4;

	buf[0] = 1;
	for (int i = 0; i < 8; i++) {
		buf[1 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	}
	buf[9] = (unsigned char)(0x80 | (reqid >> 24));
	buf[10] = (unsigned char)(reqid >> 16);
	buf[11] = (unsigned char)(reqid >> 8);
	buf[12] = (unsigned char)reqid;
	memcpy(buf + 13, body, strlen(body));
	return (13 + strlen(body));
}

/*
 * Clients that stop half-way and stay connected: one that sends nothing,
 * one that sends half the SP handshake, one that sends the handshake and
 * half a frame header, one that promises a 100-byte message and sends 10
 * bytes. After each, jobd answers others promptly; at the end, with all
 * of them still connected, it stops cleanly on SIGTERM.
 */
static void
test_clients_stall(void **state)
{
	struct jobd_inst *inst = *state;
	unsigned char frame[64];
	int fd[4];

	harness_start(inst, NULL);

	fd[0] = faults_connect(inst);
	faults_expect_hello(fd[0]);
	faults_responsive(inst);

	fd[1] = faults_connect(inst);
	faults_send(fd[1], faults_req_hello, 4);
	faults_expect_hello(fd[1]);
	faults_responsive(inst);

	fd[2] = faults_connect(inst);
	faults_send(fd[2], faults_req_hello, sizeof faults_req_hello);
	faults_expect_hello(fd[2]);
	faults_frame(frame, 1, "{\"v\":1,\"op\":\"ping\"}");
	faults_send(fd[2], frame, 5);
	faults_responsive(inst);

	fd[3] = faults_connect(inst);
	faults_send(fd[3], faults_req_hello, sizeof faults_req_hello);
	faults_expect_hello(fd[3]);
	memset(frame, 0, sizeof frame);
	frame[0] = 1;
	frame[8] = 100;
	memcpy(frame + 9, "\x80\0\0\1{\"v\":1,", 10);
	faults_send(fd[3], frame, 9 + 10);
	faults_responsive(inst);

	for (int i = 0; i < 4; i++) {
		faults_expect_open(fd[i]);
	}
	faults_stop_clean(inst);
	for (int i = 0; i < 4; i++) {
		close(fd[i]);
	}
}

/* FAULTS_IDLE_CONNS connections that never send a byte, all at once. */
static void
test_clients_many_idle(void **state)
{
	struct jobd_inst *inst = *state;
	int fd[FAULTS_IDLE_CONNS];

	harness_start(inst, NULL);
	for (int i = 0; i < FAULTS_IDLE_CONNS; i++) {
		fd[i] = faults_connect(inst);
	}
	for (int i = 0; i < FAULTS_IDLE_CONNS; i++) {
		faults_expect_hello(fd[i]);
	}
	faults_responsive(inst);
	faults_responsive(inst);
	for (int i = 0; i < FAULTS_IDLE_CONNS; i++) {
		faults_expect_open(fd[i]);
	}
	faults_stop_clean(inst);
	for (int i = 0; i < FAULTS_IDLE_CONNS; i++) {
		close(fd[i]);
	}
}

/*
 * A client sends FAULTS_FLOOD requests and never reads a reply: its
 * replies back up (in the kernel, then in nng's queue for that pipe, then
 * are dropped), and nobody else waits for them.
 */
static void
test_client_never_reads(void **state)
{
	struct jobd_inst *inst = *state;
	unsigned char frame[64];
	size_t len;
	int fd;

	harness_start(inst, NULL);
	fd = faults_connect(inst);
	faults_send(fd, faults_req_hello, sizeof faults_req_hello);
	for (uint32_t i = 1; i <= FAULTS_FLOOD; i++) {
		len = faults_frame(frame, i, "{\"v\":1,\"op\":\"ping\"}");
		faults_send(fd, frame, len);
	}
	faults_responsive(inst);
	faults_stop_clean(inst);
	close(fd);
}

/*
 * Read one frame from jobd on fd (after its handshake): returns the
 * request id it answers, with the body (NUL-terminated) in buf.
 */
static uint32_t
faults_read_reply(int fd, char *buf, size_t cap)
{
	unsigned char head[13];
	uint64_t len = 0;
	size_t got = 0, want = sizeof head;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	while (got < want) {
		n = -1;
		if (poll(&pfd, 1, HARNESS_EVENT_MS) == 1) {
			n = recv(fd,
			         got < sizeof head ? (char *)head + got
			                           : buf + got - sizeof head,
			         (got < sizeof head ? sizeof head : want) - got,
			         0);
		}
		if (n <= 0) {
			fail_msg("no reply from jobd");
		}
		got += (size_t)n;
		if (got == sizeof head) {
			assert_int_equal(head[0], 1);
			for (int i = 0; i < 8; i++) {
				len = len << 8 | head[1 + i];
			}
			assert_true(len >= 4 && len - 4 < cap);
			want = sizeof head + (size_t)len - 4;
		}
	}
	buf[want - sizeof head] = '\0';
	return ((uint32_t)(head[9] & 0x7f) << 24 | (uint32_t)head[10] << 16 |
	        (uint32_t)head[11] << 8 | head[12]);
}

/*
 * A raw REQ client that parks a wait (body) and then, on the same
 * connection, sends a ping: the ping's reply comes back while the wait
 * stays unanswered, so the wait is parked for sure. Returns the
 * connection, still open.
 */
static int
faults_park_raw(struct jobd_inst *inst, const char *body)
{
	unsigned char frame[256];
	char reply[512];
	int fd = faults_connect(inst);

	faults_send(fd, faults_req_hello, sizeof faults_req_hello);
	faults_expect_hello(fd);
	faults_send(fd, frame, faults_frame(frame, 1, body));
	faults_send(fd, frame,
	            faults_frame(frame, 2, "{\"v\":1,\"op\":\"ping\"}"));
	if (faults_read_reply(fd, reply, sizeof reply) != 2 ||
	    strstr(reply, "\"ok\":true") == NULL) {
		fail_msg("expected the ping's reply first, got '%s'", reply);
	}
	faults_expect_open(fd);
	return (fd);
}

/* Does the process have a socket open (jobctl: connected to jobd)? */
static int
faults_has_socket(pid_t pid)
{
	char path[64], link[64];
	struct dirent *de;
	DIR *d;
	int found = 0;
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL) {
		return (0);
	}
	while (!found && (de = readdir(d)) != NULL) {
		char fdpath[64 + 256];

		snprintf(fdpath, sizeof fdpath, "%s/%s", path, de->d_name);
		n = readlink(fdpath, link, sizeof link - 1);
		found =
		    n > 0 && (link[n] = '\0', strncmp(link, "socket:", 7) == 0);
	}
	closedir(d);
	return (found);
}

/* Kill a started process with SIGKILL and reap it. */
static void
faults_proc_kill(struct harness_proc *p)
{
	int status;

	kill(p->pid, SIGKILL);
	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR) {
		continue;
	}
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(p->out_fd);
	close(p->err_fd);
	harness_proc_free(p);
}

/*
 * Clients that go away while their wait is parked in jobd: one whose job
 * then ends, one whose timeout then passes, one still parked when jobd
 * stops (raw clients: the wait is known to be parked when they close),
 * and a jobctl wait killed with SIGKILL once connected. jobd answers
 * others all along, drops the replies nobody reads, and exits 0 on
 * SIGTERM with nothing leaked.
 */
static void
test_clients_gone_mid_wait(void **state)
{
	struct jobd_inst *inst = *state;
	struct harness_proc w;
	char body[128], x[24];
	int64_t blocker, later, deadline;

	/* One slot for the blocker, one for faults_responsive's jobs. */
	harness_start(inst, "--parallel", "2", NULL);
	blocker = harness_blocker(inst);
	/* A job that will not end while the test runs. */
	later = harness_submit(inst, "--in", "1h", "--", "true", NULL);

	snprintf(body, sizeof body, "{\"v\":1,\"op\":\"wait\",\"ids\":[%lld]}",
	         (long long)blocker);
	close(faults_park_raw(inst, body));
	faults_responsive(inst);
	snprintf(body, sizeof body,
	         "{\"v\":1,\"op\":\"wait\",\"ids\":[%lld],\"timeout_ms\":1000}",
	         (long long)blocker);
	close(faults_park_raw(inst, body));
	faults_responsive(inst);
	snprintf(body, sizeof body, "{\"v\":1,\"op\":\"wait\",\"ids\":[%lld]}",
	         (long long)later);
	close(faults_park_raw(inst, body));
	faults_responsive(inst);

	harness_jobctl_start(inst, &w, "wait", HARNESS_ID(x, blocker), NULL);
	deadline = harness_now_ms() + HARNESS_EVENT_MS;
	while (!faults_has_socket(w.pid)) {
		if (harness_now_ms() > deadline) {
			fail_msg("'%s' did not connect", w.what);
		}
		harness_ping(inst);
	}
	harness_ping(inst);
	faults_proc_kill(&w);
	faults_responsive(inst);

	/* Past the 1 s deadline of the second: its timer fires unheard. */
	assert_int_equal(harness_wait_within(inst, &blocker, 1, 2), 124);
	faults_assert_state(inst, blocker, "running");
	/* The job ends: the replies to the first and the jobctl go nowhere. */
	harness_gate_release(inst);
	assert_int_equal(harness_wait(inst, blocker), 0);
	faults_responsive(inst);
	faults_assert_state(inst, later, "scheduled");
	/* The third is still parked when jobd stops. */
	faults_stop_clean(inst);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, faults_setup, faults_teardown)
		T(test_disk_full),
		T(test_disk_full_job_ends),
		T(test_file_size_limit),
		T(test_state_readonly),
		T(test_state_readonly_jobs_start),
		T(test_fork_fails),
		T(test_output_file_unwritable),
		T(test_bad_database),
		T(test_clients_stall),
		T(test_clients_many_idle),
		T(test_client_never_reads),
		T(test_clients_gone_mid_wait),
#undef T
	};

	/*
	 * Mounts stay private to this program and its children (jobd,
	 * jobctl, the jobs). unshare needs a single thread: first thing.
	 */
	if (geteuid() != 0) {
		snprintf(faults_ns_why, sizeof faults_ns_why, "not root");
	} else if (unshare(CLONE_NEWNS) != 0) {
		snprintf(faults_ns_why, sizeof faults_ns_why,
		         "unshare(CLONE_NEWNS): %s", strerror(errno));
	} else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		snprintf(faults_ns_why, sizeof faults_ns_why,
		         "making / private: %s", strerror(errno));
	} else {
		faults_ns_ready = 1;
	}
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
