/*
 * The daemon's side of the wire: the only file that calls nng. A raw REP
 * socket, so that a request can be kept and answered later (its header is
 * the route back); its receive fd is level-triggered and watched by
 * libevent. Each request carries its sender's uid/gid/pid, read from the
 * kernel through its pipe, never from the message.
 */
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "jobd.h"

static nng_socket ipc_sock = NNG_SOCKET_INITIALIZER;
static struct event *ipc_rx_ev;

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

/* Listen on url with socket file mode perms. Returns 0 or -1 (logged). */
int
ipc_listen(const char *url, int perms)
{
	nng_listener l;
	int rv, fd;

	if ((rv = nng_rep0_open_raw(&ipc_sock)) != 0)
		goto fail;
	/* The raw REP default is 0: bursts of replies would fail (EAGAIN). */
	if ((rv = nng_socket_set_int(ipc_sock, NNG_OPT_SENDBUF, 1024)) != 0 ||
	    (rv = nng_socket_set_int(ipc_sock, NNG_OPT_RECVBUF, 128)) != 0)
		goto fail;
	if ((rv = nng_listener_create(&l, ipc_sock, url)) != 0)
		goto fail;
	/* Both must be set before the listener starts. */
	if ((rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, perms)) !=
	        0 ||
	    (rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, PROTO_MAX_MSG)) !=
	        0)
		goto fail;
	if ((rv = nng_listener_start(l, 0)) != 0) {
		if (rv == NNG_EADDRINUSE)
			log_warnx("%s is in use: another jobd is listening "
			          "there",
			          url);
		goto fail;
	}
	if ((rv = nng_socket_get_int(ipc_sock, NNG_OPT_RECVFD, &fd)) != 0)
		goto fail;
	ipc_rx_ev =
	    event_new(server_base, fd, EV_READ | EV_PERSIST, ipc_recv_cb, NULL);
	if (ipc_rx_ev == NULL || event_add(ipc_rx_ev, NULL) != 0) {
		log_warnx("cannot watch the nng receive fd");
		return (-1);
	}
	return (0);
fail:
	log_warnx("cannot listen on %s: %s", url, nng_strerror(rv));
	return (-1);
}

/* Stop listening. The event goes first: the fd belongs to nng. */
void
ipc_close(void)
{
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
