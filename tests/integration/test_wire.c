/*
 * jobctl's own SP framing (client/ctl-conn.c, docs/protocol.md "On the
 * wire") against peers that are not quite jobd. The test plays jobd itself:
 * a thread serves a Unix socket in the test's folder, one connection at a
 * time, and checks every request the real jobctl sends (greeting, frame,
 * JSON). Then the real jobd, through the same thread as a relay that counts
 * connections and messages each way: a request jobd parks, and a series of
 * requests on one connection.
 *
 * No thread but the main one calls cmocka: the fake writes what went wrong
 * into its err, which the test checks once the fake has stopped. Every wait
 * of the fake also ends on its stop pipe, so stopping it never hangs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "proto.h"

/* The largest reply jobctl takes (CTL_CONN_MAX_REPLY in ctl-conn.c). */
#define WIRE_MAX_REPLY (256ULL * 1024 * 1024)

/*
 * How long the fake waits for anything: longer than any jobctl run the test
 * allows, so in a passing run the test always stops it first.
 */
#define WIRE_IO_MS (HARNESS_RUN_MS + 10000)

#define WIRE_SUN_PATH (sizeof(((struct sockaddr_un *)0)->sun_path))

struct fake;
/* Serve one accepted connection (nonblocking), the nth of the run. */
typedef void (*fake_serve_fn)(struct fake *, int, int);

/* Bytes relayed one way. */
struct wire_buf {
	unsigned char *p;
	size_t len;
};

struct fake {
	char dir[PATH_MAX];       /* our temporary folder, or "" */
	char path[WIRE_SUN_PATH]; /* the socket jobctl is sent to */
	char jobd[WIRE_SUN_PATH]; /* relay: jobd's socket */
	int lfd;
	int stop[2]; /* a byte in stop[1] ends the thread */
	int note[2]; /* relay: a byte for each chunk relayed */
	int running;
	pthread_t thread;
	fake_serve_fn serve;

	/* What to do, set before fake_start. */
	unsigned char hello[PROTO_SP_HELLO]; /* the greeting sent */
	unsigned char type;                  /* a reply head's type byte */
	uint64_t announce;                   /* its length */
	int drop;    /* fake_serve_drop's way to drop (WIRE_DROP_*) */
	int last_op; /* the op of the last request read (thread only) */

	/* What it saw: under lock while it runs. */
	pthread_mutex_t lock;
	int conns;     /* connections accepted (or left in the backlog) */
	int requests;  /* well-framed requests read */
	char ops[256]; /* their ops, comma-separated */
	char err[512]; /* the first thing that went wrong, or "" */
	struct wire_buf up, down; /* relay: jobctl to jobd, and back */
};

/* A test's state: the fake, and jobd when there is one. */
struct wire {
	struct fake fake;
	struct jobd_inst *inst;
};

static struct wire wire_state;

static int fake_fail(struct fake *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record the first failure; returns -1. */
static int
fake_fail(struct fake *f, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&f->lock);
	if (f->err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(f->err, sizeof f->err, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&f->lock);
	return (-1);
}

static uint64_t
wire_get_be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	while (bytes-- > 0) {
		v = v << 8 | *p++;
	}
	return (v);
}

static void
wire_put_be(unsigned char *p, uint64_t v, int bytes)
{
	while (bytes-- > 0) {
		p[bytes] = v & 0xff;
		v >>= 8;
	}
}

/*
 * Wait until fd is ready for events, by the deadline and unless the fake is
 * told to stop. Returns 0, or -1 (recorded).
 */
static int
fake_poll(struct fake *f, int fd, short events, int64_t deadline)
{
	struct pollfd pfd[2] = {
		{ .fd = fd, .events = events },
		{ .fd = f->stop[0], .events = POLLIN },
	};
	int64_t left;
	int n;

	for (;;) {
		if ((left = deadline - harness_now_ms()) <= 0) {
			return (fake_fail(f, "nothing from jobctl in %d ms",
			                  WIRE_IO_MS));
		}
		n = poll(pfd, 2, (int)left);
		if (n < 0 && errno != EINTR) {
			return (fake_fail(f, "poll: %s", strerror(errno)));
		}
		/* jobctl's bytes or end first: they came before the stop. */
		if (n > 0 && pfd[0].revents != 0) {
			return (0);
		}
		if (n > 0 && pfd[1].revents != 0) {
			return (fake_fail(f, "stopped in the middle of a "
			                     "connection"));
		}
	}
}

/*
 * Read exactly len bytes. Returns 0, 1 at the end of the stream before any
 * byte (if eof_ok), or -1 (recorded).
 */
static int
fake_read(struct fake *f, int fd, void *buf, size_t len, int eof_ok)
{
	int64_t deadline = harness_now_ms() + WIRE_IO_MS;
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		if ((n = read(fd, (char *)buf + off, len - off)) > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == 0 || errno == ECONNRESET) {
			if (eof_ok && off == 0) {
				return (1);
			}
			return (fake_fail(f,
			                  "the connection closed after %zu "
			                  "of %zu bytes",
			                  off, len));
		}
		if (errno != EAGAIN && errno != EINTR) {
			return (fake_fail(f, "read: %s", strerror(errno)));
		}
		if (fake_poll(f, fd, POLLIN, deadline) != 0) {
			return (-1);
		}
	}
	return (0);
}

/* Write all of buf. Returns 0 or -1 (recorded). */
static int
fake_write(struct fake *f, int fd, const void *buf, size_t len)
{
	int64_t deadline = harness_now_ms() + WIRE_IO_MS;
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		if ((n = send(fd, (const char *)buf + off, len - off,
		              MSG_NOSIGNAL)) >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR) {
			return (fake_fail(f, "send: %s", strerror(errno)));
		}
		if (fake_poll(f, fd, POLLOUT, deadline) != 0) {
			return (-1);
		}
	}
	return (0);
}

/* Greet as jobd's REP socket does. */
static int
fake_greet(struct fake *f, int fd)
{
	unsigned char hello[PROTO_SP_HELLO];

	proto_sp_hello(hello, PROTO_SP_REP);
	return (fake_write(f, fd, hello, sizeof hello));
}

/* Append an op name to the list of those seen (under the lock). */
static void
fake_note_op(struct fake *f, const char *name)
{
	size_t len = strlen(f->ops);

	snprintf(f->ops + len, sizeof f->ops - len, "%s%s", len > 0 ? "," : "",
	         name);
}

/*
 * Read the one request of a connection and check it is what jobd's nng
 * would take: the REQ greeting first, then type 1, a length that
 * covers the id and at most PROTO_MAX_MSG of JSON, an id with its top bit
 * set, and a request proto_request_decode accepts. Sets *idp to the id.
 * Returns 0, or -1 (recorded).
 */
static int
fake_request(struct fake *f, int fd, uint32_t *idp)
{
	unsigned char hello[PROTO_SP_HELLO], head[PROTO_SP_HEAD];
	char err[256], *body;
	json_t *req;
	uint64_t len;
	uint32_t id;
	int op, st;

	if (fake_read(f, fd, hello, sizeof hello, 0) != 0) {
		return (-1);
	}
	if (!proto_sp_hello_ok(hello, PROTO_SP_REQ)) {
		return (fake_fail(f,
		                  "jobctl's greeting is not REQ's: "
		                  "%02x %02x %02x %02x %02x %02x "
		                  "%02x %02x",
		                  hello[0], hello[1], hello[2], hello[3],
		                  hello[4], hello[5], hello[6], hello[7]));
	}
	if (fake_read(f, fd, head, sizeof head, 0) != 0) {
		return (-1);
	}
	len = wire_get_be(head + 1, 8);
	id = (uint32_t)wire_get_be(head + 9, 4);
	if (head[0] != 1) {
		return (fake_fail(f, "a request of type %d", head[0]));
	}
	if (len <= 4 || len > PROTO_MAX_MSG + 4) {
		return (fake_fail(f, "a request of length %llu",
		                  (unsigned long long)len));
	}
	if ((id & 0x80000000u) == 0) {
		return (
		    fake_fail(f, "request id 0x%08x without its top bit", id));
	}
	body = malloc(len - 4);
	if (body == NULL) {
		return (fake_fail(f, "out of memory"));
	}
	if (fake_read(f, fd, body, len - 4, 0) != 0) {
		free(body);
		return (-1);
	}
	st = proto_request_decode(body, len - 4, &req, &op, err, sizeof err);
	if (st != PROTO_OK) {
		fake_fail(f, "jobd would refuse '%.*s': %s", (int)(len - 4),
		          body, err);
		free(body);
		return (-1);
	}
	json_decref(req);
	free(body);
	pthread_mutex_lock(&f->lock);
	f->requests++;
	fake_note_op(f, proto_ops[op].name);
	pthread_mutex_unlock(&f->lock);
	f->last_op = op;
	*idp = id;
	return (0);
}

/* Send a reply with request id and JSON text. */
static int
fake_reply(struct fake *f, int fd, uint32_t id, const char *text)
{
	size_t len = strlen(text);
	unsigned char head[PROTO_SP_HEAD];
	int rv;

	head[0] = 1;
	wire_put_be(head + 1, len + 4, 8);
	wire_put_be(head + 9, id, 4);
	if ((rv = fake_write(f, fd, head, sizeof head)) == 0) {
		rv = fake_write(f, fd, text, len);
	}
	return (rv);
}

/*
 * Wait until jobctl closes the connection (it has exited, or given up on
 * it); it must send nothing more. Closing first would make jobctl see a
 * drop and try again, which is not what these peers test.
 */
static void
fake_await_close(struct fake *f, int fd)
{
	unsigned char byte;

	if (fake_read(f, fd, &byte, 1, 1) == 0) {
		fake_fail(f, "jobctl sent more than one request (0x%02x)",
		          byte);
	}
}

/* A peer that greets with f->hello: not jobd's REP socket. */
static void
fake_serve_stranger(struct fake *f, int fd, int n)
{
	uint32_t id;

	(void)n;
	if (fake_write(f, fd, f->hello, sizeof f->hello) == 0 &&
	    fake_request(f, fd, &id) == 0) {
		fake_await_close(f, fd);
	}
}

/* The ping replies of fake_serve_stale: only the last is jobctl's. */
#define WIRE_PING_STALE "{\"ok\":true,\"pid\":1,\"version\":\"stale\"}"
#define WIRE_PING_STALE2                                                       \
	"{\"ok\":false,\"error\":\"internal\",\"message\":\"x\"}"
#define WIRE_PING_RIGHT "{\"ok\":true,\"pid\":2,\"version\":\"right\"}"

/*
 * Two replies that are not to this request (the id before it, and one that
 * differs in a single bit), then the right one.
 */
static void
fake_serve_stale(struct fake *f, int fd, int n)
{
	uint32_t id;

	(void)n;
	if (fake_greet(f, fd) != 0 || fake_request(f, fd, &id) != 0) {
		return;
	}
	if (fake_reply(f, fd, (id - 1) | 0x80000000u, WIRE_PING_STALE) == 0 &&
	    fake_reply(f, fd, id ^ 0x80u, WIRE_PING_STALE2) == 0 &&
	    fake_reply(f, fd, id, WIRE_PING_RIGHT) == 0) {
		fake_await_close(f, fd);
	}
}

/* How fake_serve_drop drops the first connection. */
#define WIRE_DROP_READ    0 /* once the request is read */
#define WIRE_DROP_GREETED 1 /* the same, after greeting */
#define WIRE_DROP_UNREAD  2 /* at once, reading nothing */
#define WIRE_DROP_WAYS    3
#define WIRE_WAIT_DONE                                                         \
	"{\"ok\":true,\"done\":true,\"jobs\":[{\"id\":1,"                      \
	"\"state\":\"succeeded\",\"exit_code\":0}]}"

/* The first connection drops (as f->drop says); the next ones answer. */
static void
fake_serve_drop(struct fake *f, int fd, int n)
{
	uint32_t id;

	if (n == 1) {
		if (f->drop == WIRE_DROP_GREETED && fake_greet(f, fd) != 0) {
			return;
		}
		if (f->drop != WIRE_DROP_UNREAD) {
			(void)fake_request(f, fd, &id);
		}
		return;
	}
	if (fake_greet(f, fd) == 0 && fake_request(f, fd, &id) == 0 &&
	    fake_reply(f, fd, id,
	               f->last_op == PROTO_OP_WAIT ? WIRE_WAIT_DONE
	                                           : WIRE_PING_RIGHT) == 0) {
		fake_await_close(f, fd);
	}
}

/*
 * A reply head of type f->type announcing f->announce bytes, and none of
 * them: jobctl must refuse it from the head alone.
 */
static void
fake_serve_head(struct fake *f, int fd, int n)
{
	unsigned char head[9];
	uint32_t id;

	(void)n;
	head[0] = f->type;
	wire_put_be(head + 1, f->announce, 8);
	if (fake_greet(f, fd) == 0 && fake_request(f, fd, &id) == 0 &&
	    fake_write(f, fd, head, sizeof head) == 0) {
		fake_await_close(f, fd);
	}
}

/* Append len bytes to b, under the lock, and say so on the note pipe. */
static void
fake_relayed(struct fake *f, struct wire_buf *b, const void *buf, size_t len)
{
	unsigned char *p;

	pthread_mutex_lock(&f->lock);
	if ((p = realloc(b->p, b->len + len)) != NULL) {
		memcpy(p + b->len, buf, len);
		b->p = p;
		b->len += len;
	}
	pthread_mutex_unlock(&f->lock);
	if (p == NULL) {
		fake_fail(f, "out of memory");
	}
	/* The pipe full means a note is already waiting: enough. */
	(void)!write(f->note[1], "x", 1);
}

/*
 * Relay a connection to jobd and back, recording what goes each way, until
 * either side closes.
 */
static void
fake_serve_relay(struct fake *f, int cfd, int n)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	unsigned char buf[65536];
	int64_t deadline = harness_now_ms() + WIRE_IO_MS;
	ssize_t got;
	int jfd;

	(void)n;
	memcpy(sun.sun_path, f->jobd, sizeof sun.sun_path);
	if ((jfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(jfd, (struct sockaddr *)&sun, sizeof sun) != 0 ||
	    fcntl(jfd, F_SETFL, O_NONBLOCK) != 0) {
		fake_fail(f, "connect to jobd at %s: %s", f->jobd,
		          strerror(errno));
		goto out;
	}
	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = cfd, .events = POLLIN },
			{ .fd = jfd, .events = POLLIN },
			{ .fd = f->stop[0], .events = POLLIN },
		};
		int64_t left = deadline - harness_now_ms();

		if (left <= 0) {
			fake_fail(f, "relay: nothing ended in %d ms",
			          WIRE_IO_MS);
			break;
		}
		if (poll(pfd, 3, (int)left) < 0) {
			if (errno == EINTR) {
				continue;
			}
			fake_fail(f, "poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents != 0) {
			if ((got = read(cfd, buf, sizeof buf)) < 0 &&
			    (errno == EAGAIN || errno == EINTR)) {
				continue;
			}
			if (got <= 0) {
				break; /* jobctl is done with it */
			}
			fake_relayed(f, &f->up, buf, (size_t)got);
			if (fake_write(f, jfd, buf, (size_t)got) != 0) {
				break;
			}
		} else if (pfd[1].revents != 0) {
			if ((got = read(jfd, buf, sizeof buf)) < 0 &&
			    (errno == EAGAIN || errno == EINTR)) {
				continue;
			}
			if (got <= 0) {
				fake_fail(f, "jobd closed a relayed "
				             "connection");
				break;
			}
			fake_relayed(f, &f->down, buf, (size_t)got);
			if (fake_write(f, cfd, buf, (size_t)got) != 0) {
				break;
			}
		} else if (pfd[2].revents != 0) {
			fake_fail(f, "stopped in the middle of a relayed "
			             "connection");
			break;
		}
	}
out:
	if (jfd >= 0) {
		close(jfd);
	}
}

/*
 * Accept and serve connections one at a time until told to stop; then count
 * the connections still waiting in the backlog, which jobctl made but the
 * fake never served.
 */
static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	int64_t deadline = harness_now_ms() + WIRE_IO_MS;
	int fd, n;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = f->lfd, .events = POLLIN },
			{ .fd = f->stop[0], .events = POLLIN },
		};
		int64_t left = deadline - harness_now_ms();

		if (left <= 0) {
			fake_fail(f, "not stopped within %d ms", WIRE_IO_MS);
			break;
		}
		if (poll(pfd, 2, (int)left) < 0 && errno != EINTR) {
			fake_fail(f, "poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents != 0) {
			break;
		}
		if (pfd[0].revents == 0) {
			continue;
		}
		fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			continue;
		}
		pthread_mutex_lock(&f->lock);
		n = ++f->conns;
		pthread_mutex_unlock(&f->lock);
		f->serve(f, fd, n);
		close(fd);
	}
	/* The listening socket is nonblocking: this ends. */
	while ((fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		pthread_mutex_lock(&f->lock);
		f->conns++;
		pthread_mutex_unlock(&f->lock);
		close(fd);
	}
	return (NULL);
}

/* Listen on f->path and serve it with serve from a thread. */
static void
fake_start(struct fake *f, fake_serve_fn serve)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	assert_false(f->running);
	memcpy(sun.sun_path, f->path, sizeof sun.sun_path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	if (bind(f->lfd, (struct sockaddr *)&sun, sizeof sun) != 0 ||
	    listen(f->lfd, 16) != 0) {
		fail_msg("listen on %s: %s", f->path, strerror(errno));
	}
	assert_int_equal(pipe2(f->stop, O_CLOEXEC), 0);
	assert_int_equal(pipe2(f->note, O_CLOEXEC | O_NONBLOCK), 0);
	pthread_mutex_init(&f->lock, NULL);
	f->serve = serve;
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
	f->running = 1;
}

/*
 * Stop the thread and the socket. What it saw stays, for the test to
 * check; fake_reset forgets it.
 */
static void
fake_stop(struct fake *f)
{
	if (!f->running) {
		return;
	}
	f->running = 0;
	assert_int_equal(write(f->stop[1], "x", 1), 1);
	pthread_join(f->thread, NULL);
	close(f->lfd);
	close(f->stop[0]);
	close(f->stop[1]);
	close(f->note[0]);
	close(f->note[1]);
	unlink(f->path);
	pthread_mutex_destroy(&f->lock);
}

/* Stop the fake and fail the test if it saw anything wrong. */
static void
fake_stop_clean(struct fake *f)
{
	fake_stop(f);
	if (f->err[0] != '\0') {
		fail_msg("the fake jobd: %s", f->err);
	}
}

/* Forget what the last run saw, to start another on the same path. */
static void
fake_reset(struct fake *f)
{
	assert_false(f->running);
	free(f->up.p);
	free(f->down.p);
	memset(&f->up, 0, sizeof f->up);
	memset(&f->down, 0, sizeof f->down);
	f->conns = f->requests = 0;
	f->ops[0] = f->err[0] = '\0';
	memset(f->hello, 0, sizeof f->hello);
	f->type = 0;
	f->announce = 0;
	f->drop = 0;
}

/* Set the socket path to dir/fake.sock. */
static void
fake_init(struct fake *f, const char *dir)
{
	if ((size_t)snprintf(f->path, sizeof f->path, "%s/fake.sock", dir) >=
	    sizeof f->path) {
		fail_msg("%s: too long for a socket", dir);
	}
}

/* A fresh folder of our own for the fake's socket. */
static int
wire_setup(void **state)
{
	struct wire *w = &wire_state;
	const char *tmp = getenv("TMPDIR");

	memset(w, 0, sizeof *w);
	/* A socket path is at most 107 bytes. */
	if (tmp == NULL || *tmp != '/' || strlen(tmp) > 48) {
		tmp = "/tmp";
	}
	snprintf(w->fake.dir, sizeof w->fake.dir, "%s/jobd-wire.XXXXXX", tmp);
	if (mkdtemp(w->fake.dir) == NULL) {
		fail_msg("mkdtemp %s: %s", w->fake.dir, strerror(errno));
	}
	fake_init(&w->fake, w->fake.dir);
	*state = w;
	return (0);
}

static int
wire_teardown(void **state)
{
	struct wire *w = *state;

	fake_stop(&w->fake);
	fake_reset(&w->fake);
	if (w->fake.dir[0] != '\0' && rmdir(w->fake.dir) != 0) {
		harness_msg("rmdir %s: %s\n", w->fake.dir, strerror(errno));
		return (-1);
	}
	return (0);
}

/* A real jobd, and the fake's socket in its folder to relay to it. */
static int
wire_setup_jobd(void **state)
{
	struct wire *w = &wire_state;
	void *inst;

	memset(w, 0, sizeof *w);
	harness_setup(&inst);
	w->inst = inst;
	fake_init(&w->fake, w->inst->dir);
	snprintf(w->fake.jobd, sizeof w->fake.jobd, "%s",
	         w->inst->url + strlen("ipc://"));
	*state = w;
	return (0);
}

static int
wire_teardown_jobd(void **state)
{
	struct wire *w = *state;
	void *inst = w->inst;

	fake_stop(&w->fake);
	fake_reset(&w->fake);
	return (harness_teardown(&inst));
}

/*
 * Run "jobctl --socket FAKE ARGS..." (NULL-terminated) to its end: returns
 * its exit code, and its stdout and stderr (the caller frees them).
 */
static int
wire_jobctl(struct fake *f, char **out, char **err, ...)
{
	const char *args[16] = { "--socket", f->path };
	size_t n = 2;
	va_list ap;

	va_start(ap, err);
	while ((args[n] = va_arg(ap, const char *)) != NULL) {
		assert_true(++n < sizeof args / sizeof args[0]);
	}
	va_end(ap);
	return (harness_jobctl_run(NULL, NULL, args, out, err));
}

/* The same, started: the caller finishes p. */
static void
wire_jobctl_start(struct fake *f, struct harness_proc *p, const char *cmd,
                  const char *arg1, const char *arg2)
{
	const char *argv[] = { JOBCTL_PATH, "--socket", f->path, cmd,
		               arg1,        arg2,       NULL };

	harness_proc_start(p, argv, NULL);
}

/*
 * jobctl (run against what) exited 70, saying f's socket does not speak
 * jobd's protocol, after one request on one connection: a protocol error
 * is not a drop, so no second try.
 */
static void
assert_not_jobd(struct fake *f, const char *what, int code, const char *out,
                const char *err)
{
	if (code != 70 || out[0] != '\0' ||
	    strstr(err, "does not speak jobd's protocol") == NULL ||
	    strstr(err, f->path) == NULL) {
		fail_msg("%s: jobctl exited %d; stdout '%s', stderr '%s'", what,
		         code, out, err);
	}
	if (f->conns != 1 || f->requests != 1) {
		fail_msg("%s: %d requests on %d connections", what, f->requests,
		         f->conns);
	}
}

/* A REQ socket, or not SP at all, greets jobctl: a protocol error. */
static void
test_stranger(void **state)
{
	static const struct {
		const unsigned char hello[PROTO_SP_HELLO];
		const char *what;
	} peers[] = {
		{ { 0x00, 'S', 'P', 0x00, 0x00, 0x30, 0x00, 0x00 }, "REQ" },
		{ { 0x00, 'S', 'P', 0x00, 0x00, 0x20, 0x00, 0x00 }, "PUB" },
		{ { 0x00, 'S', 'P', 0x00, 0x00, 0x31, 0x00, 0x01 },
		  "REP, reserved byte set" },
		{ { 'H', 'T', 'T', 'P', '/', '1', '.', '1' }, "garbage" },
	};
	static const char *const cmds[][2] = {
		{ "ping", NULL },
		{ "status", "1" },
	};
	struct wire *w = *state;
	struct fake *f = &w->fake;
	char *out, *err, what[64];
	int code;

	for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++) {
		for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
			fake_reset(f);
			memcpy(f->hello, peers[i].hello, sizeof f->hello);
			fake_start(f, fake_serve_stranger);
			code = wire_jobctl(f, &out, &err, cmds[c][0],
			                   cmds[c][1], NULL);
			fake_stop_clean(f);
			snprintf(what, sizeof what, "%s peer, %s",
			         peers[i].what, cmds[c][0]);
			assert_not_jobd(f, what, code, out, err);
			free(out);
			free(err);
			assert_string_equal(f->ops, cmds[c][0]);
		}
	}
}

/* Replies to other requests are skipped; the right one is printed. */
static void
test_stale_replies(void **state)
{
	struct wire *w = *state;
	struct fake *f = &w->fake;
	char *out, *err;
	int code;

	fake_start(f, fake_serve_stale);
	code = wire_jobctl(f, &out, &err, "ping", NULL);
	fake_stop_clean(f);
	if (code != 0 || strcmp(out, "jobd right (pid 2) is up\n") != 0) {
		fail_msg("jobctl ping exited %d; stdout '%s', stderr '%s'",
		         code, out, err);
	}
	assert_string_equal(err, "");
	free(out);
	free(err);
	assert_int_equal(f->conns, 1);
	assert_int_equal(f->requests, 1);
	assert_string_equal(f->ops, "ping");
}

/*
 * The connection drops before the reply (before or after the greeting, or
 * before the request is read): jobctl sends the request once more on a new
 * one. wait does too, by its own way (CTL_CONN_RESUME: a pause, then again).
 */
static void
test_drop_resend(void **state)
{
	static const struct {
		const char *cmd, *arg, *out;
	} cmds[] = {
		{ "ping", NULL, "jobd right (pid 2) is up\n" },
		{ "wait", "1", "succeeded" },
	};
	struct wire *w = *state;
	struct fake *f = &w->fake;
	char *out, *err, want[64];
	int code;

	for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
		for (int way = 0; way < WIRE_DROP_WAYS; way++) {
			fake_reset(f);
			f->drop = way;
			fake_start(f, fake_serve_drop);
			code = wire_jobctl(f, &out, &err, cmds[c].cmd,
			                   cmds[c].arg, NULL);
			fake_stop_clean(f);
			if (code != 0 || strstr(out, cmds[c].out) == NULL ||
			    err[0] != '\0') {
				fail_msg("drop %d: jobctl %s exited %d; stdout "
				         "'%s', stderr '%s'",
				         way, cmds[c].cmd, code, out, err);
			}
			free(out);
			free(err);
			snprintf(want, sizeof want, "%s%s%s",
			         way == WIRE_DROP_UNREAD ? "" : cmds[c].cmd,
			         way == WIRE_DROP_UNREAD ? "" : ",",
			         cmds[c].cmd);
			if (f->conns != 2 || strcmp(f->ops, want) != 0) {
				fail_msg("drop %d: jobctl %s: requests '%s' on "
				         "%d connections",
				         way, cmds[c].cmd, f->ops, f->conns);
			}
		}
	}
}

/*
 * A reply head jobctl must refuse without reading on: longer than it takes
 * (one byte over, and lengths whose +1 would wrap), shorter than a request
 * id, or not a message at all.
 */
static void
test_bad_reply_head(void **state)
{
	static const struct {
		unsigned char type;
		uint64_t len;
	} heads[] = {
		{ 1, WIRE_MAX_REPLY + 1 },
		{ 1, 1ULL << 40 },
		{ 1, 1ULL << 63 },
		{ 1, UINT64_MAX },
		{ 1, 0 },
		{ 1, 3 },
		{ 0, 40 },
		{ 2, 40 },
	};
	struct wire *w = *state;
	struct fake *f = &w->fake;
	char *out, *err, what[64];
	int code;

	for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
		fake_reset(f);
		f->type = heads[i].type;
		f->announce = heads[i].len;
		fake_start(f, fake_serve_head);
		code = wire_jobctl(f, &out, &err, "ping", NULL);
		fake_stop_clean(f);
		snprintf(what, sizeof what, "a head of type %d, length %llu",
		         heads[i].type, (unsigned long long)heads[i].len);
		assert_not_jobd(f, what, code, out, err);
		free(out);
		free(err);
	}
}

/*
 * Count the complete messages in an SP stream as relayed (greeting first),
 * checking each is well framed; with ops, append each one's op (requests).
 * Returns the count, or -1 (saying why) if it is not well formed.
 */
static int
wire_count(const struct wire_buf *b, unsigned proto, char *ops, size_t opslen)
{
	size_t off = PROTO_SP_HELLO;
	uint64_t len;
	json_t *req;
	char err[256];
	int n = 0, op;

	if (ops != NULL) {
		ops[0] = '\0';
	}
	if (b->len < PROTO_SP_HELLO) {
		return (0);
	}
	if (!proto_sp_hello_ok(b->p, proto)) {
		harness_msg("not the greeting of protocol 0x%04x\n", proto);
		return (-1);
	}
	while (b->len - off >= 9) {
		len = wire_get_be(b->p + off + 1, 8);
		if (b->p[off] != 1 || len < 4 || len > WIRE_MAX_REPLY) {
			harness_msg("a bad head at %zu: type %d length "
			            "%llu\n",
			            off, b->p[off], (unsigned long long)len);
			return (-1);
		}
		if (b->len - off - 9 < len) {
			break;
		}
		if ((b->p[off + 9] & 0x80) == 0) {
			harness_msg("a request id without its top bit\n");
			return (-1);
		}
		if (ops != NULL) {
			if (proto_request_decode(b->p + off + 13, len - 4, &req,
			                         &op, err,
			                         sizeof err) != PROTO_OK) {
				harness_msg("a bad request: %s\n", err);
				return (-1);
			}
			json_decref(req);
			snprintf(ops + strlen(ops), opslen - strlen(ops),
			         "%s%s", n > 0 ? "," : "", proto_ops[op].name);
		}
		off += 9 + len;
		n++;
	}
	return (n);
}

/*
 * Wait until the relay has passed n complete requests to jobd. Returns 0,
 * or -1 after HARNESS_EVENT_MS.
 */
static int
wire_await_requests(struct fake *f, int n)
{
	int64_t deadline = harness_now_ms() + HARNESS_EVENT_MS;
	struct pollfd pfd = { .fd = f->note[0], .events = POLLIN };
	int64_t left;
	char drain[64];
	int got;

	for (;;) {
		/* Drained before counting: a note after it means news. */
		while (read(f->note[0], drain, sizeof drain) > 0) {
			continue;
		}
		pthread_mutex_lock(&f->lock);
		got = wire_count(&f->up, PROTO_SP_REQ, NULL, 0);
		pthread_mutex_unlock(&f->lock);
		if (got < 0) {
			return (-1);
		}
		if (got >= n) {
			return (0);
		}
		if ((left = deadline - harness_now_ms()) <= 0 ||
		    poll(&pfd, 1, (int)left) == 0) {
			return (-1);
		}
	}
}

/* Replies jobd has sent through the relay so far. */
static int
wire_replies(struct fake *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = wire_count(&f->down, PROTO_SP_REP, NULL, 0);
	pthread_mutex_unlock(&f->lock);
	return (n);
}

/*
 * What went through the relay: one connection, a reply to each request,
 * and requests for op each, then (unless last is NULL) one for last.
 * Returns the number of requests.
 */
static int
assert_relayed(struct fake *f, const char *each, const char *last)
{
	char seen[512], copy[512], *op, *next;
	int n, replies;

	n = wire_count(&f->up, PROTO_SP_REQ, seen, sizeof seen);
	replies = wire_count(&f->down, PROTO_SP_REP, NULL, 0);
	if (f->conns != 1 || n < 1 || n != replies) {
		fail_msg("%d connections, requests '%s', %d replies", f->conns,
		         seen, replies);
	}
	snprintf(copy, sizeof copy, "%s", seen);
	op = copy;
	for (int i = 0; i < n; i++, op = next) {
		next = op + strcspn(op, ",");
		if (*next == ',') {
			*next++ = '\0';
		}
		if (strcmp(op, last != NULL && i == n - 1 ? last : each) != 0 ||
		    (last != NULL && n < 2)) {
			fail_msg("requests relayed: '%s', expected %s each%s%s",
			         seen, each, last != NULL ? " then " : "",
			         last != NULL ? last : "");
		}
	}
	return (n);
}

/*
 * wait parks at jobd until the job ends; with --timeout, its done:false
 * reply is followed by a status request on the same connection.
 */
static void
test_jobd_wait(void **state)
{
	struct wire *w = *state;
	struct fake *f = &w->fake;
	struct harness_proc p;
	char idbuf[24], *out, *err;
	int64_t id;
	json_t *job;
	int code;

	id = harness_blocker(w->inst);
	HARNESS_ID(idbuf, id);

	fake_start(f, fake_serve_relay);
	code = wire_jobctl(f, &out, &err, "wait", idbuf, "--timeout", "100ms",
	                   NULL);
	fake_stop_clean(f);
	if (code != 124 || strstr(err, "timed out waiting for job") == NULL) {
		fail_msg("wait --timeout exited %d; stdout '%s', stderr '%s'",
		         code, out, err);
	}
	free(out);
	free(err);
	/* A second wait if jobd's deadline came a hair before ours. */
	(void)assert_relayed(f, "wait", "status");

	fake_reset(f);
	fake_start(f, fake_serve_relay);
	wire_jobctl_start(f, &p, "--json", "wait", idbuf);
	if (wire_await_requests(f, 1) != 0) {
		harness_gate_release(w->inst);
		(void)harness_proc_finish(&p, HARNESS_RUN_MS);
		fail_msg("wait: no request relayed; stderr '%s'", p.err);
	}
	/* The job cannot end before the gate opens: nothing to say yet. */
	assert_int_equal(wire_replies(f), 0);
	harness_gate_release(w->inst);
	code = harness_proc_finish(&p, HARNESS_RUN_MS);
	fake_stop_clean(f);
	if (code != 0) {
		fail_msg("wait exited %d; stdout '%s', stderr '%s'", code,
		         p.out, p.err);
	}
	job = harness_json(p.out);
	harness_assert_int(job, "id", id);
	harness_assert_str(job, "state", "succeeded");
	json_decref(job);
	harness_proc_free(&p);
	assert_int_equal(assert_relayed(f, "wait", NULL), 1);
}

/*
 * logs --follow asks again after each chunk, on the same connection, and
 * each ask past the output so far parks until there is more.
 */
static void
test_jobd_follow(void **state)
{
	struct wire *w = *state;
	struct fake *f = &w->fake;
	struct harness_proc p;
	static const char *const lines[] = { "one\n", "one\ntwo\n" };
	const char *gate = harness_gate_cmd(w->inst);
	char cmd[2 * PATH_MAX + 128], idbuf[24];
	int64_t id;
	int code, n;

	snprintf(cmd, sizeof cmd, "echo one; %s; echo two; %s; echo three",
	         gate, gate);
	id = harness_submit(w->inst, "-c", cmd, NULL);
	fake_start(f, fake_serve_relay);
	wire_jobctl_start(f, &p, "logs", HARNESS_ID(idbuf, id), "--follow");
	/* Each line printed before the job can write the next. */
	for (int line = 0; line < 2; line++) {
		if (harness_proc_await_output(&p, lines[line],
		                              HARNESS_EVENT_MS) != 0) {
			harness_gate_release(w->inst);
			harness_gate_release(w->inst);
			(void)harness_proc_finish(&p, HARNESS_RUN_MS);
			fail_msg("logs --follow printed '%s'; stderr '%s'",
			         p.out, p.err);
		}
		harness_gate_release(w->inst);
	}
	code = harness_proc_finish(&p, HARNESS_RUN_MS);
	fake_stop_clean(f);
	if (code != 0 || strcmp(p.out, "one\ntwo\nthree\n") != 0) {
		fail_msg("logs --follow exited %d; stdout '%s', stderr '%s'",
		         code, p.out, p.err);
	}
	harness_proc_free(&p);
	/* At least one per line, as the lines came one at a time. */
	if ((n = assert_relayed(f, "logs", NULL)) < 3) {
		fail_msg("%d requests for 3 lines", n);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, wire_setup, wire_teardown)
		T(test_stranger),    T(test_stale_replies),
		T(test_drop_resend), T(test_bad_reply_head),
#undef T
#define T(f)                                                                   \
	cmocka_unit_test_setup_teardown(f, wire_setup_jobd, wire_teardown_jobd)
		T(test_jobd_wait),   T(test_jobd_follow),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
