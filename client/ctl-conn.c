/*
 * The client's only use of nng: one cooked REQ socket per run, dialled
 * synchronously, one request in flight at a time. nng's automatic resend is
 * off, so a request is never sent twice behind our back (a parked wait would
 * be duplicated after a minute otherwise); instead each request has its own
 * receive deadline, longer for one jobd may park. Every failure is reported
 * here, naming the socket, and turned into an exit code.
 */
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

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
	char *url;
};

static void
ctl_conn_free(struct ctl_conn *conn)
{
	free(conn->url);
	free(conn);
}

/* Set up the socket and its dialer; returns an nng error. */
static int
ctl_conn_dial(struct ctl_conn *conn)
{
	nng_dialer dialer;
	int rv;

	if ((rv = nng_socket_set_ms(conn->sock, NNG_OPT_REQ_RESENDTIME,
	                            NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_dialer_create(&dialer, conn->sock, conn->url)) != 0 ||
	    (rv = nng_dialer_set_size(dialer, NNG_OPT_RECVMAXSZ,
	                              CTL_CONN_MAX_REPLY)) != 0)
		return (rv);
	/* Flags 0: wait for the connection, and fail now if there is none. */
	return (nng_dialer_start(dialer, 0));
}

/*
 * Connect to jobd at url. Returns 0 and sets *connp (the caller closes it
 * with ctl_conn_close), or says why and returns an exit code.
 */
int
ctl_conn_open(const char *url, struct ctl_conn **connp)
{
	static int registered;
	struct ctl_conn *conn;
	int rv;

	/* Free nng's globals at exit so that leak checkers see only ours. */
	if (!registered && atexit(nng_fini) == 0)
		registered = 1;
	conn = xcalloc(1, sizeof *conn);
	conn->url = xstrdup(url);
	if ((rv = nng_req0_open(&conn->sock)) != 0) {
		output_error("cannot open a socket: %s", nng_strerror(rv));
		ctl_conn_free(conn);
		return (CTL_EXIT_ERROR);
	}
	if ((rv = ctl_conn_dial(conn)) != 0) {
		output_error("cannot reach jobd at %s: %s", url,
		             nng_strerror(rv));
		ctl_conn_close(conn);
		return (CTL_EXIT_UNAVAILABLE);
	}
	*connp = conn;
	return (CTL_EXIT_OK);
}

void
ctl_conn_close(struct ctl_conn *conn)
{
	nng_close(conn->sock);
	ctl_conn_free(conn);
}

/* Say why a send or receive failed; returns the exit code. */
static int
ctl_conn_fail(struct ctl_conn *conn, int rv, int timeout_ms)
{
	if (rv == NNG_ETIMEDOUT)
		output_error("no reply from jobd at %s within %d s", conn->url,
		             timeout_ms / 1000);
	else
		output_error("lost the connection to jobd at %s: %s", conn->url,
		             nng_strerror(rv));
	return (CTL_EXIT_UNAVAILABLE);
}

/* Send req and receive the reply into *msgp; returns an nng error. */
static int
ctl_conn_exchange(struct ctl_conn *conn, const char *req, size_t len,
                  int timeout_ms, nng_msg **msgp)
{
	nng_msg *msg;
	int rv;

	if ((rv = nng_msg_alloc(&msg, len)) != 0)
		return (rv);
	memcpy(nng_msg_body(msg), req, len);
	if ((rv = nng_socket_set_ms(conn->sock, NNG_OPT_SENDTIMEO,
	                            timeout_ms)) != 0 ||
	    (rv = nng_socket_set_ms(conn->sock, NNG_OPT_RECVTIMEO,
	                            timeout_ms)) != 0 ||
	    (rv = nng_sendmsg(conn->sock, msg, 0)) != 0) {
		/* nng takes the message only when the send succeeds. */
		nng_msg_free(msg);
		return (rv);
	}
	return (nng_recvmsg(conn->sock, msgp, 0));
}

/* Did the connection drop (rather than jobd not answer in time)? */
static int
ctl_conn_dropped(int rv)
{
	return (rv == NNG_ECONNRESET || rv == NNG_ECLOSED ||
	        rv == NNG_ECONNSHUT);
}

/*
 * Send the len bytes of req (one JSON request) and wait up to timeout_ms for
 * the reply. Returns 0 and sets *replyp to the decoded reply (the caller owns
 * it), or says why and returns an exit code. If the connection drops, the
 * request is sent once more on a new one: every request is safe to repeat
 * (a submit carries its key, so it never makes a second job).
 */
int
ctl_conn_request(struct ctl_conn *conn, const char *req, size_t len,
                 int timeout_ms, json_t **replyp)
{
	nng_msg *msg;
	json_t *reply;
	json_error_t jerr;
	int rv;

	rv = ctl_conn_exchange(conn, req, len, timeout_ms, &msg);
	if (ctl_conn_dropped(rv)) {
		nng_close(conn->sock);
		if ((rv = nng_req0_open(&conn->sock)) == 0 &&
		    (rv = ctl_conn_dial(conn)) == 0)
			rv =
			    ctl_conn_exchange(conn, req, len, timeout_ms, &msg);
	}
	if (rv != 0)
		return (ctl_conn_fail(conn, rv, timeout_ms));
	reply = json_loadb(nng_msg_body(msg), nng_msg_len(msg), 0, &jerr);
	nng_msg_free(msg);
	if (reply == NULL) {
		output_error("malformed reply from jobd: %s", jerr.text);
		return (CTL_EXIT_PROTOCOL);
	}
	*replyp = reply;
	return (CTL_EXIT_OK);
}
