/*
 * Integration test harness (harness.h). Processes are started with
 * posix_spawn, never fork, because nng threads live in this process. Waits
 * are poll() on a real event (a pipe, a pidfd, inotify) with a deadline.
 * Every jobctl gets JOBD_HARNESS_DIR=<folder> in its environment, which jobs
 * inherit, so harness_stop can find and kill any job left behind by pid.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "harness.h"

extern char **environ;

#define HARNESS_READY_FD 3
#define HARNESS_ENV_TAG  "JOBD_HARNESS_DIR="
#define HARNESS_MAX_LIVE 4

/* Instances not yet stopped, stopped at exit if a test bailed out. */
static struct jobd_inst *harness_live[HARNESS_MAX_LIVE];
static struct jobd_inst harness_fixture;

/* JOBD_TEST_FILTER=test_name (a cmocka pattern) runs only matching tests. */
__attribute__((constructor)) static void
harness_filter(void)
{
	if (getenv("JOBD_TEST_FILTER") != NULL) {
		cmocka_set_test_filter(getenv("JOBD_TEST_FILTER"));
	}
}

void
harness_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

int64_t
harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static int
harness_left_ms(int64_t deadline)
{
	int64_t left = deadline - harness_now_ms();

	return (left < 0 ? 0 : (int)left);
}

/*
 * Wait up to timeout_ms for our child pid to exit and reap it. Returns 0 and
 * its wait status in *status, or -1 if it is still running.
 */
static int
harness_reap(pid_t pid, int timeout_ms, int *status)
{
	struct pollfd pfd = { .events = POLLIN };
	int rv;

	if ((pfd.fd = pidfd_open(pid, 0)) >= 0) {
		do {
			rv = poll(&pfd, 1, timeout_ms);
		} while (rv < 0 && errno == EINTR);
		close(pfd.fd);
		if (rv == 0) {
			return (-1);
		}
	}
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR) {
			return (-1);
		}
	}
	return (0);
}

int
harness_await_exit(int pidfd, int timeout_ms)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int rv;

	do {
		rv = poll(&pfd, 1, timeout_ms);
	} while (rv < 0 && errno == EINTR);
	return (rv == 1 ? 0 : -1);
}

int
harness_await_file(const char *path, int timeout_ms)
{
	struct pollfd pfd = { .events = POLLIN };
	char dir[PATH_MAX], buf[4096];
	char *slash;
	int64_t deadline = harness_now_ms() + timeout_ms;
	int rv = -1;

	snprintf(dir, sizeof dir, "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
	}
	if ((pfd.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0) {
		fail_msg("inotify_init1: %s", strerror(errno));
	}
	if (inotify_add_watch(pfd.fd, dir,
	                      IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		close(pfd.fd);
		fail_msg("inotify_add_watch %s: %s", dir, strerror(errno));
	}
	/* The watch is in place before the check: no event can be missed. */
	for (;;) {
		if (access(path, F_OK) == 0) {
			rv = 0;
			break;
		}
		if (harness_left_ms(deadline) == 0) {
			break;
		}
		if (poll(&pfd, 1, harness_left_ms(deadline)) > 0) {
			while (read(pfd.fd, buf, sizeof buf) > 0) {
				continue;
			}
		}
	}
	close(pfd.fd);
	return (rv);
}

char *
harness_read_file(const char *path, size_t *lenp)
{
	FILE *f;
	char *buf;
	size_t len = 0, cap = 4096, n;

	if ((f = fopen(path, "re")) == NULL) {
		return (NULL);
	}
	buf = malloc(cap);
	assert_non_null(buf);
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len - 1 == 0) {
			buf = realloc(buf, cap *= 2);
			assert_non_null(buf);
		}
	}
	fclose(f);
	buf[len] = '\0';
	if (lenp != NULL) {
		*lenp = len;
	}
	return (buf);
}

/* Print jobd's stderr (its log file) through cmocka. */
static void
harness_print_log(struct jobd_inst *inst)
{
	char *log = harness_read_file(inst->log, NULL);

	harness_msg(
	    "---- jobd stderr (%s) ----\n%s---- end of jobd stderr ----\n",
	    inst->log, log != NULL ? log : "(none)\n");
	free(log);
}

static void
harness_register(struct jobd_inst *inst, int on)
{
	for (int i = 0; i < HARNESS_MAX_LIVE; i++) {
		if (on && harness_live[i] == NULL) {
			harness_live[i] = inst;
			return;
		}
		if (!on && harness_live[i] == inst) {
			harness_live[i] = NULL;
		}
	}
}

static void
harness_atexit(void)
{
	for (int i = 0; i < HARNESS_MAX_LIVE; i++) {
		if (harness_live[i] != NULL) {
			(void)harness_stop(harness_live[i]);
		}
	}
}

/*
 * Interrupted (Ctrl-C, a timeout's SIGTERM): clean up, then die of the same
 * signal. Not async-signal-safe, but the process is ending anyway, and
 * leaving jobd and its jobs behind is worse than a rare hang.
 */
static void
harness_signal_cb(int sig)
{
	signal(sig, SIG_DFL);
	harness_atexit();
	raise(sig);
}

/* Make a fresh temporary folder for inst, without starting jobd. */
static void
harness_init(struct jobd_inst *inst)
{
	static int registered;
	const char *tmp = getenv("TMPDIR");

	/* A setup that failed half-way left it running: stop it first. */
	for (int i = 0; i < HARNESS_MAX_LIVE; i++) {
		if (harness_live[i] == inst) {
			(void)harness_stop(inst);
		}
	}
	memset(inst, 0, sizeof *inst);
	inst->gate_fd = -1;
	/* A Unix socket path is at most 107 bytes. */
	if (tmp == NULL || *tmp != '/' || strlen(tmp) > 48) {
		tmp = "/tmp";
	}
	snprintf(inst->dir, sizeof inst->dir, "%s/jobd-it.XXXXXX", tmp);
	if (mkdtemp(inst->dir) == NULL) {
		fail_msg("mkdtemp %s: %s", inst->dir, strerror(errno));
	}
	snprintf(inst->state, sizeof inst->state, "%s/state", inst->dir);
	snprintf(inst->url, sizeof inst->url, "ipc://%s/jobd.sock", inst->dir);
	snprintf(inst->log, sizeof inst->log, "%s/jobd.log", inst->dir);
	if (mkdir(inst->state, 0700) != 0) {
		fail_msg("mkdir %s: %s", inst->state, strerror(errno));
	}
	if (!registered) {
		atexit(harness_atexit);
		signal(SIGINT, harness_signal_cb);
		signal(SIGTERM, harness_signal_cb);
		signal(SIGHUP, harness_signal_cb);
		registered = 1;
	}
	harness_register(inst, 1);
}

/*
 * The environment of a child: ours without JOBD_SOCKET and without the
 * names env sets, then env. Returns a NULL-terminated array to free (the
 * strings are borrowed).
 */
static char **
harness_envp(const char *const *env)
{
	size_t n = 0, m = 0, k;
	char **envp;

	while (environ[n] != NULL) {
		n++;
	}
	while (env != NULL && env[m] != NULL) {
		m++;
	}
	envp = calloc(n + m + 1, sizeof *envp);
	assert_non_null(envp);
	k = 0;
	for (size_t i = 0; i < n; i++) {
		size_t name = strcspn(environ[i], "=");
		int skip = strncmp(environ[i], "JOBD_SOCKET=", 12) == 0;

		for (size_t j = 0; j < m && !skip; j++) {
			skip = strncmp(environ[i], env[j], name + 1) == 0;
		}
		if (!skip) {
			envp[k++] = environ[i];
		}
	}
	for (size_t j = 0; j < m; j++) {
		envp[k++] = (char *)env[j];
	}
	envp[k] = NULL;
	return (envp);
}

void
harness_proc_start(struct harness_proc *p, const char *const *argv,
                   const char *const *env)
{
	posix_spawn_file_actions_t fa;
	int out[2], err[2], rv;
	char **envp;
	const char *base;

	memset(p, 0, sizeof *p);
	base = strrchr(argv[0], '/');
	snprintf(p->what, sizeof p->what, "%s", base ? base + 1 : argv[0]);
	for (size_t i = 1, len;
	     argv[i] != NULL && (len = strlen(p->what)) < sizeof p->what - 1;
	     i++) {
		snprintf(p->what + len, sizeof p->what - len, " %s", argv[i]);
	}
	if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
		fail_msg("pipe2: %s", strerror(errno));
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	envp = harness_envp(env);
	rv =
	    posix_spawn(&p->pid, argv[0], &fa, NULL, (char *const *)argv, envp);
	free(envp);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(err[1]);
	if (rv != 0) {
		close(out[0]);
		close(err[0]);
		fail_msg("posix_spawn %s: %s", argv[0], strerror(rv));
	}
	p->out_fd = out[0];
	p->err_fd = err[0];
}

void
harness_proc_take(struct harness_proc *p, char **out, char **err)
{
	if (out != NULL) {
		*out = p->out;
		p->out = NULL;
	}
	if (err != NULL) {
		*err = p->err;
		p->err = NULL;
	}
	harness_proc_free(p);
}

void
harness_proc_free(struct harness_proc *p)
{
	free(p->out);
	free(p->err);
	p->out = p->err = NULL;
}

void
harness_drain(int *fd, char **buf, size_t *len)
{
	char chunk[65536];
	ssize_t n = read(*fd, chunk, sizeof chunk);

	if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
		return;
	}
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return;
	}
	*buf = realloc(*buf, *len + (size_t)n + 1);
	assert_non_null(*buf);
	memcpy(*buf + *len, chunk, (size_t)n);
	*len += (size_t)n;
	(*buf)[*len] = '\0';
}

int
harness_proc_finish(struct harness_proc *p, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	int status;

	while (p->out_fd >= 0 || p->err_fd >= 0) {
		struct pollfd pfd[2] = {
			{ .fd = p->out_fd, .events = POLLIN },
			{ .fd = p->err_fd, .events = POLLIN },
		};
		int rv = poll(pfd, 2, harness_left_ms(deadline));

		if (rv == 0) {
			break;
		}
		if (pfd[0].revents != 0) {
			harness_drain(&p->out_fd, &p->out, &p->out_len);
		}
		if (pfd[1].revents != 0) {
			harness_drain(&p->err_fd, &p->err, &p->err_len);
		}
	}
	if (p->out_fd >= 0 || p->err_fd >= 0 ||
	    harness_reap(p->pid, harness_left_ms(deadline), &status) != 0) {
		kill(p->pid, SIGKILL);
		harness_reap(p->pid, -1, &status);
		harness_msg("'%s' (pid %d) did not finish within %d ms; "
		            "stdout:\n%s\nstderr:\n%s\n",
		            p->what, (int)p->pid, timeout_ms,
		            p->out ? p->out : "", p->err ? p->err : "");
		if (p->out_fd >= 0) {
			close(p->out_fd);
		}
		if (p->err_fd >= 0) {
			close(p->err_fd);
		}
		harness_proc_free(p);
		fail();
	}
	/* Output is always a string, even when empty. */
	if (p->out == NULL) {
		p->out = calloc(1, 1);
	}
	if (p->err == NULL) {
		p->err = calloc(1, 1);
	}
	if (WIFSIGNALED(status)) {
		harness_msg("'%s' (pid %d) died of signal %d; stderr:\n%s\n",
		            p->what, (int)p->pid, WTERMSIG(status), p->err);
		harness_proc_free(p);
		fail();
	}
	return (WEXITSTATUS(status));
}

/* util-linux's setpriv: Essential in Debian, so on every machine. */
#define HARNESS_SETPRIV "/usr/bin/setpriv"

/* Spawn jobd on inst's folder and wait until it is ready. */
static void
harness_spawn_jobd(struct jobd_inst *inst)
{
	posix_spawn_file_actions_t fa;
	const char *argv[16 + HARNESS_MAX_ARGS];
	char tag[sizeof inst->dir + 32], buf[64];
	const char *env[] = { tag, NULL };
	char **envp;
	int p[2], w, rv, n = 0, status;
	size_t got = 0;
	int64_t deadline;
	ssize_t r;

	if (pipe2(p, O_CLOEXEC) != 0) {
		fail_msg("pipe2: %s", strerror(errno));
	}
	/* Never fd 3 itself: dup2(3, 3) would keep close-on-exec. */
	w = fcntl(p[1], F_DUPFD_CLOEXEC, 10);
	close(p[1]);
	/*
	 * If this test program dies before it can stop jobd (a ctest timeout
	 * kills it), the kernel kills jobd too. setpriv execs jobd in place,
	 * so inst->pid is jobd's pid.
	 */
	argv[n++] = HARNESS_SETPRIV;
	argv[n++] = "--pdeathsig";
	argv[n++] = "KILL";
	argv[n++] = "--";
	argv[n++] = JOBD_PATH;
	argv[n++] = "--socket";
	argv[n++] = inst->url;
	argv[n++] = "--state-dir";
	argv[n++] = inst->state;
	argv[n++] = "--ready-fd";
	argv[n++] = "3";
	argv[n++] = "-v";
	for (int i = 0; inst->args[i] != NULL; i++) {
		argv[n++] = inst->args[i];
	}
	argv[n] = NULL;
	snprintf(tag, sizeof tag, HARNESS_ENV_TAG "%s", inst->dir);

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, inst->log,
	                                 O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_adddup2(&fa, w, HARNESS_READY_FD);
	envp = harness_envp(env);
	rv = posix_spawn(&inst->pid, HARNESS_SETPRIV, &fa, NULL,
	                 (char *const *)argv, envp);
	free(envp);
	posix_spawn_file_actions_destroy(&fa);
	close(w);
	if (rv != 0) {
		inst->pid = 0;
		close(p[0]);
		fail_msg("posix_spawn %s: %s", JOBD_PATH, strerror(rv));
	}

	deadline = harness_now_ms() + HARNESS_READY_MS;
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };

		if (poll(&pfd, 1, harness_left_ms(deadline)) <= 0) {
			break;
		}
		r = read(p[0], buf + got, sizeof buf - 1 - got);
		if (r <= 0) {
			break;
		}
		got += (size_t)r;
		buf[got] = '\0';
		if (strcmp(buf, "ready\n") == 0 || got == sizeof buf - 1) {
			break;
		}
	}
	close(p[0]);
	buf[got] = '\0';
	if (strcmp(buf, "ready\n") == 0) {
		return;
	}
	/* Closed or silent: give an exiting jobd a moment to be reaped. */
	if (harness_reap(inst->pid, 2000, &status) == 0) {
		harness_msg("jobd exited (status 0x%x) before it was ready\n",
		            status);
	} else {
		harness_msg("jobd wrote '%s' on its ready fd within %d ms, "
		            "not \"ready\\n\"\n",
		            buf, HARNESS_READY_MS);
		kill(inst->pid, SIGKILL);
		harness_reap(inst->pid, -1, &status);
	}
	inst->pid = 0;
	harness_print_log(inst);
	(void)harness_stop(inst);
	fail();
}

void
harness_start(struct jobd_inst *inst, ...)
{
	va_list ap;
	const char *arg;
	int n = 0;

	harness_init(inst);
	va_start(ap, inst);
	while ((arg = va_arg(ap, const char *)) != NULL) {
		if (n == HARNESS_MAX_ARGS) {
			va_end(ap);
			fail_msg("too many jobd arguments");
		}
		inst->args[n++] = arg;
	}
	va_end(ap);
	inst->args[n] = NULL;
	harness_spawn_jobd(inst);
}

void
harness_restart(struct jobd_inst *inst)
{
	assert_int_equal(inst->pid, 0);
	harness_spawn_jobd(inst);
}

int
harness_signal(struct jobd_inst *inst, int sig)
{
	int status = 0;

	assert_int_not_equal(inst->pid, 0);
	kill(inst->pid, sig);
	if (harness_reap(inst->pid, HARNESS_STOP_MS, &status) != 0) {
		harness_msg("jobd did not exit within %d ms of signal %d; "
		            "killing it\n",
		            HARNESS_STOP_MS, sig);
		kill(inst->pid, SIGKILL);
		harness_reap(inst->pid, -1, &status);
	}
	inst->pid = 0;
	return (status);
}

int
harness_track(struct jobd_inst *inst, pid_t pid)
{
	int fd = pidfd_open(pid, 0);

	if (fd < 0) {
		fail_msg("pid %d: %s", (int)pid, strerror(errno));
	}
	assert_true(inst->ntracked < HARNESS_MAX_TRACK);
	inst->tracked[inst->ntracked] = pid;
	inst->tracked_fd[inst->ntracked++] = fd;
	return (fd);
}

/*
 * Kill the process behind pidfd (pid) and, if it is in a group other than
 * ours, its group. The pidfd makes sure a pid reused since is never hit.
 */
static void
harness_kill_fd(int pidfd, pid_t pid)
{
	pid_t pgid;

	/* Alive (or a zombie), so pid is still its own. */
	if (pidfd_send_signal(pidfd, 0, NULL, 0) != 0) {
		return;
	}
	if ((pgid = getpgid(pid)) > 1 && pgid != getpgrp()) {
		kill(-pgid, SIGKILL);
	}
	pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
	(void)harness_await_exit(pidfd, 2000);
}

/* Kill pid, alive a moment ago, as harness_kill_fd does. */
static void
harness_kill_pid(pid_t pid)
{
	int fd = pidfd_open(pid, 0);

	if (fd >= 0) {
		harness_kill_fd(fd, pid);
		close(fd);
	}
}

/* The parent pid of /proc/<pid>, or -1. */
static pid_t
harness_ppid(const char *pid)
{
	char path[300], buf[512], *end;
	ssize_t n;
	int fd, ppid;

	snprintf(path, sizeof path, "/proc/%s/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return (-1);
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	/* "pid (comm) state ppid ...": comm may hold spaces and parens. */
	if (n <= 0 || (buf[n] = '\0', end = strrchr(buf, ')')) == NULL ||
	    sscanf(end + 1, " %*c %d", &ppid) != 1) {
		return (-1);
	}
	return (ppid);
}

/* Kill a supervisor and its children, each with its process group. */
static void
harness_kill_supervisor(pid_t pid)
{
	DIR *d;
	struct dirent *de;

	/* Children first: once their parent is gone they are hard to find. */
	if ((d = opendir("/proc")) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (atoi(de->d_name) > 1 &&
			    harness_ppid(de->d_name) == pid) {
				harness_kill_pid(atoi(de->d_name));
			}
		}
		closedir(d);
	}
	harness_kill_pid(pid);
}

/* Does file (in /proc/PID) hold needle (needle_len bytes, may hold NULs)? */
static int
harness_proc_has(const char *pid, const char *file, const char *needle,
                 size_t needle_len)
{
	char path[300], buf[65536];
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%s/%s", pid, file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return (0);
	}
	n = read(fd, buf, sizeof buf);
	close(fd);
	return (n > 0 && memmem(buf, (size_t)n, needle, needle_len) != NULL);
}

/*
 * Kill every supervisor that still holds its run file (the flock says it
 * lives, so a stale pid is never killed), with its jobs.
 */
static void
harness_kill_supervisors(struct jobd_inst *inst)
{
	char path[PATH_MAX * 2], pidbuf[32];
	DIR *d;
	struct dirent *de;
	int fd;
	ssize_t n;

	snprintf(path, sizeof path, "%s/run", inst->state);
	if ((d = opendir(path)) == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len < 5 || strcmp(de->d_name + len - 4, ".run") != 0) {
			continue;
		}
		snprintf(path, sizeof path, "%s/run/%s", inst->state,
		         de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			continue;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0 &&
		    (n = read(fd, pidbuf, sizeof pidbuf - 1)) > 0) {
			pidbuf[n] = '\0';
			if (atoi(pidbuf) > 1) {
				harness_kill_supervisor(atoi(pidbuf));
			}
		}
		close(fd);
	}
	closedir(d);
}

/*
 * The safety net: kill any process that inherited our tag (every job does,
 * through jobctl's environment) or names our folder on its command line.
 */
static void
harness_kill_leftovers(struct jobd_inst *inst)
{
	char tag[sizeof inst->dir + 32];
	size_t taglen;
	DIR *d;
	struct dirent *de;

	taglen =
	    (size_t)snprintf(tag, sizeof tag, HARNESS_ENV_TAG "%s", inst->dir) +
	    1;
	if ((d = opendir("/proc")) == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		pid_t pid = atoi(de->d_name);

		if (pid <= 1 || pid == getpid()) {
			continue;
		}
		if (harness_proc_has(de->d_name, "environ", tag, taglen) ||
		    harness_proc_has(de->d_name, "cmdline", inst->dir,
		                     strlen(inst->dir))) {
			harness_msg("harness: killing leftover pid %d\n",
			            (int)pid);
			harness_kill_pid(pid);
		}
	}
	closedir(d);
}

static int
harness_rm_cb(const char *path, const struct stat *st, int flag,
              struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return (0);
}

int
harness_stop(struct jobd_inst *inst)
{
	int status, rv = 0;

	if (inst->dir[0] == '\0') {
		return (0);
	}
	/* Let jobs blocked on the gate end before jobd is asked to stop. */
	if (inst->gate_fd >= 0) {
		close(inst->gate_fd);
		inst->gate_fd = -1;
	}
	if (inst->pid != 0) {
		kill(inst->pid, SIGTERM);
		if (harness_reap(inst->pid, HARNESS_STOP_MS, &status) != 0) {
			harness_msg("jobd did not exit within %d ms of "
			            "SIGTERM\n",
			            HARNESS_STOP_MS);
			kill(inst->pid, SIGKILL);
			harness_reap(inst->pid, -1, &status);
			rv = -1;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			harness_msg("jobd ended with status 0x%x on SIGTERM\n",
			            status);
			rv = -1;
		}
		inst->pid = 0;
	}
	harness_kill_supervisors(inst);
	for (int i = 0; i < inst->ntracked; i++) {
		harness_kill_fd(inst->tracked_fd[i], inst->tracked[i]);
		close(inst->tracked_fd[i]);
	}
	inst->ntracked = 0;
	harness_kill_leftovers(inst);
	if (rv != 0) {
		harness_print_log(inst);
	}
	if (getenv("JOBD_TEST_KEEP") != NULL) {
		harness_msg("harness: keeping %s\n", inst->dir);
	} else {
		nftw(inst->dir, harness_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	}
	harness_register(inst, 0);
	inst->dir[0] = '\0';
	return (rv);
}

static int
harness_setup_with(void **state, const char *parallel)
{
	struct jobd_inst *inst = &harness_fixture;

	if (parallel != NULL) {
		harness_start(inst, "--parallel", parallel, NULL);
	} else {
		harness_start(inst, NULL);
	}
	*state = inst;
	return (0);
}

int
harness_setup(void **state)
{
	return (harness_setup_with(state, NULL));
}

int
harness_setup_parallel1(void **state)
{
	return (harness_setup_with(state, "1"));
}

int
harness_setup_parallel2(void **state)
{
	return (harness_setup_with(state, "2"));
}

int
harness_teardown(void **state)
{
	return (harness_stop(*state));
}

/* Start jobctl with args, as harness_jobctl_run describes. */
static void
harness_jobctl_spawn(struct jobd_inst *inst, const char *const *env,
                     const char *const *args, struct harness_proc *p)
{
	const char **argv, **envv;
	char tag[sizeof inst->dir + 32];
	size_t n = 0, m = 0, k = 0;

	while (args[n] != NULL) {
		n++;
	}
	while (env != NULL && env[m] != NULL) {
		m++;
	}
	argv = calloc(n + 4, sizeof *argv);
	envv = calloc(m + 2, sizeof *envv);
	assert_non_null(argv);
	assert_non_null(envv);
	argv[k++] = JOBCTL_PATH;
	if (inst != NULL) {
		argv[k++] = "--socket";
		argv[k++] = inst->url;
	}
	memcpy(argv + k, args, (n + 1) * sizeof *argv);
	if (m > 0) {
		memcpy(envv, env, m * sizeof *envv);
	}
	if (inst != NULL) {
		snprintf(tag, sizeof tag, HARNESS_ENV_TAG "%s", inst->dir);
		envv[m++] = tag;
	}
	envv[m] = NULL;
	harness_proc_start(p, argv, envv);
	free(argv);
	free(envv);
}

/* harness_jobctl_run bounded by timeout_ms. */
static int
harness_jobctl_run_ms(struct jobd_inst *inst, const char *const *env,
                      const char *const *args, char **out, char **err,
                      int timeout_ms)
{
	struct harness_proc p;
	int code;

	harness_jobctl_spawn(inst, env, args, &p);
	code = harness_proc_finish(&p, timeout_ms);
	harness_proc_take(&p, out, err);
	return (code);
}

int
harness_jobctl_run(struct jobd_inst *inst, const char *const *env,
                   const char *const *args, char **out, char **err)
{
	return (
	    harness_jobctl_run_ms(inst, env, args, out, err, HARNESS_RUN_MS));
}

/* Collect NULL-terminated varargs into an array (caller frees). */
static const char **
harness_collect(va_list ap)
{
	const char **args = NULL;
	size_t n = 0;

	do {
		args = realloc(args, (n + 1) * sizeof *args);
		assert_non_null(args);
		args[n] = va_arg(ap, const char *);
	} while (args[n++] != NULL);
	return (args);
}

int
harness_jobctl(struct jobd_inst *inst, char **out, char **err, ...)
{
	va_list ap;
	const char **args;
	int code;

	va_start(ap, err);
	args = harness_collect(ap);
	va_end(ap);
	code = harness_jobctl_run(inst, NULL, args, out, err);
	free(args);
	return (code);
}

void
harness_jobctl_start(struct jobd_inst *inst, struct harness_proc *p, ...)
{
	va_list ap;
	const char **args;

	va_start(ap, p);
	args = harness_collect(ap);
	va_end(ap);
	harness_jobctl_spawn(inst, NULL, args, p);
	free(args);
}

int
harness_proc_await_output(struct harness_proc *p, const char *text,
                          int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;

	while (p->out == NULL || strstr(p->out, text) == NULL) {
		struct pollfd pfd[2] = {
			{ .fd = p->out_fd, .events = POLLIN },
			{ .fd = p->err_fd, .events = POLLIN },
		};

		if (p->out_fd < 0 ||
		    poll(pfd, 2, harness_left_ms(deadline)) <= 0) {
			return (-1);
		}
		if (pfd[0].revents != 0) {
			harness_drain(&p->out_fd, &p->out, &p->out_len);
		}
		if (pfd[1].revents != 0) {
			harness_drain(&p->err_fd, &p->err, &p->err_len);
		}
	}
	return (0);
}

int64_t
harness_parse_id(const char *out, const char *err)
{
	char *end;
	long long id;

	errno = 0;
	id = strtoll(out, &end, 10);
	if (errno != 0 || end == out || id < 1 || strcmp(end, "\n") != 0) {
		fail_msg("submit printed '%s' (stderr '%s'), not an id", out,
		         err);
	}
	return (id);
}

int64_t
harness_submit(struct jobd_inst *inst, ...)
{
	va_list ap;
	const char **args;
	int64_t id;

	va_start(ap, inst);
	args = harness_collect(ap);
	va_end(ap);
	id = harness_submit_argv(inst, args);
	free(args);
	return (id);
}

int64_t
harness_submit_argv(struct jobd_inst *inst, const char *const *args)
{
	const char **full;
	char *out, *err;
	size_t n = 0;
	int code;
	int64_t id;

	while (args[n] != NULL) {
		n++;
	}
	full = calloc(n + 2, sizeof *full);
	assert_non_null(full);
	full[0] = "submit";
	memcpy(full + 1, args, (n + 1) * sizeof *full);
	code = harness_jobctl_run(inst, NULL, full, &out, &err);
	free(full);
	if (code != 0) {
		harness_msg("jobctl submit exited %d; stderr:\n%s\n", code,
		            err);
		free(out);
		free(err);
		fail();
	}
	id = harness_parse_id(out, err);
	free(out);
	free(err);
	return (id);
}

int64_t
harness_submit_running(struct jobd_inst *inst, const char *cmd)
{
	return (harness_submit_running_argv(inst, cmd, NULL));
}

int64_t
harness_submit_running_argv(struct jobd_inst *inst, const char *cmd,
                            const char *const *args)
{
	char marker[PATH_MAX], *shell, state[32];
	const char **full;
	size_t n = 0;
	int64_t id;

	while (args != NULL && args[n] != NULL) {
		n++;
	}
	full = calloc(n + 3, sizeof *full);
	assert_non_null(full);
	if (n > 0) {
		memcpy(full, args, n * sizeof *full);
	}
	snprintf(marker, sizeof marker, "%s/marker.%d", inst->dir,
	         inst->markers++);
	assert_true(asprintf(&shell, ": > '%s'; %s", marker, cmd) > 0);
	full[n] = "-c";
	full[n + 1] = shell;
	full[n + 2] = NULL;
	id = harness_submit_argv(inst, full);
	free(shell);
	free(full);
	if (harness_await_file(marker, HARNESS_EVENT_MS) != 0) {
		fail_msg("job %lld did not start within %d ms (state %s)",
		         (long long)id, HARNESS_EVENT_MS,
		         harness_state(inst, id, state, sizeof state));
	}
	return (id);
}

const char *
harness_gate_cmd(struct jobd_inst *inst)
{
	static char cmd[PATH_MAX + 64];
	char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/gate", inst->dir);
	if (inst->gate_fd < 0) {
		if (mkfifo(path, 0600) != 0 && errno != EEXIST) {
			fail_msg("mkfifo %s: %s", path, strerror(errno));
		}
		/*
		 * Held open for reading and writing: a job's open never
		 * blocks, and a released byte waits in the fifo for a job
		 * that has not opened it yet.
		 */
		if ((inst->gate_fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
			fail_msg("open %s: %s", path, strerror(errno));
		}
	}
	snprintf(cmd, sizeof cmd, "head -c 1 '%s' > /dev/null", path);
	return (cmd);
}

void
harness_gate_release(struct jobd_inst *inst)
{
	assert_true(inst->gate_fd >= 0);
	assert_int_equal(write(inst->gate_fd, "x", 1), 1);
}

int64_t
harness_blocker(struct jobd_inst *inst)
{
	return (harness_submit_running(inst, harness_gate_cmd(inst)));
}

int64_t
harness_blocker_argv(struct jobd_inst *inst, const char *const *args)
{
	return (
	    harness_submit_running_argv(inst, harness_gate_cmd(inst), args));
}

int
harness_wait(struct jobd_inst *inst, int64_t id)
{
	return (harness_wait_ids(inst, &id, 1));
}

int
harness_wait_ids(struct jobd_inst *inst, const int64_t *ids, size_t n)
{
	return (harness_wait_within(inst, ids, n, HARNESS_WAIT_S));
}

int
harness_wait_within(struct jobd_inst *inst, const int64_t *ids, size_t n,
                    int seconds)
{
	const char **args = calloc(n + 4, sizeof *args);
	char(*num)[24] = calloc(n, sizeof *num);
	char timeout[24];
	int code;

	assert_non_null(args);
	assert_non_null(num);
	args[0] = "wait";
	for (size_t i = 0; i < n; i++) {
		snprintf(num[i], sizeof num[i], "%lld", (long long)ids[i]);
		args[i + 1] = num[i];
	}
	snprintf(timeout, sizeof timeout, "%ds", seconds);
	args[n + 1] = "--timeout";
	args[n + 2] = timeout;
	args[n + 3] = NULL;
	/* jobctl gets to say 124 itself before the harness kills it. */
	code = harness_jobctl_run_ms(inst, NULL, args, NULL, NULL,
	                             seconds * 1000 + HARNESS_RUN_MS);
	free(args);
	free(num);
	return (code);
}

json_t *
harness_json(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);

	if (j == NULL) {
		fail_msg("not JSON (%s): '%s'", jerr.text, text);
	}
	return (j);
}

json_t *
harness_status(struct jobd_inst *inst, int64_t id)
{
	char idbuf[24], *out, *err;
	json_t *job;
	int code;

	snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
	code =
	    harness_jobctl(inst, &out, &err, "--json", "status", idbuf, NULL);
	if (code != 0) {
		harness_msg("jobctl --json status %s exited %d; stderr:\n%s\n",
		            idbuf, code, err);
		free(out);
		free(err);
		fail();
	}
	job = harness_json(out);
	free(out);
	free(err);
	if (!json_is_object(job) ||
	    json_integer_value(json_object_get(job, "id")) != id) {
		char *dump = json_dumps(job, JSON_ENCODE_ANY);

		harness_msg("status %s is not job %s: %s\n", idbuf, idbuf,
		            dump);
		free(dump);
		json_decref(job);
		fail();
	}
	return (job);
}

const char *
harness_state(struct jobd_inst *inst, int64_t id, char *buf, size_t len)
{
	json_t *job = harness_status(inst, id);
	const char *s = json_string_value(json_object_get(job, "state"));

	snprintf(buf, len, "%s", s != NULL ? s : "(none)");
	json_decref(job);
	return (buf);
}

char *
harness_logs(struct jobd_inst *inst, int64_t id, int want_stderr)
{
	char idbuf[24], *out, *err;
	int code;

	snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
	if (want_stderr) {
		code = harness_jobctl(inst, &out, &err, "logs", idbuf,
		                      "--stderr", NULL);
	} else {
		code = harness_jobctl(inst, &out, &err, "logs", idbuf, NULL);
	}
	if (code != 0) {
		harness_msg("jobctl logs %s exited %d; stderr:\n%s\n", idbuf,
		            code, err);
		free(out);
		free(err);
		fail();
	}
	free(err);
	return (out);
}

void
harness_ping(struct jobd_inst *inst)
{
	char *err;
	int code = harness_jobctl(inst, NULL, &err, "ping", NULL);

	if (code != 0) {
		harness_msg("jobctl ping exited %d; stderr:\n%s\n", code, err);
		free(err);
		fail();
	}
	free(err);
}

int
harness_raw(struct jobd_inst *inst, const void *buf, size_t len, int timeout_ms,
            json_t **reply)
{
	nng_socket s;
	char *data = NULL;
	size_t sz = 0;
	json_error_t jerr;
	int rv;

	/*
	 * No nng_fini at exit (see client/ctl-conn.c): in nng 1.5.2 it can
	 * panic or hang after a failed dial. Its globals stay reachable.
	 */
	if ((rv = nng_req0_open(&s)) != 0) {
		fail_msg("nng_req0_open: %s", nng_strerror(rv));
	}
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
	if ((rv = nng_dial(s, inst->url, NULL, 0)) != 0) {
		nng_close(s);
		fail_msg("nng_dial %s: %s", inst->url, nng_strerror(rv));
	}
	if ((rv = nng_send(s, (void *)buf, len, 0)) == 0 &&
	    (rv = nng_recv(s, &data, &sz, NNG_FLAG_ALLOC)) == 0) {
		*reply = json_loadb(data, sz, 0, &jerr);
		if (*reply == NULL) {
			harness_msg("reply is not JSON (%s): '%.*s'\n",
			            jerr.text, (int)sz, data);
			nng_free(data, sz);
			nng_close(s);
			fail();
		}
		nng_free(data, sz);
	}
	nng_close(s);
	return (rv);
}

void
harness_raw_error(struct jobd_inst *inst, const char *text, const char *code)
{
	json_t *reply;
	const char *error;
	int rv = harness_raw(inst, text, strlen(text), 5000, &reply);

	if (rv != 0) {
		fail_msg("request %s: no reply: %s", text, nng_strerror(rv));
	}
	error = json_string_value(json_object_get(reply, "error"));
	if (!json_is_false(json_object_get(reply, "ok")) || error == NULL ||
	    strcmp(error, code) != 0 ||
	    !json_is_string(json_object_get(reply, "message"))) {
		char *dump = json_dumps(reply, 0);

		harness_msg("request %s: expected error %s, got %s\n", text,
		            code, dump);
		free(dump);
		json_decref(reply);
		fail();
	}
	json_decref(reply);
}

/* Print obj and fail: field key is not what the test expected. */
static void
harness_field_fail(json_t *obj, const char *key, const char *expected)
{
	char *dump = json_dumps(obj, JSON_ENCODE_ANY);
	char *got = json_dumps(json_object_get(obj, key), JSON_ENCODE_ANY);

	harness_msg("field '%s' is %s, expected %s, in %s\n", key,
	            got != NULL ? got : "missing", expected, dump);
	free(dump);
	free(got);
	fail();
}

void
harness_assert_str(json_t *obj, const char *key, const char *expected)
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (s == NULL || strcmp(s, expected) != 0) {
		harness_field_fail(obj, key, expected);
	}
}

void
harness_assert_int(json_t *obj, const char *key, long long expected)
{
	json_t *v = json_object_get(obj, key);
	char text[32];

	if (!json_is_integer(v) || json_integer_value(v) != expected) {
		snprintf(text, sizeof text, "%lld", expected);
		harness_field_fail(obj, key, text);
	}
}

void
harness_assert_null(json_t *obj, const char *key)
{
	if (!json_is_null(json_object_get(obj, key))) {
		harness_field_fail(obj, key, "null");
	}
}

void
harness_assert_json(json_t *obj, const char *key, const char *expected)
{
	json_t *want = harness_json(expected);
	int same = json_equal(json_object_get(obj, key), want);

	json_decref(want);
	if (!same) {
		harness_field_fail(obj, key, expected);
	}
}

void
harness_assert_time(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	int y, mo, d, h, mi, sec, ms, n = 0;

	if (s == NULL || strlen(s) != 24 ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi,
	           &sec, &ms, &n) != 7 ||
	    n != 24) {
		harness_field_fail(obj, key,
		                   "a time like 2026-11-27T19:30:00.123Z");
	}
}

int64_t
harness_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

const char *
harness_format_time(int64_t ms, char *buf, size_t len)
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	char day[32];

	gmtime_r(&sec, &tm);
	strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
	return (buf);
}

int64_t
harness_time_ms(json_t *obj, const char *key)
{
	const char *s;
	struct tm tm;
	int ms;

	harness_assert_time(obj, key);
	s = json_string_value(json_object_get(obj, key));
	memset(&tm, 0, sizeof tm);
	assert_int_equal(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d", &tm.tm_year,
	                        &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	                        &tm.tm_min, &tm.tm_sec, &ms),
	                 7);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return ((int64_t)timegm(&tm) * 1000 + ms);
}

/* Run "jobctl [--json] ARGS" (json set: with --json); must exit 0. */
static char *
harness_jobctl_out(struct jobd_inst *inst, int json, const char *const *args)
{
	const char **full;
	char *out, *err;
	size_t n = 0;
	int code;

	while (args[n] != NULL) {
		n++;
	}
	full = calloc(n + 2, sizeof *full);
	assert_non_null(full);
	full[0] = "--json";
	memcpy(full + 1, args, (n + 1) * sizeof *full);
	code =
	    harness_jobctl_run(inst, NULL, json ? full : full + 1, &out, &err);
	free(full);
	if (code != 0) {
		harness_msg("jobctl %s%s %s exited %d; stdout:\n%s\nstderr:\n"
		            "%s\n",
		            json ? "--json " : "", args[0],
		            n > 1 ? args[1] : "", code, out, err);
		free(out);
		free(err);
		fail();
	}
	free(err);
	return (out);
}

char *
harness_jobctl_ok(struct jobd_inst *inst, ...)
{
	va_list ap;
	const char **args;
	char *out;

	va_start(ap, inst);
	args = harness_collect(ap);
	va_end(ap);
	out = harness_jobctl_out(inst, 0, args);
	free(args);
	return (out);
}

json_t *
harness_jobctl_json(struct jobd_inst *inst, ...)
{
	va_list ap;
	const char **args;
	char *out;
	json_t *j;

	va_start(ap, inst);
	args = harness_collect(ap);
	va_end(ap);
	out = harness_jobctl_out(inst, 1, args);
	free(args);
	j = harness_json(out);
	free(out);
	return (j);
}

char *
harness_jobctl_refused_argv(struct jobd_inst *inst, int code,
                            const char *const *args)
{
	char *out, *err, line[1024];
	size_t len = 0;
	int got = harness_jobctl_run(inst, NULL, args, &out, &err);

	if (got != code || strlen(err) == 0 || strlen(out) != 0) {
		line[0] = '\0';
		for (int i = 0; args[i] != NULL && len < sizeof line; i++) {
			len += (size_t)snprintf(line + len, sizeof line - len,
			                        " '%s'", args[i]);
		}
		harness_msg("jobctl%s: exit %d (expected %d and a message), "
		            "stdout '%s', stderr '%s'\n",
		            line, got, code, out, err);
		free(out);
		free(err);
		fail();
	}
	free(out);
	return (err);
}

char *
harness_jobctl_refused(struct jobd_inst *inst, int code, ...)
{
	va_list ap;
	const char **args;
	char *err;

	va_start(ap, code);
	args = harness_collect(ap);
	va_end(ap);
	err = harness_jobctl_refused_argv(inst, code, args);
	free(args);
	return (err);
}

char *
harness_ids_text(json_t *jobs)
{
	json_t *ids = json_array(), *job;
	size_t i;
	char *text;

	assert_true(json_is_array(jobs));
	json_array_foreach(jobs, i, job)
	{
		json_array_append(ids, json_object_get(job, "id"));
	}
	text = json_dumps(ids, JSON_COMPACT);
	json_decref(ids);
	return (text);
}

char *
harness_stamp_cmd(const char *path, const char *label, const char *body)
{
	char *cmd;

	assert_true(asprintf(&cmd,
	                     "echo \"s %s $(date +%%s%%N)\" >> '%s'; %s; "
	                     "echo \"e %s $(date +%%s%%N)\" >> '%s'",
	                     label, path, body, label, path) > 0);
	return (cmd);
}

struct harness_stamp {
	long long ns;
	int delta; /* +1 start, -1 end */
};

static int
harness_stamp_cmp(const void *a, const void *b)
{
	const struct harness_stamp *x = a, *y = b;

	if (x->ns != y->ns) {
		return (x->ns < y->ns ? -1 : 1);
	}
	return (x->delta - y->delta); /* an end before a start at a tie */
}

int
harness_stamps_overlap(const char *path, size_t *n)
{
	char *text = harness_read_file(path, NULL), *line, *save = NULL;
	char *last, *end;
	struct harness_stamp *s = NULL;
	size_t count = 0, starts = 0;
	int now = 0, most = 0;

	if (text == NULL) {
		fail_msg("no stamp file %s", path);
	}
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		s = realloc(s, (count + 1) * sizeof *s);
		assert_non_null(s);
		last = strrchr(line, ' ');
		if ((line[0] != 's' && line[0] != 'e') || line[1] != ' ' ||
		    last == NULL ||
		    (s[count].ns = strtoll(last + 1, &end, 10)) <= 0 ||
		    *end != '\0') {
			fail_msg("%s: bad stamp line '%s'", path, line);
		}
		s[count].delta = line[0] == 's' ? 1 : -1;
		starts += line[0] == 's';
		count++;
	}
	free(text);
	if (count != 2 * starts) {
		free(s);
		fail_msg("%s: %zu starts but %zu ends", path, starts,
		         count - starts);
	}
	qsort(s, count, sizeof *s, harness_stamp_cmp);
	for (size_t i = 0; i < count; i++) {
		now += s[i].delta;
		most = now > most ? now : most;
	}
	free(s);
	*n = starts;
	return (most);
}

void
harness_assert_absent(const char *path)
{
	if (access(path, F_OK) == 0 || errno != ENOENT) {
		fail_msg("%s exists (or cannot be checked: %s)", path,
		         strerror(errno));
	}
}

void
harness_assert_unchanged(struct jobd_inst *inst, int64_t id, json_t *before)
{
	json_t *now = harness_status(inst, id);

	if (!json_equal(now, before)) {
		char *a = json_dumps(before, JSON_COMPACT);
		char *b = json_dumps(now, JSON_COMPACT);

		harness_msg("job %lld changed:\nbefore %s\nnow    %s\n",
		            (long long)id, a, b);
		free(a);
		free(b);
		json_decref(now);
		fail();
	}
	json_decref(now);
}
