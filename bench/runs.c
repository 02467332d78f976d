/*
 * bench-runs: the timing the shell cannot do finely enough, for the scale
 * benchmark (bench/scale.sh). Three modes:
 *
 *   bench-runs [--runs N] [--wall] -- PROGRAM [ARG...]
 *	Run PROGRAM N times (default 1), one after the other, with fork, exec
 *	and wait, its output thrown away, and print the microseconds of each
 *	run on a line; with --wall, each line starts with the wall clock time
 *	of the fork in ns since the epoch, and a tab. A run that fails stops
 *	everything (exit 1).
 *
 *   bench-runs --ready FD -- DAEMON [ARG...] -- PING [ARG...]
 *	Start DAEMON with the write end of a pipe as its FD (its --ready-fd),
 *	wait for its "ready" line, then run PING until it succeeds (each for
 *	up to BENCH_RUNS_PING_MS). Prints the daemon's pid, the microseconds
 *from the fork to "ready", and to the end of the first PING that succeeded,
 *	separated by tabs, on a line of its own, then closes its stdout and
 *	waits for the daemon (whose output goes to our stderr) to end, for
 *	the caller to stop it by its pid: run in the background, this stays
 *	the daemon's parent, so the caller's `wait` reaps it. If anything
 *	fails, or a SIGTERM or SIGINT comes, the daemon is stopped here. A
 *	PING before "ready" could not connect at all, so starting it then
 *	costs the figure nothing.
 *
 *   bench-runs --stamp FILE
 *	Write the wall clock time in ns since the epoch to FILE, atomically
 *	(a job's start, seen from inside the job).
 */
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a daemon may take to say ready, and then to answer. */
#define BENCH_RUNS_PING_MS 60000

/* --ready: the daemon, which a SIGTERM or SIGINT to us stops too. */
static volatile sig_atomic_t runs_daemon_pid, runs_stopping;

static void
runs_forward(int sig)
{
	(void)sig;
	runs_stopping = 1;
	if (runs_daemon_pid > 0)
		kill((pid_t)runs_daemon_pid, SIGTERM);
}

static int64_t
runs_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

static int64_t
runs_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

static void
runs_die(const char *what)
{
	fprintf(stderr, "bench-runs: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
runs_usage(void)
{
	fprintf(stderr,
	        "usage: bench-runs [--runs N] [--wall] -- PROGRAM [ARG...]\n"
	        "       bench-runs --ready FD -- DAEMON [ARG...] -- PING "
	        "[ARG...]\n"
	        "       bench-runs --stamp FILE\n");
	exit(2);
}

/*
 * Start argv[0] with stdout and stderr on /dev/null (or, for a daemon, its
 * stdout on our stderr and ready_w as fd ready_fd); returns its pid.
 */
static pid_t
runs_spawn(char **argv, int ready_fd, int ready_w)
{
	sigset_t none;
	pid_t pid;
	int null;

	sigemptyset(&none);
	if ((pid = fork()) == -1)
		runs_die("fork");
	if (pid > 0)
		return (pid);
	/* exec resets the handlers, not the mask. */
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (ready_fd >= 0) {
		/* dup2 clears close-on-exec; on the same fd, fcntl must. */
		if (dup2(2, 1) == -1 ||
		    (ready_w == ready_fd ? fcntl(ready_fd, F_SETFD, 0)
		                         : dup2(ready_w, ready_fd)) == -1)
			_exit(127);
	} else {
		if ((null = open("/dev/null", O_WRONLY)) == -1 ||
		    dup2(null, 1) == -1 || dup2(null, 2) == -1)
			_exit(127);
	}
	execvp(argv[0], argv);
	_exit(127);
}

/* Wait for pid; returns its wait status. */
static int
runs_reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			runs_die("waitpid");
	return (status);
}

static int
runs_repeat(char **argv, int runs, int wall)
{
	int64_t t, ns = 0;
	int status;

	for (int i = 0; i < runs; i++) {
		if (wall)
			ns = runs_wall_ns();
		t = runs_now_us();
		status = runs_reap(runs_spawn(argv, -1, -1));
		t = runs_now_us() - t;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "bench-runs: %s failed (status %d)\n",
			        argv[0], status);
			return (1);
		}
		if (wall)
			printf("%lld\t", (long long)ns);
		printf("%lld\n", (long long)t);
	}
	return (0);
}

static int
runs_ready(char **daemon, char **ping, int fd)
{
	int64_t t0, ready_us, answer_us;
	int p[2], status;
	char buf[16];
	ssize_t n;
	size_t got = 0;
	struct pollfd pfd;
	struct sigaction sa;
	sigset_t mask;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1)
		runs_die("pipe");
	/* Blocked until the pid is known; the child resets them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = runs_forward;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	t0 = runs_now_us();
	pid = runs_spawn(daemon, fd, p[1]);
	runs_daemon_pid = pid;
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	/* The line, or the end of the pipe if the daemon dies first. */
	while (got < 6) {
		if (poll(&pfd, 1, BENCH_RUNS_PING_MS) == 0)
			break;
		n = read(p[0], buf + got, sizeof buf - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	ready_us = runs_now_us() - t0;
	close(p[0]);
	if (got < 6 || memcmp(buf, "ready\n", 6) != 0) {
		fprintf(stderr, "bench-runs: %s did not say ready\n",
		        daemon[0]);
		goto fail;
	}
	for (;;) {
		if (runs_stopping)
			goto fail;
		status = runs_reap(runs_spawn(ping, -1, -1));
		answer_us = runs_now_us() - t0;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			break;
		if (answer_us - ready_us > BENCH_RUNS_PING_MS * 1000) {
			fprintf(stderr,
			        "bench-runs: %s got no answer in %d s\n",
			        ping[0], BENCH_RUNS_PING_MS / 1000);
			goto fail;
		}
	}
	printf("%ld\t%lld\t%lld\n", (long)pid, (long long)ready_us,
	       (long long)answer_us);
	if (fclose(stdout) != 0)
		goto fail;
	status = runs_reap(pid);
	return (WIFEXITED(status) ? WEXITSTATUS(status) : 1);
fail:
	kill(pid, SIGTERM);
	runs_reap(pid);
	return (1);
}

static int
runs_stamp(const char *file)
{
	char tmp[PATH_MAX];
	FILE *f;
	long long ns = (long long)runs_wall_ns();

	snprintf(tmp, sizeof tmp, "%s.tmp", file);
	if ((f = fopen(tmp, "w")) == NULL)
		runs_die(tmp);
	fprintf(f, "%lld\n", ns);
	if (fclose(f) != 0)
		runs_die(tmp);
	if (rename(tmp, file) == -1)
		runs_die(file);
	return (0);
}

int
main(int argc, char **argv)
{
	int runs = 1, wall = 0, ready_fd = -1, i;
	char **ping = NULL;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--wall") == 0)
			wall = 1;
		else if (strcmp(argv[i], "--stamp") == 0 && i + 1 < argc)
			return (runs_stamp(argv[i + 1]));
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
			ready_fd = atoi(argv[++i]);
		else
			runs_usage();
	}
	if (i + 1 >= argc || runs < 1 || runs > 1000000)
		runs_usage();
	argv += i + 1;
	if (ready_fd < 0)
		return (runs_repeat(argv, runs, wall));
	if (ready_fd < 3)
		runs_usage();
	/* Split DAEMON ... -- PING ... at the second "--". */
	for (i = 0; argv[i] != NULL; i++)
		if (strcmp(argv[i], "--") == 0) {
			argv[i] = NULL;
			ping = &argv[i + 1];
			break;
		}
	if (ping == NULL || ping[0] == NULL || argv[0] == NULL)
		runs_usage();
	return (runs_ready(argv, ping, ready_fd));
}
