/*
 * The commands: one entry per operation in ctl_cmds, which is built from
 * proto-ops.def, so an operation without a client entry does not compile.
 * An entry turns its arguments into a request and prints the reply. The
 * steps they share are here too: option parsing, job ids, the round trip
 * (every request is checked against the operations table before it is sent,
 * every reply for its "ok" before a command looks at it), and the checks on
 * job objects that output.c relies on.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/random.h>

#include "ctl.h"
#include "log.h"
#include "util.h"

/* The options every command takes, and room for a command's own. */
#define CTL_OPT_HELP     'H'
#define CTL_OPT_JSON     'J'
#define CTL_LONGOPTS_MAX 24

/* Bytes of randomness in the key of a submit without --key. */
#define CTL_KEY_BYTES 16

/* PROTO_DURATION_MAX in words, for a usage error. */
#define CTL_DURATION_MAX "104249991d"

/* list without --limit; its help says so. */
#define CTL_LIST_LIMIT 100

static const struct option ctl_longopts_common[] = {
	{ "help", no_argument, NULL, CTL_OPT_HELP },
	{ "json", no_argument, NULL, CTL_OPT_JSON },
	{ NULL, 0, NULL, 0 },
};
#define CTL_NCOMMON (sizeof ctl_longopts_common / sizeof ctl_longopts_common[0])

/* The command's long options followed by the common ones, into opts. */
static void
ctl_cmd_longopts(const struct ctl_cmd *cmd, struct option *opts)
{
	const struct option *o;
	size_t n = 0;

	for (o = cmd->longopts; o != NULL && o->name != NULL; o++) {
		if (n == CTL_LONGOPTS_MAX - CTL_NCOMMON)
			fatalx("too many options for one command");
		opts[n++] = *o;
	}
	memcpy(opts + n, ctl_longopts_common, sizeof ctl_longopts_common);
}

/*
 * Parse argv (argv[0] is the command's name) into args; --json sets
 * ctx->json, --help args->help (and nothing else is checked). Returns 0, or
 * says what is wrong and returns CTL_EXIT_USAGE.
 */
static int
ctl_cmd_parse(struct ctl_ctx *ctx, int argc, char **argv, struct ctl_args *args)
{
	const struct ctl_cmd *cmd = ctl_cmds[ctx->op];
	struct option longopts[CTL_LONGOPTS_MAX];
	const char *lastarg = NULL, *optstring;
	char prog[64];
	int ch;

	ctl_cmd_longopts(cmd, longopts);
	optstring = cmd->optstring != NULL ? cmd->optstring : "";
	/* getopt's messages then read "jobctl: status: ...". */
	snprintf(prog, sizeof prog, "jobctl: %s", proto_ops[ctx->op].name);
	argv[0] = prog;
	optind = 0; /* a full reset: main already ran getopt */
	while ((ch = getopt_long(argc, argv, optstring, longopts, NULL)) !=
	       -1) {
		if (ch == '?' || ch < 0 || ch > UCHAR_MAX) {
			ctl_usage_command(stderr, ctx->op, 0);
			return (CTL_EXIT_USAGE);
		}
		if (ch == CTL_OPT_HELP) {
			args->help = 1;
			return (CTL_EXIT_OK);
		}
		if (ch == CTL_OPT_JSON)
			ctx->json = 1;
		/* A value given twice: which one was meant? */
		if (optarg != NULL && args->count[ch] > 0)
			return (ctl_usage_error(
			    ctx->op,
			    "an option is given twice (again with '%s'); give "
			    "it once",
			    optarg));
		args->opts[ch] = optarg != NULL ? optarg : "";
		args->count[ch]++;
		lastarg = optarg;
	}
	/* The "--" before argv[optind] may be an option's argument. */
	args->dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0 &&
	                 argv[optind - 1] != lastarg;
	args->argc = argc - optind;
	args->argv = argv + optind;
	if (args->argc < cmd->minargs)
		return (ctl_usage_error(ctx->op, "missing arguments"));
	if (cmd->maxargs >= 0 && args->argc > cmd->maxargs)
		return (ctl_usage_error(ctx->op, "unexpected argument '%s'",
		                        args->argv[cmd->maxargs]));
	return (CTL_EXIT_OK);
}

/* Run the command ctx->op with its words in argv; returns the exit code. */
int
ctl_cmd_run(struct ctl_ctx *ctx, int argc, char **argv)
{
	struct ctl_args args;
	int rv;

	memset(&args, 0, sizeof args);
	if ((rv = ctl_cmd_parse(ctx, argc, argv, &args)) != 0)
		return (rv);
	if (args.help) {
		ctl_usage_command(stdout, ctx->op, 1);
		return (CTL_EXIT_OK);
	}
	return (ctl_cmds[ctx->op]->exec(ctx, &args));
}

/*
 * Check req against the operations table, as jobd will, so that a value out
 * of range is a usage error here rather than a refusal there.
 */
static int
ctl_request_check(struct ctl_ctx *ctx, const char *buf, size_t len)
{
	json_t *copy;
	char err[256];
	int op;

	if (len > PROTO_MAX_MSG)
		return (ctl_usage_error(
		    ctx->op, "the request is %zu bytes; jobd takes at most %d",
		    len, PROTO_MAX_MSG));
	if (proto_request_decode(buf, len, &copy, &op, err, sizeof err) !=
	    PROTO_OK)
		return (ctl_usage_error(ctx->op, "%s", err));
	json_decref(copy);
	return (CTL_EXIT_OK);
}

/* Make the connection on the first request (it dials when it sends). */
static int
ctl_connect(struct ctl_ctx *ctx)
{
	char url[CTL_URL_MAX];
	int rv;

	if (ctx->conn != NULL)
		return (CTL_EXIT_OK);
	if ((rv = ctl_socket_url(ctx->socket, url, sizeof url)) != 0)
		return (rv);
	ctx->conn = ctl_conn_new(url);
	return (CTL_EXIT_OK);
}

/* Does jobd say ok? If not, says why and returns the exit code. */
static int
ctl_reply_check(json_t *reply)
{
	char msg[512];

	/* proto_reply_status says bad_request for a malformed reply too. */
	if (!json_is_object(reply) ||
	    !json_is_boolean(json_object_get(reply, "ok"))) {
		output_error("malformed reply from jobd: no \"ok\"");
		return (CTL_EXIT_PROTOCOL);
	}
	if (proto_reply_status(reply, msg, sizeof msg) != PROTO_OK) {
		output_error("%s", msg);
		return (CTL_EXIT_ERROR);
	}
	return (CTL_EXIT_OK);
}

/*
 * Send req (the caller keeps it) with ctl_conn_request's flags and wait up
 * to timeout_ms for the reply. Returns 0 and sets *replyp (the caller owns
 * it) if jobd says ok; CTL_AGAIN as ctl_conn_request does; otherwise says
 * why and returns the exit code.
 */
static int
ctl_call_flags(struct ctl_ctx *ctx, json_t *req, int timeout_ms, int flags,
               json_t **replyp)
{
	json_t *reply = NULL;
	char *buf;
	size_t len;
	int rv;

	if ((buf = json_dumps(req, JSON_COMPACT)) == NULL)
		fatalx("cannot encode a request");
	len = strlen(buf);
	if ((rv = ctl_request_check(ctx, buf, len)) == 0 &&
	    (rv = ctl_connect(ctx)) == 0)
		rv = ctl_conn_request(ctx->conn, buf, len, timeout_ms, flags,
		                      &reply);
	free(buf);
	if (rv == 0 && (rv = ctl_reply_check(reply)) != 0)
		json_decref(reply);
	if (rv == 0)
		*replyp = reply;
	return (rv);
}

/* ctl_call_flags without flags: a failure is a failure. */
static int
ctl_call(struct ctl_ctx *ctx, json_t *req, int timeout_ms, json_t **replyp)
{
	return (ctl_call_flags(ctx, req, timeout_ms, 0, replyp));
}

/*
 * The pause before the next try: ctx->backoff_ms, doubled for the time
 * after, but never past end (monotonic ms).
 */
static void
ctl_backoff(struct ctl_ctx *ctx, int64_t end)
{
	int64_t ms = end - util_mono_ms();
	struct timespec ts;

	if (ms > ctx->backoff_ms)
		ms = ctx->backoff_ms;
	ctx->backoff_ms = ctx->backoff_ms * 2 > CTL_BACKOFF_LAST_MS
	                      ? CTL_BACKOFF_LAST_MS
	                      : ctx->backoff_ms * 2;
	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		continue;
}

/*
 * ctl_call for a request jobd may park (wait, logs --follow), which survives
 * a jobd restart: when jobd cannot be reached, the connection drops or jobd
 * answers shutting_down, this pauses briefly and returns CTL_AGAIN, and the
 * caller brings req up to date (what is left of its timeout, the offset
 * reached) and calls again. It does so for ctx->reconnect_ms from the first
 * failure in a row, and not past until (monotonic ms; 0: no limit); then
 * one last try, which reports its failure as ctl_call does. jobctl says
 * nothing about a reconnection that works: scripts read its stderr.
 */
static int
ctl_call_resume(struct ctl_ctx *ctx, json_t *req, int64_t until,
                json_t **replyp)
{
	int flags = CTL_CONN_RESUME, last = ctx->last_try;
	int64_t now, end;
	int rv;

	if (ctx->reconnect_ms == 0 || last)
		flags = 0;
	rv = ctl_call_flags(ctx, req, CTL_RECV_PARK_MS, flags, replyp);
	if (rv != CTL_AGAIN) {
		if (rv != CTL_EXIT_OK && last &&
		    util_mono_ms() >= ctx->outage_end)
			output_error("jobd did not come back within %lld s "
			             "(JOBCTL_RECONNECT_S)",
			             (long long)(ctx->reconnect_ms / 1000));
		ctx->outage_end = 0;
		ctx->last_try = 0;
		return (rv);
	}
	now = util_mono_ms();
	if (ctx->outage_end == 0) {
		ctx->outage_end = now + ctx->reconnect_ms;
		ctx->backoff_ms = CTL_BACKOFF_FIRST_MS;
	}
	end = until > 0 && until < ctx->outage_end ? until : ctx->outage_end;
	if (now >= end)
		ctx->last_try = 1;
	else
		ctl_backoff(ctx, end);
	return (CTL_AGAIN);
}

/*
 * How long wait and logs --follow try to reach jobd again: JOBCTL_RECONNECT_S
 * seconds, if set and not empty, else CTL_RECONNECT_S.
 */
static int
ctl_reconnect_setup(struct ctl_ctx *ctx)
{
	const char *env = getenv("JOBCTL_RECONNECT_S");
	long long s = CTL_RECONNECT_S;

	if (env != NULL && *env != '\0' &&
	    util_parse_int(env, 0, CTL_RECONNECT_MAX, &s) != 0)
		return (ctl_usage_error(ctx->op,
		                        "JOBCTL_RECONNECT_S: '%s' is not a "
		                        "number of seconds from 0 to %d",
		                        env, CTL_RECONNECT_MAX));
	ctx->reconnect_ms = s * 1000;
	return (CTL_EXIT_OK);
}

/*
 * reply[key] if it has the type (JSON_TRUE stands for either boolean);
 * otherwise says the reply is malformed and returns NULL.
 */
static json_t *
ctl_reply_get(json_t *reply, const char *key, json_type type)
{
	json_t *v = json_object_get(reply, key);

	if (v != NULL && (json_typeof(v) == type ||
	                  (type == JSON_TRUE && json_is_boolean(v))))
		return (v);
	output_error(
	    "malformed reply from jobd: \"%s\" missing or of the wrong type",
	    key);
	return (NULL);
}

/* A job has at least an id and a state: what output.c relies on. */
static int
ctl_job_check(json_t *job)
{
	json_t *id = json_object_get(job, "id");

	if (json_is_object(job) && json_is_integer(id) &&
	    json_integer_value(id) >= 1 &&
	    json_is_string(json_object_get(job, "state")))
		return (0);
	output_error(
	    "malformed reply from jobd: a job without an id or a state");
	return (-1);
}

static long long
ctl_job_id(json_t *job)
{
	return (json_integer_value(json_object_get(job, "id")));
}

/* reply["job"], checked; NULL after saying why. */
static json_t *
ctl_reply_job(json_t *reply)
{
	json_t *job = ctl_reply_get(reply, "job", JSON_OBJECT);

	return (job != NULL && ctl_job_check(job) == 0 ? job : NULL);
}

/*
 * reply["jobs"], checked: an array of at least n jobs. An array id given
 * among n ids stands for all its tasks, so there may be more.
 */
static json_t *
ctl_reply_jobs(json_t *reply, int n)
{
	json_t *jobs, *job;
	size_t i;

	if ((jobs = ctl_reply_get(reply, "jobs", JSON_ARRAY)) == NULL)
		return (NULL);
	if (n > 0 && json_array_size(jobs) < (size_t)n) {
		output_error("malformed reply from jobd: %zu jobs for %d ids",
		             json_array_size(jobs), n);
		return (NULL);
	}
	json_array_foreach(jobs, i, job)
	{
		if (ctl_job_check(job) != 0)
			return (NULL);
	}
	return (jobs);
}

/* Several jobs: a table, or a JSON array. */
static void
ctl_print_jobs(struct ctl_ctx *ctx, json_t *jobs)
{
	if (ctx->json)
		output_json(jobs);
	else
		output_jobs(jobs);
}

/*
 * Jobs as status prints them, for the ids asked: one job asked by its own
 * id as a block (JSON: the object); otherwise, an array's id among them, a
 * table (JSON: an array), however many jobs come back.
 */
static void
ctl_print_status(struct ctl_ctx *ctx, json_t *jobs, json_t *ids)
{
	if (json_array_size(ids) != 1 || json_array_size(jobs) != 1 ||
	    ctl_job_id(json_array_get(jobs, 0)) !=
	        json_integer_value(json_array_get(ids, 0)))
		ctl_print_jobs(ctx, jobs);
	else if (ctx->json)
		output_json(json_array_get(jobs, 0));
	else
		output_job(json_array_get(jobs, 0));
}

/* opt's value arg as a whole number in [min, max] into *np. */
static int
ctl_opt_int(struct ctl_ctx *ctx, const char *opt, const char *arg,
            long long min, long long max, long long *np)
{
	if (util_parse_int(arg, min, max, np) != 0)
		return (ctl_usage_error(
		    ctx->op, "%s: '%s' is not a number from %lld to %lld", opt,
		    arg, min, max));
	return (CTL_EXIT_OK);
}

/*
 * opt's value arg as a duration into *msp, in [min, max] ms; range says
 * which in words ("at most 1d").
 */
static int
ctl_opt_duration(struct ctl_ctx *ctx, const char *opt, const char *arg,
                 long long min, long long max, const char *range,
                 long long *msp)
{
	long long ms;

	if (util_parse_duration_ms(arg, &ms) != 0)
		return (ctl_usage_error(ctx->op,
		                        "%s: '%s' is not a duration "
		                        "(90s, 5m, 2h, 1d, 500ms, 1h30m)",
		                        opt, arg));
	if (ms < min || ms > max)
		return (ctl_usage_error(ctx->op, "%s: '%s' must be %s", opt,
		                        arg, range));
	*msp = ms;
	return (CTL_EXIT_OK);
}

/* opt's value arg as a queue name. */
static int
ctl_opt_queue(struct ctl_ctx *ctx, const char *opt, const char *arg)
{
	if (proto_queue_name_ok(arg))
		return (CTL_EXIT_OK);
	return (ctl_usage_error(ctx->op, "%s: '%s': " PROTO_QUEUE_NAME_RULE,
	                        opt, arg));
}

/* A job id from the command line. */
static int
ctl_id_parse(struct ctl_ctx *ctx, const char *arg, long long *idp)
{
	if (util_parse_int(arg, 1, INT64_MAX, idp) != 0)
		return (ctl_usage_error(ctx->op, "'%s' is not a job id", arg));
	return (CTL_EXIT_OK);
}

/* A new request for ctx->op with every argument as a job id in "ids". */
static int
ctl_ids_request(struct ctl_ctx *ctx, struct ctl_args *args, json_t **reqp)
{
	json_t *ids = json_array();
	long long id;
	int rv;

	for (int i = 0; i < args->argc; i++) {
		if ((rv = ctl_id_parse(ctx, args->argv[i], &id)) != 0) {
			json_decref(ids);
			return (rv);
		}
		json_array_append_new(ids, json_integer(id));
	}
	*reqp = proto_request_new(ctx->op);
	json_object_set_new(*reqp, "ids", ids);
	return (CTL_EXIT_OK);
}

/*
 * Set req[key] to the string value; if it is not UTF-8 (JSON cannot carry
 * it), a usage error about what.
 */
static int
ctl_set_str(struct ctl_ctx *ctx, json_t *req, const char *key,
            const char *value, const char *what)
{
	json_t *s;

	if ((s = json_string(value)) == NULL)
		return (
		    ctl_usage_error(ctx->op, "%s is not valid UTF-8", what));
	json_object_set_new(req, key, s);
	return (CTL_EXIT_OK);
}

/*
 * Set req[key] to an array of the n strings in v (n < 0: up to a NULL).
 * Returns -1, or the index of a string that is not UTF-8 (req unchanged).
 */
static int
ctl_set_strings(json_t *req, const char *key, char **v, int n)
{
	json_t *arr = json_array(), *s;

	for (int i = 0; n < 0 ? v[i] != NULL : i < n; i++) {
		if ((s = json_string(v[i])) == NULL) {
			json_decref(arr);
			return (i);
		}
		json_array_append_new(arr, s);
	}
	json_object_set_new(req, key, arr);
	return (-1);
}

/*
 * submit: what to run, argv after "--", a shell command after -c, or (with
 * --stdin) shell commands read later by ctl_submit_batch.
 */
static int
ctl_submit_command(struct ctl_ctx *ctx, struct ctl_args *args, json_t *req)
{
	const char *shell = args->opts['c'];
	int bad;

	if (args->opts['I'] != NULL) {
		if (shell != NULL || args->dashdash || args->argc > 0)
			return (ctl_usage_error(
			    ctx->op, "--stdin reads the commands: give no -c "
			             "and no PROGRAM"));
		if (args->opts['R'] != NULL)
			return (ctl_usage_error(
			    ctx->op, "--stdin and --array do not go together"));
		return (CTL_EXIT_OK);
	}
	if (shell != NULL) {
		if (args->argc > 0)
			return (ctl_usage_error(
			    ctx->op,
			    "-c takes the whole command; unexpected '%s'",
			    args->argv[0]));
		if (*shell == '\0')
			return (ctl_usage_error(ctx->op, "empty -c command"));
		return (ctl_set_str(ctx, req, "shell", shell, "-c COMMAND"));
	}
	if (!args->dashdash)
		return (ctl_usage_error(
		    ctx->op,
		    "give the program after -- or a shell command with -c"));
	if (args->argc == 0)
		return (ctl_usage_error(ctx->op, "missing PROGRAM after --"));
	if ((bad = ctl_set_strings(req, "argv", args->argv, args->argc)) >= 0)
		return (ctl_usage_error(ctx->op,
		                        "argument '%s' is not valid UTF-8",
		                        args->argv[bad]));
	return (CTL_EXIT_OK);
}

/* A random idempotency key, in hex, into hex. */
static int
ctl_submit_key(char *hex)
{
	unsigned char raw[CTL_KEY_BYTES];

	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		output_error("cannot make a key: %s", strerror(errno));
		return (-1);
	}
	for (size_t i = 0; i < sizeof raw; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	return (0);
}

/* submit: the name, the queue, the priority and the idempotency key. */
static int
ctl_submit_options(struct ctl_ctx *ctx, struct ctl_args *args, json_t *req)
{
	const char *name = args->opts['n'], *prio = args->opts['p'];
	const char *key = args->opts['k'], *queue = args->opts['q'];
	char hex[2 * CTL_KEY_BYTES + 1];
	long long n;
	int rv;

	if (name != NULL &&
	    (rv = ctl_set_str(ctx, req, "name", name, "-n NAME")) != 0)
		return (rv);
	if (queue != NULL) {
		if ((rv = ctl_opt_queue(ctx, "-q", queue)) != 0)
			return (rv);
		json_object_set_new(req, "queue", json_string(queue));
	}
	if (prio != NULL) {
		if (util_parse_int(prio, PROTO_PRIO_MIN, PROTO_PRIO_MAX, &n) !=
		    0)
			return (ctl_usage_error(
			    ctx->op, "-p: '%s' is not a priority from %d to %d",
			    prio, PROTO_PRIO_MIN, PROTO_PRIO_MAX));
		json_object_set_new(req, "priority", json_integer(n));
	}
	if (key == NULL) {
		if (ctl_submit_key(hex) != 0)
			return (CTL_EXIT_ERROR);
		key = hex;
	}
	return (ctl_set_str(ctx, req, "key", key, "--key"));
}

/*
 * submit: --at TIME or --in DURATION as run_at, ms since the epoch. The
 * clock read is the client's: a TIME without a date means the next one to
 * come here.
 */
static int
ctl_submit_start(struct ctl_ctx *ctx, struct ctl_args *args, json_t *req)
{
	const char *at = args->opts['a'], *in = args->opts['i'];
	int64_t now = util_now_ms(), t;
	long long ms = 0;
	int rv;

	if (at != NULL && in != NULL)
		return (
		    ctl_usage_error(ctx->op, "give --at or --in, not both"));
	if (at != NULL) {
		if (util_parse_time(at, now, &t) != 0)
			return (ctl_usage_error(
			    ctx->op,
			    "--at: '%s' is not a time (2026-11-28T09:00:00Z, "
			    "2026-11-28 09:00:00+01:00, HH:MM or HH:MM:SS)",
			    at));
		if (t < now)
			return (ctl_usage_error(ctx->op,
			                        "--at: %s is in the past", at));
		if (t > PROTO_TIME_MAX)
			return (ctl_usage_error(
			    ctx->op, "--at: %s is after the year 9999", at));
	} else if (in != NULL) {
		if ((rv = ctl_opt_duration(ctx, "--in", in, 0,
		                           PROTO_TIME_MAX - now,
		                           "before the year 10000", &ms)) != 0)
			return (rv);
		t = now + ms;
	} else
		return (CTL_EXIT_OK);
	json_object_set_new(req, "run_at", json_integer(t));
	return (CTL_EXIT_OK);
}

/*
 * One of submit's dependency options, name (its letter in opts: opt), into
 * req[key]: a comma-separated list of job or array ids, each kept once.
 */
static int
ctl_submit_deps(struct ctl_ctx *ctx, struct ctl_args *args, const char *key,
                int opt, const char *name, json_t *req)
{
	const char *arg = args->opts[opt];
	json_t *ids, *e;
	char *copy, *p, *id;
	long long n;
	size_t i;
	int rv = CTL_EXIT_OK;

	if (arg == NULL)
		return (CTL_EXIT_OK);
	ids = json_array();
	p = copy = xstrdup(arg);
	do {
		id = strsep(&p, ",");
		if (util_parse_int(id, 1, INT64_MAX, &n) != 0) {
			rv = ctl_usage_error(
			    ctx->op,
			    "%s: '%s' is not a list of job ids (12,34)", name,
			    arg);
			goto out;
		}
		json_array_foreach(ids, i, e)
		{
			if (json_integer_value(e) == n)
				break;
		}
		if (i < json_array_size(ids))
			continue;
		if (i == PROTO_MAX_IDS) {
			rv = ctl_usage_error(ctx->op, "%s: more than %d ids",
			                     name, PROTO_MAX_IDS);
			goto out;
		}
		json_array_append_new(ids, json_integer(n));
	} while (p != NULL);
	json_object_set(req, key, ids);
out:
	json_decref(ids);
	free(copy);
	return (rv);
}

/* submit: --timeout, --kill-after, --retries, --retry-delay. */
static int
ctl_submit_limits(struct ctl_ctx *ctx, struct ctl_args *args, json_t *req)
{
	static const struct {
		int opt;
		const char *name, *key, *range;
		long long min, max;
		int duration;
	} limits[] = {
		{ 't', "--timeout", "timeout_ms",
		  "from 1ms to " CTL_DURATION_MAX, 1, PROTO_DURATION_MAX, 1 },
		{ 'K', "--kill-after", "kill_after_ms", "at most 1d", 0,
		  PROTO_DAY_MS, 1 },
		{ 'r', "--retries", "retries", NULL, 0, PROTO_MAX_RETRIES, 0 },
		{ 'D', "--retry-delay", "retry_delay_ms", "at most 1d", 0,
		  PROTO_DAY_MS, 1 },
	};
	const char *arg;
	long long n;
	int rv;

	for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
		if ((arg = args->opts[limits[i].opt]) == NULL)
			continue;
		if (limits[i].duration)
			rv = ctl_opt_duration(ctx, limits[i].name, arg,
			                      limits[i].min, limits[i].max,
			                      limits[i].range, &n);
		else
			rv = ctl_opt_int(ctx, limits[i].name, arg,
			                 limits[i].min, limits[i].max, &n);
		if (rv != 0)
			return (rv);
		json_object_set_new(req, limits[i].key, json_integer(n));
	}
	if (args->opts['L'] != NULL)
		json_object_set_new(req, "retry_on_lost", json_true());
	return (CTL_EXIT_OK);
}

/* submit: --array START-END[%LIMIT], or N[%LIMIT] for one task. */
static int
ctl_submit_array(struct ctl_ctx *ctx, struct ctl_args *args, json_t *req)
{
	const char *arg = args->opts['R'];
	char *copy, *end, *limit;
	long long first, last, n = 0;
	int rv = CTL_EXIT_USAGE;

	if (arg == NULL)
		return (CTL_EXIT_OK);
	copy = xstrdup(arg);
	if ((limit = strchr(copy, '%')) != NULL)
		*limit++ = '\0';
	if ((end = strchr(copy, '-')) != NULL)
		*end++ = '\0';
	if (!isdigit((unsigned char)*copy) ||
	    (end != NULL && !isdigit((unsigned char)*end)) ||
	    util_parse_int(copy, 0, PROTO_ARRAY_INDEX_MAX, &first) != 0 ||
	    util_parse_int(end != NULL ? end : copy, 0, PROTO_ARRAY_INDEX_MAX,
	                   &last) != 0) {
		ctl_usage_error(ctx->op,
		                "--array: '%s' is not START-END[%%LIMIT] with "
		                "indexes from 0 to %d",
		                arg, PROTO_ARRAY_INDEX_MAX);
		goto out;
	}
	if (limit != NULL &&
	    (!isdigit((unsigned char)*limit) ||
	     util_parse_int(limit, 1, PROTO_MAX_ARRAY, &n) != 0)) {
		ctl_usage_error(ctx->op,
		                "--array: the limit in '%s' is not a number "
		                "from 1 to %d",
		                arg, PROTO_MAX_ARRAY);
		goto out;
	}
	if (last < first) {
		ctl_usage_error(ctx->op,
		                "--array: %lld-%lld is empty (END "
		                "is before START)",
		                first, last);
		goto out;
	}
	if (last - first + 1 > PROTO_MAX_ARRAY) {
		ctl_usage_error(ctx->op,
		                "--array: %lld-%lld is %lld tasks; at most %d",
		                first, last, last - first + 1, PROTO_MAX_ARRAY);
		goto out;
	}
	json_object_set_new(req, "array_start", json_integer(first));
	json_object_set_new(req, "array_end", json_integer(last));
	if (limit != NULL)
		json_object_set_new(req, "array_limit", json_integer(n));
	rv = CTL_EXIT_OK;
out:
	free(copy);
	return (rv);
}

/* submit: the scheduling options, into req. */
static int
ctl_submit_sched(struct ctl_ctx *ctx, struct ctl_args *args, json_t *req)
{
	int rv;

	if ((rv = ctl_submit_start(ctx, args, req)) != 0 ||
	    (rv = ctl_submit_deps(ctx, args, "after", 'A', "--after", req)) !=
	        0 ||
	    (rv = ctl_submit_deps(ctx, args, "after_any", 'Y', "--after-any",
	                          req)) != 0 ||
	    (rv = ctl_submit_deps(ctx, args, "after_fail", 'F', "--after-fail",
	                          req)) != 0 ||
	    (rv = ctl_submit_limits(ctx, args, req)) != 0)
		return (rv);
	return (ctl_submit_array(ctx, args, req));
}

/* submit: where the job runs, the current folder and environment. */
static int
ctl_submit_context(struct ctl_ctx *ctx, json_t *req)
{
	char *cwd;
	int rv, bad;

	if ((cwd = getcwd(NULL, 0)) == NULL) {
		output_error("cannot get the current folder: %s",
		             strerror(errno));
		return (CTL_EXIT_ERROR);
	}
	rv = ctl_set_str(ctx, req, "cwd", cwd, "the current folder");
	free(cwd);
	if (rv != 0)
		return (rv);
	if ((bad = ctl_set_strings(req, "env", environ, -1)) >= 0)
		return (ctl_usage_error(
		    ctx->op, "environment variable %.*s is not valid UTF-8",
		    (int)strcspn(environ[bad], "="), environ[bad]));
	return (CTL_EXIT_OK);
}

/*
 * The id submit prints: the array's for an array (from the reply's "array",
 * else the task's "array_id"), else the job's. Returns -1 after saying the
 * reply is malformed.
 */
static long long
ctl_submit_id(json_t *reply, json_t *job)
{
	json_t *array = json_object_get(reply, "array"), *id;

	if (array == NULL || json_is_null(array)) {
		id = json_object_get(job, "array_id");
		return (json_is_integer(id) ? json_integer_value(id)
		                            : ctl_job_id(job));
	}
	id = json_object_get(array, "id");
	if (json_is_integer(id) && json_integer_value(id) >= 1)
		return (json_integer_value(id));
	output_error("malformed reply from jobd: \"array\" without an id");
	return (-1);
}

/* The bytes s takes in a JSON request, quotes and comma included. */
static size_t
ctl_json_size(const char *s)
{
	size_t n = 3;

	for (; *s != '\0'; s++)
		n += *s == '"' || *s == '\\'    ? 2
		     : (unsigned char)*s < 0x20 ? 6
		                                : 1;
	return (n);
}

/*
 * Send the batch of commands in shells as one submit like req (the key
 * made unique by the batch's number n), and print the ids of its jobs (or
 * add them to ids, for --json). Returns an exit code.
 */
static int
ctl_submit_send(struct ctl_ctx *ctx, json_t *req, json_t *shells, int n,
                json_t *ids)
{
	json_t *chunk = json_copy(req), *reply = NULL, *job, *count;
	const char *key = json_string_value(json_object_get(req, "key"));
	char *k;
	long long first;
	size_t want = json_array_size(shells);
	int rv;

	json_object_set(chunk, "shells", shells);
	if (n > 0) {
		k = xasprintf("%s.%d", key, n + 1);
		json_object_set_new(chunk, "key", json_string(k));
		free(k);
	}
	if ((rv = ctl_call(ctx, chunk, CTL_RECV_MS, &reply)) != 0)
		goto out;
	count = json_object_get(json_object_get(reply, "batch"), "count");
	if ((job = ctl_reply_job(reply)) == NULL) {
		rv = CTL_EXIT_PROTOCOL;
		goto out;
	}
	if (!json_is_integer(count) ||
	    json_integer_value(count) != (json_int_t)want) {
		output_error("malformed reply from jobd: no batch of %zu jobs",
		             want);
		rv = CTL_EXIT_PROTOCOL;
		goto out;
	}
	first = ctl_job_id(job);
	for (size_t i = 0; i < want; i++)
		if (ids != NULL)
			json_array_append_new(ids, json_integer(first + i));
		else
			printf("%lld\n", first + (long long)i);
	fflush(stdout);
out:
	json_decref(reply);
	json_decref(chunk);
	return (rv);
}

/*
 * submit --stdin: one job per line of standard input (empty lines skipped),
 * each a shell command with the options of req. At most PROTO_MAX_BATCH
 * commands (fewer with dependencies: PROTO_MAX_DEP_ROWS), and what fits in
 * PROTO_MAX_MSG, go in one request, which jobd stores in one transaction;
 * more input makes more requests, in order.
 */
static int
ctl_submit_batch(struct ctl_ctx *ctx, json_t *req)
{
	static const char *const deps[] = { "after", "after_any",
		                            "after_fail" };
	json_t *shells = json_array(), *ids = ctx->json ? json_array() : NULL;
	const char *key = json_string_value(json_object_get(req, "key"));
	char *line = NULL, *dump;
	size_t cap = 0, base, size, lsize, ndeps = 0, most = PROTO_MAX_BATCH;
	ssize_t len;
	long long lineno = 0;
	int rv = CTL_EXIT_OK, sent = 0;

	/* The next requests' keys get ".2", ".3", ...: leave them room. */
	if (strlen(key) > CTL_BATCH_KEY_MAX) {
		output_error("--key: with --stdin, at most %d bytes",
		             CTL_BATCH_KEY_MAX);
		rv = CTL_EXIT_USAGE;
		goto out;
	}
	/* Each job records each dependency: jobd takes so many rows at most. */
	for (size_t k = 0; k < 3; k++)
		ndeps += json_array_size(json_object_get(req, deps[k]));
	if (ndeps > 0)
		most = PROTO_MAX_DEP_ROWS / ndeps;
	/* Room for everything but the commands, and a margin. */
	dump = json_dumps(req, JSON_COMPACT);
	base = strlen(dump) + 64;
	free(dump);
	size = base;
	while (rv == CTL_EXIT_OK && (len = getline(&line, &cap, stdin)) != -1) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (strlen(line) != (size_t)len) {
			output_error("line %lld of the input has a NUL byte",
			             lineno);
			rv = CTL_EXIT_USAGE;
			break;
		}
		if ((lsize = ctl_json_size(line)) + base > PROTO_MAX_MSG) {
			output_error("line %lld of the input is too long",
			             lineno);
			rv = CTL_EXIT_USAGE;
			break;
		}
		if (json_array_size(shells) == most ||
		    size + lsize > PROTO_MAX_MSG) {
			rv = ctl_submit_send(ctx, req, shells, sent++, ids);
			json_array_clear(shells);
			size = base;
			if (rv != CTL_EXIT_OK)
				break;
		}
		if (json_array_append_new(shells, json_string(line)) != 0) {
			output_error(
			    "line %lld of the input is not valid UTF-8",
			    lineno);
			rv = CTL_EXIT_USAGE;
			break;
		}
		size += lsize;
	}
	if (rv == CTL_EXIT_OK && ferror(stdin)) {
		output_error("cannot read the input: %s", strerror(errno));
		rv = CTL_EXIT_ERROR;
	} else if (rv == CTL_EXIT_OK && json_array_size(shells) > 0)
		rv = ctl_submit_send(ctx, req, shells, sent++, ids);
	else if (rv == CTL_EXIT_OK && sent == 0) {
		output_error("no commands in the input");
		rv = CTL_EXIT_USAGE;
	}
	if (rv == CTL_EXIT_OK && ids != NULL)
		output_json(ids);
out:
	free(line);
	json_decref(shells);
	json_decref(ids);
	return (rv);
}

static int
ctl_exec_submit(struct ctl_ctx *ctx, struct ctl_args *args)
{
	json_t *req = proto_request_new(ctx->op), *reply = NULL, *job;
	long long id;
	int rv;

	if ((rv = ctl_submit_command(ctx, args, req)) != 0 ||
	    (rv = ctl_submit_options(ctx, args, req)) != 0 ||
	    (rv = ctl_submit_sched(ctx, args, req)) != 0 ||
	    (rv = ctl_submit_context(ctx, req)) != 0)
		goto out;
	if (args->opts['I'] != NULL) {
		rv = ctl_submit_batch(ctx, req);
		goto out;
	}
	if ((rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
		goto out;
	if ((job = ctl_reply_job(reply)) == NULL ||
	    (id = ctl_submit_id(reply, job)) < 0)
		rv = CTL_EXIT_PROTOCOL;
	else if (ctx->json)
		output_json(job);
	else
		printf("%lld\n", id);
out:
	json_decref(reply);
	json_decref(req);
	return (rv);
}

static int
ctl_exec_status(struct ctl_ctx *ctx, struct ctl_args *args)
{
	json_t *req = NULL, *reply = NULL, *jobs;
	int rv;

	if ((rv = ctl_ids_request(ctx, args, &req)) != 0 ||
	    (rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
		goto out;
	if ((jobs = ctl_reply_jobs(reply, args->argc)) == NULL)
		rv = CTL_EXIT_PROTOCOL;
	else
		ctl_print_status(ctx, jobs, json_object_get(req, "ids"));
out:
	json_decref(reply);
	json_decref(req);
	return (rv);
}

/* "blocked, scheduled, ..., lost", for a usage error. */
static int
ctl_list_bad_state(struct ctl_ctx *ctx, const char *state)
{
	char names[256];
	size_t len = 0;

	names[0] = '\0';
	for (int s = 0; s < JOB_STATE_MAX; s++)
		len += snprintf(names + len, sizeof names - len, "%s%s",
		                s == 0 ? "" : ", ", proto_state_name(s));
	return (ctl_usage_error(ctx->op, "--state: '%s' is not one of %s",
	                        state, names));
}

/*
 * list --since: a DURATION is "within the last DURATION"; otherwise a TIME
 * at or before now (HH:MM: the last one), into *msp.
 */
static int
ctl_list_since(struct ctl_ctx *ctx, const char *arg, int64_t *msp)
{
	int64_t now = util_now_ms(), t;
	long long ms;

	if (util_parse_duration_ms(arg, &ms) == 0)
		t = ms < now ? now - ms : 0;
	else if (util_parse_time_past(arg, now, &t) != 0)
		return (ctl_usage_error(
		    ctx->op,
		    "--since: '%s' is neither a duration (90s, 5m, 2h, 1d, "
		    "1h30m) nor a time (2026-11-28T09:00:00Z, HH:MM)",
		    arg));
	else if (t > now)
		return (ctl_usage_error(ctx->op, "--since: %s is in the future",
		                        arg));
	*msp = t < 0 ? 0 : t;
	return (CTL_EXIT_OK);
}

/* list: the filters, into req. */
static int
ctl_list_filters(struct ctl_ctx *ctx, struct ctl_args *args, json_t *req)
{
	const char *state = args->opts['s'], *queue = args->opts['q'];
	const char *name = args->opts['n'], *since = args->opts['S'];
	int64_t t = 0;
	int rv;

	if (state != NULL) {
		if (proto_state_parse(state) < 0)
			return (ctl_list_bad_state(ctx, state));
		json_object_set_new(req, "state", json_string(state));
	}
	if (queue != NULL) {
		if ((rv = ctl_opt_queue(ctx, "--queue", queue)) != 0)
			return (rv);
		json_object_set_new(req, "queue", json_string(queue));
	}
	if (name != NULL) {
		if (*name == '\0')
			return (
			    ctl_usage_error(ctx->op, "--name: empty pattern"));
		if ((rv = ctl_set_str(ctx, req, "name", name, "--name")) != 0)
			return (rv);
	}
	if (since != NULL) {
		if ((rv = ctl_list_since(ctx, since, &t)) != 0)
			return (rv);
		json_object_set_new(req, "since", json_integer(t));
	}
	return (CTL_EXIT_OK);
}

static int
ctl_exec_list(struct ctl_ctx *ctx, struct ctl_args *args)
{
	const char *limit = args->opts['l'];
	json_t *req, *reply = NULL, *jobs;
	long long n = CTL_LIST_LIMIT;
	int rv;

	if (limit != NULL && (rv = ctl_opt_int(ctx, "--limit", limit, 1,
	                                       PROTO_MAX_LIST, &n)) != 0)
		return (rv);
	req = proto_request_new(ctx->op);
	json_object_set_new(req, "limit", json_integer(n));
	if ((rv = ctl_list_filters(ctx, args, req)) != 0 ||
	    (rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
		goto out;
	if ((jobs = ctl_reply_jobs(reply, -1)) == NULL)
		rv = CTL_EXIT_PROTOCOL;
	else
		ctl_print_jobs(ctx, jobs);
out:
	json_decref(reply);
	json_decref(req);
	return (rv);
}

/* One run of logs: where it reads, and with --json what is not out yet. */
struct ctl_logs {
	long long id;
	const char *stream;
	int follow;
	long long offset;
	char *buf; /* --json: bytes not printed yet */
	size_t len;
};

/*
 * --json: print the bytes held as one object. Unless last is set, a UTF-8
 * sequence cut short at the end is kept for the next chunk.
 */
static void
ctl_logs_json(struct ctl_logs *lg, int last)
{
	json_t *obj;
	char *text;
	size_t used, n;

	text = output_utf8(lg->buf, lg->len, last, &used, &n);
	/* A follow chunk that is only the start of a sequence waits. */
	if (n > 0 || !lg->follow) {
		obj = json_pack("{s:I, s:s, s:s%}", "id", (json_int_t)lg->id,
		                "stream", lg->stream, "data", text, n);
		if (lg->follow)
			output_json_line(obj);
		else
			output_json(obj);
		json_decref(obj);
	}
	free(text);
	memmove(lg->buf, lg->buf + used, lg->len - used);
	lg->len -= used;
}

/* Print one chunk of output, or hold it for --json. */
static int
ctl_logs_write(struct ctl_ctx *ctx, struct ctl_logs *lg, const void *data,
               size_t len)
{
	if (ctx->json) {
		lg->buf = xrealloc(lg->buf, lg->len + len);
		memcpy(lg->buf + lg->len, data, len);
		lg->len += len;
		if (lg->follow && lg->len > 0)
			ctl_logs_json(lg, 0);
		return (0);
	}
	if (fwrite(data, 1, len, stdout) != len ||
	    (lg->follow && fflush(stdout) != 0)) {
		output_error("cannot write to stdout: %s", strerror(errno));
		return (-1);
	}
	return (0);
}

/*
 * Take one logs reply: print its data and move the offset on. Sets *morep if
 * there may be more to ask for. Returns an exit code.
 */
static int
ctl_logs_chunk(struct ctl_ctx *ctx, struct ctl_logs *lg, json_t *reply,
               int *morep)
{
	json_t *data, *off, *eof;
	void *bytes;
	size_t len;
	int rv = CTL_EXIT_OK;

	if ((data = ctl_reply_get(reply, "data", JSON_STRING)) == NULL ||
	    (off = ctl_reply_get(reply, "offset", JSON_INTEGER)) == NULL ||
	    (eof = ctl_reply_get(reply, "eof", JSON_TRUE)) == NULL)
		return (CTL_EXIT_PROTOCOL);
	if (util_base64_decode(json_string_value(data), &bytes, &len) != 0) {
		output_error(
		    "malformed reply from jobd: bad base64 in \"data\"");
		return (CTL_EXIT_PROTOCOL);
	}
	if (json_integer_value(off) < lg->offset ||
	    (len > 0 && json_integer_value(off) == lg->offset)) {
		output_error(
		    "malformed reply from jobd: offset %lld after %lld",
		    (long long)json_integer_value(off), lg->offset);
		rv = CTL_EXIT_PROTOCOL;
	} else if (ctl_logs_write(ctx, lg, bytes, len) != 0)
		rv = CTL_EXIT_ERROR;
	free(bytes);
	lg->offset = json_integer_value(off);
	/* Without --follow an empty chunk is the end of what there is. */
	*morep = !json_is_true(eof) && (lg->follow || len > 0);
	return (rv);
}

/*
 * logs: ask for output from the offset reached until there is no more (or,
 * with --follow, until the job has ended and all is read). A follow request
 * is parked by jobd until there is output, so this loop never spins; across
 * a jobd restart it asks the next jobd from the same offset, so nothing is
 * printed twice or left out.
 */
static int
ctl_exec_logs(struct ctl_ctx *ctx, struct ctl_args *args)
{
	struct ctl_logs lg;
	json_t *req, *reply;
	int rv, more = 1;

	memset(&lg, 0, sizeof lg);
	if ((rv = ctl_id_parse(ctx, args->argv[0], &lg.id)) != 0)
		return (rv);
	lg.stream = args->opts['e'] != NULL ? "stderr" : "stdout";
	lg.follow = args->opts['f'] != NULL;
	if (lg.follow && (rv = ctl_reconnect_setup(ctx)) != 0)
		return (rv);
	req = proto_request_new(ctx->op);
	json_object_set_new(req, "id", json_integer(lg.id));
	json_object_set_new(req, "stream", json_string(lg.stream));
	json_object_set_new(req, "follow", json_boolean(lg.follow));
	while (more) {
		json_object_set_new(req, "offset", json_integer(lg.offset));
		if (lg.follow)
			rv = ctl_call_resume(ctx, req, 0, &reply);
		else
			rv = ctl_call(ctx, req, CTL_RECV_MS, &reply);
		if (rv == CTL_AGAIN)
			continue;
		if (rv != 0)
			break;
		rv = ctl_logs_chunk(ctx, &lg, reply, &more);
		json_decref(reply);
		if (rv != 0)
			break;
	}
	if (rv == CTL_EXIT_OK && ctx->json && (!lg.follow || lg.len > 0))
		ctl_logs_json(&lg, 1);
	free(lg.buf);
	json_decref(req);
	return (rv);
}

/*
 * The code wait exits with for a job that has ended: its exit code, 128 +
 * the signal that killed it, and never 0 for a job that did not succeed.
 */
static int
ctl_wait_code(json_t *job)
{
	json_t *code = json_object_get(job, "exit_code");
	json_t *sig = json_object_get(job, "signal");
	int rv = 1;

	if (json_is_integer(code) && json_integer_value(code) >= 0 &&
	    json_integer_value(code) <= 255)
		rv = (int)json_integer_value(code);
	else if (json_is_integer(sig) && json_integer_value(sig) >= 1 &&
	         json_integer_value(sig) < 128)
		rv = 128 + (int)json_integer_value(sig);
	else if (!json_is_integer(code) && !json_is_integer(sig))
		rv = 0;
	if (rv == 0 && strcmp(json_string_value(json_object_get(job, "state")),
	                      "succeeded") != 0)
		rv = 1;
	return (rv);
}

/*
 * wait is over: print the jobs as status does, return the first non-zero
 * code in the reply's order (the order of the ids, an array's tasks in
 * index order).
 */
static int
ctl_wait_done(struct ctl_ctx *ctx, json_t *ids, json_t *reply)
{
	json_t *jobs, *job;
	size_t i;
	int rv = CTL_EXIT_OK, code;

	if ((jobs = ctl_reply_jobs(reply, (int)json_array_size(ids))) == NULL)
		return (CTL_EXIT_PROTOCOL);
	json_array_foreach(jobs, i, job)
	{
		if ((code = ctl_wait_code(job)) != 0 && rv == CTL_EXIT_OK)
			rv = code;
	}
	ctl_print_status(ctx, jobs, ids);
	return (rv);
}

/*
 * --timeout passed: say which jobs have not ended, asking jobd (all the ids
 * given if it does not say).
 */
static int
ctl_wait_timeout(struct ctl_ctx *ctx, json_t *req)
{
	json_t *status, *reply = NULL, *jobs = NULL, *each, *v, *id;
	const char *state;
	char list[256];
	size_t i, len = 0, n = 0;

	status = proto_request_new(PROTO_OP_STATUS);
	json_object_set(status, "ids", json_object_get(req, "ids"));
	if (ctl_call(ctx, status, CTL_RECV_MS, &reply) == 0)
		jobs = ctl_reply_jobs(reply, -1);
	list[0] = '\0';
	/* Each job jobd told of, or else each id given. */
	each = jobs != NULL ? jobs : json_object_get(req, "ids");
	json_array_foreach(each, i, v)
	{
		state = json_string_value(json_object_get(v, "state"));
		if (state != NULL && JOB_TERMINAL(proto_state_parse(state)))
			continue;
		id = jobs != NULL ? json_object_get(v, "id") : v;
		if (len < sizeof list)
			len += snprintf(list + len, sizeof list - len, "%s%lld",
			                n == 0 ? "" : ", ",
			                (long long)json_integer_value(id));
		n++;
	}
	output_error("timed out waiting for job%s %s", n == 1 ? "" : "s", list);
	json_decref(reply);
	json_decref(status);
	return (CTL_EXIT_TIMEOUT);
}

/*
 * wait: jobd answers when the jobs have ended, or with done:false after at
 * most PROTO_MAX_PARK_MS; then ask again with the time that is left. Across
 * a jobd restart, ask the next jobd the same way (ctl_call_resume).
 */
static int
ctl_exec_wait(struct ctl_ctx *ctx, struct ctl_args *args)
{
	const char *arg = args->opts['t'];
	json_t *req = NULL, *reply = NULL, *done;
	long long timeout = -1, left = PROTO_MAX_PARK_MS;
	int64_t deadline = 0;
	int rv;

	if (arg != NULL && util_parse_duration_ms(arg, &timeout) != 0)
		return (ctl_usage_error(ctx->op,
		                        "--timeout: '%s' is not a duration "
		                        "(90s, 5m, 2h, 1d, 500ms)",
		                        arg));
	if ((rv = ctl_reconnect_setup(ctx)) != 0 ||
	    (rv = ctl_ids_request(ctx, args, &req)) != 0)
		return (rv);
	/* Far enough for ever, and no overflow. */
	if (timeout > INT64_MAX / 4)
		timeout = INT64_MAX / 4;
	if (timeout >= 0)
		deadline = util_mono_ms() + timeout;
	for (;;) {
		if (timeout >= 0 && (left = deadline - util_mono_ms()) < 0)
			left = 0;
		json_object_set_new(req, "timeout_ms", json_integer(left));
		rv = ctl_call_resume(ctx, req, timeout >= 0 ? deadline : 0,
		                     &reply);
		if (rv == CTL_AGAIN)
			continue;
		if (rv != 0)
			break;
		if ((done = ctl_reply_get(reply, "done", JSON_TRUE)) == NULL) {
			rv = CTL_EXIT_PROTOCOL;
			break;
		}
		if (json_is_true(done)) {
			rv = ctl_wait_done(ctx, json_object_get(req, "ids"),
			                   reply);
			break;
		}
		if (timeout >= 0 && util_mono_ms() >= deadline) {
			rv = ctl_wait_timeout(ctx, req);
			break;
		}
		json_decref(reply);
		reply = NULL;
	}
	json_decref(reply);
	json_decref(req);
	return (rv);
}

/* "42 cancelled", "43 cancelling (running)". */
static void
ctl_cancel_print(json_t *jobs)
{
	const char *state;
	json_t *job;
	size_t i;

	json_array_foreach(jobs, i, job)
	{
		state = json_string_value(json_object_get(job, "state"));
		if (strcmp(state, "running") == 0)
			printf("%lld cancelling (running)\n", ctl_job_id(job));
		else
			printf("%lld %s\n", ctl_job_id(job), state);
	}
}

static int
ctl_exec_cancel(struct ctl_ctx *ctx, struct ctl_args *args)
{
	const char *arg = args->opts['s'];
	json_t *req = NULL, *reply = NULL, *jobs;
	int rv, sig = SIGTERM;

	if (arg != NULL && (sig = proto_signal_parse(arg)) < 0)
		return (ctl_usage_error(ctx->op,
		                        "--signal: '%s' is not a signal", arg));
	if ((rv = ctl_ids_request(ctx, args, &req)) != 0)
		return (rv);
	json_object_set_new(req, "signal", json_string(proto_signal_name(sig)));
	if ((rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
		goto out;
	if ((jobs = ctl_reply_jobs(reply, -1)) == NULL)
		rv = CTL_EXIT_PROTOCOL;
	else if (ctx->json)
		output_json(jobs);
	else
		ctl_cancel_print(jobs);
out:
	json_decref(reply);
	json_decref(req);
	return (rv);
}

/*
 * Send req, an "ids" request, and print the jobs of the reply as status
 * does: for set, hold, release and retry. Takes req.
 */
static int
ctl_ids_call(struct ctl_ctx *ctx, struct ctl_args *args, json_t *req)
{
	json_t *reply = NULL, *jobs;
	int rv;

	if ((rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
		goto out;
	if ((jobs = ctl_reply_jobs(reply, args->argc)) == NULL)
		rv = CTL_EXIT_PROTOCOL;
	else
		ctl_print_status(ctx, jobs, json_object_get(req, "ids"));
out:
	json_decref(reply);
	json_decref(req);
	return (rv);
}

static int
ctl_exec_set(struct ctl_ctx *ctx, struct ctl_args *args)
{
	const char *prio = args->opts['p'];
	json_t *req;
	long long n;
	int rv;

	if (prio == NULL)
		return (ctl_usage_error(ctx->op, "missing --priority N"));
	if ((rv = ctl_opt_int(ctx, "--priority", prio, PROTO_PRIO_MIN,
	                      PROTO_PRIO_MAX, &n)) != 0 ||
	    (rv = ctl_ids_request(ctx, args, &req)) != 0)
		return (rv);
	json_object_set_new(req, "priority", json_integer(n));
	return (ctl_ids_call(ctx, args, req));
}

/* hold, release, retry: the ids and nothing else. */
static int
ctl_exec_ids(struct ctl_ctx *ctx, struct ctl_args *args)
{
	json_t *req;
	int rv;

	if ((rv = ctl_ids_request(ctx, args, &req)) != 0)
		return (rv);
	return (ctl_ids_call(ctx, args, req));
}

/* queue: the request for "list", "set QUEUE", "pause QUEUE"... */
static int
ctl_queue_request(struct ctl_ctx *ctx, struct ctl_args *args, json_t **reqp)
{
	static const char *const actions[] = { "list", "set", "pause",
		                               "resume" };
	const char *action = args->argc > 0 ? args->argv[0] : "list";
	const char *name = args->argc > 1 ? args->argv[1] : NULL;
	const char *parallel = args->opts['P'];
	long long n = 0;
	size_t i;
	int rv;

	for (i = 0; i < sizeof actions / sizeof actions[0]; i++)
		if (strcmp(action, actions[i]) == 0)
			break;
	if (i == sizeof actions / sizeof actions[0])
		return (ctl_usage_error(
		    ctx->op, "'%s' is not list, set, pause or resume", action));
	if (i == 0 && name != NULL)
		return (
		    ctl_usage_error(ctx->op, "unexpected argument '%s'", name));
	if (i != 0 && name == NULL)
		return (ctl_usage_error(ctx->op, "%s: missing QUEUE", action));
	if (name != NULL && (rv = ctl_opt_queue(ctx, "QUEUE", name)) != 0)
		return (rv);
	/* actions[1] is set. */
	if (i == 1 && parallel == NULL)
		return (ctl_usage_error(ctx->op, "set: missing --parallel N"));
	if (i != 1 && parallel != NULL)
		return (
		    ctl_usage_error(ctx->op, "--parallel goes with set only"));
	if (parallel != NULL &&
	    (rv = ctl_opt_int(ctx, "--parallel", parallel, 1,
	                      PROTO_MAX_PARALLEL, &n)) != 0)
		return (rv);
	*reqp = proto_request_new(ctx->op);
	json_object_set_new(*reqp, "action", json_string(action));
	if (name != NULL)
		json_object_set_new(*reqp, "name", json_string(name));
	if (parallel != NULL)
		json_object_set_new(*reqp, "parallel", json_integer(n));
	return (CTL_EXIT_OK);
}

/* reply["queues"], checked: an array of objects with a string name. */
static json_t *
ctl_reply_queues(json_t *reply)
{
	json_t *queues, *q;
	size_t i;

	if ((queues = ctl_reply_get(reply, "queues", JSON_ARRAY)) == NULL)
		return (NULL);
	json_array_foreach(queues, i, q)
	{
		if (!json_is_string(json_object_get(q, "name"))) {
			output_error("malformed reply from jobd: a queue "
			             "without a name");
			return (NULL);
		}
	}
	return (queues);
}

static int
ctl_exec_queue(struct ctl_ctx *ctx, struct ctl_args *args)
{
	json_t *req = NULL, *reply = NULL, *queues;
	int rv;

	if ((rv = ctl_queue_request(ctx, args, &req)) != 0)
		return (rv);
	if ((rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
		goto out;
	if ((queues = ctl_reply_queues(reply)) == NULL)
		rv = CTL_EXIT_PROTOCOL;
	else if (ctx->json)
		output_json(queues);
	else
		output_queues(queues);
out:
	json_decref(reply);
	json_decref(req);
	return (rv);
}

/* purge: the request, from --state and --older-than. */
static int
ctl_purge_request(struct ctl_ctx *ctx, struct ctl_args *args, json_t **reqp)
{
	const char *state = args->opts['s'], *older = args->opts['o'];
	long long ms = 0;
	int s, rv;

	if (state != NULL &&
	    ((s = proto_state_parse(state)) < 0 || !JOB_TERMINAL(s)))
		return (
		    ctl_usage_error(ctx->op,
		                    "--state: '%s' is not one of succeeded, "
		                    "failed, cancelled, lost",
		                    state));
	if (older != NULL &&
	    (rv = ctl_opt_duration(ctx, "--older-than", older, 0,
	                           PROTO_DURATION_MAX,
	                           "at most " CTL_DURATION_MAX, &ms)) != 0)
		return (rv);
	*reqp = proto_request_new(ctx->op);
	if (state != NULL)
		json_object_set_new(*reqp, "state", json_string(state));
	if (older != NULL)
		json_object_set_new(*reqp, "older_than_ms", json_integer(ms));
	return (CTL_EXIT_OK);
}

/*
 * purge: jobd purges a batch per request and says if there is more; ask
 * again until there is not (or a batch purged nothing: no busy loop).
 */
static int
ctl_exec_purge(struct ctl_ctx *ctx, struct ctl_args *args)
{
	json_t *req = NULL, *reply = NULL, *n, *more, *obj;
	long long total = 0;
	int rv;

	if ((rv = ctl_purge_request(ctx, args, &req)) != 0)
		return (rv);
	for (;;) {
		if ((rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
			goto out;
		if ((n = ctl_reply_get(reply, "purged", JSON_INTEGER)) ==
		        NULL ||
		    (more = ctl_reply_get(reply, "more", JSON_TRUE)) == NULL) {
			rv = CTL_EXIT_PROTOCOL;
			goto out;
		}
		if (json_integer_value(n) < 0) {
			output_error("malformed reply from jobd: purged %lld",
			             (long long)json_integer_value(n));
			rv = CTL_EXIT_PROTOCOL;
			goto out;
		}
		total += json_integer_value(n);
		if (!json_is_true(more) || json_integer_value(n) == 0)
			break;
		json_decref(reply);
		reply = NULL;
	}
	if (ctx->json) {
		obj = json_pack("{s:I}", "purged", (json_int_t)total);
		output_json(obj);
		json_decref(obj);
	} else
		printf("purged %lld job%s\n", total, total == 1 ? "" : "s");
out:
	json_decref(reply);
	json_decref(req);
	return (rv);
}

/* What shutdown modes mean: the mode, the option, and ping's words. */
static const struct {
	const char *mode, *option, *stopping;
} ctl_shutdown_modes[] = {
	{ "now", NULL, "stopping" },
	{ "drain", "--drain", "stopping once no job runs" },
	{ "stop_jobs", "--stop-jobs",
	  "stopping its running jobs, then itself" },
};
#define CTL_SHUTDOWN_NOW   0
#define CTL_SHUTDOWN_DRAIN 1
#define CTL_SHUTDOWN_STOP  2
#define CTL_SHUTDOWN_MODES                                                     \
	(sizeof ctl_shutdown_modes / sizeof ctl_shutdown_modes[0])

/* The index of a mode's name in ctl_shutdown_modes, or -1. */
static int
ctl_shutdown_mode(const char *mode)
{
	for (size_t i = 0; mode != NULL && i < CTL_SHUTDOWN_MODES; i++)
		if (strcmp(mode, ctl_shutdown_modes[i].mode) == 0)
			return ((int)i);
	return (-1);
}

static int
ctl_exec_ping(struct ctl_ctx *ctx, struct ctl_args *args)
{
	json_t *req = proto_request_new(ctx->op), *reply = NULL, *pid, *v, *obj;
	json_t *stopping;
	int rv, mode = -1;

	(void)args;
	if ((rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
		goto out;
	/* "stopping" only while jobd drains or stops its jobs. */
	stopping = json_object_get(reply, "stopping");
	if ((pid = ctl_reply_get(reply, "pid", JSON_INTEGER)) == NULL ||
	    (v = ctl_reply_get(reply, "version", JSON_STRING)) == NULL ||
	    (stopping != NULL &&
	     (mode = ctl_shutdown_mode(json_string_value(stopping))) < 0)) {
		if (stopping != NULL && pid != NULL && v != NULL)
			output_error("malformed reply from jobd: \"stopping\" "
			             "is not a shutdown mode");
		rv = CTL_EXIT_PROTOCOL;
	} else if (ctx->json) {
		obj = json_pack("{s:O, s:O}", "pid", pid, "version", v);
		if (stopping != NULL)
			json_object_set(obj, "stopping", stopping);
		output_json(obj);
		json_decref(obj);
	} else if (mode >= 0)
		printf("jobd %s (pid %lld) is up, %s\n", json_string_value(v),
		       (long long)json_integer_value(pid),
		       ctl_shutdown_modes[mode].stopping);
	else
		printf("jobd %s (pid %lld) is up\n", json_string_value(v),
		       (long long)json_integer_value(pid));
out:
	json_decref(reply);
	json_decref(req);
	return (rv);
}

/* What shutdown printed: what jobd does, with its n running jobs. */
static void
ctl_shutdown_print(int mode, long long n)
{
	const char *s = n == 1 ? "" : "s";

	if (n == 0)
		printf("jobd is stopping; no job is running\n");
	else if (mode == CTL_SHUTDOWN_DRAIN && n == 1)
		printf("jobd stops once the running job has ended; no new job "
		       "starts\n");
	else if (mode == CTL_SHUTDOWN_DRAIN)
		printf("jobd stops once the %lld running jobs have ended; no "
		       "new job starts\n",
		       n);
	else if (mode == CTL_SHUTDOWN_STOP)
		printf("jobd is stopping %lld running job%s, then itself\n", n,
		       s);
	else if (n == 1)
		printf("jobd is stopping; 1 running job goes on under its "
		       "supervisor\n");
	else
		printf("jobd is stopping; %lld running jobs go on under their "
		       "supervisors\n",
		       n);
}

/*
 * shutdown: jobd answers once it has taken the request, before it exits; the
 * reply's mode is the one in force, which an earlier request may have made
 * stronger than this one's.
 */
static int
ctl_exec_shutdown(struct ctl_ctx *ctx, struct ctl_args *args)
{
	json_t *req, *reply = NULL, *mode, *running, *obj;
	int rv, m = CTL_SHUTDOWN_NOW;

	if (args->opts['d'] != NULL && args->opts['S'] != NULL)
		return (ctl_usage_error(
		    ctx->op, "give --drain or --stop-jobs, not both"));
	if (args->opts['d'] != NULL)
		m = CTL_SHUTDOWN_DRAIN;
	else if (args->opts['S'] != NULL)
		m = CTL_SHUTDOWN_STOP;
	req = proto_request_new(ctx->op);
	json_object_set_new(req, "mode",
	                    json_string(ctl_shutdown_modes[m].mode));
	if ((rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
		goto out;
	if ((mode = ctl_reply_get(reply, "mode", JSON_STRING)) == NULL ||
	    (running = ctl_reply_get(reply, "running", JSON_INTEGER)) == NULL) {
		rv = CTL_EXIT_PROTOCOL;
		goto out;
	}
	if ((m = ctl_shutdown_mode(json_string_value(mode))) < 0 ||
	    json_integer_value(running) < 0) {
		output_error("malformed reply from jobd: mode \"%s\", %lld "
		             "running",
		             json_string_value(mode),
		             (long long)json_integer_value(running));
		rv = CTL_EXIT_PROTOCOL;
	} else if (ctx->json) {
		obj = json_pack("{s:O, s:O}", "mode", mode, "running", running);
		output_json(obj);
		json_decref(obj);
	} else
		ctl_shutdown_print(m, (long long)json_integer_value(running));
out:
	json_decref(reply);
	json_decref(req);
	return (rv);
}

/*
 * backup: jobd writes the file, so a relative FILE is made absolute here,
 * against jobctl's folder (jobd's is another).
 */
static int
ctl_exec_backup(struct ctl_ctx *ctx, struct ctl_args *args)
{
	const char *file = args->argv[0];
	json_t *req, *reply = NULL, *path, *bytes, *obj;
	char *cwd = NULL, *abs;
	int rv;

	if (*file == '\0')
		return (ctl_usage_error(ctx->op, "FILE is empty"));
	if (*file == '/')
		abs = xstrdup(file);
	else if ((cwd = getcwd(NULL, 0)) == NULL) {
		output_error("cannot get the current folder: %s",
		             strerror(errno));
		return (CTL_EXIT_ERROR);
	} else
		abs = xasprintf("%s%s%s", cwd,
		                cwd[strlen(cwd) - 1] == '/' ? "" : "/", file);
	free(cwd);
	req = proto_request_new(ctx->op);
	if ((rv = ctl_set_str(ctx, req, "path", abs, "FILE")) != 0 ||
	    (rv = ctl_call(ctx, req, CTL_RECV_BACKUP_MS, &reply)) != 0)
		goto out;
	if ((path = ctl_reply_get(reply, "path", JSON_STRING)) == NULL ||
	    (bytes = ctl_reply_get(reply, "bytes", JSON_INTEGER)) == NULL)
		rv = CTL_EXIT_PROTOCOL;
	else if (ctx->json) {
		obj = json_pack("{s:O, s:O}", "path", path, "bytes", bytes);
		output_json(obj);
		json_decref(obj);
	} else
		printf("wrote %s (%lld bytes)\n", json_string_value(path),
		       (long long)json_integer_value(bytes));
out:
	free(abs);
	json_decref(reply);
	json_decref(req);
	return (rv);
}

static int
ctl_exec_version(struct ctl_ctx *ctx, struct ctl_args *args)
{
	json_t *req = proto_request_new(ctx->op), *reply = NULL, *v, *proto;
	json_t *obj;
	int rv;

	(void)args;
	if ((rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
		goto out;
	if ((v = ctl_reply_get(reply, "version", JSON_STRING)) == NULL ||
	    (proto = ctl_reply_get(reply, "protocol", JSON_INTEGER)) == NULL)
		rv = CTL_EXIT_PROTOCOL;
	else if (ctx->json) {
		obj = json_pack("{s:s, s:O, s:O}", "jobctl", JOBD_VERSION,
		                "jobd", v, "protocol", proto);
		output_json(obj);
		json_decref(obj);
	} else
		printf("jobctl %s\njobd %s (protocol %lld)\n", JOBD_VERSION,
		       json_string_value(v),
		       (long long)json_integer_value(proto));
out:
	json_decref(reply);
	json_decref(req);
	return (rv);
}

static const struct option ctl_longopts_submit[] = {
	{ "name", required_argument, NULL, 'n' },
	{ "queue", required_argument, NULL, 'q' },
	{ "priority", required_argument, NULL, 'p' },
	{ "at", required_argument, NULL, 'a' },
	{ "in", required_argument, NULL, 'i' },
	{ "after", required_argument, NULL, 'A' },
	{ "after-any", required_argument, NULL, 'Y' },
	{ "after-fail", required_argument, NULL, 'F' },
	{ "timeout", required_argument, NULL, 't' },
	{ "kill-after", required_argument, NULL, 'K' },
	{ "retries", required_argument, NULL, 'r' },
	{ "retry-delay", required_argument, NULL, 'D' },
	{ "retry-on-lost", no_argument, NULL, 'L' },
	{ "array", required_argument, NULL, 'R' },
	{ "key", required_argument, NULL, 'k' },
	{ "stdin", no_argument, NULL, 'I' },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_longopts_list[] = {
	{ "state", required_argument, NULL, 's' },
	{ "queue", required_argument, NULL, 'q' },
	{ "name", required_argument, NULL, 'n' },
	{ "since", required_argument, NULL, 'S' },
	{ "limit", required_argument, NULL, 'l' },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_longopts_logs[] = {
	{ "stderr", no_argument, NULL, 'e' },
	{ "follow", no_argument, NULL, 'f' },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_longopts_wait[] = {
	{ "timeout", required_argument, NULL, 't' },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_longopts_cancel[] = {
	{ "signal", required_argument, NULL, 's' },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_longopts_set[] = {
	{ "priority", required_argument, NULL, 'p' },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_longopts_queue[] = {
	{ "parallel", required_argument, NULL, 'P' },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_longopts_shutdown[] = {
	{ "drain", no_argument, NULL, 'd' },
	{ "stop-jobs", no_argument, NULL, 'S' },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_longopts_purge[] = {
	{ "state", required_argument, NULL, 's' },
	{ "older-than", required_argument, NULL, 'o' },
	{ NULL, 0, NULL, 0 },
};

/* Help: the options of each command (names padded to 20), then notes. */
static const char ctl_opts_submit[] =
    "  -c COMMAND          run COMMAND with /bin/sh -c\n"
    "  -- PROGRAM [ARG...] run PROGRAM with these arguments, no shell\n"
    "  --stdin             one job for each line of standard input, a\n"
    "                      shell command (empty lines skipped), all with\n"
    "                      these options; up to 10000 lines go in one\n"
    "                      request, stored at once (--key: at most 240\n"
    "                      bytes; the next requests add .2, .3, ...)\n"
    "  -n, --name NAME     a name to show in lists\n"
    "  -q, --queue QUEUE   the queue to run in (default \"default\"), made\n"
    "                      on first use: 1 to 64 letters, digits, '.',\n"
    "                      '_' or '-', the first a letter or a digit\n"
    "  -p, --priority N    higher runs first, from -1000000 to 1000000\n"
    "                      (default 0)\n"
    "  --at TIME           start no earlier than TIME; not in the past\n"
    "  --in DURATION       start DURATION from now (0: at once); not with\n"
    "                      --at\n"
    "  --after ID,...      start once each of these jobs has succeeded;\n"
    "                      if one ends otherwise, the job is cancelled\n"
    "  --after-any ID,...  start once each of these jobs has ended, in\n"
    "                      any way\n"
    "  --after-fail ID,... start once each of these jobs has ended other\n"
    "                      than succeeded (failed, cancelled or lost); if\n"
    "                      one succeeds, the job is cancelled\n"
    "  --timeout DURATION  limit each attempt to DURATION from its start:\n"
    "                      then SIGTERM to its process group, SIGKILL\n"
    "                      after --kill-after, and it fails (\"timeout\")\n"
    "  --kill-after DURATION\n"
    "                      from SIGTERM to SIGKILL, on a timeout or a\n"
    "                      cancel: at most 1d (default 10s)\n"
    "  --retries N         retry a failed attempt up to N times, from 0 to\n"
    "                      1000 (default 0)\n"
    "  --retry-delay DURATION\n"
    "                      wait before the first retry, at most 1d\n"
    "                      (default 1s); each next one waits twice as\n"
    "                      long (at most 1h), plus up to 25% at random\n"
    "  --retry-on-lost     also retry an attempt that ended lost\n"
    "  --array START-END[%LIMIT]\n"
    "                      an array: one task per index from START to END\n"
    "                      (0 to 1000000, at most 1000 tasks; N alone: one\n"
    "                      task), each a job of its own; with %LIMIT (1 to\n"
    "                      1000), at most LIMIT of them queued or running\n"
    "                      at once\n"
    "  --key KEY           idempotency key: a submit with a key already\n"
    "                      used returns that job (default: a random key)\n";
static const char ctl_notes_submit[] =
    "TIME: 2026-11-28T09:00:00Z, 2026-11-28 09:00:00.5+01:00 (RFC 3339),\n"
    "or HH:MM or HH:MM:SS in local time: the next time the clock shows it.\n"
    "DURATION: 90s, 5m, 2h, 1d, 500ms, 1h30m; a bare number is seconds.\n"
    "An ID in --after, --after-any or --after-fail may be an array's id:\n"
    "it stands for every task of the array.\n"
    "\n"
    "The job runs in the current folder with the current environment,\n"
    "plus JOBD_JOB_ID, JOBD_QUEUE, JOBD_ATTEMPT (1, 2, ...) and, for an\n"
    "array's task, JOBD_ARRAY_ID and JOBD_ARRAY_INDEX.\n"
    "Prints the job's id; with --array, the array's id (its tasks have\n"
    "the ids that follow it); with --stdin, each job's id, one per line.\n"
    "With --json, the job object (an array's first task); with --stdin,\n"
    "an array of the ids. If a request of --stdin fails, the ids of the\n"
    "requests before it have been printed, and their jobs are queued.\n";

static const char ctl_notes_status[] =
    "An ID may be an array's id: it stands for all its tasks, in index\n"
    "order. Prints one job as a block of fields, several as a table;\n"
    "with --json, the job object, or an array of them.\n";

static const char ctl_opts_list[] =
    "  --state STATE       only jobs in STATE: blocked, scheduled, queued,\n"
    "                      running, succeeded, failed, cancelled or lost\n"
    "  --queue QUEUE       only jobs of QUEUE\n"
    "  --name GLOB         only jobs whose name matches GLOB: * any text,\n"
    "                      ? one character, [...] one of a set; case counts\n"
    "  --since TIME|DURATION\n"
    "                      only jobs submitted at or after TIME (RFC 3339,\n"
    "                      or HH:MM[:SS] local time, the last one passed),\n"
    "                      or within the last DURATION (90s, 5m, 2h, 1d)\n"
    "  --limit N           at most N jobs (default 100)\n";
static const char ctl_notes_list[] =
    "The filters combine. Prints a table (ID, STATE, QUEUE, EXIT,\n"
    "SUBMITTED, NAME, COMMAND), newest first; a held job's state reads\n"
    "e.g. \"queued (held)\". With --json, an array of job objects.\n";

/* The end of the notes of wait and logs (--follow). */
#define CTL_NOTES_RECONNECT                                                    \
	"If jobd goes away meanwhile (it cannot be reached, the connection\n"  \
	"drops, or it says it is stopping), jobctl quietly tries again for\n"  \
	"up to JOBCTL_RECONNECT_S seconds (default 60; 0: not at all), and\n"  \
	"goes on with the next jobd as if nothing had happened.\n"

static const char ctl_opts_logs[] =
    "  --stderr            the job's standard error, not its output\n"
    "  --follow            go on as the job writes, until it ends\n";
static const char ctl_notes_logs[] =
    "ID is a job's id, not an array's.\n"
    "With --json, prints {\"id\", \"stream\", \"data\"}, with invalid UTF-8\n"
    "replaced by U+FFFD; with --follow, one such line per "
    "chunk.\n" CTL_NOTES_RECONNECT;

static const char ctl_opts_wait[] =
    "  --timeout DURATION  give up after DURATION: 90s, 5m, 2h, 1d, 500ms,\n"
    "                      1h30m; a bare number is seconds\n";
static const char ctl_notes_wait[] =
    "An ID may be an array's id: it stands for all its tasks. A job\n"
    "waiting for an automatic retry has not ended. Prints the jobs as\n"
    "status does.\n"
    "Exits with the job's exit code, or 128+N if signal N killed it. A\n"
    "job that ended cancelled, failed or lost without either (or with\n"
    "code 0) gives 1: only a job that succeeded gives 0. With several\n"
    "jobs, the first non-zero code in the order given (an array's tasks\n"
    "in index order). 124 if DURATION passed first.\n" CTL_NOTES_RECONNECT;

static const char ctl_opts_cancel[] =
    "  --signal SIG        the signal for running jobs: TERM, SIGTERM or\n"
    "                      15 (default TERM); KILL follows after the job's\n"
    "                      --kill-after (default 10s) if they stay\n";
static const char ctl_notes_cancel[] =
    "An ID may be an array's id: it stands for all its tasks. If any job\n"
    "has already ended, nothing changes. Prints \"ID cancelled\", or \"ID\n"
    "cancelling (running)\", per job; with --json, an array of the jobs.\n";

static const char ctl_opts_set[] =
    "  -p, --priority N    the new priority, from -1000000 to 1000000\n"
    "                      (required)\n";
/* The end of the notes of set, hold, release and retry. */
#define CTL_NOTES_IDS                                                          \
	"An ID may be an array's id: it stands for all its tasks. If any\n"    \
	"job cannot take the change, nothing changes. Prints the jobs as\n"    \
	"status does.\n"
static const char ctl_notes_set[] = "Only jobs that have not started (blocked, "
                                    "scheduled or queued).\n" CTL_NOTES_IDS;
static const char ctl_notes_hold[] =
    "A held job keeps its state (blocked, scheduled or queued) but does\n"
    "not start until released; its state reads e.g. \"queued (held)\".\n"
    "Running or ended jobs cannot be held.\n" CTL_NOTES_IDS;
static const char ctl_notes_release[] =
    "Releasing a job that is not held changes nothing; running or ended\n"
    "jobs cannot be released.\n" CTL_NOTES_IDS;
static const char ctl_notes_retry[] =
    "Only ended jobs: each becomes queued again as a new attempt, with\n"
    "its automatic retries counted afresh.\n" CTL_NOTES_IDS;

static const char ctl_opts_queue[] =
    "  --parallel N        with set: at most N of the queue's jobs\n"
    "                      running at once, from 1 to 100000\n";
static const char ctl_notes_queue[] =
    "list (the default) shows every queue. set, pause (no new starts in\n"
    "the queue; running jobs go on) and resume make the queue if need be\n"
    "and show it after the change; on a jobd run as root, only root may\n"
    "use them. Prints a table QUEUE, PARALLEL (- if the queue has no\n"
    "limit of its own), PAUSED, RUNNING; with --json, an array of\n"
    "{\"name\", \"parallel\", \"paused\", \"running\"}.\n";

static const char ctl_opts_purge[] =
    "  --state STATE       only jobs that ended in STATE: succeeded,\n"
    "                      failed, cancelled or lost\n"
    "  --older-than DURATION\n"
    "                      only jobs that ended at least DURATION ago\n"
    "                      (90s, 5m, 2h, 1d)\n";
static const char ctl_notes_purge[] =
    "Deletes ended jobs and their output files; without options, every\n"
    "ended job. A user other than root purges only their own jobs.\n"
    "Prints \"purged N jobs\"; with --json, {\"purged\": N}.\n";

static const char ctl_opts_shutdown[] =
    "  --drain             start no new job, and stop once no job runs\n"
    "  --stop-jobs         cancel the running jobs, and stop once they\n"
    "                      have ended\n";
static const char ctl_notes_shutdown[] =
    "Without an option, jobd stops now; its running jobs go on under their\n"
    "supervisors, and the next jobd takes them over. With --drain, queued\n"
    "jobs wait for the next jobd, and until it stops jobd answers every\n"
    "request (submits too). With --stop-jobs, each running job's process\n"
    "group gets SIGTERM, then SIGKILL after the job's --kill-after; the\n"
    "jobs end cancelled. A later shutdown may make the mode stronger\n"
    "(--drain, then --stop-jobs, then now), not weaker.\n"
    "Only root or jobd's own user. Returns once jobd has taken the\n"
    "request: it does not wait for jobd to exit. Prints what jobd does;\n"
    "with --json, {\"mode\", \"running\"}: the mode in force and the jobs\n"
    "running.\n";

static const char ctl_notes_backup[] =
    "jobd writes the copy itself, as its own user: a relative FILE is taken\n"
    "from the current folder, FILE must not exist, and its folder must be\n"
    "writable by jobd. The copy is a whole sqlite database, written to a\n"
    "temporary name beside FILE and renamed once complete, while jobd\n"
    "runs on. Only root or jobd's own user. Waits up to 10 minutes.\n"
    "Prints \"wrote FILE (N bytes)\"; with --json, {\"path\", \"bytes\"}.\n";

/* submit stops at the first argument: the rest is the job's argv. */
static const struct ctl_cmd ctl_cmd_SUBMIT = {
	.optstring = "+n:q:p:c:",
	.longopts = ctl_longopts_submit,
	.maxargs = -1,
	.exec = ctl_exec_submit,
	.options = ctl_opts_submit,
	.notes = ctl_notes_submit,
};

static const struct ctl_cmd ctl_cmd_STATUS = {
	.minargs = 1,
	.maxargs = -1,
	.exec = ctl_exec_status,
	.notes = ctl_notes_status,
};

static const struct ctl_cmd ctl_cmd_LIST = {
	.longopts = ctl_longopts_list,
	.exec = ctl_exec_list,
	.options = ctl_opts_list,
	.notes = ctl_notes_list,
};

static const struct ctl_cmd ctl_cmd_LOGS = {
	.longopts = ctl_longopts_logs,
	.minargs = 1,
	.maxargs = 1,
	.exec = ctl_exec_logs,
	.options = ctl_opts_logs,
	.notes = ctl_notes_logs,
};

static const struct ctl_cmd ctl_cmd_WAIT = {
	.longopts = ctl_longopts_wait,
	.minargs = 1,
	.maxargs = -1,
	.exec = ctl_exec_wait,
	.options = ctl_opts_wait,
	.notes = ctl_notes_wait,
};

static const struct ctl_cmd ctl_cmd_CANCEL = {
	.longopts = ctl_longopts_cancel,
	.minargs = 1,
	.maxargs = -1,
	.exec = ctl_exec_cancel,
	.options = ctl_opts_cancel,
	.notes = ctl_notes_cancel,
};

static const struct ctl_cmd ctl_cmd_SET = {
	.optstring = "p:",
	.longopts = ctl_longopts_set,
	.minargs = 1,
	.maxargs = -1,
	.exec = ctl_exec_set,
	.options = ctl_opts_set,
	.notes = ctl_notes_set,
};

static const struct ctl_cmd ctl_cmd_HOLD = {
	.minargs = 1,
	.maxargs = -1,
	.exec = ctl_exec_ids,
	.notes = ctl_notes_hold,
};

static const struct ctl_cmd ctl_cmd_RELEASE = {
	.minargs = 1,
	.maxargs = -1,
	.exec = ctl_exec_ids,
	.notes = ctl_notes_release,
};

static const struct ctl_cmd ctl_cmd_RETRY = {
	.minargs = 1,
	.maxargs = -1,
	.exec = ctl_exec_ids,
	.notes = ctl_notes_retry,
};

static const struct ctl_cmd ctl_cmd_QUEUE = {
	.longopts = ctl_longopts_queue,
	.maxargs = 2,
	.exec = ctl_exec_queue,
	.options = ctl_opts_queue,
	.notes = ctl_notes_queue,
};

static const struct ctl_cmd ctl_cmd_PURGE = {
	.longopts = ctl_longopts_purge,
	.exec = ctl_exec_purge,
	.options = ctl_opts_purge,
	.notes = ctl_notes_purge,
};

static const struct ctl_cmd ctl_cmd_SHUTDOWN = {
	.longopts = ctl_longopts_shutdown,
	.exec = ctl_exec_shutdown,
	.options = ctl_opts_shutdown,
	.notes = ctl_notes_shutdown,
};

static const struct ctl_cmd ctl_cmd_BACKUP = {
	.minargs = 1,
	.maxargs = 1,
	.exec = ctl_exec_backup,
	.notes = ctl_notes_backup,
};

static const struct ctl_cmd ctl_cmd_PING = {
	.exec = ctl_exec_ping,
};

static const struct ctl_cmd ctl_cmd_VERSION = {
	.exec = ctl_exec_version,
};

/* Indexed by operation; an operation without a ctl_cmd_<IDENT> fails here. */
const struct ctl_cmd *const ctl_cmds[PROTO_OP_MAX] = {
#define X(ident, name, flags, usage, summary)                                  \
	[PROTO_OP_##ident] = &ctl_cmd_##ident,
#include "proto-ops.def"
#undef X
};
