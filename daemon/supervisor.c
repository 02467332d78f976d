/*
 * jobd-supervisor: the parent of one running job (DESIGN.md, "Processes").
 *
 *   jobd-supervisor --id ID --state-dir DIR --cwd DIR [--uid UID --gid GID]
 *       [--attempt N] [--timeout MS] [--kill-after MS] [--env-fd FD]
 *       [--lock-fd FD] (--shell CMD | -- PROGRAM [ARG...])
 *
 * jobd starts one per job. The job's environment comes on --env-fd (NUL-
 * terminated NAME=VALUE strings, read to its end) and passes to the job
 * untouched; the supervisor itself runs with an empty environment, so that
 * nothing a user submits (LD_PRELOAD, say) reaches the dynamic loader of a
 * process that may run as root, and nothing of it shows on the command
 * line, which every user can read. The supervisor owns,
 * for that one job: the run file STATE/run/ID.run (its pid, flock'ed), the
 * output files STATE/out/ID.out and ID.err, the job's process group, and the
 * outcome STATE/run/ID.status.
 *
 * Invariants:
 * - It never touches sqlite or nng, and links nothing but libc.
 * - The lock on the run file lives exactly as long as the supervisor: taken
 *   before anything else is done for the job, released only by exit. A
 *   restarted jobd tells a live supervisor by it. jobd takes it before the
 *   fork and hands it over on --lock-fd, so that no moment exists in which
 *   the supervisor lives unlocked.
 * - The outcome is written atomically (outcome_write) once the job has been
 *   reaped, and only then does the supervisor exit; on a full disk it tries
 *   again for up to 10 minutes first. It never unlinks the run
 *   or status file: jobd does, after committing the outcome.
 * - The job is its process group. The leader gets its own group (pgid ==
 *   its pid); signals go to the whole group; when the leader ends, whatever
 *   is left in the group is killed (SIGKILL) and reaped before the outcome is
 *   written. The supervisor is a child subreaper, so the group's orphans are
 *   its children and nothing is left behind as a zombie. A process that
 *   leaves the group (setsid, setpgid) escapes this; cgroups would not.
 * - Signals are blocked from the first line and taken synchronously with
 *   sigtimedwait; there are no handlers. SIGUSR1 from jobd (sigqueue, the
 *   signal number in sival_int) and SIGTERM/SIGINT forward a signal to the
 *   group and arm the SIGKILL escalation (--kill-after, default 10 s).
 * - --timeout MS counts from the job's start on the monotonic clock. If the
 *   leader has not been reaped by then, the group gets SIGTERM and the
 *   escalation is armed, as for a cancel, and the outcome's reason is
 *   "timeout", whatever the job's end after that. If a signal has already
 *   gone to the group (a cancel first), the timeout sends nothing and leaves
 *   that escalation alone, but still counts: the reason is "timeout" if no
 *   other reason was set. A job that ends before the deadline has none.
 *
 * Exit status: 0 once the outcome is written (whatever the job did), 1 if it
 * could not be written or setup failed, 2 for a usage error, 3 if another
 * supervisor holds the job's run file.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "outcome.h"
#include "util.h"

#define SUP_KILL_AFTER_MS 10000
#define SUP_DRAIN_MS      5000 /* most we wait for the group after SIGKILL */
#define SUP_NOFILE        1024 /* the job's RLIMIT_NOFILE soft limit */
#define SUP_ENV_MAX       (8 * 1024 * 1024)  /* most environment bytes */
#define SUP_TIMEOUT_MAX   (INT64_C(1) << 53) /* as jobd's timeout_ms */
#define SUP_OUTCOME_MS    600000 /* how long a full disk is waited out */

#define SUP_EXIT_FAILURE 1
#define SUP_EXIT_USAGE   2
#define SUP_EXIT_LOCKED  3

/* What the child reports on its pipe when it could not start the job. */
enum sup_stage {
	SUP_STAGE_SETUP,
	SUP_STAGE_IDENTITY,
	SUP_STAGE_CHDIR,
	SUP_STAGE_EXEC,
};

struct sup_report {
	int stage; /* enum sup_stage */
	int err;   /* errno */
};

struct sup {
	/* From the command line. */
	int64_t id;
	const char *state;
	const char *cwd;
	int set_ids; /* --uid and --gid given */
	int env_fd;  /* --env-fd, or -1 */
	int lock_fd; /* --lock-fd: the run file, locked by jobd; or -1 */
	uid_t uid;
	gid_t gid;
	int64_t kill_after;
	int64_t timeout;   /* --timeout in ms, or -1 */
	int64_t attempt;   /* --attempt: after the first, output appends */
	const char *shell; /* --shell CMD, or NULL */
	char **argv;       /* PROGRAM ARG..., or NULL */
	char **env;        /* the job's environment, NULL-terminated */

	/* Prepared before the fork. */
	gid_t *groups; /* the job's supplementary groups (root only) */
	int ngroups;
	int out_fd, err_fd;
	int report_fd; /* read end of the child's report pipe */

	/* The running job. */
	pid_t pid; /* the leader; also the group's id */
	int reaped;
	int64_t kill_at;    /* monotonic ms of the SIGKILL escalation, or -1 */
	int64_t timeout_at; /* monotonic ms of the timeout, or -1 */
	int signalled;      /* a signal has gone to the group */
	int timed_out;      /* the timeout fired before the leader was reaped */
	int64_t mono_start, mono_end;
};

static const char sup_usage_text[] =
    "usage: jobd-supervisor --id ID --state-dir DIR --cwd DIR"
    " [--uid UID --gid GID]\n"
    "           [--attempt N] [--timeout MS] [--kill-after MS]"
    " [--env-fd FD] [--lock-fd FD]\n"
    "           (--shell CMD | -- PROGRAM [ARG...])\n";

static char sup_log_prefix[64] = "jobd-supervisor";

static __attribute__((noreturn)) void
sup_usage(const char *why)
{
	fprintf(stderr, "%s: %s\n%s", sup_log_prefix, why, sup_usage_text);
	exit(SUP_EXIT_USAGE);
}

static void sup_reason(struct outcome *, const char *, ...) LOG_PRINTF(2, 3);

/* Say in o->reason why the job failed where its exit code does not. */
static void
sup_reason(struct outcome *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->reason, sizeof o->reason, fmt, ap);
	va_end(ap);
}

/*
 * Parse the command line strictly: every option once, each with its value
 * in the next word, nothing unknown, exactly one of --shell and "--".
 */
static void
sup_parse(int argc, char **argv, struct sup *s)
{
	const char *id = NULL, *uid = NULL, *gid = NULL, *kill_after = NULL;
	const char *env_fd = NULL, *timeout = NULL, *attempt = NULL;
	const char *lock_fd = NULL;
	const char **slot;
	long long v;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			if (i + 1 == argc)
				sup_usage("no program after --");
			s->argv = argv + i + 1;
			break;
		}
		if (strcmp(argv[i], "--id") == 0)
			slot = &id;
		else if (strcmp(argv[i], "--state-dir") == 0)
			slot = &s->state;
		else if (strcmp(argv[i], "--cwd") == 0)
			slot = &s->cwd;
		else if (strcmp(argv[i], "--uid") == 0)
			slot = &uid;
		else if (strcmp(argv[i], "--gid") == 0)
			slot = &gid;
		else if (strcmp(argv[i], "--kill-after") == 0)
			slot = &kill_after;
		else if (strcmp(argv[i], "--timeout") == 0)
			slot = &timeout;
		else if (strcmp(argv[i], "--attempt") == 0)
			slot = &attempt;
		else if (strcmp(argv[i], "--shell") == 0)
			slot = &s->shell;
		else if (strcmp(argv[i], "--env-fd") == 0)
			slot = &env_fd;
		else if (strcmp(argv[i], "--lock-fd") == 0)
			slot = &lock_fd;
		else {
			fprintf(stderr, "%s: unknown argument '%s'\n",
			        sup_log_prefix, argv[i]);
			sup_usage("bad command line");
		}
		if (*slot != NULL)
			sup_usage("an option is given twice");
		if (i + 1 == argc)
			sup_usage("an option is missing its value");
		*slot = argv[++i];
	}

	if (id == NULL || util_parse_int(id, 0, INT64_MAX, &v) == -1)
		sup_usage("--id must be a job id");
	s->id = v;
	if (s->state == NULL || *s->state == '\0')
		sup_usage("--state-dir is required");
	if (s->cwd == NULL || *s->cwd == '\0')
		sup_usage("--cwd is required");
	if ((uid == NULL) != (gid == NULL))
		sup_usage("--uid and --gid go together");
	if (uid != NULL) {
		/* (uid_t)-1 means "no change" to set*id: not a user. */
		if (util_parse_int(uid, 0, (uid_t)-1 - 1, &v) == -1)
			sup_usage("--uid must be a number");
		s->uid = (uid_t)v;
		if (util_parse_int(gid, 0, (gid_t)-1 - 1, &v) == -1)
			sup_usage("--gid must be a number");
		s->gid = (gid_t)v;
		s->set_ids = 1;
	}
	s->kill_after = SUP_KILL_AFTER_MS;
	if (kill_after != NULL) {
		if (util_parse_int(kill_after, 0, INT_MAX, &v) == -1)
			sup_usage("--kill-after must be a number of ms");
		s->kill_after = v;
	}
	s->attempt = 1;
	if (attempt != NULL) {
		if (util_parse_int(attempt, 1, INT64_MAX, &v) == -1)
			sup_usage("--attempt must be a positive number");
		s->attempt = v;
	}
	s->timeout = -1;
	if (timeout != NULL) {
		if (util_parse_int(timeout, 1, SUP_TIMEOUT_MAX, &v) == -1)
			sup_usage("--timeout must be a positive number of ms");
		s->timeout = v;
	}
	if ((s->shell == NULL) == (s->argv == NULL))
		sup_usage("give either --shell CMD or -- PROGRAM [ARG...]");
	s->env_fd = -1;
	if (env_fd != NULL) {
		if (util_parse_int(env_fd, 0, INT_MAX, &v) == -1)
			sup_usage("--env-fd must be a descriptor");
		s->env_fd = (int)v;
	}
	s->lock_fd = -1;
	if (lock_fd != NULL) {
		if (util_parse_int(lock_fd, 0, INT_MAX, &v) == -1)
			sup_usage("--lock-fd must be a descriptor");
		s->lock_fd = (int)v;
	}
}

/*
 * Read the job's environment from s->env_fd to its end and close it; no
 * --env-fd means an empty environment.
 */
static void
sup_read_env(struct sup *s)
{
	size_t len = 0, cap = 4096;
	char *buf = xmalloc(cap);
	ssize_t got;

	while (s->env_fd != -1) {
		if (len == cap) {
			if (cap >= SUP_ENV_MAX)
				fatalx("the job's environment is too large");
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		got = read(s->env_fd, buf + len, cap - len);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1)
			fatal("reading the job's environment");
		if (got == 0)
			break;
		len += (size_t)got;
	}
	if (s->env_fd != -1)
		close(s->env_fd);
	s->env = util_strv_split(buf, len);
	free(buf);
}

/*
 * Point stdin at /dev/null, and make sure fds 1 and 2 are open, so that no
 * file the supervisor opens lands on 0-2 (where dup2 in the child would
 * keep its close-on-exec flag).
 */
static void
sup_std_fds(void)
{
	int fd, i;

	for (i = 0; i <= 2; i++) {
		if (i > 0 && fcntl(i, F_GETFD) != -1)
			continue;
		if ((fd = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY)) ==
		    -1)
			fatal("open /dev/null");
		if (fd != i) {
			if (dup2(fd, i) == -1)
				fatal("dup2 /dev/null");
			close(fd);
		}
	}
}

/*
 * Take the job's run file: open it (or take jobd's, --lock-fd), lock it,
 * write our pid. The fd stays open (and the lock held) until exit; it is
 * close-on-exec, so the job never holds it.
 */
static void
sup_lock(const struct sup *s)
{
	char path[PATH_MAX], pid[32];
	int fd = s->lock_fd, n;
	struct stat sb;

	if (outcome_path(path, sizeof path, s->state, s->id, OUTCOME_RUN) == -1)
		fatalx("state folder path too long");
	if (fd != -1) {
		/* Locked by jobd already: locking it again changes nothing. */
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
			fatal("--lock-fd %d", fd);
	} else if ((fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW,
	                      0600)) == -1)
		fatal("open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK) {
			log_warnx("%s is locked: another supervisor runs this "
			          "job",
			          path);
			exit(SUP_EXIT_LOCKED);
		}
		fatal("flock %s", path);
	}
	/*
	 * jobd writes our pid and start time in the file it hands over; if it
	 * died before it could, our pid is enough.
	 */
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (s->lock_fd != -1 && fstat(fd, &sb) == 0 && sb.st_size > 0)
		;
	else if ((s->lock_fd == -1 && ftruncate(fd, 0) == -1) ||
	         pwrite(fd, pid, (size_t)n, 0) != n)
		fatal("write %s", path);

	/*
	 * We own the job now. An outcome already here is a previous run's
	 * that jobd did not remove: left in place, it would pass for ours if
	 * we died without writing one.
	 */
	if (outcome_path(path, sizeof path, s->state, s->id, OUTCOME_STATUS) ==
	    -1)
		fatalx("state folder path too long");
	if (unlink(path) == 0)
		log_warnx("removed a stale outcome %s", path);
	else if (errno != ENOENT)
		fatal("unlink %s", path);
}

/* Open one output file; on failure say why in o->reason. */
static int
sup_open_output(const struct sup *s, enum outcome_file which, struct outcome *o)
{
	char path[PATH_MAX];
	int fd;

	if (outcome_path(path, sizeof path, s->state, s->id, which) == -1)
		fatalx("state folder path too long");
	/* A later attempt adds to the output of the earlier ones. */
	fd = open(path,
	          O_WRONLY | O_CREAT | (s->attempt > 1 ? O_APPEND : O_TRUNC) |
	              O_CLOEXEC | O_NOFOLLOW,
	          0640);
	if (fd == -1) {
		sup_reason(o, "cannot create output file %s: %s", path,
		           strerror(errno));
		log_warnx("%s", o->reason);
		return (-1);
	}
	/* The owner may read the output directly; ownership is a courtesy. */
	if (s->set_ids && geteuid() == 0 && fchown(fd, s->uid, s->gid) == -1)
		log_warn("fchown %s", path);
	return (fd);
}

/*
 * The job's supplementary groups, looked up here rather than in the child so
 * that NSS (which may open files and sockets) runs in the supervisor. A uid
 * with no passwd entry gets only its gid.
 */
static void
sup_groups(struct sup *s)
{
	struct passwd *pw;
	int n = 32;

	if (!s->set_ids || geteuid() != 0)
		return;
	/*
	 * Root's permission checks do not look at groups, and NSS (loading
	 * its modules, reading /etc/group) costs a root job as much as
	 * starting its shell: root's jobs get their gid alone.
	 */
	if (s->uid == 0) {
		s->groups = xmalloc(sizeof *s->groups);
		s->groups[0] = s->gid;
		s->ngroups = 1;
		return;
	}
	errno = 0;
	if ((pw = getpwuid(s->uid)) == NULL) {
		if (errno != 0)
			log_warn("getpwuid %lu", (unsigned long)s->uid);
		s->groups = xmalloc(sizeof *s->groups);
		s->groups[0] = s->gid;
		s->ngroups = 1;
		return;
	}
	s->groups = xmalloc((size_t)n * sizeof *s->groups);
	/* On -1, n is the size needed. */
	while (getgrouplist(pw->pw_name, s->gid, s->groups, &n) == -1)
		s->groups = xrealloc(s->groups, (size_t)n * sizeof *s->groups);
	s->ngroups = n;
}

/* In the child: tell the supervisor why the job did not start, and die. */
static __attribute__((noreturn)) void
sup_child_fail(int fd, enum sup_stage stage, int err, int code)
{
	struct sup_report r = { .stage = stage, .err = err };

	if (write(fd, &r, sizeof r) != (ssize_t)sizeof r) {
		/* The supervisor falls back on the exit code alone. */
	}
	_exit(code);
}

/*
 * In the child: become the job's user. Groups, then gid, then uid: after
 * setuid nothing else may change. Without root only a no-op succeeds, so a
 * job is never run as someone other than the uid asked for.
 */
static int
sup_child_identity(const struct sup *s)
{
	if (!s->set_ids)
		return (0);
	if (geteuid() == 0 && setgroups((size_t)s->ngroups, s->groups) == -1)
		return (-1);
	if (setgid(s->gid) == -1 || setuid(s->uid) == -1)
		return (-1);
	if (s->uid != 0 && setuid(0) != -1) {
		errno = EPERM; /* root could be regained: refuse to run */
		return (-1);
	}
	return (0);
}

/*
 * The child, between fork and exec. The supervisor is single-threaded, so
 * any call is safe here, but the code stays short and every path ends in
 * exec or _exit. fd 0 is already /dev/null (sup_std_fds).
 */
static __attribute__((noreturn)) void
sup_child(const struct sup *s, int report)
{
	const char *prog = s->shell != NULL ? "/bin/sh" : s->argv[0];
	struct rlimit rl;
	sigset_t none;
	int sig, e;

	/* SIG_IGN would survive exec (the supervisor ignores SIGPIPE). */
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setpgid(0, 0);
	if (dup2(s->out_fd, 1) == -1 || dup2(s->err_fd, 2) == -1)
		sup_child_fail(report, SUP_STAGE_SETUP, errno, 127);

	if (sup_child_identity(s) == -1) {
		e = errno;
		dprintf(2, "jobd: cannot switch to uid %lu gid %lu: %s\n",
		        (unsigned long)s->uid, (unsigned long)s->gid,
		        strerror(e));
		sup_child_fail(report, SUP_STAGE_IDENTITY, e, 127);
	}
	umask(022);
	/* jobd's own limit may be large, and that breaks select(). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur =
		    rl.rlim_max < SUP_NOFILE ? rl.rlim_max : SUP_NOFILE;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* After setuid, so the job's own permissions apply. */
	if (chdir(s->cwd) == -1) {
		e = errno;
		dprintf(2, "jobd: cannot change directory to '%s': %s\n",
		        s->cwd, strerror(e));
		sup_child_fail(report, SUP_STAGE_CHDIR, e, 127);
	}
	/* execvp looks the program up in the job's own PATH. */
	environ = s->env;
	if (s->shell != NULL)
		execl("/bin/sh", "sh", "-c", s->shell, (char *)NULL);
	else
		execvp(s->argv[0], s->argv);
	e = errno;
	dprintf(2, "jobd: %s: %s\n", prog, strerror(e));
	sup_child_fail(report, SUP_STAGE_EXEC, e,
	               e == EACCES || e == ENOEXEC ? 126 : 127);
}

/* Fork the job. Returns 0, or -1 with o->reason set. */
static int
sup_start(struct sup *s, struct outcome *o)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) == -1) {
		sup_reason(o, "cannot start the job: pipe: %s",
		           strerror(errno));
		log_warnx("%s", o->reason);
		return (-1);
	}
	s->pid = fork();
	if (s->pid == -1) {
		sup_reason(o, "cannot start the job: fork: %s",
		           strerror(errno));
		log_warnx("%s", o->reason);
		close(fds[0]);
		close(fds[1]);
		return (-1);
	}
	if (s->pid == 0)
		sup_child(s, fds[1]);

	/*
	 * The child does the same: whichever runs first, the group exists
	 * before we send it any signal. EACCES (the child has already exec'd)
	 * means the child did it.
	 */
	if (setpgid(s->pid, s->pid) == -1 && errno != EACCES && errno != ESRCH)
		log_warn("setpgid %ld", (long)s->pid);
	close(fds[1]);
	s->report_fd = fds[0];
	return (0);
}

/*
 * Send sig to the job's group. Only while the leader is unreaped: its pid,
 * which is the group's id, cannot be reused until then.
 */
static void
sup_signal(struct sup *s, int sig)
{
	if (s->reaped)
		return;
	if (kill(-s->pid, sig) == -1 && errno != ESRCH)
		log_warn("kill -%ld %s", (long)s->pid, strsignal(sig));
	s->signalled = 1;
	if (sig != SIGKILL && s->kill_at == -1)
		s->kill_at = util_mono_ms() + s->kill_after;
}

/* Read why the child did not start the job, if it said so. */
static void
sup_read_report(struct sup *s, struct outcome *o)
{
	struct sup_report r;
	const char *prog = s->shell != NULL ? "/bin/sh" : s->argv[0];
	ssize_t n;

	/* Every write end is closed (exec or exit): this cannot block. */
	do
		n = read(s->report_fd, &r, sizeof r);
	while (n == -1 && errno == EINTR);
	close(s->report_fd);
	s->report_fd = -1;
	if (n != (ssize_t)sizeof r)
		return;
	switch (r.stage) {
	case SUP_STAGE_IDENTITY:
		sup_reason(o, "cannot switch to uid %lu gid %lu: %s",
		           (unsigned long)s->uid, (unsigned long)s->gid,
		           strerror(r.err));
		break;
	case SUP_STAGE_CHDIR:
		sup_reason(o, "cannot change directory to '%s': %s", s->cwd,
		           strerror(r.err));
		break;
	case SUP_STAGE_EXEC:
		sup_reason(o, "cannot execute '%s': %s", prog, strerror(r.err));
		break;
	default:
		sup_reason(o, "cannot set up the job: %s", strerror(r.err));
		break;
	}
}

/*
 * Reap every child that has ended. The leader is first seen without being
 * reaped (WNOWAIT): the sweep of its group must happen while its pid still
 * names the group.
 */
static void
sup_reap(struct sup *s, struct outcome *o)
{
	siginfo_t si;
	int status;

	for (;;) {
		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == -1) {
			if (errno == EINTR)
				continue;
			if (errno != ECHILD)
				log_warn("waitid");
			return;
		}
		if (si.si_pid == 0)
			return;
		if (si.si_pid != s->pid || s->reaped) {
			waitpid(si.si_pid, NULL, 0); /* an orphan of the job */
			continue;
		}
		/* The job is its process group: nothing outlives the leader. */
		if (kill(-s->pid, SIGKILL) == -1 && errno != ESRCH)
			log_warn("kill -%ld SIGKILL", (long)s->pid);
		if (waitpid(s->pid, &status, 0) == -1)
			fatal("waitpid %ld", (long)s->pid);
		s->reaped = 1;
		o->finished_at = util_now_ms();
		s->mono_end = util_mono_ms();
		if (WIFEXITED(status))
			o->exit_code = WEXITSTATUS(status);
		else if (WIFSIGNALED(status))
			o->signal = WTERMSIG(status);
		sup_read_report(s, o);
	}
}

/* Has every child of ours in the job's group been reaped? */
static int
sup_group_gone(const struct sup *s)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	return (waitid(P_PGID, (id_t)s->pid, &si,
	               WEXITED | WNOHANG | WNOWAIT) == -1 &&
	        errno == ECHILD);
}

/* sigtimedwait for ms (-1: no limit). Returns the signal, or -1. */
static int
sup_sigwait(const sigset_t *set, siginfo_t *si, int64_t ms)
{
	struct timespec ts;

	if (ms < 0)
		return (sigwaitinfo(set, si));
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	return (sigtimedwait(set, si, &ts));
}

/* SIGUSR1 from jobd: the signal to send is in sival_int. */
static void
sup_forward(struct sup *s, const siginfo_t *si)
{
	int sig = si->si_value.sival_int;

	if (si->si_code != SI_QUEUE || sig < 1 || sig >= SIGRTMIN) {
		log_warnx(
		    "ignoring SIGUSR1 from pid %ld: no valid signal in it",
		    (long)si->si_pid);
		return;
	}
	sup_signal(s, sig);
}

/*
 * The job's deadline has passed with its leader unreaped: SIGTERM to the
 * group and the escalation, unless a signal has gone to it already (then
 * that one keeps its course). Either way the job has timed out.
 */
static void
sup_timeout(struct sup *s)
{
	s->timeout_at = -1;
	s->timed_out = 1;
	if (s->signalled) {
		log_info("the job reached its timeout of %" PRId64
		         " ms after it was signalled",
		         s->timeout);
		return;
	}
	log_info("the job reached its timeout of %" PRId64
	         " ms; sending SIGTERM",
	         s->timeout);
	sup_signal(s, SIGTERM);
}

/* The earlier of two monotonic deadlines, -1 meaning none. */
static int64_t
sup_earliest(int64_t a, int64_t b)
{
	if (a == -1)
		return (b);
	if (b == -1)
		return (a);
	return (a < b ? a : b);
}

/*
 * Wait for the job and everything in its group, forwarding signals, and
 * timing out and escalating to SIGKILL on time.
 */
static void
sup_wait(struct sup *s, const sigset_t *set, struct outcome *o)
{
	siginfo_t si;
	int64_t now, drain_until = -1, deadline, timeout;
	int sig;

	for (;;) {
		now = util_mono_ms();
		if (s->reaped) {
			if (sup_group_gone(s))
				return;
			if (drain_until == -1)
				drain_until = now + SUP_DRAIN_MS;
			if (now >= drain_until) {
				log_warnx("the job's process group is still "
				          "there after SIGKILL; giving up");
				return;
			}
			/* Members of the group are left: its id is safe. */
			kill(-s->pid, SIGKILL);
			timeout = drain_until - now;
		} else {
			if (s->timeout_at != -1 && now >= s->timeout_at) {
				/*
				 * A leader that ended just now, its SIGCHLD
				 * still pending, did not time out.
				 */
				sup_reap(s, o);
				if (!s->reaped)
					sup_timeout(s);
				continue;
			}
			if (s->kill_at != -1 && now >= s->kill_at) {
				log_info("the job is still running %" PRId64
				         " ms after it was signalled; "
				         "sending SIGKILL",
				         s->kill_after);
				sup_signal(s, SIGKILL);
				s->kill_at = -1;
				continue;
			}
			deadline = sup_earliest(s->timeout_at, s->kill_at);
			timeout = deadline == -1 ? -1 : deadline - now;
		}

		if ((sig = sup_sigwait(set, &si, timeout)) == -1) {
			if (errno != EAGAIN && errno != EINTR)
				fatal("sigtimedwait");
			continue;
		}
		switch (sig) {
		case SIGCHLD:
			sup_reap(s, o);
			break;
		case SIGUSR1:
			sup_forward(s, &si);
			break;
		case SIGTERM:
		case SIGINT:
			sup_signal(s, SIGTERM);
			break;
		default: /* SIGHUP: jobd's terminal or a reload, not ours */
			break;
		}
	}
}

/*
 * Write the outcome. A full disk or a state folder gone read-only would make
 * the job lost: try again, with a growing pause, for up to SUP_OUTCOME_MS
 * while holding the lock, so that jobd (even a restarted one) waits for us.
 * Returns 0, or -1 if it never could.
 */
static int
sup_write_outcome(const struct sup *s, const struct outcome *o)
{
	int64_t give_up = util_mono_ms() + SUP_OUTCOME_MS, pause = 100;
	struct timespec ts;

	while (outcome_write(s->state, s->id, o) == -1) {
		if (errno == EINVAL || util_mono_ms() + pause > give_up) {
			log_warn("cannot write the outcome of job %" PRId64
			         "; giving up",
			         s->id);
			return (-1);
		}
		log_warn("cannot write the outcome of job %" PRId64
		         "; trying again in %" PRId64 " ms",
		         s->id, pause);
		ts.tv_sec = pause / 1000;
		ts.tv_nsec = (pause % 1000) * 1000000;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
		if (pause < 5000)
			pause *= 2;
	}
	return (0);
}

int
main(int argc, char **argv)
{
	struct sup s = {
		.out_fd = -1, .err_fd = -1, .report_fd = -1, .kill_at = -1
	};
	struct outcome o;
	sigset_t set;
	int rv = 0;

	/*
	 * First of all: a cancel that arrives while we set up must wait for
	 * the job, not kill the supervisor (the default action).
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	/* Our stderr may be a pipe nobody reads any more. */
	signal(SIGPIPE, SIG_IGN);
	/* Under SIG_IGN the kernel would reap the job before we could. */
	signal(SIGCHLD, SIG_DFL);

	sup_parse(argc, argv, &s);
	sup_read_env(&s);
	snprintf(sup_log_prefix, sizeof sup_log_prefix,
	         "jobd-supervisor[%" PRId64 "]", s.id);
	log_init(sup_log_prefix, 0);
	sup_std_fds();

	/* Our own session: jobd's terminal signals and group are not ours. */
	if (setsid() == -1 && getpgrp() != getpid())
		fatal("setsid");
	/* Orphans of the job become our children, so we can reap them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_warn("PR_SET_CHILD_SUBREAPER");
	sup_lock(&s);

	memset(&o, 0, sizeof o);
	o.exit_code = -1;
	o.started_at = util_now_ms();
	s.mono_start = util_mono_ms();
	s.timeout_at = s.timeout == -1 ? -1 : s.mono_start + s.timeout;
	if ((s.out_fd = sup_open_output(&s, OUTCOME_STDOUT, &o)) != -1 &&
	    (s.err_fd = sup_open_output(&s, OUTCOME_STDERR, &o)) != -1) {
		sup_groups(&s);
		if (sup_start(&s, &o) == 0) {
			close(s.out_fd);
			close(s.err_fd);
			s.out_fd = s.err_fd = -1;
			sup_wait(&s, &set, &o);
		}
	}
	if (s.out_fd != -1)
		close(s.out_fd);
	if (s.err_fd != -1)
		close(s.err_fd);
	free(s.groups);
	util_strv_free(s.env);

	/* Any reason already there (the job could not start) says more. */
	if (s.timed_out && o.reason[0] == '\0')
		sup_reason(&o, "timeout");
	if (!s.reaped) {
		o.finished_at = util_now_ms();
		s.mono_end = util_mono_ms();
	}
	/* A wall clock stepped back must not make the job end before start. */
	if (o.finished_at < o.started_at)
		o.finished_at = o.started_at + (s.mono_end - s.mono_start);
	if (sup_write_outcome(&s, &o) == -1)
		rv = SUP_EXIT_FAILURE;
	return (rv);
}
