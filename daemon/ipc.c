/*
 * The daemon's side of the wire: the only file that calls nng. A raw REP
 * socket, so that a request can be kept and answered later (its header is
 * the route back); its receive fd is level-triggered and watched by
 * libevent. Each request carries its sender's uid/gid/pid, read from the
 * kernel through its pipe, never from the message.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "jobd.h"

/*
 * nng 1.5.2 (Debian 12) stops accepting connections for good when a peer
 * connects and closes before the SP handshake (nng issue #1518, fixed in
 * 1.6.0): after one bare connect() and close() by any local user, new
 * connections still complete the handshake but never reach the socket, so
 * jobd would hear nothing more. So jobd sends itself a ping now and then,
 * framed by hand as a REQ peer would, and starts a new listener when no
 * reply comes. (A second jobd on the same socket asks with a whole
 * handshake, see ipc_in_use, so as not to cause the same.)
 */
#define IPC_PROBE_EVERY_MS 2000
#define IPC_PROBE_WAIT_MS  5000

static nng_socket ipc_sock = NNG_SOCKET_INITIALIZER;
static nng_listener ipc_listener = NNG_LISTENER_INITIALIZER;
static char ipc_url[PATH_MAX + 8];
static int ipc_perms;
static struct event *ipc_rx_ev;
static struct event *ipc_probe_timer; /* every IPC_PROBE_EVERY_MS */
static struct event *ipc_probe_ev;    /* the probe in flight, if any */
static size_t ipc_probe_got;          /* bytes of answer so far */

/* Read the sender's credentials from the pipe the message came on. */
static void
ipc_peer(nng_msg *m, struct request *r)
{
	nng_pipe p = nng_msg_get_pipe(m);

	r->uid = r->gid = UINT64_MAX;
	/* These options are uint64_t; nng_pipe_get_int fails with EBADTYPE. */
	nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &r->uid);
	nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_GID, &r->gid);
	nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &r->pid);
}

/* Drain up to a batch of requests; the fd stays readable while more wait. */
static void
ipc_recv_cb(evutil_socket_t fd, short what, void *arg)
{
	struct request *r;
	nng_msg *m;
	int n;

	(void)fd;
	(void)what;
	(void)arg;
	for (n = 0; n < JOBD_BATCH_MAX; n++) {
		if (nng_recvmsg(ipc_sock, &m, NNG_FLAG_NONBLOCK) != 0)
			break; /* NNG_EAGAIN: a benign race */
		r = xcalloc(1, sizeof *r);
		r->msg = m;
		ipc_peer(m, r);
		dispatch_request(r);
	}
	server_wake();
}

/* Start a listener on ipc_url. Returns 0 or an nng error. */
static int
ipc_listener_start(void)
{
	int rv;

	if ((rv = nng_listener_create(&ipc_listener, ipc_sock, ipc_url)) != 0)
		return (rv);
	/* Both must be set before the listener starts. */
	if ((rv = nng_listener_set_int(ipc_listener, NNG_OPT_IPC_PERMISSIONS,
	                               ipc_perms)) != 0 ||
	    (rv = nng_listener_set_size(ipc_listener, NNG_OPT_RECVMAXSZ,
	                                PROTO_MAX_MSG)) != 0 ||
	    (rv = nng_listener_start(ipc_listener, 0)) != 0) {
		nng_listener_close(ipc_listener);
		return (rv);
	}
	return (0);
}

/*
 * Does something answer on url already (another jobd)? Asked with a whole
 * handshake: nng's own check for a stale socket file connects and closes
 * at once, which would break a live jobd's listener (see above).
 */
static int
ipc_in_use(const char *url)
{
	nng_socket s;
	int used;

	if (nng_req0_open(&s) != 0)
		return (0);
	used = nng_dial(s, url, NULL, 0) == 0;
	nng_close(s);
	return (used);
}

static void
ipc_probe_done(void)
{
	close(event_get_fd(ipc_probe_ev));
	event_free(ipc_probe_ev);
	ipc_probe_ev = NULL;
}

/* Part of the probe's answer came, or its time ran out. */
static void
ipc_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[256];
	ssize_t n;
	int rv;

	(void)arg;
	if (what & EV_READ) {
		n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EAGAIN)
			return;
		/*
		 * The handshake (8 bytes) and the reply's frame (9 or more):
		 * a request went through. A closed connection is an answer
		 * too: the listener is there.
		 */
		ipc_probe_got += n > 0 ? (size_t)n : 0;
		if (n > 0 && ipc_probe_got < PROTO_SP_HELLO + PROTO_SP_FRAME)
			return;
		ipc_probe_done();
		return;
	}
	ipc_probe_done();
	log_warnx("the listener on %s stopped passing requests on (nng "
	          "issue #1518); starting a new one",
	          ipc_url);
	nng_listener_close(ipc_listener);
	if ((rv = ipc_listener_start()) != 0)
		log_warnx("cannot listen on %s again: %s", ipc_url,
		          nng_strerror(rv));
}

/* Connect to our own socket and send a ping as a REQ peer would. */
static void
ipc_probe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	static const char ping[] = "{\"v\":1,\"op\":\"ping\"}";
	unsigned char msg[PROTO_SP_HELLO + PROTO_SP_HEAD + sizeof ping - 1];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { IPC_PROBE_WAIT_MS / 1000, 0 };
	const char *path = ipc_url + strlen("ipc://");
	size_t len;
	int s;

	(void)fd;
	(void)what;
	(void)arg;
	if (ipc_probe_ev != NULL || server_stopping)
		return;
	proto_sp_hello(msg, PROTO_SP_REQ);
	proto_sp_head(msg + PROTO_SP_HELLO, sizeof ping - 1, 1);
	memcpy(msg + PROTO_SP_HELLO + PROTO_SP_HEAD, ping, sizeof ping - 1);
	/* util_socket_url made sure the path fits. */
	if ((len = strlen(path)) >= sizeof sa.sun_path)
		return;
	memcpy(sa.sun_path, path, len + 1);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s == -1)
		return;
	/* A full backlog (EAGAIN) means busy, not deaf: look next time. */
	if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    write(s, msg, sizeof msg) != (ssize_t)sizeof msg) {
		close(s);
		return;
	}
	ipc_probe_got = 0;
	ipc_probe_ev =
	    event_new(server_base, s, EV_READ | EV_PERSIST, ipc_probe_cb, NULL);
	event_add(ipc_probe_ev, &tv);
}

/* Listen on url with socket file mode perms. Returns 0 or -1 (logged). */
int
ipc_listen(const char *url, int perms)
{
	struct timeval every = { IPC_PROBE_EVERY_MS / 1000,
		                 (IPC_PROBE_EVERY_MS % 1000) * 1000 };
	int rv, fd;

	snprintf(ipc_url, sizeof ipc_url, "%s", url);
	ipc_perms = perms;
	if (ipc_in_use(url)) {
		log_warnx("%s is in use: another jobd is listening there", url);
		return (-1);
	}
	if ((rv = nng_rep0_open_raw(&ipc_sock)) != 0)
		goto fail;
	/* The raw REP default is 0: bursts of replies would fail (EAGAIN). */
	if ((rv = nng_socket_set_int(ipc_sock, NNG_OPT_SENDBUF, 1024)) != 0 ||
	    (rv = nng_socket_set_int(ipc_sock, NNG_OPT_RECVBUF, 128)) != 0)
		goto fail;
	if ((rv = ipc_listener_start()) != 0)
		goto fail;
	if ((rv = nng_socket_get_int(ipc_sock, NNG_OPT_RECVFD, &fd)) != 0)
		goto fail;
	ipc_rx_ev =
	    event_new(server_base, fd, EV_READ | EV_PERSIST, ipc_recv_cb, NULL);
	if (ipc_rx_ev == NULL || event_add(ipc_rx_ev, NULL) != 0) {
		log_warnx("cannot watch the nng receive fd");
		return (-1);
	}
	ipc_probe_timer =
	    event_new(server_base, -1, EV_PERSIST, ipc_probe_timer_cb, NULL);
	event_add(ipc_probe_timer, &every);
	return (0);
fail:
	log_warnx("cannot listen on %s: %s", url, nng_strerror(rv));
	return (-1);
}

/* Stop listening. The event goes first: the fd belongs to nng. */
void
ipc_close(void)
{
	if (ipc_probe_ev != NULL)
		ipc_probe_done();
	if (ipc_probe_timer != NULL)
		event_free(ipc_probe_timer);
	ipc_probe_timer = NULL;
	if (ipc_rx_ev != NULL)
		event_free(ipc_rx_ev);
	ipc_rx_ev = NULL;
	nng_close(ipc_sock);
}

/*
 * Send r->reply to the client and free r. The request's message carries the
 * reply: its body is replaced, its header (the route) kept. A reply to a
 * client that has gone is dropped by nng, which is fine.
 */
void
ipc_send(struct request *r)
{
	nng_msg *m = r->msg;
	char *body;

	/* A reply that cannot be encoded is a bug: say so, do not stop. */
	if ((body = json_dumps(r->reply, JSON_COMPACT)) == NULL) {
		log_warnx("cannot encode a reply to a %s request",
		          proto_ops[r->op].name);
		body =
		    xstrdup("{\"ok\":false,\"error\":\"internal\","
		            "\"message\":\"jobd could not encode its reply\"}");
	}
	nng_msg_clear(m);
	if (nng_msg_append(m, body, strlen(body)) == 0 &&
	    nng_sendmsg(ipc_sock, m, NNG_FLAG_NONBLOCK) == 0)
		r->msg = NULL; /* nng owns it now */
	else
		log_warnx("could not send a reply; the client will time out");
	free(body);
	ipc_request_free(r);
}

/* The request body, for the decoder. */
void
ipc_request_body(struct request *r, const void **bufp, size_t *lenp)
{
	*bufp = nng_msg_body(r->msg);
	*lenp = nng_msg_len(r->msg);
}

void
ipc_request_free(struct request *r)
{
	if (r == NULL)
		return;
	if (r->msg != NULL)
		nng_msg_free(r->msg);
	if (r->timer != NULL)
		event_free(r->timer);
	json_decref(r->req);
	json_decref(r->reply);
	free(r);
}
