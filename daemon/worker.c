/*
 * Running jobs: the only file that starts processes. Each job runs under
 * its own jobd-supervisor process (a new session; the job in its own
 * process group), started by posix_spawn from this multi-threaded daemon,
 * so nothing of jobd's runs in the child before the exec. jobd reaps the
 * supervisor on SIGCHLD, reads the outcome file it wrote, and records it.
 * A supervisor's files are removed only after that record is committed.
 * A supervisor that an earlier jobd started and that still runs is adopted
 * at start-up and watched through its pidfd. RAM holds the running jobs
 * only.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd.h"

struct worker {
	int64_t id;
	char *queue; /* its job's queue */
	pid_t pid;   /* 0: not known yet (adopted, see worker_adopt) */
	unsigned long long start; /* adopted: its start time, or 0 */
	int pending_sig;          /* to send after the commit, or 0 */
	/*
	 * A supervisor an older jobd started: an event on its pidfd, or, if
	 * no pidfd could be had, a timer that checks its lock every second.
	 */
	struct event *adopt_ev;
	int status; /* its wait status, once reaped; -1 if adopted */
	LIST_ENTRY(worker) entry;
};
LIST_HEAD(worker_list, worker);

static struct worker_list worker_running =
    LIST_HEAD_INITIALIZER(worker_running);
/* Ended and recorded; their files go after the commit. */
static struct worker_list worker_ended = LIST_HEAD_INITIALIZER(worker_ended);
/* Ended, but the commit of their record failed: recorded again later. */
static struct worker_list worker_unrecorded =
    LIST_HEAD_INITIALIZER(worker_unrecorded);
static struct event *worker_retry_ev;
static const struct timeval worker_retry_tv = { 1, 0 };
static int worker_nrunning;

static void worker_retry_cb(evutil_socket_t, short, void *);
static int worker_alive(int64_t);

void
worker_init(void)
{
	worker_retry_ev = evtimer_new(server_base, worker_retry_cb, NULL);
}

int
worker_count(void)
{
	return (worker_nrunning);
}

/* Is every end recorded (none waits for a commit to be tried again)? */
int
worker_settled(void)
{
	return (LIST_EMPTY(&worker_unrecorded));
}

/* Supervisors running jobs of queue q. */
int
worker_count_queue(const char *q)
{
	struct worker *w;
	int n = 0;

	LIST_FOREACH(w, &worker_running, entry)
	n += strcmp(w->queue, q) == 0;
	return (n);
}

static struct worker *
worker_new(int64_t id, const char *queue, pid_t pid)
{
	struct worker *w = xcalloc(1, sizeof *w);

	w->id = id;
	w->queue = xstrdup(queue != NULL ? queue : PROTO_DEFAULT_QUEUE);
	w->pid = pid;
	return (w);
}

static void
worker_free(struct worker *w)
{
	free(w->queue);
	free(w);
}

static struct worker *
worker_find(int64_t id)
{
	struct worker *w;

	LIST_FOREACH(w, &worker_running, entry)
	if (w->id == id)
		return (w);
	return (NULL);
}

/*
 * The supervisor reads the job's environment from WORKER_ENV_FD and gets its
 * run file, already locked, on WORKER_LOCK_FD. Both are moved to
 * WORKER_FD_LOW or above before the fork, so that putting one in place in
 * the child never overwrites the other.
 */
#define WORKER_ENV_FD  3
#define WORKER_LOCK_FD 4
#define WORKER_FD_LOW  10

/* Is env entry e one of the variables jobd sets (JOBD_...=)? */
static int
worker_env_ours(const char *e)
{
	static const char *const ours[] = { "JOBD_JOB_ID=", "JOBD_QUEUE=",
		                            "JOBD_ATTEMPT=", "JOBD_ARRAY_ID=",
		                            "JOBD_ARRAY_INDEX=" };

	for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
		if (strncmp(e, ours[i], strlen(ours[i])) == 0)
			return (1);
	return (0);
}

/*
 * Job j's environment on an anonymous memory file, read from the start:
 * not on the supervisor's command line, which every user can read. It is
 * the submitted one with jobd's variables (JOBD_JOB_ID, ...) in place of
 * any of the same names. Returns the descriptor (close-on-exec), or -1.
 */
static int
worker_env_fd(const struct job *j)
{
	char *ours[5], *buf;
	size_t len = 0, cap = 0, n = 0, k;
	ssize_t w = 0;
	int fd;

	ours[n++] = xasprintf("JOBD_JOB_ID=%lld", (long long)j->id);
	ours[n++] = xasprintf("JOBD_QUEUE=%s", j->queue);
	ours[n++] = xasprintf("JOBD_ATTEMPT=%lld", (long long)j->attempt);
	if (j->array_id != 0) {
		ours[n++] =
		    xasprintf("JOBD_ARRAY_ID=%lld", (long long)j->array_id);
		ours[n++] = xasprintf("JOBD_ARRAY_INDEX=%lld",
		                      (long long)j->array_index);
	}
	/* One write: the whole environment, each string NUL-terminated. */
	for (int i = 0; j->env[i] != NULL; i++)
		cap += strlen(j->env[i]) + 1;
	for (k = 0; k < n; k++)
		cap += strlen(ours[k]) + 1;
	buf = xmalloc(cap + 1);
	for (int i = 0; j->env[i] != NULL; i++)
		if (!worker_env_ours(j->env[i]))
			len += (size_t)sprintf(buf + len, "%s", j->env[i]) + 1;
	for (k = 0; k < n; k++) {
		len += (size_t)sprintf(buf + len, "%s", ours[k]) + 1;
		free(ours[k]);
	}
	if ((fd = memfd_create("jobd-env", MFD_CLOEXEC)) != -1 &&
	    ((w = write(fd, buf, len)) != (ssize_t)len ||
	     lseek(fd, 0, SEEK_SET) != 0)) {
		if (w >= 0)
			errno = EIO;
		close(fd);
		fd = -1;
	}
	free(buf);
	return (fd);
}

/* The supervisor's command line (see daemon/supervisor.c). */
static char **
worker_argv(const struct job *j)
{
	size_t n = 24, k = 0; /* options, values and the NULL */
	char **v;

	for (int i = 0; j->argv != NULL && j->argv[i] != NULL; i++)
		n++;
	v = xcalloc(n, sizeof *v);
	v[k++] = xstrdup(jobd_conf.supervisor);
	v[k++] = xstrdup("--id");
	v[k++] = xasprintf("%lld", (long long)j->id);
	v[k++] = xstrdup("--state-dir");
	v[k++] = xstrdup(jobd_conf.state_dir);
	v[k++] = xstrdup("--cwd");
	v[k++] = xstrdup(j->cwd);
	v[k++] = xstrdup("--attempt");
	v[k++] = xasprintf("%lld", (long long)j->attempt);
	v[k++] = xstrdup("--kill-after");
	v[k++] = xasprintf("%lld", (long long)j->kill_after_ms);
	if (j->timeout_ms > 0) {
		v[k++] = xstrdup("--timeout");
		v[k++] = xasprintf("%lld", (long long)j->timeout_ms);
	}
	if (geteuid() == 0) {
		/* A root jobd runs each job as its owner. */
		v[k++] = xstrdup("--uid");
		v[k++] = xasprintf("%lld", (long long)j->uid);
		v[k++] = xstrdup("--gid");
		v[k++] = xasprintf("%lld", (long long)j->gid);
	}
	v[k++] = xstrdup("--env-fd");
	v[k++] = xasprintf("%d", WORKER_ENV_FD);
	v[k++] = xstrdup("--lock-fd");
	v[k++] = xasprintf("%d", WORKER_LOCK_FD);
	if (j->shell != NULL) {
		v[k++] = xstrdup("--shell");
		v[k++] = xstrdup(j->shell);
	} else {
		v[k++] = xstrdup("--");
		for (int i = 0; j->argv[i] != NULL; i++)
			v[k++] = xstrdup(j->argv[i]);
	}
	return (v);
}

/* fd moved to WORKER_FD_LOW or above (still close-on-exec), or -1. */
static int
worker_fd_high(int fd)
{
	int high;

	if (fd == -1 || fd >= WORKER_FD_LOW)
		return (fd);
	high = fcntl(fd, F_DUPFD_CLOEXEC, WORKER_FD_LOW);
	close(fd);
	return (high);
}

/*
 * Job id's run file, opened and locked for the supervisor about to start,
 * and truncated. Locking before the fork leaves no moment in which a
 * supervisor runs without the lock, so a jobd restarted at any point tells
 * it from a dead one. Returns the fd, or -1 with errno set (EBUSY: a
 * supervisor of this job still runs).
 */
static int
worker_run_lock(int64_t id)
{
	char path[PATH_MAX];
	int fd;

	outcome_path(path, sizeof path, jobd_conf.state_dir, id, OUTCOME_RUN);
	fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return (-1);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1 || ftruncate(fd, 0) == -1) {
		int saved = errno == EWOULDBLOCK ? EBUSY : errno;

		close(fd);
		errno = saved;
		return (-1);
	}
	return (fd);
}

/*
 * Process pid's state letter, session and start time (clock ticks after
 * boot) from /proc; returns 0, or -1 if there is no such process.
 */
static int
worker_proc_stat(long long pid, char *state, long long *sid,
                 unsigned long long *start)
{
	char path[64], buf[512], *p;
	ssize_t len;
	int fd;

	snprintf(path, sizeof path, "/proc/%lld/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	len = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (len <= 0)
		return (-1);
	buf[len] = '\0';
	/* "pid (comm) state ppid pgrp session ...": comm may hold ')'. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1,
	           " %c %*d %*d %lld %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
	           "%*d %*d %*d %*d %*d %llu",
	           state, sid, start) != 3)
		return (-1);
	return (0);
}

/*
 * Write "PID START" into a run file locked for supervisor pid, our child
 * not reaped yet: its start time tells it from a later process that gets
 * the same pid. (The supervisor writes its bare pid if it finds the file
 * empty: jobd may die before it writes.)
 */
static void
worker_run_pid(int fd, pid_t pid)
{
	unsigned long long start = 0;
	long long sid;
	char buf[64], st;
	int n;

	if (worker_proc_stat(pid, &st, &sid, &start) == -1)
		start = 0;
	n = snprintf(buf, sizeof buf, "%ld %llu\n", (long)pid, start);
	if (pwrite(fd, buf, (size_t)n, 0) != n)
		log_warn("cannot write the pid of supervisor %ld", (long)pid);
}

/*
 * The pid, and start time if there is one (else 0), written in job id's run
 * file. Returns the pid, or 0 if there is none (the file is missing, empty
 * or not "PID[ START]").
 */
static pid_t
worker_run_read(int64_t id, unsigned long long *startp)
{
	char path[PATH_MAX], buf[64], *end;
	unsigned long long start = 0;
	long long pid;
	ssize_t n;
	int fd;

	outcome_path(path, sizeof path, jobd_conf.state_dir, id, OUTCOME_RUN);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return (0);
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 1 || (end = memchr(buf, '\n', (size_t)n)) == NULL)
		return (0);
	*end = '\0';
	if (sscanf(buf, "%lld %llu", &pid, &start) < 1 || pid < 1 ||
	    pid > INT_MAX)
		return (0);
	if (startp != NULL)
		*startp = start;
	return ((pid_t)pid);
}

/*
 * Start the supervisor of claimed job j (its running state is committed).
 * Returns 0, or -1 with errno set if it could not be started (EBUSY: a
 * supervisor of this job still runs).
 */
int
worker_spawn(const struct job *j)
{
	posix_spawn_file_actions_t fa;
	struct worker *w;
	posix_spawnattr_t attr;
	sigset_t all, sup;
	char *noenv[] = { NULL };
	char **argv;
	pid_t pid;
	int err, envfd, lockfd;

	if ((lockfd = worker_fd_high(worker_run_lock(j->id))) == -1)
		return (-1);
	if ((envfd = worker_fd_high(worker_env_fd(j))) == -1) {
		err = errno;
		close(lockfd);
		errno = err;
		return (-1);
	}
	argv = worker_argv(j);
	/*
	 * posix_spawn, not fork: it shares jobd's memory until the exec
	 * instead of copying its page tables, which cost milliseconds per
	 * job. The supervisor starts clean: every signal's action back to
	 * the default (jobd ignores SIGPIPE), its own set blocked so that a
	 * cancel (SIGUSR1) that comes before it is ready waits, the env and
	 * the locked run file on their descriptors and no other. Both are
	 * above WORKER_FD_LOW, so the dup2s leave them apart.
	 */
	sigfillset(&all);
	sigemptyset(&sup);
	sigaddset(&sup, SIGCHLD);
	sigaddset(&sup, SIGTERM);
	sigaddset(&sup, SIGINT);
	sigaddset(&sup, SIGHUP);
	sigaddset(&sup, SIGUSR1);
	if ((err = posix_spawnattr_init(&attr)) == 0 &&
	    (err = posix_spawn_file_actions_init(&fa)) != 0)
		posix_spawnattr_destroy(&attr);
	if (err == 0) {
		if ((err = posix_spawnattr_setflags(
		         &attr, POSIX_SPAWN_SETSIGDEF |
		                    POSIX_SPAWN_SETSIGMASK)) == 0 &&
		    (err = posix_spawnattr_setsigdefault(&attr, &all)) == 0 &&
		    (err = posix_spawnattr_setsigmask(&attr, &sup)) == 0 &&
		    (err = posix_spawn_file_actions_adddup2(
		         &fa, envfd, WORKER_ENV_FD)) == 0 &&
		    (err = posix_spawn_file_actions_adddup2(
		         &fa, lockfd, WORKER_LOCK_FD)) == 0 &&
		    (err = posix_spawn_file_actions_addclosefrom_np(
		         &fa, WORKER_LOCK_FD + 1)) == 0)
			/*
			 * An empty environment: the job's travels on
			 * WORKER_ENV_FD, so LD_PRELOAD and the like never
			 * reach a root supervisor.
			 */
			err =
			    posix_spawn(&pid, argv[0], &fa, &attr, argv, noenv);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&attr);
	}
	close(envfd);
	util_strv_free(argv);
	if (err == 0)
		worker_run_pid(lockfd, pid);
	/* The supervisor's copy keeps the lock; a failed spawn drops it. */
	close(lockfd);
	if (err != 0) {
		errno = err;
		return (-1);
	}
	w = worker_new(j->id, j->queue, pid);
	LIST_INSERT_HEAD(&worker_running, w, entry);
	worker_nrunning++;
	log_debug("job %lld started, supervisor pid %ld", (long long)j->id,
	          (long)pid);
	/*
	 * The supervisor's pid is in its run file (written just above, and
	 * by the supervisor), which is where recovery reads it: recording
	 * it in the store too would cost each start a second commit.
	 */
	return (0);
}

/*
 * Ask running job id's supervisor to send sig to the job's process group
 * (and KILL after the grace period). Sent after the commit that records the
 * cancel. Returns -1 if the job is not running here.
 */
int
worker_cancel(int64_t id, int sig)
{
	struct worker *w = worker_find(id);

	if (w == NULL)
		return (-1);
	w->pending_sig = sig;
	return (0);
}

/*
 * Cancel every running job (in the loop's transaction), for reason: each
 * supervisor gets SIGTERM for its job after the commit. Returns how many,
 * or -1 if the store would not take it.
 */
int
worker_cancel_all(const char *reason)
{
	int64_t now = util_now_ms();
	struct worker *w;
	int n = 0;

	LIST_FOREACH(w, &worker_running, entry)
	{
		if (queue_job_cancel(w->id, 1, now, reason) != 0)
			return (-1);
		w->pending_sig = SIGTERM;
		n++;
	}
	return (n);
}

/*
 * Turn an outcome (or its absence) into the attempt's end in j: state,
 * exit, signal, reason, times. how describes why there is no outcome.
 */
static void
worker_settle(struct job *j, const struct outcome *o, const char *how)
{
	/* A running job's reason is the one its cancel gave, if any. */
	char *cancel_reason = j->cancel_requested ? j->reason : NULL;

	if (cancel_reason == NULL)
		free(j->reason);
	j->reason = NULL;
	j->has_exit = 0;
	j->signal = 0;
	if (o == NULL) {
		/* A cancelled job stays cancelled, whatever became of it. */
		j->state = j->cancel_requested ? JOB_CANCELLED : JOB_LOST;
		j->reason = xstrdup(how);
		j->finished_at = util_now_ms();
		free(cancel_reason);
		return;
	}
	j->started_at = o->started_at;
	j->finished_at = o->finished_at;
	j->has_exit = o->exit_code >= 0;
	j->exit_code = o->exit_code;
	j->signal = o->signal;
	if (o->reason[0] != '\0') {
		j->reason = xstrdup(o->reason);
		free(cancel_reason);
	} else
		j->reason = cancel_reason;
	if (j->cancel_requested)
		j->state = JOB_CANCELLED;
	else if (j->has_exit && j->exit_code == 0 && j->reason == NULL)
		j->state = JOB_SUCCEEDED;
	else
		j->state = JOB_FAILED;
}

/*
 * Record the end of job id's attempt (in the loop's transaction): the
 * scheduler retries it or ends the job. Tells waiters. Returns 0, or -1 if
 * the store would not take it.
 */
static int
worker_record(int64_t id, const struct outcome *o, const char *how)
{
	struct job j;
	int rv = -1;

	if (queue_begin() == 0 && queue_job_get(id, &j) == 0) {
		worker_settle(&j, o, how);
		log_debug("job %lld attempt %lld ended %s", (long long)id,
		          (long long)j.attempt, proto_state_name(j.state));
		rv = sched_attempt_ended(&j);
		job_clear(&j);
	}
	if (rv != 0) {
		log_warnx("job %lld: cannot record its end yet", (long long)id);
		return (-1);
	}
	dispatch_job_changed(id, 0);
	cmd_logs_job_ended(id);
	return (0);
}

/*
 * Kill (SIGKILL) every process left in the session of supervisor sid, which
 * has died without an outcome: the job's process group lives in that
 * session, and with its supervisor gone nothing would ever reap or stop it.
 * While a process is in the session, its id cannot be reused. But if the
 * session is empty, the number may be someone else's now: so a process
 * that has the pid sid must be the supervisor itself (a zombie with its
 * start time, start, from the run file or its adoption); any other, even
 * a zombie, means the number was reused, and nothing is killed. It reads /proc
 * a few times over, in case the job forks meanwhile. Returns how many processes
 * the first reading found (zombies aside).
 */
static int
worker_kill_session(pid_t sid, unsigned long long start)
{
	unsigned long long t;
	struct dirent *de;
	long long pid, sess;
	int killed = 0, n, pass;
	char st;
	DIR *d;

	if (worker_proc_stat(sid, &st, &sess, &t) == 0 &&
	    (start == 0 || t != start))
		return (0);
	for (pass = 0, n = 1; n > 0 && pass < 5; pass++) {
		if ((d = opendir("/proc")) == NULL) {
			log_warn("opendir /proc");
			break;
		}
		n = 0;
		while ((de = readdir(d)) != NULL) {
			if (util_parse_int(de->d_name, 1, INT_MAX, &pid) ==
			        -1 ||
			    worker_proc_stat(pid, &st, &sess, &t) == -1 ||
			    sess != sid || st == 'Z' || st == 'X')
				continue;
			if (kill((pid_t)pid, SIGKILL) == 0)
				n++;
		}
		closedir(d);
		if (pass == 0)
			killed = n;
	}
	return (killed);
}

/*
 * Job id's supervisor sid (start time start, or 0 if it is not known or was
 * reaped) has died without an outcome: stop what is left of its job, and
 * say so.
 */
static void
worker_kill_leftovers(int64_t id, pid_t sid, unsigned long long start)
{
	int n;

	if (sid <= 0 || (n = worker_kill_session(sid, start)) == 0)
		return;
	log_warnx("job %lld: its supervisor (pid %ld) died without an "
	          "outcome; killed %d process%s it left running",
	          (long long)id, (long)sid, n, n == 1 ? "" : "es");
}

/* Record how w's job ended, from its outcome file, in the transaction. */
static void
worker_record_outcome(struct worker *w)
{
	struct outcome o;
	char how[128];
	int rv;

	if (w->status == -1) /* adopted: not our child, no wait status */
		snprintf(how, sizeof how,
		         "the supervisor (pid %ld), adopted after a jobd "
		         "restart, exited without recording an outcome",
		         (long)w->pid);
	else
		snprintf(how, sizeof how,
		         "the supervisor (pid %ld) %s %d without recording an "
		         "outcome",
		         (long)w->pid,
		         WIFSIGNALED(w->status) ? "was killed by signal"
		                                : "exited with",
		         WIFSIGNALED(w->status) ? WTERMSIG(w->status)
		                                : WEXITSTATUS(w->status));
	if (outcome_read(jobd_conf.state_dir, w->id, &o) == 0)
		rv = worker_record(w->id, &o, NULL);
	else {
		worker_kill_leftovers(w->id, w->pid, w->start);
		rv = worker_record(w->id, NULL, how);
	}
	if (rv == 0) {
		LIST_INSERT_HEAD(&worker_ended, w, entry);
		return;
	}
	/* Its files stay, and its end is recorded again in a moment. */
	LIST_INSERT_HEAD(&worker_unrecorded, w, entry);
	evtimer_add(worker_retry_ev, &worker_retry_tv);
}

static void
worker_ended_cb(struct worker *w, int status)
{
	w->status = status;
	LIST_REMOVE(w, entry);
	worker_nrunning--;
	worker_record_outcome(w);
	sched_kick();
}

/* Record again the ends whose commit failed. */
static void
worker_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w;

	(void)fd;
	(void)what;
	(void)arg;
	struct worker_list retry = LIST_HEAD_INITIALIZER(retry);

	while ((w = LIST_FIRST(&worker_unrecorded)) != NULL) {
		LIST_REMOVE(w, entry);
		LIST_INSERT_HEAD(&retry, w, entry);
	}
	while ((w = LIST_FIRST(&retry)) != NULL) {
		LIST_REMOVE(w, entry);
		worker_record_outcome(w);
	}
	server_wake();
}

/*
 * The commit failed: none of the iteration's records happened. Keep the
 * outcome files, forget the cancels (their requests were refused), and
 * record the ends again in a moment.
 */
void
worker_commit_failed(void)
{
	struct worker *w, *next;

	LIST_FOREACH(w, &worker_running, entry)
	w->pending_sig = 0;
	for (w = LIST_FIRST(&worker_ended); w != NULL; w = next) {
		next = LIST_NEXT(w, entry);
		LIST_REMOVE(w, entry);
		LIST_INSERT_HEAD(&worker_unrecorded, w, entry);
	}
	if (!LIST_EMPTY(&worker_unrecorded))
		evtimer_add(worker_retry_ev, &worker_retry_tv);
}

/* SIGCHLD: reap every supervisor that has exited (signals coalesce). */
void
worker_reap(void)
{
	struct worker *w;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		LIST_FOREACH(w, &worker_running, entry)
		if (w->pid == pid && w->adopt_ev == NULL)
			break;
		if (w != NULL)
			worker_ended_cb(w, status);
	}
}

static void
worker_unlink(int64_t id)
{
	char path[PATH_MAX];

	outcome_path(path, sizeof path, jobd_conf.state_dir, id,
	             OUTCOME_STATUS);
	unlink(path);
	outcome_path(path, sizeof path, jobd_conf.state_dir, id, OUTCOME_RUN);
	unlink(path);
}

/*
 * Does job id have an ended attempt whose files (its outcome, its run file)
 * wait for this turn's commit to be removed? Its next attempt must not be
 * claimed in that same commit: a jobd killed between the commit and the
 * removal would take the old outcome for the new attempt's.
 */
int
worker_files_pending(int64_t id)
{
	struct worker *w;

	LIST_FOREACH(w, &worker_ended, entry)
	if (w->id == id)
		return (1);
	return (0);
}

/* After a commit: send recorded cancels, remove recorded supervisors' files. */
void
worker_after_commit(void)
{
	struct worker *w;

	LIST_FOREACH(w, &worker_running, entry)
	{
		if (w->pending_sig == 0 || w->pid <= 0)
			continue; /* an unknown pid: sent once it is known */
		/* Without a pidfd, the pid is its only while it has the lock.
		 */
		if (w->adopt_ev != NULL && event_get_fd(w->adopt_ev) == -1 &&
		    !worker_alive(w->id))
			continue;
		union sigval v = { .sival_int = w->pending_sig };
		if (sigqueue(w->pid, SIGUSR1, v) != 0)
			log_warn("job %lld: cannot signal its supervisor",
			         (long long)w->id);
		w->pending_sig = 0;
	}
	while ((w = LIST_FIRST(&worker_ended)) != NULL) {
		worker_unlink(w->id);
		LIST_REMOVE(w, entry);
		worker_free(w);
	}
}

/* Is job id's supervisor still alive (holding the lock on its run file)? */
static int
worker_alive(int64_t id)
{
	char path[PATH_MAX];
	int fd, alive = 0;

	outcome_path(path, sizeof path, jobd_conf.state_dir, id, OUTCOME_RUN);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return (0);
	if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK)
		alive = 1;
	close(fd);
	return (alive);
}

static const struct timeval worker_poll_tv = { 1, 0 };

static void
worker_adopted_end(struct worker *w)
{
	if (event_get_fd(w->adopt_ev) != -1)
		close(event_get_fd(w->adopt_ev));
	event_free(w->adopt_ev);
	w->adopt_ev = NULL;
	worker_ended_cb(w, -1);
	server_wake();
}

/* An adopted supervisor's pidfd is readable: it has exited. */
static void
worker_adopted_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_adopted_end(arg);
}

/*
 * An adopted supervisor watched without a pidfd: has it let go of its lock?
 * Until its pid is known (it writes it first thing), look for it.
 */
static void
worker_adopted_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (w->pid == 0 && (w->pid = worker_run_read(w->id, NULL)) > 0)
		server_wake(); /* a cancel may wait for it */
	if (!worker_alive(w->id))
		worker_adopted_end(w);
}

/*
 * Adopt the supervisor an older jobd started for running job j, if it is
 * still alive: it holds the lock on the job's run file. Its pid is the one
 * in the run file (written by jobd and by the supervisor itself), else the
 * one recorded. Its pidfd is opened before the lock is checked, so the pid
 * cannot be reused in between; if there is no pidfd to be had (no pid yet,
 * or pidfd_open failed), the lock is checked every second instead. The job
 * stays running and keeps its slot; cancel works as for our own. Returns
 * its worker, or NULL if it is gone.
 */
static struct worker *
worker_adopt(const struct job *j)
{
	struct worker *w;
	unsigned long long start = 0;
	pid_t pid = worker_run_read(j->id, &start);
	int fd = -1, err = 0;

	if (pid == 0)
		pid = (pid_t)j->sup_pid;
	if (pid > 0 && (fd = pidfd_open(pid, 0)) == -1)
		err = errno;
	if (!worker_alive(j->id)) {
		if (fd != -1)
			close(fd);
		return (NULL);
	}
	w = worker_new(j->id, j->queue, pid > 0 ? pid : 0);
	/* Alive and locked: pid is the supervisor; keep its start time. */
	w->start = start;
	if (pid > 0 && start == 0) {
		long long sid;
		char st;

		if (worker_proc_stat(pid, &st, &sid, &w->start) == -1)
			w->start = 0;
	}
	if (fd != -1)
		w->adopt_ev =
		    event_new(server_base, fd, EV_READ, worker_adopted_cb, w);
	else {
		log_warnx("job %lld: cannot watch its supervisor (pid %ld) "
		          "with a pidfd%s%s; checking its lock every second",
		          (long long)j->id, (long)pid, err ? ": " : "",
		          err ? strerror(err) : "");
		w->adopt_ev = event_new(server_base, -1, EV_PERSIST,
		                        worker_adopted_poll_cb, w);
	}
	if (w->adopt_ev == NULL ||
	    event_add(w->adopt_ev, fd != -1 ? NULL : &worker_poll_tv) != 0)
		fatalx("cannot watch the supervisor of job %lld",
		       (long long)j->id);
	LIST_INSERT_HEAD(&worker_running, w, entry);
	worker_nrunning++;
	return (w);
}

/* Did the jobd of instance (boot id/start/pid) run in this boot? */
static int
worker_same_boot(const char *instance)
{
	size_t n = strcspn(jobd_instance, "/");

	return (instance != NULL && strncmp(instance, jobd_instance, n) == 0 &&
	        instance[n] == '/' &&
	        strncmp(jobd_instance, "unknown/", 8) != 0);
}

static void
worker_recover_one(struct job *j)
{
	struct outcome o;
	struct worker *w;

	if ((w = worker_adopt(j)) != NULL) {
		log_info("job %lld: adopted its running supervisor (pid %ld)",
		         (long long)j->id, (long)w->pid);
		return;
	}
	/* Its supervisor is gone: what it left decides. */
	if (outcome_read(jobd_conf.state_dir, j->id, &o) == 0) {
		if (worker_record(j->id, &o, NULL) != 0)
			fatalx("cannot record the end of job %lld",
			       (long long)j->id);
		log_info("job %lld ended while jobd was down; outcome recorded",
		         (long long)j->id);
	} else {
		unsigned long long start = 0;
		pid_t sid = worker_run_read(j->id, &start);

		/* Pids of an earlier boot are other processes now. */
		if (worker_same_boot(j->instance))
			worker_kill_leftovers(
			    j->id, sid > 0 ? sid : (pid_t)j->sup_pid, start);
		/*
		 * The supervisor writes its pid before it starts the job:
		 * without one, jobd died between recording the start and
		 * the supervisor's first step.
		 */
		if (worker_record(j->id, NULL,
		                  sid > 0 ? "jobd stopped while the job ran, "
		                            "and its supervisor left no "
		                            "outcome"
		                          : "jobd stopped before the job's "
		                            "supervisor started; the job did "
		                            "not run") != 0)
			fatalx("cannot record the end of job %lld",
			       (long long)j->id);
		log_warnx("job %lld: lost", (long long)j->id);
	}
	w = worker_new(j->id, j->queue, 0); /* the macro repeats its argument */
	LIST_INSERT_HEAD(&worker_ended, w, entry);
}

/* Ids of running jobs, collected first: they are settled after the query. */
struct worker_ids {
	int64_t *ids;
	size_t n;
};

static void
worker_recover_id(struct job *j, void *arg)
{
	struct worker_ids *c = arg;

	c->ids = xrealloc(c->ids, (c->n + 1) * sizeof *c->ids);
	c->ids[c->n++] = j->id;
}

/*
 * At start-up: every job still marked running belongs to an older jobd.
 * Adopt its supervisor if it still runs; else record the outcome it wrote,
 * or, if it wrote none, the attempt is lost.
 */
void
worker_recover(void)
{
	struct worker_ids c = { NULL, 0 };
	struct job j;

	if (queue_job_running(worker_recover_id, &c) != 0 || queue_begin() != 0)
		fatalx("cannot read the jobs an earlier jobd left running");
	for (size_t i = 0; i < c.n; i++) {
		if (queue_job_get(c.ids[i], &j) != 0)
			fatalx("cannot read job %lld", (long long)c.ids[i]);
		worker_recover_one(&j);
		job_clear(&j);
	}
	if (queue_commit() != 0)
		fatalx("cannot settle the jobs an earlier jobd left running");
	worker_after_commit();
	if (c.n > 0)
		log_info("settled %zu job(s) left running by an earlier jobd",
		         c.n);
	free(c.ids);
}

void
worker_fini(void)
{
	struct worker *w;

	/* Running jobs go on under their supervisors. */
	while ((w = LIST_FIRST(&worker_running)) != NULL) {
		if (w->adopt_ev != NULL) {
			if (event_get_fd(w->adopt_ev) != -1)
				close(event_get_fd(w->adopt_ev));
			event_free(w->adopt_ev);
		}
		LIST_REMOVE(w, entry);
		worker_free(w);
	}
	while ((w = LIST_FIRST(&worker_ended)) != NULL) {
		LIST_REMOVE(w, entry);
		worker_free(w);
	}
	while ((w = LIST_FIRST(&worker_unrecorded)) != NULL) {
		LIST_REMOVE(w, entry);
		worker_free(w);
	}
	if (worker_retry_ev != NULL)
		event_free(worker_retry_ev);
	worker_retry_ev = NULL;
	worker_nrunning = 0;
}
