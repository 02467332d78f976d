/*
 * The client's only use of nng: one cooked REQ socket per run, dialled
 * synchronously, one request in flight at a time. nng's automatic resend is
 * off, so a request is never sent twice behind our back (a parked wait would
 * be duplicated after a minute otherwise); instead each request has its own
 * receive deadline, longer for one jobd may park. Every failure is reported
 * here, naming the socket, and turned into an exit code; but a request that
 * its caller resumes (wait, logs --follow) hands the failures a jobd restart
 * explains back to it unreported, for it to try again (ctl_call_resume).
 */
#include <sys/stat.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "ctl.h"
#include "util.h"

/*
 * The largest reply taken. jobd's replies can be large (a list of 10000
 * jobs, a log chunk in base64), but they come from a peer we trust less than
 * our own memory.
 */
#define CTL_CONN_MAX_REPLY (256 * 1024 * 1024)

struct ctl_conn {
	nng_socket sock;
	int dialled; /* sock is open, its dialer started */
	int reached; /* a dial has worked in this run */
	char *url;
	/*
	 * When the connection goes, nng holds a request it has not written
	 * yet for a connection to come, with no error: the send (or the
	 * receive) would wait for its whole timeout. So the removal of the
	 * pipe (seen on an nng thread) cancels the one in progress.
	 */
	nng_mtx *mtx;
	nng_aio *aio; /* the send or receive in progress, or NULL */
	int dropped;  /* the connection of sock has gone */
};

/* On an nng thread: the connection has gone. */
static void
ctl_conn_pipe_gone(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct ctl_conn *conn = arg;

	(void)p;
	(void)ev;
	nng_mtx_lock(conn->mtx);
	conn->dropped = 1;
	if (conn->aio != NULL)
		nng_aio_cancel(conn->aio);
	nng_mtx_unlock(conn->mtx);
}

/* Close the socket, if open: the next request dials anew. */
static void
ctl_conn_hangup(struct ctl_conn *conn)
{
	if (conn->dialled)
		nng_close(conn->sock);
	conn->dialled = 0;
}

/*
 * Open a new socket and dial jobd; returns an nng error. The dial waits for
 * the connection (flags 0) and fails at once if there is none. A failed
 * dial leaves no socket behind.
 */
static int
ctl_conn_dial(struct ctl_conn *conn)
{
	nng_dialer dialer;
	int rv;

	ctl_conn_hangup(conn);
	if ((rv = nng_req0_open(&conn->sock)) != 0)
		return (rv);
	conn->dropped = 0;
	if ((rv = nng_pipe_notify(conn->sock, NNG_PIPE_EV_REM_POST,
	                          ctl_conn_pipe_gone, conn)) != 0 ||
	    (rv = nng_socket_set_ms(conn->sock, NNG_OPT_REQ_RESENDTIME,
	                            NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_dialer_create(&dialer, conn->sock, conn->url)) != 0 ||
	    (rv = nng_dialer_set_size(dialer, NNG_OPT_RECVMAXSZ,
	                              CTL_CONN_MAX_REPLY)) != 0 ||
	    (rv = nng_dialer_start(dialer, 0)) != 0) {
		nng_close(conn->sock);
		return (rv);
	}
	conn->dialled = conn->reached = 1;
	return (0);
}

/*
 * Is there no jobd at all, rather than one restarting? An ipc:// socket
 * that is not there: jobd removes it when it stops cleanly, but one that
 * never ran (or a mistyped --socket) has none either. A socket left by a
 * jobd that crashed refuses connections until the next one starts.
 */
static int
ctl_conn_absent(struct ctl_conn *conn)
{
	struct stat sb;

	return (strncmp(conn->url, "ipc://", 6) == 0 &&
	        stat(conn->url + 6, &sb) == -1 && errno == ENOENT);
}

/*
 * A connection to jobd at url, not dialled yet: the first request dials.
 * The caller closes it with ctl_conn_close.
 */
struct ctl_conn *
ctl_conn_new(const char *url)
{
	struct ctl_conn *conn;

	/*
	 * No nng_fini at exit: in nng 1.5.2 it races with the reaping of a
	 * failed dial's pipe and may panic ("pthread_mutex_lock: Invalid
	 * argument") or hang for ever, in about 2% of the runs whose dial
	 * failed. nng's globals stay reachable, so leak checkers are quiet.
	 */
	conn = xcalloc(1, sizeof *conn);
	conn->url = xstrdup(url);
	if (nng_mtx_alloc(&conn->mtx) != 0) {
		output_error("out of memory");
		exit(CTL_EXIT_ERROR);
	}
	return (conn);
}

void
ctl_conn_close(struct ctl_conn *conn)
{
	ctl_conn_hangup(conn);
	nng_mtx_free(conn->mtx);
	free(conn->url);
	free(conn);
}

/* Say why a dial, send or receive failed; returns the exit code. */
static int
ctl_conn_fail(struct ctl_conn *conn, int rv, int dialling, int timeout_ms)
{
	if (rv == NNG_ENOMEM) {
		output_error("cannot talk to jobd: %s", nng_strerror(rv));
		return (CTL_EXIT_ERROR);
	}
	if (dialling)
		output_error("cannot reach jobd at %s: %s", conn->url,
		             nng_strerror(rv));
	else if (rv == NNG_ETIMEDOUT)
		output_error("no reply from jobd at %s within %d s", conn->url,
		             timeout_ms / 1000);
	else
		output_error("lost the connection to jobd at %s: %s", conn->url,
		             nng_strerror(rv));
	return (CTL_EXIT_UNAVAILABLE);
}

/*
 * Run one send or receive (send: nng_send_aio, or nng_recv_aio) on aio and
 * wait for it, unless the connection has gone, before or meanwhile.
 * Returns an nng error: NNG_ECONNSHUT if the connection went.
 */
static int
ctl_conn_aio(struct ctl_conn *conn, nng_aio *aio,
             void (*start)(nng_socket, nng_aio *))
{
	int rv;

	nng_mtx_lock(conn->mtx);
	if (conn->dropped) {
		nng_mtx_unlock(conn->mtx);
		return (NNG_ECONNSHUT);
	}
	conn->aio = aio;
	start(conn->sock, aio);
	nng_mtx_unlock(conn->mtx);
	nng_aio_wait(aio);
	nng_mtx_lock(conn->mtx);
	conn->aio = NULL;
	nng_mtx_unlock(conn->mtx);
	rv = nng_aio_result(aio);
	return (rv == NNG_ECANCELED ? NNG_ECONNSHUT : rv);
}

/*
 * Send req and receive the reply into *msgp; returns an nng error
 * (NNG_ECONNSHUT if the connection went before the reply came). Both
 * steps may wait for a connection: nng holds a request until one takes it.
 */
static int
ctl_conn_exchange(struct ctl_conn *conn, const char *req, size_t len,
                  int timeout_ms, nng_msg **msgp)
{
	nng_msg *msg;
	nng_aio *aio;
	int rv;

	if ((rv = nng_msg_alloc(&msg, len)) != 0)
		return (rv);
	memcpy(nng_msg_body(msg), req, len);
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		nng_msg_free(msg);
		return (rv);
	}
	nng_aio_set_timeout(aio, timeout_ms);
	nng_aio_set_msg(aio, msg);
	if ((rv = ctl_conn_aio(conn, aio, nng_send_aio)) != 0)
		/* nng takes the message only when the send succeeds. */
		nng_msg_free(msg);
	else if ((rv = ctl_conn_aio(conn, aio, nng_recv_aio)) == 0)
		*msgp = nng_aio_get_msg(aio);
	nng_aio_free(aio);
	return (rv);
}

/* Did the connection drop (rather than jobd not answer in time)? */
static int
ctl_conn_dropped(int rv)
{
	return (rv == NNG_ECONNRESET || rv == NNG_ECLOSED ||
	        rv == NNG_ECONNSHUT);
}

/*
 * Dial again after a drop. jobd may be between two listeners (it replaces
 * one that nng issue #1518 has made deaf), so for a moment its socket is
 * missing or refuses: try for up to CTL_CONN_REDIAL_MS before giving up.
 */
#define CTL_CONN_REDIAL_MS 2000

static int
ctl_conn_redial(struct ctl_conn *conn)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int rv, waited_ms = 0;

	while ((rv = ctl_conn_dial(conn)) == NNG_ECONNREFUSED ||
	       rv == NNG_ENOENT) {
		if (waited_ms >= CTL_CONN_REDIAL_MS)
			break;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		waited_ms += 10;
		ts.tv_sec = 0;
		ts.tv_nsec = 10 * 1000 * 1000;
	}
	return (rv);
}

/* Is reply jobd saying that it is stopping? */
static int
ctl_conn_stopping(json_t *reply)
{
	char msg[8];

	return (proto_reply_status(reply, msg, sizeof msg) == PROTO_ESHUTDOWN);
}

/*
 * Send the len bytes of req (one JSON request) and wait up to timeout_ms for
 * the reply, dialling first if need be. Returns 0 and sets *replyp to the
 * decoded reply (the caller owns it), or says why and returns an exit code.
 *
 * Without CTL_CONN_RESUME, if the connection drops, the request is sent once
 * more on a new one: every request is safe to repeat (a submit carries its
 * key, so it never makes a second job).
 *
 * With CTL_CONN_RESUME (a request jobd may park, which the caller will send
 * again), what a jobd restart explains is not reported: if jobd cannot be
 * reached, the connection drops, or jobd answers shutting_down, the
 * connection is closed and CTL_AGAIN returned, at once. Only a first dial
 * to a socket file that does not exist fails as usual: no jobd is there.
 */
int
ctl_conn_request(struct ctl_conn *conn, const char *req, size_t len,
                 int timeout_ms, int flags, json_t **replyp)
{
	nng_msg *msg;
	json_t *reply;
	json_error_t jerr;
	int rv, resume = flags & CTL_CONN_RESUME;

	if (!conn->dialled && (rv = ctl_conn_dial(conn)) != 0) {
		/* Wait for a jobd that went away, not for one never there. */
		if (resume && rv != NNG_ENOMEM &&
		    (conn->reached || !ctl_conn_absent(conn)))
			return (CTL_AGAIN);
		return (ctl_conn_fail(conn, rv, 1, timeout_ms));
	}
	rv = ctl_conn_exchange(conn, req, len, timeout_ms, &msg);
	if (ctl_conn_dropped(rv)) {
		if (resume) {
			ctl_conn_hangup(conn);
			return (CTL_AGAIN);
		}
		if ((rv = ctl_conn_redial(conn)) == 0)
			rv =
			    ctl_conn_exchange(conn, req, len, timeout_ms, &msg);
	}
	if (rv != 0)
		return (ctl_conn_fail(conn, rv, 0, timeout_ms));
	reply = json_loadb(nng_msg_body(msg), nng_msg_len(msg), 0, &jerr);
	nng_msg_free(msg);
	if (reply == NULL) {
		output_error("malformed reply from jobd: %s", jerr.text);
		return (CTL_EXIT_PROTOCOL);
	}
	if (resume && ctl_conn_stopping(reply)) {
		/* The next try needs the next jobd, on a new connection. */
		json_decref(reply);
		ctl_conn_hangup(conn);
		return (CTL_AGAIN);
	}
	*replyp = reply;
	return (CTL_EXIT_OK);
}
