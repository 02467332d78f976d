/*
 * The client's connection to jobd: one Unix stream socket per run, one
 * request in flight at a time, each with its own receive deadline.
 *
 * jobctl speaks nng's REQ protocol over ipc:// itself, on a plain socket,
 * rather than through libnng: the wire format is small and fixed (below,
 * and docs/protocol.md), while libnng cost every call more than the rest of
 * jobctl together (loading it and mbedtls, and starting its 14 threads
 * before the first byte: `jobctl ping` took 12.6 ms against 3.3 ms for a
 * bare exec). Here a failure is also plain: a dropped connection is an end
 * of file or an error on our own descriptor, never a request held back.
 *
 * The framing is in proto.h (proto_sp_*).
 *
 * Every failure is reported here, naming the socket, and turned into an
 * exit code; but a request that its caller resumes (wait, logs --follow)
 * hands the failures a jobd restart explains back to it unreported, for it
 * to try again (ctl_call_resume).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "util.h"

/*
 * The largest reply taken. jobd's replies can be large (a list of 10000
 * jobs, a log chunk in base64), but they come from a peer we trust less than
 * our own memory.
 */
#define CTL_CONN_MAX_REPLY (256 * 1024 * 1024)

/* Why an exchange failed, beyond an errno value (all positive). */
#define CTL_E_DROPPED (-1) /* the connection went (end of file, reset) */
#define CTL_E_TIMEOUT (-2) /* no reply in time */
#define CTL_E_PROTO   (-3) /* the peer is not jobd's REP socket */

struct ctl_conn {
	int fd;         /* the connection, or -1 */
	int greeted;    /* the peer's 8 bytes have been read */
	int reached;    /* a connection has worked in this run */
	uint32_t reqid; /* the last request's id */
	char *url;
	const char *path; /* the socket's path, in url */
};

/* Close the connection, if any: the next request connects anew. */
static void
ctl_conn_hangup(struct ctl_conn *conn)
{
	if (conn->fd != -1)
		close(conn->fd);
	conn->fd = -1;
}

/*
 * Connect to jobd's socket; returns 0 or an errno value. A missing socket
 * file gives ENOENT, one whose jobd is gone ECONNREFUSED. The connect waits
 * at most timeout_ms for room in jobd's backlog.
 */
static int
ctl_conn_dial(struct ctl_conn *conn, int timeout_ms)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int fd, err;

	ctl_conn_hangup(conn);
	if (strlen(conn->path) >= sizeof sun.sun_path)
		return (ENAMETOOLONG);
	strcpy(sun.sun_path, conn->path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return (errno);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) == -1) {
		err = errno == EAGAIN ? ETIMEDOUT : errno;
		close(fd);
		return (err);
	}
	conn->fd = fd;
	conn->greeted = 0;
	conn->reached = 1;
	return (0);
}

/*
 * Is there no jobd at all, rather than one restarting? A socket that is not
 * there: jobd removes it when it stops cleanly, but one that never ran (or
 * a mistyped --socket) has none either. A socket left by a jobd that
 * crashed refuses connections until the next one starts.
 */
static int
ctl_conn_absent(struct ctl_conn *conn)
{
	struct stat sb;

	return (stat(conn->path, &sb) == -1 && errno == ENOENT);
}

/*
 * A connection to jobd at url (an ipc:// URL), not made yet: the first
 * request connects. The caller closes it with ctl_conn_close.
 */
struct ctl_conn *
ctl_conn_new(const char *url)
{
	struct ctl_conn *conn;

	conn = xcalloc(1, sizeof *conn);
	conn->fd = -1;
	conn->url = xstrdup(url);
	conn->path = conn->url + (strncmp(url, "ipc://", 6) == 0 ? 6 : 0);
	return (conn);
}

void
ctl_conn_close(struct ctl_conn *conn)
{
	ctl_conn_hangup(conn);
	free(conn->url);
	free(conn);
}

/* Say why a connect or an exchange failed; returns the exit code. */
static int
ctl_conn_fail(struct ctl_conn *conn, int rv, int dialling, int timeout_ms)
{
	if (dialling)
		output_error("cannot reach jobd at %s: %s", conn->url,
		             strerror(rv));
	else if (rv == CTL_E_TIMEOUT)
		output_error("no reply from jobd at %s within %d s", conn->url,
		             timeout_ms / 1000);
	else if (rv == CTL_E_PROTO) {
		output_error("%s does not speak jobd's protocol", conn->url);
		return (CTL_EXIT_PROTOCOL);
	} else
		output_error("lost the connection to jobd at %s: %s", conn->url,
		             rv == CTL_E_DROPPED ? "closed by jobd"
		                                 : strerror(rv));
	return (CTL_EXIT_UNAVAILABLE);
}

/*
 * Wait until the connection can be written (events POLLOUT) or read
 * (POLLIN), or the deadline (monotonic ms) passes. Returns 0 or an error.
 */
static int
ctl_conn_poll(struct ctl_conn *conn, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = conn->fd, .events = events };
	int64_t left;
	int n;

	for (;;) {
		if ((left = deadline - util_mono_ms()) <= 0)
			return (CTL_E_TIMEOUT);
		if ((n = poll(&pfd, 1,
		              left > INT32_MAX ? INT32_MAX : (int)left)) > 0)
			return (0);
		if (n == -1 && errno != EINTR)
			return (errno);
	}
}

/* Send the iovecs in full by the deadline; returns 0 or an error. */
static int
ctl_conn_send(struct ctl_conn *conn, struct iovec *iov, int iovcnt,
              int64_t deadline)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = iovcnt };
	ssize_t n;
	int rv;

	while (mh.msg_iovlen > 0) {
		if ((n = sendmsg(conn->fd, &mh, MSG_NOSIGNAL)) == -1) {
			if (errno == EPIPE || errno == ECONNRESET)
				return (CTL_E_DROPPED);
			if (errno != EAGAIN && errno != EINTR)
				return (errno);
			if ((rv = ctl_conn_poll(conn, POLLOUT, deadline)) != 0)
				return (rv);
			continue;
		}
		while (mh.msg_iovlen > 0 && (size_t)n >= mh.msg_iov->iov_len) {
			n -= mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen > 0) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
			mh.msg_iov->iov_len -= n;
		}
	}
	return (0);
}

/* Read exactly len bytes by the deadline; returns 0 or an error. */
static int
ctl_conn_read(struct ctl_conn *conn, void *buf, size_t len, int64_t deadline)
{
	size_t off = 0;
	ssize_t n;
	int rv;

	while (off < len) {
		if ((n = read(conn->fd, (char *)buf + off, len - off)) > 0) {
			off += n;
			continue;
		}
		if (n == 0 || errno == ECONNRESET)
			return (CTL_E_DROPPED);
		if (errno != EAGAIN && errno != EINTR)
			return (errno);
		if ((rv = ctl_conn_poll(conn, POLLIN, deadline)) != 0)
			return (rv);
	}
	return (0);
}

static uint64_t
ctl_get_be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	while (bytes-- > 0)
		v = v << 8 | *p++;
	return (v);
}

/*
 * Send req (greeting first on a new connection) and read the reply to it
 * into *bodyp (malloc'd, NUL-terminated) and *lenp. Returns 0 or an error.
 */
static int
ctl_conn_exchange(struct ctl_conn *conn, const char *req, size_t len,
                  int timeout_ms, char **bodyp, size_t *lenp)
{
	unsigned char hello[PROTO_SP_HELLO], head[PROTO_SP_HEAD],
	    frame[PROTO_SP_FRAME];
	struct iovec iov[3];
	int64_t deadline = util_mono_ms() + timeout_ms;
	uint64_t rlen;
	char *body;
	int rv, n = 0;

	proto_sp_hello(hello, PROTO_SP_REQ);
	if (!conn->greeted)
		iov[n++] = (struct iovec){ hello, sizeof hello };
	conn->reqid = (conn->reqid + 1) & 0x7fffffff;
	proto_sp_head(head, len, conn->reqid);
	iov[n++] = (struct iovec){ head, sizeof head };
	iov[n++] = (struct iovec){ (void *)req, len };
	if ((rv = ctl_conn_send(conn, iov, n, deadline)) != 0)
		return (rv);
	if (!conn->greeted) {
		if ((rv = ctl_conn_read(conn, hello, sizeof hello, deadline)))
			return (rv);
		if (!proto_sp_hello_ok(hello, PROTO_SP_REP))
			return (CTL_E_PROTO);
		conn->greeted = 1;
	}
	for (;;) {
		/* A message: type 1, its length, our request id, the JSON. */
		if ((rv = ctl_conn_read(conn, frame, sizeof frame, deadline)))
			return (rv);
		rlen = ctl_get_be(frame + 1, 8);
		if (frame[0] != 1 || rlen < 4 || rlen > CTL_CONN_MAX_REPLY)
			return (CTL_E_PROTO);
		body = xmalloc(rlen + 1);
		if ((rv = ctl_conn_read(conn, body, rlen, deadline)) != 0) {
			free(body);
			return (rv);
		}
		/* A reply to an earlier request (none is in flight): not ours.
		 */
		if (memcmp(body, head + PROTO_SP_FRAME, 4) == 0)
			break;
		free(body);
	}
	memmove(body, body + 4, rlen - 4);
	body[rlen - 4] = '\0';
	*bodyp = body;
	*lenp = rlen - 4;
	return (0);
}

/*
 * Connect again after a drop. jobd may be between two listeners (it
 * replaces one that nng issue #1518 has made deaf), so for a moment its
 * socket is missing or refuses: try for up to CTL_CONN_REDIAL_MS.
 */
#define CTL_CONN_REDIAL_MS 2000

static int
ctl_conn_redial(struct ctl_conn *conn, int timeout_ms)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int rv, waited_ms = 0;

	while ((rv = ctl_conn_dial(conn, timeout_ms)) == ECONNREFUSED ||
	       rv == ENOENT) {
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
 * the reply, connecting first if need be. Returns 0 and sets *replyp to the
 * decoded reply (the caller owns it), or says why and returns an exit code.
 *
 * Without CTL_CONN_RESUME, if the connection drops, the request is sent once
 * more on a new one: every request is safe to repeat (a submit carries its
 * key, so it never makes a second job).
 *
 * With CTL_CONN_RESUME (a request jobd may park, which the caller will send
 * again), what a jobd restart explains is not reported: if jobd cannot be
 * reached, the connection drops, or jobd answers shutting_down, the
 * connection is closed and CTL_AGAIN returned, at once. Only a first
 * connect to a socket file that does not exist fails as usual: no jobd is
 * there.
 */
int
ctl_conn_request(struct ctl_conn *conn, const char *req, size_t len,
                 int timeout_ms, int flags, json_t **replyp)
{
	json_t *reply;
	json_error_t jerr;
	char *body;
	size_t blen;
	int rv, resume = flags & CTL_CONN_RESUME;

	if (conn->fd == -1 && (rv = ctl_conn_dial(conn, timeout_ms)) != 0) {
		/* Wait for a jobd that went away, not for one never there. */
		if (resume && rv != ENOMEM &&
		    (conn->reached || !ctl_conn_absent(conn)))
			return (CTL_AGAIN);
		return (ctl_conn_fail(conn, rv, 1, timeout_ms));
	}
	rv = ctl_conn_exchange(conn, req, len, timeout_ms, &body, &blen);
	if (rv == CTL_E_DROPPED) {
		if (resume) {
			ctl_conn_hangup(conn);
			return (CTL_AGAIN);
		}
		if ((rv = ctl_conn_redial(conn, timeout_ms)) == 0)
			rv = ctl_conn_exchange(conn, req, len, timeout_ms,
			                       &body, &blen);
	}
	if (rv != 0) {
		ctl_conn_hangup(conn);
		return (ctl_conn_fail(conn, rv, 0, timeout_ms));
	}
	reply = json_loadb(body, blen, 0, &jerr);
	free(body);
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
