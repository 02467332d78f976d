/*
 * bench-cli: times whole processes, several commands interleaved round-robin
 * (jobd, tsp, nq, jobd, tsp, nq, ...) so that whatever else the machine does
 * hits every command alike (issue 5, "CLI latency", "Submit-to-start", and
 * the runs of "End to end").
 *
 *   bench-cli [--runs N] [--warmup N] [--section S] --name NAME
 *             [--stamp FIFO] [--settle SYSTEM SHELL-COMMAND]...
 *             [--timeout SECONDS]
 *             -- SYSTEM CMD [ARG...] [::: SYSTEM CMD [ARG...]]...
 *
 * Each run of a command is fork + exec + wait, timed with CLOCK_MONOTONIC
 * from just before the fork to the wait's return. With --stamp, a run is
 * timed instead from just before the fork to the time that the job, a
 * bench-stamp FIFO started by the command (or the command itself), reads
 * first thing in its main and writes to FIFO: the submit-to-start time. A
 * run then ends only when both the command has exited and the stamp has
 * come (at most STAMP_TIMEOUT_S later, else it is an error).
 *
 * --settle SYSTEM CMD runs CMD with /bin/sh -c after each run of SYSTEM's
 * command, untimed, so that the next run finds the system idle: "{}" in CMD
 * is replaced by the first word the timed command printed (a job id), e.g.
 * "jobctl wait {}". --warmup rounds (default 1) run first and are not
 * counted. A command that exits other than 0, or outlives --timeout
 * (default 600 s), ends the benchmark with an error: then nothing is
 * printed for it.
 *
 * The output is one tab-separated line per command, in the rows of the
 * suite (bench/README.md): section, name, system, unit (us), median, p90,
 * min, max, runs.
 */
#include <sys/pidfd.h>
#include <sys/stat.h>
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

#define STAMP_TIMEOUT_S 10    /* from a run's start to its job's stamp */
#define CAPTURE_MAX     256   /* what a timed command may print, kept */
#define SETTLE_MAX      65536 /* a settle command after substitution */

extern char **environ;

/* One command under test, and its samples. */
struct bcmd {
	const char *system;
	char **argv;        /* argv[0] resolved to a path */
	const char *settle; /* or NULL */
	int64_t *ns;        /* one sample per counted run */
};

static const char *cli_stamp;  /* the FIFO, or NULL */
static int cli_stamp_fd = -1;  /* read end of the FIFO */
static int cli_devnull = -1;   /* stdin of every child */
static int64_t cli_timeout_ns; /* one process's life at most */

static int64_t
cli_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

static void
cli_die(const char *what)
{
	fprintf(stderr, "bench-cli: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
cli_fail(const struct bcmd *c, const char *why)
{
	fprintf(stderr, "bench-cli: %s: %s: %s\n", c->system, c->argv[0], why);
	exit(1);
}

static int
cli_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return ((x > y) - (x < y));
}

/*
 * name as execvp would find it, resolved once here so that the child runs
 * only execve between fork and exec. Returns a string to keep.
 */
static char *
cli_resolve(const char *name)
{
	const char *path = getenv("PATH"), *p, *end;
	char buf[PATH_MAX];

	if (strchr(name, '/') != NULL)
		return (strdup(name));
	for (p = path != NULL ? path : "/usr/bin:/bin"; *p != '\0'; p = end) {
		size_t len;

		if ((end = strchr(p, ':')) == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		if (len > 0 && len + strlen(name) + 2 <= sizeof buf) {
			snprintf(buf, sizeof buf, "%.*s/%s", (int)len, p, name);
			if (access(buf, X_OK) == 0)
				return (strdup(buf));
		}
		if (*end == ':')
			end++;
	}
	fprintf(stderr, "bench-cli: %s: not found in PATH\n", name);
	exit(1);
}

/* Start argv with stdin from /dev/null and stdout to out_fd. */
static pid_t
cli_spawn(char **argv, int out_fd)
{
	pid_t pid = fork();

	if (pid == -1)
		cli_die("fork");
	if (pid == 0) {
		if (dup2(cli_devnull, 0) == -1 || dup2(out_fd, 1) == -1)
			_exit(127);
		execve(argv[0], argv, environ);
		_exit(127);
	}
	return (pid);
}

/* Throw away stamps that came late from an earlier run. */
static void
cli_stamp_drain(void)
{
	char buf[512];

	while (read(cli_stamp_fd, buf, sizeof buf) > 0)
		continue;
}

/* The first stamp in what the FIFO holds, or -1 if none came yet. */
static int64_t
cli_stamp_read(void)
{
	char buf[64];
	ssize_t n = read(cli_stamp_fd, buf, sizeof buf - 1);

	if (n <= 0)
		return (-1);
	buf[n] = '\0';
	return (strtoll(buf, NULL, 10));
}

/*
 * Wait for pid to exit and, when stamp is not NULL, for a stamp, until
 * deadline: the wait's end time goes to *end, the stamp to *stamp. Returns
 * the exit status, or -1 on a timeout (the child, if still there, is
 * killed and reaped).
 */
static int
cli_wait(pid_t pid, int64_t deadline, int64_t *end, int64_t *stamp)
{
	struct pollfd pfd[2];
	int pidfd, status = -1, exited = 0, n;

	if ((pidfd = pidfd_open(pid, 0)) == -1)
		cli_die("pidfd_open");
	pfd[0] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = cli_stamp_fd, .events = POLLIN };
	while (!exited || (stamp != NULL && *stamp < 0)) {
		int64_t left = deadline - cli_now_ns();

		if (left <= 0)
			break;
		n = poll(exited ? &pfd[1] : pfd, exited ? 1 : (stamp ? 2 : 1),
		         (int)(left / 1000000 + 1));
		if (n == -1 && errno != EINTR)
			cli_die("poll");
		if (!exited && (pfd[0].revents & POLLIN)) {
			if (waitpid(pid, &status, 0) != pid)
				cli_die("waitpid");
			*end = cli_now_ns();
			exited = 1;
		}
		if (stamp != NULL && *stamp < 0 && (pfd[1].revents & POLLIN))
			*stamp = cli_stamp_read();
	}
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	close(pidfd);
	if (!exited || (stamp != NULL && *stamp < 0))
		return (-1);
	return (status);
}

/* Check a child's wait status: 0 if it exited 0, else say why and exit. */
static void
cli_check(const struct bcmd *c, int status, const char *what)
{
	char why[128];

	if (status == -1)
		snprintf(why, sizeof why, "%s timed out", what);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	else if (WIFEXITED(status))
		snprintf(why, sizeof why, "%s exited with %d", what,
		         WEXITSTATUS(status));
	else
		snprintf(why, sizeof why, "%s was killed by signal %d", what,
		         WTERMSIG(status));
	cli_fail(c, why);
}

/* c->settle with each "{}" replaced by word, run by /bin/sh -c. */
static void
cli_settle(const struct bcmd *c, const char *word)
{
	static char cmd[SETTLE_MAX];
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	const char *s = c->settle;
	size_t len = 0, wl = strlen(word);
	int64_t end;

	while (*s != '\0' && len + wl + 1 < sizeof cmd) {
		if (s[0] == '{' && s[1] == '}') {
			memcpy(cmd + len, word, wl);
			len += wl;
			s += 2;
		} else
			cmd[len++] = *s++;
	}
	cmd[len] = '\0';
	cli_check(c,
	          cli_wait(cli_spawn(argv, cli_devnull),
	                   cli_now_ns() + cli_timeout_ns, &end, NULL),
	          "its --settle command");
}

/* One run of c: its time in ns, after settling. */
static int64_t
cli_run(const struct bcmd *c)
{
	char out[CAPTURE_MAX + 1], word[CAPTURE_MAX + 1] = "";
	int fds[2] = { -1, -1 }, status;
	int64_t t0, end = 0, stamp = -1;
	ssize_t n;
	pid_t pid;

	if (cli_stamp != NULL)
		cli_stamp_drain();
	if (c->settle != NULL && pipe2(fds, O_CLOEXEC) == -1)
		cli_die("pipe");
	t0 = cli_now_ns();
	pid = cli_spawn(c->argv, fds[1] != -1 ? fds[1] : cli_devnull);
	status = cli_wait(pid,
	                  t0 + (cli_stamp != NULL
	                            ? (int64_t)STAMP_TIMEOUT_S * 1000000000
	                            : cli_timeout_ns),
	                  &end, cli_stamp != NULL ? &stamp : NULL);
	if (status == -1 && cli_stamp != NULL)
		cli_fail(c, "no stamp from the job within 10 s");
	cli_check(c, status, "the command");
	if (fds[0] != -1) {
		/*
		 * The command has exited, but what it started (tsp's and
		 * nq's background processes) may hold the pipe: take what
		 * is there without waiting for its end.
		 */
		close(fds[1]);
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
		if ((n = read(fds[0], out, CAPTURE_MAX)) > 0) {
			out[n] = '\0';
			sscanf(out, "%256s", word);
		}
		close(fds[0]);
		if (strstr(c->settle, "{}") != NULL && word[0] == '\0')
			cli_fail(c, "printed no id for --settle");
	}
	if (c->settle != NULL)
		cli_settle(c, word);
	return (cli_stamp != NULL ? stamp - t0 : end - t0);
}

static void
cli_report(const char *section, const char *name, struct bcmd *c, int runs)
{
	int64_t *v = c->ns;

	qsort(v, (size_t)runs, sizeof *v, cli_cmp);
	printf("%s\t%s\t%s\tus\t%lld\t%lld\t%lld\t%lld\t%d\n", section, name,
	       c->system, (long long)(v[runs / 2] / 1000),
	       (long long)(v[(runs * 9) / 10] / 1000), (long long)(v[0] / 1000),
	       (long long)(v[runs - 1] / 1000), runs);
}

static void
cli_usage(void)
{
	fprintf(stderr,
	        "usage: bench-cli [--runs N] [--warmup N] [--section S] "
	        "--name NAME\n"
	        "                 [--stamp FIFO] [--settle SYSTEM CMD]... "
	        "[--timeout SECONDS]\n"
	        "                 -- SYSTEM CMD [ARG...] [::: SYSTEM CMD "
	        "[ARG...]]...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *section = "cli", *name = NULL;
	const char *settle_sys[16], *settle_cmd[16];
	struct bcmd cmds[16];
	int runs = 20, warmup = 1, ncmds = 0, nsettle = 0, i;
	long timeout_s = 600;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
			warmup = atoi(argv[++i]);
		else if (strcmp(argv[i], "--section") == 0 && i + 1 < argc)
			section = argv[++i];
		else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (strcmp(argv[i], "--stamp") == 0 && i + 1 < argc)
			cli_stamp = argv[++i];
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout_s = atol(argv[++i]);
		else if (strcmp(argv[i], "--settle") == 0 && i + 2 < argc &&
		         nsettle < 16) {
			settle_sys[nsettle] = argv[++i];
			settle_cmd[nsettle++] = argv[++i];
		} else
			cli_usage();
	}
	if (name == NULL || i >= argc || runs < 1 || runs > 1000000 ||
	    warmup < 0 || timeout_s < 1)
		cli_usage();
	cli_timeout_ns = (int64_t)timeout_s * 1000000000;

	/* SYSTEM CMD [ARG...] groups, split at ":::" in place. */
	for (i++; i < argc; i++) {
		struct bcmd *c = &cmds[ncmds];
		int start = i + 1;

		if (ncmds == 16 || start >= argc ||
		    strcmp(argv[start], ":::") == 0)
			cli_usage();
		c->system = argv[i];
		for (i = start; i < argc && strcmp(argv[i], ":::") != 0; i++)
			continue;
		argv[i < argc ? i : argc] = NULL;
		c->argv = &argv[start];
		c->argv[0] = cli_resolve(c->argv[0]);
		c->settle = NULL;
		for (int s = 0; s < nsettle; s++)
			if (strcmp(settle_sys[s], c->system) == 0)
				c->settle = settle_cmd[s];
		if ((c->ns = calloc((size_t)runs, sizeof *c->ns)) == NULL)
			cli_die("calloc");
		ncmds++;
	}
	if (ncmds == 0)
		cli_usage();

	if ((cli_devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		cli_die("/dev/null");
	if (cli_stamp != NULL) {
		if (mkfifo(cli_stamp, 0600) == -1 && errno != EEXIST)
			cli_die(cli_stamp);
		/* Read and write: never an end of file between jobs. */
		cli_stamp_fd = open(cli_stamp, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (cli_stamp_fd == -1)
			cli_die(cli_stamp);
	}
	for (int r = 0; r < warmup; r++)
		for (int k = 0; k < ncmds; k++)
			cli_run(&cmds[k]);
	for (int r = 0; r < runs; r++)
		for (int k = 0; k < ncmds; k++)
			cmds[k].ns[r] = cli_run(&cmds[k]);
	for (int k = 0; k < ncmds; k++) {
		cli_report(section, name, &cmds[k], runs);
		free(cmds[k].argv[0]);
		free(cmds[k].ns);
	}
	return (0);
}
