/*
 * The event loop. One libevent base runs everything; signals are events.
 * server_hook() runs once at the end of each loop iteration in which
 * something happened (server_wake): it commits the iteration's writes in one
 * transaction (group commit), with the claims of the jobs the scheduler
 * can start now, then sends the replies that waited on that commit, then
 * starts those jobs. No reply that promises a write, and no start, goes
 * out before its commit.
 */
#include <signal.h>
#include <stdlib.h>

#include "jobd.h"

struct jobd_config jobd_conf;
const char *jobd_instance = "none";
struct event_base *server_base;
int server_stopping;
int server_draining; /* SERVER_DRAIN: start no job, stop once none runs and
                        every end is recorded; SERVER_STOP_JOBS: the same,
                        the running ones cancelled (by cmd-shutdown.c) */
static int server_shutdown_asked; /* applied after the commit */

static struct event *server_hook_ev;
static struct event *server_sig_ev[4];

/* Ask for server_hook() to run at the end of this loop iteration. */
void
server_wake(void)
{
	if (server_hook_ev != NULL &&
	    !event_pending(server_hook_ev, EV_TIMEOUT, NULL))
		event_active(server_hook_ev, EV_TIMEOUT, 0);
}

static void
server_hook_cb(evutil_socket_t fd, short what, void *arg)
{
	int failed;

	(void)fd;
	(void)what;
	(void)arg;
	/* Not while stopping, nor in a turn that asked to stop or drain. */
	if (!server_stopping && !server_draining && !server_shutdown_asked)
		sched_claim_next();
	failed = queue_commit() != 0;
	sched_after_commit(failed);
	if (failed)
		worker_commit_failed();
	else
		worker_after_commit();
	dispatch_flush(failed);
	/* A shutdown asked: refused with the rest of the batch on a failure. */
	if (!failed && server_shutdown_asked == SERVER_STOP_NOW)
		server_stop("jobctl shutdown");
	else if (!failed && server_shutdown_asked > server_draining)
		server_draining = server_shutdown_asked;
	server_shutdown_asked = 0;
	sched_start_claimed(failed);
	if (server_draining && !server_stopping && worker_count() == 0 &&
	    worker_settled())
		server_stop("no job runs any more");
	else if (server_stopping && !queue_in_txn()) {
		/* Give nng's threads a moment to put the last replies out. */
		struct timeval linger = { 0, 100 * 1000 };
		event_base_loopexit(server_base, &linger);
	}
}

/*
 * Stop now: answer what is parked, refuse every request from now on, and
 * leave the loop once the last replies are out. Running jobs go on under
 * their supervisors.
 */
void
server_stop(const char *why)
{
	if (server_stopping)
		return;
	if (worker_count() > 0)
		log_info("stopping (%s); %d running job%s go%s on under %s "
		         "supervisor%s",
		         why, worker_count(), worker_count() == 1 ? "" : "s",
		         worker_count() == 1 ? "es" : "",
		         worker_count() == 1 ? "its" : "their",
		         worker_count() == 1 ? "" : "s");
	else
		log_info("stopping (%s)", why);
	server_stopping = 1;
	dispatch_shutdown();
	cmd_backup_fini();
	server_wake();
}

/* The name of a mode (enum server_drain_mode), as the protocol has it. */
const char *
server_mode_name(int mode)
{
	static const char *const names[] = {
		[SERVER_DRAIN] = "drain",
		[SERVER_STOP_JOBS] = "stop_jobs",
		[SERVER_STOP_NOW] = "now",
	};

	return (mode >= SERVER_DRAIN && mode <= SERVER_STOP_NOW ? names[mode]
	                                                        : NULL);
}

/*
 * jobctl shutdown asked for mode (enum server_drain_mode): applied after
 * this loop turn's commit, and not at all if that fails, since the request
 * is then refused. Returns the mode in force once it is applied.
 */
int
server_shutdown(int mode)
{
	if (mode > server_shutdown_asked)
		server_shutdown_asked = mode;
	server_wake();
	if (server_stopping)
		return (SERVER_STOP_NOW);
	return (server_draining > server_shutdown_asked
	            ? server_draining
	            : server_shutdown_asked);
}

static void
server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	switch (sig) {
	case SIGCHLD:
		worker_reap();
		break;
	case SIGTERM:
	case SIGINT:
		server_stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	case SIGHUP:
		log_info("SIGHUP: nothing to reload");
		break;
	}
	server_wake();
}

/*
 * Create the event base and the signal events. The signals are blocked in
 * this thread first, so that nng's threads (started later) inherit the mask
 * and only libevent's handler, in this thread, ever sees them.
 */
void
server_init(void)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(&set, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if ((server_base = event_base_new()) == NULL)
		fatalx("cannot create the event base");
	server_hook_ev = event_new(server_base, -1, 0, server_hook_cb, NULL);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		server_sig_ev[i] =
		    evsignal_new(server_base, sigs[i], server_signal_cb, NULL);
		if (server_sig_ev[i] == NULL ||
		    event_add(server_sig_ev[i], NULL) != 0)
			fatalx("cannot watch signal %d", sigs[i]);
	}
}

/*
 * Run the loop until a stop signal has been handled and every reply sent.
 * The signals are unblocked only now, in the loop's own thread.
 */
void
server_loop(void)
{
	sigset_t set;

	pthread_sigmask(SIG_BLOCK, NULL, &set);
	sigdelset(&set, SIGCHLD);
	sigdelset(&set, SIGTERM);
	sigdelset(&set, SIGINT);
	sigdelset(&set, SIGHUP);
	pthread_sigmask(SIG_SETMASK, &set, NULL);

	event_base_dispatch(server_base);

	for (size_t i = 0; i < sizeof server_sig_ev / sizeof server_sig_ev[0];
	     i++)
		event_free(server_sig_ev[i]);
	event_free(server_hook_ev);
	server_hook_ev = NULL;
}
