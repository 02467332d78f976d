/*
 * Running jobs: the only file that forks. Each job runs under its own
 * jobd-supervisor process (a new session; the job in its own process
 * group), started by fork + exec from this multi-threaded daemon, so the
 * child does only async-signal-safe work before exec. jobd reaps the
 * supervisor on SIGCHLD, reads the outcome file it wrote, and records it.
 * A supervisor's files are removed only after that record is committed.
 * RAM holds the running jobs only.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd.h"

struct worker {
	int64_t id;
	pid_t pid;
	int pending_sig;         /* to send after the commit, or 0 */
	struct event *orphan_ev; /* a supervisor an older jobd started */
	int orphan;              /* its job was recorded lost at start-up */
	int status;              /* its wait status, once reaped */
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

static struct worker *
worker_find(int64_t id)
{
	struct worker *w;

	LIST_FOREACH(w, &worker_running, entry)
	if (w->id == id)
		return (w);
	return (NULL);
}

/* The supervisor reads the job's environment from this descriptor. */
#define WORKER_ENV_FD 3

/*
 * The job's environment on an anonymous memory file, read from the start:
 * not on the supervisor's command line, which every user can read. Returns
 * the descriptor (close-on-exec), or -1.
 */
static int
worker_env_fd(char **env)
{
	size_t len;
	int fd;

	if ((fd = memfd_create("jobd-env", MFD_CLOEXEC)) == -1)
		return (-1);
	for (int i = 0; env[i] != NULL; i++) {
		len = strlen(env[i]) + 1;
		if (write(fd, env[i], len) != (ssize_t)len)
			goto fail;
	}
	if (lseek(fd, 0, SEEK_SET) == 0)
		return (fd);
fail:
	close(fd);
	return (-1);
}

/* The supervisor's command line (see daemon/supervisor.c). */
static char **
worker_argv(const struct job *j)
{
	size_t n = 20, k = 0; /* options, values and the NULL */
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
	v[k++] = xstrdup("--kill-after");
	v[k++] = xasprintf("%d", JOBD_KILL_AFTER_MS);
	if (geteuid() == 0) {
		/* A root jobd runs each job as its owner. */
		v[k++] = xstrdup("--uid");
		v[k++] = xasprintf("%lld", (long long)j->uid);
		v[k++] = xstrdup("--gid");
		v[k++] = xasprintf("%lld", (long long)j->gid);
	}
	v[k++] = xstrdup("--env-fd");
	v[k++] = xasprintf("%d", WORKER_ENV_FD);
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

/*
 * Start the supervisor of claimed job j (its running state is committed).
 * Returns 0, or -1 with errno set if fork failed.
 */
int
worker_spawn(const struct job *j)
{
	struct sigaction sa;
	struct worker *w;
	sigset_t all, sup, old;
	char run[PATH_MAX], *noenv[] = { NULL };
	char **argv = worker_argv(j);
	pid_t pid;
	int saved, envfd;

	if ((envfd = worker_env_fd(j->env)) == -1) {
		saved = errno;
		util_strv_free(argv);
		errno = saved;
		return (-1);
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	/*
	 * Signals stay blocked across the fork, so no libevent handler runs
	 * in the child, and across the exec the supervisor's own set stays
	 * blocked: a cancel (SIGUSR1) that comes before it is ready waits.
	 */
	sigfillset(&all);
	sigemptyset(&sup);
	sigaddset(&sup, SIGCHLD);
	sigaddset(&sup, SIGTERM);
	sigaddset(&sup, SIGINT);
	sigaddset(&sup, SIGHUP);
	sigaddset(&sup, SIGUSR1);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/*
		 * Child of a threaded process: async-signal-safe calls only.
		 * Undo what jobd set up (its handlers, SIGPIPE ignored, its
		 * descriptors) so the supervisor starts clean.
		 */
		for (int s = 1; s < NSIG; s++)
			sigaction(s, &sa, NULL);
		sigprocmask(SIG_SETMASK, &sup, NULL);
		if (envfd == WORKER_ENV_FD)
			fcntl(envfd, F_SETFD, 0);
		else if (dup2(envfd, WORKER_ENV_FD) == -1)
			_exit(127);
		if (close_range(WORKER_ENV_FD + 1, ~0U, 0) != 0)
			_exit(127);
		/*
		 * An empty environment: the job's travels on WORKER_ENV_FD,
		 * so LD_PRELOAD and the like never reach a root supervisor.
		 */
		execve(argv[0], argv, noenv);
		_exit(127);
	}
	saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(envfd);
	util_strv_free(argv);
	if (pid == -1) {
		errno = saved;
		return (-1);
	}
	w = xcalloc(1, sizeof *w);
	w->id = j->id;
	w->pid = pid;
	LIST_INSERT_HEAD(&worker_running, w, entry);
	worker_nrunning++;
	log_debug("job %lld started, supervisor pid %ld", (long long)j->id,
	          (long)pid);
	outcome_path(run, sizeof run, jobd_conf.state_dir, j->id, OUTCOME_RUN);
	if (queue_begin() != 0 || queue_job_started(j->id, pid, run) != 0)
		log_warnx("job %lld: cannot record its supervisor",
		          (long long)j->id);
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
 * Turn an outcome (or its absence) into the job's final state in j.
 * how describes why there is no outcome.
 */
static void
worker_settle(struct job *j, int cancelled, const struct outcome *o,
              const char *how)
{
	if (o == NULL) {
		/* A cancelled job stays cancelled, whatever became of it. */
		j->state = cancelled ? JOB_CANCELLED : JOB_LOST;
		j->reason = xstrdup(how);
		j->finished_at = util_now_ms();
		return;
	}
	j->started_at = o->started_at;
	j->finished_at = o->finished_at;
	j->has_exit = o->exit_code >= 0;
	j->exit_code = o->exit_code;
	j->signal = o->signal;
	if (o->reason[0] != '\0')
		j->reason = xstrdup(o->reason);
	if (cancelled)
		j->state = JOB_CANCELLED;
	else if (j->has_exit && j->exit_code == 0 && j->reason == NULL)
		j->state = JOB_SUCCEEDED;
	else
		j->state = JOB_FAILED;
}

/*
 * Record the end of job id (in the loop's transaction) and tell waiters.
 * Returns 0, or -1 if the store would not take it.
 */
static int
worker_record(int64_t id, int cancelled, const struct outcome *o,
              const char *how)
{
	struct job j;
	int rv = 0;

	memset(&j, 0, sizeof j);
	j.id = id;
	worker_settle(&j, cancelled, o, how);
	log_debug("job %lld ended %s", (long long)id,
	          proto_state_name(j.state));
	if (queue_begin() != 0 || queue_job_finish(&j) != 0) {
		log_warnx("job %lld: cannot record its end yet", (long long)id);
		rv = -1;
	}
	job_clear(&j);
	if (rv == 0) {
		dispatch_job_changed(id, 0);
		cmd_logs_job_ended(id);
	}
	return (rv);
}

/* Was cancel requested for job id? (Read from the store.) */
static int
worker_cancel_requested(int64_t id)
{
	struct job j;
	int c = 0;

	if (queue_job_get(id, &j) == 0) {
		c = j.cancel_requested;
		job_clear(&j);
	}
	return (c);
}

/* Record how w's job ended, from its outcome file, in the transaction. */
static void
worker_record_outcome(struct worker *w)
{
	struct outcome o;
	char how[128];

	snprintf(how, sizeof how,
	         "the supervisor (pid %ld) %s %d without recording an outcome",
	         (long)w->pid,
	         WIFSIGNALED(w->status) ? "was killed by signal"
	                                : "exited with",
	         WIFSIGNALED(w->status) ? WTERMSIG(w->status)
	                                : WEXITSTATUS(w->status));
	if (outcome_read(jobd_conf.state_dir, w->id, &o) == 0)
		worker_record(w->id, worker_cancel_requested(w->id), &o, NULL);
	else
		worker_record(w->id, worker_cancel_requested(w->id), NULL, how);
	LIST_INSERT_HEAD(&worker_ended, w, entry);
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
		if (w->orphan)
			continue; /* nothing of it was in the transaction */
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
		if (w->pid == pid && w->orphan_ev == NULL)
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

/* After a commit: send recorded cancels, remove recorded supervisors' files. */
void
worker_after_commit(void)
{
	struct worker *w;

	LIST_FOREACH(w, &worker_running, entry)
	{
		if (w->pending_sig == 0)
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
		free(w);
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

/* An older jobd's supervisor has exited: its slot is free again. */
static void
worker_orphan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)what;
	log_info("job %lld: the supervisor left by an earlier jobd has exited",
	         (long long)w->id);
	event_free(w->orphan_ev);
	w->orphan_ev = NULL;
	close(fd);
	LIST_REMOVE(w, entry);
	worker_nrunning--;
	LIST_INSERT_HEAD(&worker_ended, w, entry);
	sched_kick();
}

/*
 * A supervisor an older jobd started still runs the (now lost) job j. It
 * keeps its slot, so that --parallel holds, until it exits: its pidfd says
 * when, since it is not our child.
 */
static void
worker_orphan(const struct job *j)
{
	struct worker *w;
	int fd;

	if (j->sup_pid <= 0 || (fd = pidfd_open((pid_t)j->sup_pid, 0)) == -1)
		return;
	/* The pid is only ours to watch if its lock is still held. */
	if (!worker_alive(j->id)) {
		close(fd);
		return;
	}
	w = xcalloc(1, sizeof *w);
	w->id = j->id;
	w->pid = (pid_t)j->sup_pid;
	w->orphan = 1;
	w->orphan_ev = event_new(server_base, fd, EV_READ, worker_orphan_cb, w);
	event_add(w->orphan_ev, NULL);
	LIST_INSERT_HEAD(&worker_running, w, entry);
	worker_nrunning++;
}

static void
worker_recover_one(struct job *j, void *arg)
{
	struct outcome o;
	int *n = arg;

	(*n)++;
	if (outcome_read(jobd_conf.state_dir, j->id, &o) == 0) {
		worker_record(j->id, j->cancel_requested, &o, NULL);
		log_info("job %lld ended while jobd was down; outcome recorded",
		         (long long)j->id);
	} else if (worker_alive(j->id)) {
		worker_record(
		    j->id, 0, NULL,
		    "jobd restarted while the job ran; its supervisor was "
		    "still running and was left alone (re-adoption is not "
		    "supported yet)");
		log_warnx("job %lld: lost; its supervisor (pid %lld) still "
		          "runs",
		          (long long)j->id, (long long)j->sup_pid);
		worker_orphan(j);
		return;
	} else {
		worker_record(
		    j->id, 0, NULL,
		    "jobd stopped while the job ran, and its supervisor left "
		    "no outcome");
		log_warnx("job %lld: lost", (long long)j->id);
	}
	struct worker *w = xcalloc(1, sizeof *w);
	w->id = j->id;
	LIST_INSERT_HEAD(&worker_ended, w, entry);
}

/*
 * At start-up: every job still marked running belongs to an older jobd.
 * Record its outcome if its supervisor wrote one; otherwise it is lost.
 */
void
worker_recover(void)
{
	int n = 0;

	if (queue_begin() != 0 ||
	    queue_job_running(worker_recover_one, &n) != 0 ||
	    queue_commit() != 0)
		fatalx("cannot settle the jobs an earlier jobd left running");
	worker_after_commit();
	if (n > 0)
		log_info("settled %d job(s) left running by an earlier jobd",
		         n);
}

void
worker_fini(void)
{
	struct worker *w;

	/* Running jobs go on under their supervisors. */
	while ((w = LIST_FIRST(&worker_running)) != NULL) {
		if (w->orphan_ev != NULL) {
			close(event_get_fd(w->orphan_ev));
			event_free(w->orphan_ev);
		}
		LIST_REMOVE(w, entry);
		free(w);
	}
	while ((w = LIST_FIRST(&worker_ended)) != NULL) {
		LIST_REMOVE(w, entry);
		free(w);
	}
	while ((w = LIST_FIRST(&worker_unrecorded)) != NULL) {
		LIST_REMOVE(w, entry);
		free(w);
	}
	if (worker_retry_ev != NULL)
		event_free(worker_retry_ev);
	worker_retry_ev = NULL;
	worker_nrunning = 0;
}
