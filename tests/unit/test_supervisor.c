/*
 * jobd-supervisor: the real binary (JOBD_SUPERVISOR_PATH), started the way
 * jobd starts it (empty signal mask, default dispositions, fds >= 3 closed),
 * in a fresh temporary state folder per test. Every wait is bounded and
 * blocks on a real event: the supervisor's exit on a pidfd, a file's change
 * on inotify.
 */
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "outcome.h"

#ifndef JOBD_SUPERVISOR_PATH
#error "JOBD_SUPERVISOR_PATH must name the jobd-supervisor binary"
#endif

#define WAIT_MS 10000 /* bound on every wait; a pass takes milliseconds */
#define JOB_ID  1

extern char **environ;

struct fixture {
	char state[64];
	char log[PATH_MAX]; /* the supervisor's stderr */
	char out[PATH_MAX]; /* the job's stdout and stderr */
	char err[PATH_MAX];
	char run[PATH_MAX];
	pid_t sup; /* a supervisor not yet waited for, or 0 */
};

static int reap_bounded(pid_t, int *);

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (f == NULL)
		return (-1);
	if (fixture_mkstate(f->state, sizeof f->state, "sup") == -1) {
		free(f);
		return (-1);
	}
	snprintf(f->log, sizeof f->log, "%s/supervisor.log", f->state);
	outcome_path(f->out, sizeof f->out, f->state, JOB_ID, OUTCOME_STDOUT);
	outcome_path(f->err, sizeof f->err, f->state, JOB_ID, OUTCOME_STDERR);
	outcome_path(f->run, sizeof f->run, f->state, JOB_ID, OUTCOME_RUN);
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	union sigval v = { .sival_int = SIGKILL };
	int rv;

	/* A failed test may leave a supervisor and its job running. */
	if (f->sup > 0) {
		sigqueue(f->sup, SIGUSR1, v);
		if (reap_bounded(f->sup, NULL) == -1) {
			kill(f->sup, SIGKILL);
			waitpid(f->sup, NULL, 0);
		}
	}
	rv = fixture_rmtree(f->state);
	free(f);
	return (rv);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/*
 * Start the supervisor for job JOB_ID with the given arguments after
 * --id/--state-dir (NULL-terminated) and environment (NULL: ours).
 */
static pid_t
spawn_sup(struct fixture *f, const char *const *args, char *const *envp)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char *argv[64], id[32], *noenv[] = { NULL };
	pid_t pid;
	size_t n = 0;
	int envfd;

	snprintf(id, sizeof id, "%d", JOB_ID);
	argv[n++] = (char *)JOBD_SUPERVISOR_PATH;
	argv[n++] = (char *)"--id";
	argv[n++] = id;
	argv[n++] = (char *)"--state-dir";
	argv[n++] = (char *)f->state;
	/* The job's environment travels on a memfd, as jobd sends it. */
	argv[n++] = (char *)"--env-fd";
	argv[n++] = (char *)"3";
	envfd = memfd_create("env", MFD_CLOEXEC);
	assert_true(envfd >= 0);
	for (envp = envp != NULL ? envp : environ; *envp != NULL; envp++)
		assert_int_equal(write(envfd, *envp, strlen(*envp) + 1),
		                 (ssize_t)(strlen(*envp) + 1));
	assert_int_equal(lseek(envfd, 0, SEEK_SET), 0);
	while (*args != NULL && n < 63)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;

	sigemptyset(&none);
	sigfillset(&all);
	assert_int_equal(posix_spawnattr_init(&attr), 0);
	assert_int_equal(
	    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	                                        POSIX_SPAWN_SETSIGDEF),
	    0);
	assert_int_equal(posix_spawnattr_setsigmask(&attr, &none), 0);
	assert_int_equal(posix_spawnattr_setsigdefault(&attr, &all), 0);
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(
	    posix_spawn_file_actions_addopen(
	        &fa, 2, f->log, O_WRONLY | O_CREAT | O_APPEND, 0600),
	    0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, envfd, 3), 0);
	assert_int_equal(posix_spawn_file_actions_addclosefrom_np(&fa, 4), 0);
	assert_int_equal(posix_spawn(&pid, argv[0], &fa, &attr, argv, noenv),
	                 0);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(envfd);
	f->sup = pid;
	return (pid);
}

/*
 * Wait at most WAIT_MS for pid to exit, blocking on its pidfd, and reap it.
 * Returns 0 (status in *status), or -1 if it is still running.
 */
static int
reap_bounded(pid_t pid, int *status)
{
	struct pollfd pfd;
	int rv;

	if ((pfd.fd = pidfd_open(pid, 0)) == -1)
		return (-1);
	pfd.events = POLLIN;
	do
		rv = poll(&pfd, 1, WAIT_MS);
	while (rv == -1 && errno == EINTR);
	close(pfd.fd);
	if (rv != 1 || waitpid(pid, status, 0) != pid)
		return (-1);
	return (0);
}

/* Wait for the supervisor; returns its wait status. */
static int
wait_sup(struct fixture *f)
{
	int status;

	if (reap_bounded(f->sup, &status) == -1)
		fail_msg("the supervisor did not exit within %d ms", WAIT_MS);
	f->sup = 0;
	return (status);
}

/* Wait for the supervisor; it must exit with code. */
static void
finish_sup(struct fixture *f, int code)
{
	int status = wait_sup(f);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != code)
		fail_msg("supervisor wait status %#x, expected exit %d", status,
		         code);
}

/* Run the supervisor to its end; it must exit with code. */
static void
run_sup(struct fixture *f, const char *const *args, char *const *envp, int code)
{
	spawn_sup(f, args, envp);
	finish_sup(f, code);
}

/* The whole file (NUL-terminated) into buf; returns its length or -1. */
static ssize_t
read_file(const char *path, char *buf, size_t size)
{
	ssize_t n, len = 0;
	int fd;

	buf[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	while ((size_t)len < size - 1 &&
	       (n = read(fd, buf + len, size - 1 - (size_t)len)) > 0)
		len += n;
	close(fd);
	buf[len] = '\0';
	return (len);
}

static void
assert_file_equal(const char *path, const char *want)
{
	char buf[4096];

	assert_true(read_file(path, buf, sizeof buf) >= 0);
	assert_string_equal(buf, want);
}

static void
assert_file_contains(const char *path, const char *want)
{
	char buf[4096];

	assert_true(read_file(path, buf, sizeof buf) >= 0);
	if (strstr(buf, want) == NULL)
		fail_msg("%s: '%s' not in '%s'", path, want, buf);
}

/*
 * Block (bounded) until the file at path holds want and at least lines
 * newlines. Watches the file's folder, set up before the first look, so no
 * change is missed.
 */
static void
wait_file(const struct fixture *f, const char *path, const char *want,
          int lines)
{
	char folder[PATH_MAX], buf[4096], log[4096], *p;
	char ev[4096] __attribute__((aligned(8)));
	int64_t deadline = mono_ms() + WAIT_MS, left;
	struct pollfd pfd;
	int n;

	snprintf(folder, sizeof folder, "%s", path);
	*strrchr(folder, '/') = '\0';
	assert_true((pfd.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) >= 0);
	assert_true(inotify_add_watch(pfd.fd, folder,
	                              IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE |
	                                  IN_MOVED_TO) >= 0);
	pfd.events = POLLIN;
	for (;;) {
		if (read_file(path, buf, sizeof buf) >= 0 &&
		    strstr(buf, want) != NULL) {
			for (n = 0, p = buf; (p = strchr(p, '\n')) != NULL; p++)
				n++;
			if (n >= lines)
				break;
		}
		if ((left = deadline - mono_ms()) <= 0) {
			close(pfd.fd);
			read_file(f->log, log, sizeof log);
			fail_msg("'%s' (%d lines) never appeared in %s ('%s'); "
			         "supervisor log: '%s'",
			         want, lines, path, buf, log);
		}
		if (poll(&pfd, 1, (int)left) == 1) {
			while (read(pfd.fd, ev, sizeof ev) > 0)
				;
		}
	}
	close(pfd.fd);
}

static void
wait_file_contains(const struct fixture *f, const char *path, const char *want)
{
	wait_file(f, path, want, 0);
}

static void
read_outcome(const struct fixture *f, struct outcome *o)
{
	if (outcome_read(f->state, JOB_ID, o) == -1)
		fail_msg("no outcome: %s", strerror(errno));
	assert_true(o->started_at > 0);
	assert_true(o->finished_at >= o->started_at);
}

/* Is the run file locked by someone else? */
static int
run_locked(const struct fixture *f)
{
	int fd, rv;

	assert_true((fd = open(f->run, O_RDONLY | O_CLOEXEC)) >= 0);
	rv = flock(fd, LOCK_EX | LOCK_NB) == -1;
	if (rv)
		assert_int_equal(errno, EWOULDBLOCK);
	close(fd);
	return (rv);
}

/* A running job: wait for its first line, check the run file. */
static long
job_started(const struct fixture *f, pid_t sup)
{
	char buf[64], want[32];
	long job;

	wait_file(f, f->out, "", 1);
	assert_true(read_file(f->out, buf, sizeof buf) > 0);
	job = strtol(buf, NULL, 10);
	assert_true(job > 0);
	assert_int_equal(kill((pid_t)job, 0), 0);

	snprintf(want, sizeof want, "%ld\n", (long)sup);
	assert_file_equal(f->run, want);
	assert_true(run_locked(f));
	return (job);
}

/* A job that prints its pid and sleeps until it is signalled. */
static const char *const sleep_job[] = {
	"--cwd", "/", "--", "sh", "-c", "echo $$; exec sleep 30", NULL
};

/* Start the supervisor with args, its pid in *sup; see job_started. */
static long
start_job(struct fixture *f, const char *const *args, pid_t *sup)
{
	*sup = spawn_sup(f, args, NULL);
	return (job_started(f, *sup));
}

/* Wait for the supervisor to exit 0 and read the outcome into o. */
static void
end_sup(struct fixture *f, struct outcome *o)
{
	finish_sup(f, 0);
	read_outcome(f, o);
}

/* Run the supervisor to an exit 0 and read the outcome into o. */
static void
run_outcome(struct fixture *f, const char *const *args, char *const *envp,
            struct outcome *o)
{
	run_sup(f, args, envp, 0);
	read_outcome(f, o);
}

/* Have the supervisor send sig to the job, then end_sup. */
static void
signal_job(struct fixture *f, pid_t sup, int sig, struct outcome *o)
{
	union sigval v = { .sival_int = sig };

	assert_int_equal(sigqueue(sup, SIGUSR1, v), 0);
	end_sup(f, o);
}

static void
assert_gone(long pid)
{
	errno = 0;
	if (kill((pid_t)pid, 0) != -1 || errno != ESRCH)
		fail_msg("process %ld is still there", pid);
}

static void
test_argv_job(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--cwd", f->state,
		               "--",    "sh",
		               "-c",    "echo out; echo err >&2; exit 3",
		               NULL };
	struct outcome o;
	struct stat st;
	mode_t mask;

	run_outcome(f, args, NULL, &o);
	assert_int_equal(o.exit_code, 3);
	assert_int_equal(o.signal, 0);
	assert_string_equal(o.reason, "");
	assert_file_equal(f->out, "out\n");
	assert_file_equal(f->err, "err\n");
	mask = umask(0);
	umask(mask); /* the supervisor's, inherited from us */
	assert_int_equal(stat(f->out, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640 & ~mask);

	/* The run file stays (jobd removes it) and is no longer locked. */
	assert_false(run_locked(f));
}

static void
test_shell_job(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--cwd", f->state, "--shell",
		               "echo a b | tr ab xy; pwd; exit 5", NULL };
	struct outcome o;
	char want[PATH_MAX];

	run_outcome(f, args, NULL, &o);
	assert_int_equal(o.exit_code, 5);
	assert_int_equal(o.signal, 0);
	snprintf(want, sizeof want, "x y\n%s\n", f->state);
	assert_file_equal(f->out, want);
	assert_file_equal(f->err, "");
}

static void
test_killed_by_signal(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--cwd", "/",          "--", "sh",
		               "-c",    "kill -9 $$", NULL };
	struct outcome o;

	run_outcome(f, args, NULL, &o);
	assert_int_equal(o.exit_code, -1);
	assert_int_equal(o.signal, 9);
}

static void
test_no_such_program(void **state)
{
	struct fixture *f = *state;
	const char *abs[] = {
		"--cwd", "/", "--", "/nonexistent/prog", "a", NULL
	};
	const char *rel[] = { "--cwd", "/", "--", "jobd-no-such-program",
		              NULL };
	char *envp[] = { "PATH=/usr/bin:/bin", NULL };
	struct outcome o;

	run_outcome(f, abs, NULL, &o);
	assert_int_equal(o.exit_code, 127);
	assert_int_equal(o.signal, 0);
	assert_string_equal(o.reason, "cannot execute '/nonexistent/prog': No "
	                              "such file or directory");
	assert_file_equal(f->err, "jobd: /nonexistent/prog: No such file or "
	                          "directory\n");
	assert_file_equal(f->out, "");

	/* Looked up in the job's PATH. */
	run_outcome(f, rel, envp, &o);
	assert_int_equal(o.exit_code, 127);
	assert_string_equal(o.reason, "cannot execute 'jobd-no-such-program': "
	                              "No such file or directory");
}

static void
test_not_executable(void **state)
{
	struct fixture *f = *state;
	char prog[PATH_MAX];
	const char *args[] = { "--cwd", "/", "--", prog, NULL };
	struct outcome o;
	int fd;

	snprintf(prog, sizeof prog, "%s/data", f->state);
	assert_true((fd = open(prog, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >=
	            0);
	close(fd);
	run_outcome(f, args, NULL, &o);
	assert_int_equal(o.exit_code, 126);
	assert_non_null(strstr(o.reason, "Permission denied"));
}

static void
test_bad_cwd(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--cwd", "/nonexistent/dir", "--", "true",
		               NULL };
	struct outcome o;

	run_outcome(f, args, NULL, &o);
	assert_int_equal(o.exit_code, 127);
	assert_int_equal(o.signal, 0);
	assert_string_equal(o.reason, "cannot change directory to "
	                              "'/nonexistent/dir': No such file or "
	                              "directory");
	assert_file_equal(f->err, "jobd: cannot change directory to "
	                          "'/nonexistent/dir': No such file or "
	                          "directory\n");
}

static void
test_environment(void **state)
{
	struct fixture *f = *state;
	char *envp[] = { "PATH=/usr/bin:/bin", "JOBD_TEST=a b=c\tz",
		         "EMPTY=", NULL };
	const char *args[] = { "--cwd", "/", "--", "env", NULL };
	struct outcome o;

	run_outcome(f, args, envp, &o);
	assert_int_equal(o.exit_code, 0);
	/* Exactly the job's variables, in order: nothing added or removed. */
	assert_file_equal(f->out,
	                  "PATH=/usr/bin:/bin\nJOBD_TEST=a b=c\tz\nEMPTY=\n");
}

/* Own group and session, limits, umask, only fds 0-2, stdin at EOF. */
static void
test_job_setup(void **state)
{
	struct fixture *f = *state;
	const char *args[] = {
		"--cwd", "/", "--shell",
		"echo $$; cut -d' ' -f5,6 /proc/$$/stat; ulimit -n; umask;"
		" ls /proc/$$/fd; read x; echo read=$?",
		NULL
	};
	struct outcome o;
	struct rlimit rl;
	char buf[1024], want[1024];
	long job;
	pid_t sup;

	sup = spawn_sup(f, args, NULL);
	end_sup(f, &o);
	assert_int_equal(o.exit_code, 0);
	assert_true(read_file(f->out, buf, sizeof buf) > 0);
	job = strtol(buf, NULL, 10);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	snprintf(want, sizeof want,
	         "%ld\n%ld %ld\n%llu\n0022\n"
	         "0\n1\n2\nread=1\n",
	         job, job, (long)sup,
	         (unsigned long long)(rl.rlim_max < 1024 ? rl.rlim_max : 1024));
	assert_string_equal(buf, want);
}

static void
test_cancel_term(void **state)
{
	struct fixture *f = *state;
	struct outcome o;
	char status[PATH_MAX];
	pid_t sup;
	long job;

	job = start_job(f, sleep_job, &sup);
	/* No outcome while the job runs. */
	outcome_path(status, sizeof status, f->state, JOB_ID, OUTCOME_STATUS);
	assert_int_equal(access(status, F_OK), -1);

	signal_job(f, sup, SIGTERM, &o);
	assert_int_equal(o.exit_code, -1);
	assert_int_equal(o.signal, SIGTERM);
	assert_gone(job);
	assert_false(run_locked(f));
}

static void
test_cancel_escalates(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--cwd",
		               "/",
		               "--kill-after",
		               "200",
		               "--shell",
		               "trap '' TERM; echo $$; sleep 30 & echo $!; "
		               "wait; echo survived",
		               NULL };
	struct outcome o;
	pid_t sup;
	char buf[128];
	long job, bg;

	job = start_job(f, args, &sup);
	wait_file(f, f->out, "", 2); /* and the background pid */
	signal_job(f, sup, SIGTERM, &o);
	assert_int_equal(o.exit_code, -1);
	assert_int_equal(o.signal, SIGKILL);
	assert_file_contains(f->log, "sending SIGKILL");
	assert_true(read_file(f->out, buf, sizeof buf) > 0);
	assert_int_equal(sscanf(buf, "%ld\n%ld\n", &job, &bg), 2);
	assert_gone(job);
	assert_gone(bg); /* the whole group, TERM ignored or not */
}

/* SIGTERM to the supervisor itself is a cancel; SIGHUP is ignored. */
static void
test_supervisor_signals(void **state)
{
	struct fixture *f = *state;
	struct outcome o;
	pid_t sup;

	start_job(f, sleep_job, &sup);
	assert_int_equal(kill(sup, SIGHUP), 0);
	assert_int_equal(kill(sup, SIGTERM), 0);
	end_sup(f, &o);
	assert_int_equal(o.signal, SIGTERM);
}

/* SIGUSR1 without a valid signal in it is logged and ignored. */
static void
test_bad_forward_ignored(void **state)
{
	struct fixture *f = *state;
	union sigval v;
	struct outcome o;
	char want[64];
	pid_t sup;
	long job;

	job = start_job(f, sleep_job, &sup);

	snprintf(want, sizeof want, "ignoring SIGUSR1 from pid %ld",
	         (long)getpid());
	v.sival_int = 0;
	assert_int_equal(sigqueue(sup, SIGUSR1, v), 0);
	wait_file_contains(f, f->log, want);
	assert_int_equal(truncate(f->log, 0), 0);
	v.sival_int = SIGRTMIN;
	assert_int_equal(sigqueue(sup, SIGUSR1, v), 0);
	wait_file_contains(f, f->log, want);
	assert_int_equal(truncate(f->log, 0), 0);
	assert_int_equal(kill(sup, SIGUSR1), 0); /* no value at all */
	wait_file_contains(f, f->log, want);
	assert_int_equal(kill((pid_t)job, 0), 0);

	/* SIGKILL itself is forwarded as is. */
	signal_job(f, sup, SIGKILL, &o);
	assert_int_equal(o.signal, SIGKILL);
}

/* What the leader leaves behind in its group dies with it. */
static void
test_group_swept(void **state)
{
	struct fixture *f = *state;
	const char *args[] = {
		"--cwd", "/", "--shell",
		"sleep 300 & echo $!; sh -c 'sleep 301 & echo $!'", NULL
	};
	struct outcome o;
	char buf[128], *end;
	long child, grandchild;

	run_outcome(f, args, NULL, &o);
	assert_int_equal(o.exit_code, 0);
	assert_true(read_file(f->out, buf, sizeof buf) > 0);
	child = strtol(buf, &end, 10);
	grandchild = strtol(end, NULL, 10);
	assert_true(child > 0 && grandchild > 0);
	/* Dead and reaped: a zombie would still answer kill(pid, 0). */
	assert_gone(child);
	assert_gone(grandchild);
}

static void
test_lock_held(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--cwd", "/", "--", "true", NULL };
	struct outcome o;
	int fd;

	assert_true((fd = open(f->run, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) >=
	            0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	run_sup(f, args, NULL, 3);
	close(fd);
	errno = 0;
	assert_int_equal(outcome_read(f->state, JOB_ID, &o), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(access(f->out, F_OK), -1);
}

static void
test_stale_status_removed(void **state)
{
	struct fixture *f = *state;
	struct outcome o;
	pid_t sup;

	memset(&o, 0, sizeof o);
	o.exit_code = 99;
	assert_int_equal(outcome_write(f->state, JOB_ID, &o), 0);
	start_job(f, sleep_job, &sup);
	errno = 0;
	assert_int_equal(outcome_read(f->state, JOB_ID, &o), -1);
	assert_int_equal(errno, ENOENT);
	signal_job(f, sup, SIGTERM, &o);
	assert_int_equal(o.signal, SIGTERM);
}

static void
test_output_unwritable(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--cwd", "/",  "--",
		               "sh",    "-c", "echo ran > /dev/stderr",
		               NULL };
	char out[PATH_MAX + 8];
	struct outcome o;
	int fd;

	/* out/ is a file: works even as root, where chmod would not. */
	snprintf(out, sizeof out, "%s/out", f->state);
	assert_int_equal(rmdir(out), 0);
	assert_true((fd = open(out, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) >=
	            0);
	close(fd);

	run_outcome(f, args, NULL, &o);
	assert_int_equal(o.exit_code, -1);
	assert_int_equal(o.signal, 0);
	assert_non_null(strstr(o.reason, "cannot create output file"));
	assert_non_null(strstr(o.reason, f->out));
	assert_non_null(strstr(o.reason, "Not a directory"));
	assert_false(run_locked(f));
}

static void
test_usage(void **state)
{
	struct fixture *f = *state;
	static const char *const cases[][10] = {
		{ NULL },
		{ "--cwd", "/", NULL },
		{ "--cwd", "/", "--shell", "true", "--shell", "true", NULL },
		{ "--cwd", "/", "--shell", "true", "--", "true", NULL },
		{ "--cwd", "/", "--", NULL },
		{ "--cwd", "/", "true", NULL },
		{ "--cwd", "/", "--bogus", "--", "true", NULL },
		{ "--cwd", "/", "--uid", "0", "--", "true", NULL },
		{ "--cwd", "/", "--uid", "x", "--gid", "0", "--", "true",
		  NULL },
		{ "--cwd", "/", "--kill-after", "-1", "--", "true", NULL },
		{ "--cwd", "/", "--kill-after", "1s", "--", "true", NULL },
		{ "--cwd", "--", "true", NULL },
		{ "--cwd", "", "--", "true", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int st;

		spawn_sup(f, cases[i], NULL);
		st = wait_sup(f);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 2)
			fail_msg("case %zu: wait status %#x", i, st);
	}
	assert_int_equal(access(f->run, F_OK), -1);
	assert_file_contains(f->log, "usage: jobd-supervisor");
}

/* Read the job's pid, its first line of output, after the job has ended. */
static long
job_pid(const struct fixture *f)
{
	char buf[64];
	long job;

	assert_true(read_file(f->out, buf, sizeof buf) > 0);
	job = strtol(buf, NULL, 10);
	assert_true(job > 0);
	return (job);
}

/* A job still running at its timeout gets SIGTERM, group and all. */
static void
test_timeout_term(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--cwd",     "/",
		               "--timeout", "200",
		               "--",        "sh",
		               "-c",        "echo $$; sleep 30 & echo $!; wait",
		               NULL };
	struct outcome o;
	char buf[128];
	long job, bg;

	/* wait_sup's bound (WAIT_MS) is well under the job's 30 s. */
	spawn_sup(f, args, NULL);
	end_sup(f, &o);
	assert_int_equal(o.exit_code, -1);
	assert_int_equal(o.signal, SIGTERM);
	assert_string_equal(o.reason, "timeout");
	assert_true(o.finished_at - o.started_at >= 200);
	assert_file_contains(f->log, "timeout of 200 ms; sending SIGTERM");
	assert_true(read_file(f->out, buf, sizeof buf) > 0);
	assert_int_equal(sscanf(buf, "%ld\n%ld\n", &job, &bg), 2);
	assert_gone(job);
	assert_gone(bg);
	assert_false(run_locked(f));
}

/* A job that ignores the timeout's SIGTERM gets SIGKILL kill-after later. */
static void
test_timeout_escalates(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--cwd",
		               "/",
		               "--timeout",
		               "200",
		               "--kill-after",
		               "200",
		               "--shell",
		               "trap '' TERM; echo $$; sleep 30",
		               NULL };
	struct outcome o;

	spawn_sup(f, args, NULL);
	end_sup(f, &o);
	assert_int_equal(o.exit_code, -1);
	assert_int_equal(o.signal, SIGKILL);
	assert_string_equal(o.reason, "timeout");
	assert_true(o.finished_at - o.started_at >= 400);
	assert_file_contains(f->log, "sending SIGTERM");
	assert_file_contains(f->log, "sending SIGKILL");
	assert_gone(job_pid(f));
}

/* A job that ends before its timeout: its own end, no reason. */
static void
test_timeout_not_reached(void **state)
{
	struct fixture *f = *state;
	const char *code[] = { "--cwd", "/",  "--timeout", "30000", "--",
		               "sh",    "-c", "exit 4",    NULL };
	const char *sig[] = { "--cwd", "/",  "--timeout",  "30000", "--",
		              "sh",    "-c", "kill -9 $$", NULL };
	struct outcome o;
	char log[4096];

	run_outcome(f, code, NULL, &o);
	assert_int_equal(o.exit_code, 4);
	assert_int_equal(o.signal, 0);
	assert_string_equal(o.reason, "");

	run_outcome(f, sig, NULL, &o);
	assert_int_equal(o.exit_code, -1);
	assert_int_equal(o.signal, SIGKILL);
	assert_string_equal(o.reason, "");
	read_file(f->log, log, sizeof log); /* none at all is fine */
	assert_null(strstr(log, "timeout"));
}

/*
 * A cancel first keeps its own course: the timeout sends nothing more and
 * does not re-arm the escalation, but the job still counts as timed out.
 */
static void
test_timeout_after_cancel(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--cwd",
		               "/",
		               "--timeout",
		               "500",
		               "--kill-after",
		               "1000",
		               "--shell",
		               "trap '' TERM; echo $$; sleep 30",
		               NULL };
	struct outcome o;
	pid_t sup;
	long job;

	job = start_job(f, args, &sup);
	signal_job(f, sup, SIGTERM, &o);
	assert_int_equal(o.exit_code, -1);
	assert_int_equal(o.signal, SIGKILL);
	assert_string_equal(o.reason, "timeout");
	assert_file_contains(f->log,
	                     "timeout of 500 ms after it was signalled");
	assert_file_contains(f->log, "sending SIGKILL");
	assert_gone(job);
}

static void
test_timeout_usage(void **state)
{
	struct fixture *f = *state;
	static const char *const values[] = {
		"0", "-1", "abc", "", " 5", "5ms", "1.5", "9007199254740993"
	};
	const char *args[] = { "--cwd", "/",    "--timeout", NULL,
		               "--",    "true", NULL };
	const char *twice[] = { "--cwd", "/",  "--timeout", "5", "--timeout",
		                "5",     "--", "true",      NULL };
	const char *missing[] = { "--cwd", "/",         "--shell",
		                  "true",  "--timeout", NULL };
	size_t i;
	int st;

	for (i = 0; i < sizeof values / sizeof values[0]; i++) {
		args[3] = values[i];
		spawn_sup(f, args, NULL);
		st = wait_sup(f);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 2)
			fail_msg("--timeout '%s': wait status %#x", values[i],
			         st);
	}
	assert_file_contains(f->log,
	                     "--timeout must be a positive number of ms");
	run_sup(f, twice, NULL, 2);
	run_sup(f, missing, NULL, 2);
	assert_int_equal(access(f->run, F_OK), -1);
}

/* The first attempt starts the output afresh; a later one adds to it. */
static void
test_attempt_output(void **state)
{
	struct fixture *f = *state;
	const char *first[] = { "--cwd", "/",       "--attempt",
		                "1",     "--shell", "echo one; echo e1 >&2",
		                NULL };
	const char *second[] = { "--cwd", "/",       "--attempt",
		                 "2",     "--shell", "echo two; echo e2 >&2",
		                 NULL };
	const char *bad[] = {
		"--cwd", "/", "--attempt", "0", "--", "true", NULL
	};
	struct outcome o;

	run_outcome(f, first, NULL, &o);
	run_outcome(f, second, NULL, &o);
	assert_file_equal(f->out, "one\ntwo\n");
	assert_file_equal(f->err, "e1\ne2\n");
	run_outcome(f, first, NULL, &o);
	assert_file_equal(f->out, "one\n");
	run_sup(f, bad, NULL, 2);
}

/* As root: the job runs as the given uid/gid with that user's groups. */
static void
test_identity(void **state)
{
	struct fixture *f = *state;
	const char *nobody[] = { "--cwd",   "/",
		                 "--uid",   "65534",
		                 "--gid",   "65534",
		                 "--shell", "id -u; id -g; id -G",
		                 NULL };
	const char *nouser[] = { "--cwd",   "/",
		                 "--uid",   "54321",
		                 "--gid",   "54320",
		                 "--shell", "id -u; id -g; id -G",
		                 NULL };
	struct passwd *pw;
	struct outcome o;
	struct stat st;
	gid_t groups[256];
	char want[4096];
	int i, n = 256, len;

	if (geteuid() != 0 || (pw = getpwuid(65534)) == NULL)
		skip();
	assert_true(getgrouplist(pw->pw_name, 65534, groups, &n) >= 0);
	len = snprintf(want, sizeof want, "65534\n65534\n");
	for (i = 0; i < n; i++)
		len += snprintf(want + len, sizeof want - (size_t)len, "%s%lu",
		                i > 0 ? " " : "", (unsigned long)groups[i]);
	snprintf(want + len, sizeof want - (size_t)len, "\n");

	run_outcome(f, nobody, NULL, &o);
	assert_int_equal(o.exit_code, 0);
	assert_file_equal(f->out, want);
	assert_int_equal(stat(f->out, &st), 0);
	assert_int_equal(st.st_uid, 65534);
	assert_int_equal(st.st_gid, 65534);

	/* No passwd entry: the gid alone. */
	if (getpwuid(54321) != NULL)
		return;
	run_outcome(f, nouser, NULL, &o);
	assert_int_equal(o.exit_code, 0);
	assert_file_equal(f->out, "54321\n54320\n54320\n");

	/* The job's own permissions apply to its cwd. */
	nouser[1] = f->state; /* 0700 root */
	run_outcome(f, nouser, NULL, &o);
	assert_int_equal(o.exit_code, 127);
	assert_non_null(strstr(o.reason, "Permission denied"));
}

#define TEST(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_argv_job),
		TEST(test_shell_job),
		TEST(test_killed_by_signal),
		TEST(test_no_such_program),
		TEST(test_not_executable),
		TEST(test_bad_cwd),
		TEST(test_environment),
		TEST(test_job_setup),
		TEST(test_cancel_term),
		TEST(test_cancel_escalates),
		TEST(test_supervisor_signals),
		TEST(test_bad_forward_ignored),
		TEST(test_group_swept),
		TEST(test_lock_held),
		TEST(test_stale_status_removed),
		TEST(test_output_unwritable),
		TEST(test_usage),
		TEST(test_timeout_term),
		TEST(test_timeout_escalates),
		TEST(test_timeout_not_reached),
		TEST(test_timeout_after_cancel),
		TEST(test_timeout_usage),
		TEST(test_attempt_output),
		TEST(test_identity),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
