/*
 * bench-ingest: the durable ingest load generator (issue 5, "Durable ingest"
 * and "Scale"). It opens N connections to jobd, each a cooked nng REQ socket
 * with automatic resend off (as jobctl's), keeps one submit in flight on
 * each, and sends the next as soon as the reply comes: jobd replies only
 * after the commit, so what it counts are durable submits.
 *
 *   bench-ingest --socket PATH --conns N [--seconds S | --count N]
 *                [--env-bytes B] [--command STR]
 *
 * Each request is a submit as docs/protocol.md gives it: a shell command
 * (--command, default "true"), cwd "/", an environment (this process's own,
 * or with --env-bytes a synthetic one of B bytes, counted as `env | wc -c`
 * counts them), and a key unique to the request. Only replies with "ok":true
 * count as acknowledged; the others are counted apart and the first one's
 * message printed on stderr.
 *
 * --seconds S (the default, 10 s): submit for a warm-up of INGEST_WARMUP_MS,
 * then count the submits acknowledged in the next S seconds.
 * --count N: submit exactly N requests (to fill a queue) and time them all.
 *
 * The output is one tab-separated line: acked, errors, seconds, per_s
 * (acknowledged submits per second). errors counts every failed request of
 * the run, warm-up included. The work runs in nng aio callbacks, on nng's
 * threads: none of our own per connection.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "util.h"

#define INGEST_MAX_CONNS     1024
#define INGEST_WARMUP_MS     1000
#define INGEST_TIMEOUT_MS    60000        /* one request's send or reply */
#define INGEST_MAX_ENV_BYTES (256 * 1024) /* under 4096 variables */
#define INGEST_PAD_LEN       120          /* one synthetic variable at most */

extern char **environ;

enum ingest_step {
	INGEST_SEND,
	INGEST_RECV,
};

/* One connection: its socket, and its one request in flight. */
struct ingest_conn {
	nng_socket sock;
	nng_aio *aio;
	enum ingest_step step;
};

/* The request up to its key (the closing brace cut), built once. */
static char *ingest_prefix;
static size_t ingest_prefix_len;
static char ingest_keybase[64];
static long long ingest_count; /* --count N; 0 in --seconds mode */

/* Shared with the callbacks, under ingest_mtx. */
static nng_mtx *ingest_mtx;
static nng_cv *ingest_cv;
static int ingest_stop;
static int ingest_active; /* connections still submitting */
static long long ingest_issued, ingest_acked, ingest_errors;
static int64_t ingest_end_us; /* when the last connection stopped */
static char *ingest_first_error;

static int64_t
ingest_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

static void
ingest_die(const char *what, int rv)
{
	fprintf(stderr, "bench-ingest: %s: %s\n", what, nng_strerror(rv));
	exit(1);
}

/* Count a failed request; the first one's cause is kept. Under ingest_mtx. */
static void
ingest_error_locked(const char *why)
{
	ingest_errors++;
	if (ingest_first_error == NULL)
		ingest_first_error = xstrdup(why);
}

/* A connection has stopped submitting. Under ingest_mtx. */
static void
ingest_done_locked(void)
{
	if (--ingest_active == 0) {
		ingest_end_us = ingest_now_us();
		nng_cv_wake(ingest_cv);
	}
}

/*
 * Is the reply in msg an "ok":true? jobd writes "ok" first, so the fast path
 * is a prefix; anything else is decoded for its error and message into why.
 */
static int
ingest_reply_ok(nng_msg *msg, char *why, size_t len)
{
	static const char ok[] = "{\"ok\":true";
	const char *body = nng_msg_body(msg);
	size_t n = nng_msg_len(msg);
	const char *code = NULL, *text = NULL;
	json_t *reply, *v;

	if (n >= sizeof ok - 1 && memcmp(body, ok, sizeof ok - 1) == 0)
		return (1);
	if ((reply = json_loadb(body, n, 0, NULL)) == NULL) {
		snprintf(why, len, "a reply that is not JSON (%zu bytes)", n);
		return (0);
	}
	if ((v = json_object_get(reply, "ok")) != NULL && json_is_true(v)) {
		json_decref(reply);
		return (1);
	}
	if ((v = json_object_get(reply, "error")) != NULL)
		code = json_string_value(v);
	if ((v = json_object_get(reply, "message")) != NULL)
		text = json_string_value(v);
	snprintf(why, len, "%s: %s", code != NULL ? code : "?",
	         text != NULL ? text : "(no message)");
	json_decref(reply);
	return (0);
}

/* The request numbered seq: the prefix and a unique key. */
static int
ingest_request(long long seq, nng_msg **msgp)
{
	char key[128];
	nng_msg *msg;
	int n, rv;

	n = snprintf(key, sizeof key, ",\"key\":\"%s-%lld\"}", ingest_keybase,
	             seq);
	if ((rv = nng_msg_alloc(&msg, ingest_prefix_len + (size_t)n)) != 0)
		return (rv);
	memcpy(nng_msg_body(msg), ingest_prefix, ingest_prefix_len);
	memcpy((char *)nng_msg_body(msg) + ingest_prefix_len, key, (size_t)n);
	*msgp = msg;
	return (0);
}

/* Send the connection's next request, or stop it if the run is over. */
static void
ingest_next(struct ingest_conn *c)
{
	char why[128];
	nng_msg *msg;
	long long seq;
	int rv;

	nng_mtx_lock(ingest_mtx);
	if (ingest_stop ||
	    (ingest_count > 0 && ingest_issued >= ingest_count)) {
		ingest_done_locked();
		nng_mtx_unlock(ingest_mtx);
		return;
	}
	seq = ingest_issued++;
	nng_mtx_unlock(ingest_mtx);
	if ((rv = ingest_request(seq, &msg)) != 0) {
		snprintf(why, sizeof why, "message: %s", nng_strerror(rv));
		nng_mtx_lock(ingest_mtx);
		ingest_error_locked(why);
		ingest_done_locked();
		nng_mtx_unlock(ingest_mtx);
		return;
	}
	c->step = INGEST_SEND;
	nng_aio_set_msg(c->aio, msg);
	nng_send_aio(c->sock, c->aio);
}

/*
 * On an nng thread: the send or the receive of c's request has ended. A
 * connection whose send or receive failed stops: its socket may be gone.
 */
static void
ingest_cb(void *arg)
{
	struct ingest_conn *c = arg;
	char why[256];
	nng_msg *msg;
	int rv = nng_aio_result(c->aio), ok;

	if (rv != 0) {
		/* nng takes the message only when the send succeeds. */
		if (c->step == INGEST_SEND)
			nng_msg_free(nng_aio_get_msg(c->aio));
		snprintf(why, sizeof why, "%s: %s",
		         c->step == INGEST_SEND ? "send" : "receive",
		         nng_strerror(rv));
		nng_mtx_lock(ingest_mtx);
		ingest_error_locked(why);
		ingest_done_locked();
		nng_mtx_unlock(ingest_mtx);
		return;
	}
	if (c->step == INGEST_SEND) {
		c->step = INGEST_RECV;
		nng_recv_aio(c->sock, c->aio);
		return;
	}
	msg = nng_aio_get_msg(c->aio);
	ok = ingest_reply_ok(msg, why, sizeof why);
	nng_msg_free(msg);
	nng_mtx_lock(ingest_mtx);
	if (ok)
		ingest_acked++;
	else
		ingest_error_locked(why);
	nng_mtx_unlock(ingest_mtx);
	ingest_next(c);
}

/*
 * A synthetic environment of about bytes bytes (each variable counted with
 * its "=" and one byte more, as `env | wc -c` counts): the usual variables
 * of a login shell, then padding variables, the last cut to fit.
 */
static json_t *
ingest_env_synthetic(long long bytes)
{
	static const char *base[] = {
		"HOME=/home/bench",
		"LANG=C.UTF-8",
		"LOGNAME=bench",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
		"/bin",
		"PWD=/home/bench",
		"SHELL=/bin/bash",
		"SHLVL=1",
		"TERM=xterm-256color",
		"USER=bench",
	};
	char var[INGEST_PAD_LEN + 1];
	json_t *env = json_array();
	long long left = bytes;
	size_t i;
	int n;

	for (i = 0; i < sizeof base / sizeof base[0]; i++) {
		if ((long long)strlen(base[i]) + 1 > left)
			break;
		json_array_append_new(env, json_string(base[i]));
		left -= (long long)strlen(base[i]) + 1;
	}
	for (i = 0; left > 0; i++) {
		n = snprintf(var, sizeof var, "BENCH_PAD_%zu=", i);
		if (left < n + 1)
			break;
		for (; n < INGEST_PAD_LEN && n + 1 < left; n++)
			var[n] = (char)('a' + n % 26);
		var[n] = '\0';
		json_array_append_new(env, json_string(var));
		left -= n + 1;
	}
	return (env);
}

/* This process's environment, but for variables that are not UTF-8. */
static json_t *
ingest_env_own(void)
{
	json_t *env = json_array(), *s;

	for (char **e = environ; *e != NULL; e++)
		if ((s = json_string(*e)) != NULL)
			json_array_append_new(env, s);
	return (env);
}

/* Build the request prefix: the submit without its key and closing brace. */
static void
ingest_prefix_build(const char *command, long long env_bytes)
{
	json_t *req;
	char *s;

	req = json_pack("{s:i, s:s, s:s, s:s, s:o}", "v", 1, "op", "submit",
	                "shell", command, "cwd", "/", "env",
	                env_bytes >= 0 ? ingest_env_synthetic(env_bytes)
	                               : ingest_env_own());
	if (req == NULL || (s = json_dumps(req, JSON_COMPACT)) == NULL) {
		fprintf(stderr, "bench-ingest: cannot encode the request (is "
		                "--command UTF-8?)\n");
		exit(1);
	}
	json_decref(req);
	ingest_prefix_len = strlen(s) - 1; /* without the closing brace */
	ingest_prefix = s;
	/* Unique across runs against the same jobd, and across processes. */
	snprintf(ingest_keybase, sizeof ingest_keybase, "bench-ingest-%ld-%lld",
	         (long)getpid(), (long long)util_now_ms());
}

static void
ingest_usage(void)
{
	fprintf(stderr,
	        "usage: bench-ingest --socket PATH --conns N "
	        "[--seconds S | --count N]\n"
	        "                    [--env-bytes B] [--command STR]\n");
	exit(2);
}

static long long
ingest_arg(const char *name, const char *s, long long min, long long max)
{
	long long v;

	if (util_parse_int(s, min, max, &v) != 0) {
		fprintf(stderr, "bench-ingest: %s must be %lld to %lld\n", name,
		        min, max);
		exit(2);
	}
	return (v);
}

int
main(int argc, char **argv)
{
	const char *socket = NULL, *command = "true";
	long long conns = 1, seconds = 10, env_bytes = -1, acked, errors;
	struct ingest_conn *c;
	char url[256];
	int64_t t0, t1;
	int rv;

	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];

		if (i + 1 >= argc)
			ingest_usage();
		if (strcmp(opt, "--socket") == 0)
			socket = argv[++i];
		else if (strcmp(opt, "--conns") == 0)
			conns = ingest_arg(opt, argv[++i], 1, INGEST_MAX_CONNS);
		else if (strcmp(opt, "--seconds") == 0)
			seconds = ingest_arg(opt, argv[++i], 1, 86400);
		else if (strcmp(opt, "--count") == 0)
			ingest_count =
			    ingest_arg(opt, argv[++i], 1, 1000000000LL);
		else if (strcmp(opt, "--env-bytes") == 0)
			env_bytes =
			    ingest_arg(opt, argv[++i], 0, INGEST_MAX_ENV_BYTES);
		else if (strcmp(opt, "--command") == 0)
			command = argv[++i];
		else
			ingest_usage();
	}
	if (socket == NULL)
		ingest_usage();
	if (util_socket_url(socket, url, sizeof url) != 0) {
		fprintf(stderr, "bench-ingest: %s: not an ipc socket\n",
		        socket);
		return (2);
	}
	ingest_prefix_build(command, env_bytes);

	if ((rv = nng_mtx_alloc(&ingest_mtx)) != 0 ||
	    (rv = nng_cv_alloc(&ingest_cv, ingest_mtx)) != 0)
		ingest_die("nng_mtx_alloc", rv);
	c = xcalloc((size_t)conns, sizeof *c);
	for (long long i = 0; i < conns; i++) {
		if ((rv = nng_req0_open(&c[i].sock)) != 0)
			ingest_die("nng_req0_open", rv);
		if ((rv = nng_socket_set_ms(c[i].sock, NNG_OPT_REQ_RESENDTIME,
		                            NNG_DURATION_INFINITE)) != 0)
			ingest_die("NNG_OPT_REQ_RESENDTIME", rv);
		if ((rv = nng_dial(c[i].sock, url, NULL, 0)) != 0)
			ingest_die(url, rv);
		if ((rv = nng_aio_alloc(&c[i].aio, ingest_cb, &c[i])) != 0)
			ingest_die("nng_aio_alloc", rv);
		nng_aio_set_timeout(c[i].aio, INGEST_TIMEOUT_MS);
	}

	ingest_active = (int)conns;
	t0 = ingest_now_us();
	for (long long i = 0; i < conns; i++)
		ingest_next(&c[i]);
	if (ingest_count == 0) {
		/* Count only what is acknowledged after the warm-up. */
		nng_msleep(INGEST_WARMUP_MS);
		nng_mtx_lock(ingest_mtx);
		acked = ingest_acked;
		t0 = ingest_now_us();
		nng_mtx_unlock(ingest_mtx);
		nng_msleep((nng_duration)(seconds * 1000));
		nng_mtx_lock(ingest_mtx);
		acked = ingest_acked - acked;
		t1 = ingest_now_us();
		ingest_stop = 1;
		while (ingest_active > 0)
			nng_cv_wait(ingest_cv);
	} else {
		nng_mtx_lock(ingest_mtx);
		while (ingest_active > 0)
			nng_cv_wait(ingest_cv);
		acked = ingest_acked;
		t1 = ingest_end_us;
	}
	errors = ingest_errors;
	nng_mtx_unlock(ingest_mtx);

	if (ingest_first_error != NULL)
		fprintf(stderr,
		        "bench-ingest: %lld failed requests; the first: "
		        "%s\n",
		        errors, ingest_first_error);
	printf("%lld\t%lld\t%.3f\t%.0f\n", acked, errors,
	       (double)(t1 - t0) / 1e6,
	       t1 > t0 ? (double)acked * 1e6 / (double)(t1 - t0) : 0.0);
	fflush(stdout);

	for (long long i = 0; i < conns; i++) {
		nng_aio_free(c[i].aio);
		nng_close(c[i].sock);
	}
	free(c);
	free(ingest_prefix);
	free(ingest_first_error);
	nng_cv_free(ingest_cv);
	nng_mtx_free(ingest_mtx);
	return (0);
}
