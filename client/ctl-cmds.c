/*
 * The commands: one entry per operation in ctl_cmds, which is built from
 * proto-ops.def, so an operation without a client entry does not compile.
 * An entry turns its arguments into a request and prints the reply. The
 * steps they share are here too: option parsing, job ids, the round trip
 * (every request is checked against the operations table before it is sent,
 * every reply for its "ok" before a command looks at it), and the checks on
 * job objects that output.c relies on.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "ctl.h"
#include "log.h"
#include "util.h"

/* The options every command takes, and room for a command's own. */
#define CTL_OPT_HELP     'H'
#define CTL_OPT_JSON     'J'
#define CTL_LONGOPTS_MAX 16

/* Bytes of randomness in the key of a submit without --key. */
#define CTL_KEY_BYTES 16

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
		args->opts[ch] = optarg != NULL ? optarg : "";
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

/* Connect on the first request. */
static int
ctl_connect(struct ctl_ctx *ctx)
{
	char url[CTL_URL_MAX];
	int rv;

	if (ctx->conn != NULL)
		return (CTL_EXIT_OK);
	if ((rv = ctl_socket_url(ctx->socket, url, sizeof url)) != 0)
		return (rv);
	return (ctl_conn_open(url, &ctx->conn));
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
 * Send req (the caller keeps it) and wait up to timeout_ms for the reply.
 * Returns 0 and sets *replyp (the caller owns it) if jobd says ok; otherwise
 * says why and returns the exit code.
 */
static int
ctl_call(struct ctl_ctx *ctx, json_t *req, int timeout_ms, json_t **replyp)
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
		rv = ctl_conn_request(ctx->conn, buf, len, timeout_ms, &reply);
	free(buf);
	if (rv == 0 && (rv = ctl_reply_check(reply)) != 0)
		json_decref(reply);
	if (rv == 0)
		*replyp = reply;
	return (rv);
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

/* reply["jobs"], checked: an array of n jobs (n < 0: any number). */
static json_t *
ctl_reply_jobs(json_t *reply, int n)
{
	json_t *jobs, *job;
	size_t i;

	if ((jobs = ctl_reply_get(reply, "jobs", JSON_ARRAY)) == NULL)
		return (NULL);
	if (n >= 0 && json_array_size(jobs) != (size_t)n) {
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

/* The job with this id in jobs, or NULL. */
static json_t *
ctl_jobs_find(json_t *jobs, long long id)
{
	json_t *job;
	size_t i;

	json_array_foreach(jobs, i, job)
	{
		if (ctl_job_id(job) == id)
			return (job);
	}
	return (NULL);
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

/* submit: what to run, argv after "--" or a shell command after -c. */
static int
ctl_submit_command(struct ctl_ctx *ctx, struct ctl_args *args, json_t *req)
{
	const char *shell = args->opts['c'];
	int bad;

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

/* submit: the name, the priority and the idempotency key. */
static int
ctl_submit_options(struct ctl_ctx *ctx, struct ctl_args *args, json_t *req)
{
	const char *name = args->opts['n'], *prio = args->opts['p'];
	const char *key = args->opts['k'];
	char hex[2 * CTL_KEY_BYTES + 1];
	long long n;
	int rv;

	if (name != NULL &&
	    (rv = ctl_set_str(ctx, req, "name", name, "-n NAME")) != 0)
		return (rv);
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

static int
ctl_exec_submit(struct ctl_ctx *ctx, struct ctl_args *args)
{
	json_t *req = proto_request_new(ctx->op), *reply = NULL, *job;
	int rv;

	if ((rv = ctl_submit_command(ctx, args, req)) != 0 ||
	    (rv = ctl_submit_options(ctx, args, req)) != 0 ||
	    (rv = ctl_submit_context(ctx, req)) != 0 ||
	    (rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
		goto out;
	if ((job = ctl_reply_job(reply)) == NULL)
		rv = CTL_EXIT_PROTOCOL;
	else if (ctx->json)
		output_json(job);
	else
		printf("%lld\n", ctl_job_id(job));
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
	else if (args->argc > 1)
		ctl_print_jobs(ctx, jobs);
	else if (ctx->json)
		output_json(json_array_get(jobs, 0));
	else
		output_job(json_array_get(jobs, 0));
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

static int
ctl_exec_list(struct ctl_ctx *ctx, struct ctl_args *args)
{
	const char *state = args->opts['s'], *limit = args->opts['l'];
	json_t *req, *reply = NULL, *jobs;
	long long n = CTL_LIST_LIMIT;
	int rv;

	if (state != NULL && proto_state_parse(state) < 0)
		return (ctl_list_bad_state(ctx, state));
	if (limit != NULL && util_parse_int(limit, 1, PROTO_MAX_LIST, &n) != 0)
		return (ctl_usage_error(
		    ctx->op, "--limit: '%s' is not a number from 1 to %d",
		    limit, PROTO_MAX_LIST));
	req = proto_request_new(ctx->op);
	if (state != NULL)
		json_object_set_new(req, "state", json_string(state));
	json_object_set_new(req, "limit", json_integer(n));
	if ((rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
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
 * is parked by jobd until there is output, so this loop never spins.
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
	req = proto_request_new(ctx->op);
	json_object_set_new(req, "id", json_integer(lg.id));
	json_object_set_new(req, "stream", json_string(lg.stream));
	json_object_set_new(req, "follow", json_boolean(lg.follow));
	while (more) {
		json_object_set_new(req, "offset", json_integer(lg.offset));
		if ((rv = ctl_call(ctx, req,
		                   lg.follow ? CTL_RECV_PARK_MS : CTL_RECV_MS,
		                   &reply)) != 0)
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

/* wait is over: print the jobs, return the first non-zero code. */
static int
ctl_wait_done(struct ctl_ctx *ctx, json_t *ids, json_t *reply)
{
	json_t *jobs, *id, *job;
	size_t i;
	int rv = CTL_EXIT_OK, code;

	if ((jobs = ctl_reply_jobs(reply, -1)) == NULL)
		return (CTL_EXIT_PROTOCOL);
	json_array_foreach(ids, i, id)
	{
		job = ctl_jobs_find(jobs, json_integer_value(id));
		if (job == NULL) {
			output_error("malformed reply from jobd: no job %lld",
			             (long long)json_integer_value(id));
			return (CTL_EXIT_PROTOCOL);
		}
		if (!ctx->json)
			output_job_line(job);
		if ((code = ctl_wait_code(job)) != 0 && rv == CTL_EXIT_OK)
			rv = code;
	}
	if (ctx->json)
		output_json(jobs);
	return (rv);
}

/* --timeout passed: say which jobs have not ended (asking jobd). */
static int
ctl_wait_timeout(struct ctl_ctx *ctx, json_t *req)
{
	json_t *status, *reply = NULL, *jobs = NULL, *id, *job;
	const char *state;
	char list[256];
	size_t i, len = 0, n = 0;

	status = proto_request_new(PROTO_OP_STATUS);
	json_object_set(status, "ids", json_object_get(req, "ids"));
	if (ctl_call(ctx, status, CTL_RECV_MS, &reply) == 0)
		jobs = ctl_reply_jobs(reply, -1);
	list[0] = '\0';
	json_array_foreach(json_object_get(req, "ids"), i, id)
	{
		job = ctl_jobs_find(jobs, json_integer_value(id));
		state = json_string_value(json_object_get(job, "state"));
		if (state != NULL && JOB_TERMINAL(proto_state_parse(state)))
			continue;
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
 * most PROTO_MAX_PARK_MS; then ask again with the time that is left.
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
	if ((rv = ctl_ids_request(ctx, args, &req)) != 0)
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
		if ((rv = ctl_call(ctx, req, CTL_RECV_PARK_MS, &reply)) != 0)
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

static int
ctl_exec_ping(struct ctl_ctx *ctx, struct ctl_args *args)
{
	json_t *req = proto_request_new(ctx->op), *reply = NULL, *pid, *v, *obj;
	int rv;

	(void)args;
	if ((rv = ctl_call(ctx, req, CTL_RECV_MS, &reply)) != 0)
		goto out;
	if ((pid = ctl_reply_get(reply, "pid", JSON_INTEGER)) == NULL ||
	    (v = ctl_reply_get(reply, "version", JSON_STRING)) == NULL)
		rv = CTL_EXIT_PROTOCOL;
	else if (ctx->json) {
		obj = json_pack("{s:O, s:O}", "pid", pid, "version", v);
		output_json(obj);
		json_decref(obj);
	} else
		printf("jobd %s (pid %lld) is up\n", json_string_value(v),
		       (long long)json_integer_value(pid));
out:
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
	{ "key", required_argument, NULL, 'k' },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_longopts_list[] = {
	{ "state", required_argument, NULL, 's' },
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

/* Help: the options of each command (names padded to 20), then notes. */
static const char ctl_opts_submit[] =
    "  -n NAME             a name to show in lists\n"
    "  -p PRIORITY         higher runs first (default 0)\n"
    "  --key KEY           idempotency key: a submit with a key already\n"
    "                      used returns that job (default: a random key)\n"
    "  -c COMMAND          run COMMAND with /bin/sh -c\n"
    "  -- PROGRAM [ARG...] run PROGRAM with these arguments, no shell\n";
static const char ctl_notes_submit[] =
    "The job runs in the current folder with the current environment.\n"
    "Prints the job's id.\n";

static const char ctl_notes_status[] =
    "Prints one job as a block of fields, several as a table.\n";

static const char ctl_opts_list[] =
    "  --state STATE       only jobs in STATE: blocked, scheduled, queued,\n"
    "                      running, succeeded, failed, cancelled or lost\n"
    "  --limit N           at most N jobs (default 100)\n";

static const char ctl_opts_logs[] =
    "  --stderr            the job's standard error, not its output\n"
    "  --follow            go on as the job writes, until it ends\n";
static const char ctl_notes_logs[] =
    "With --json, prints {\"id\", \"stream\", \"data\"}, with invalid UTF-8\n"
    "replaced by U+FFFD; with --follow, one such line per chunk.\n";

static const char ctl_opts_wait[] =
    "  --timeout DURATION  give up after DURATION: 90s, 5m, 2h, 1d, 500ms,\n"
    "                      1h30m; a bare number is seconds\n";
static const char ctl_notes_wait[] =
    "Exits with the job's exit code, or 128+N if signal N killed it. A\n"
    "job that ended cancelled, failed or lost without either (or with\n"
    "code 0) gives 1: only a job that succeeded gives 0. With several\n"
    "jobs, the first non-zero code in the order given. 124 if DURATION\n"
    "passed first.\n";

static const char ctl_opts_cancel[] =
    "  --signal SIG        the signal for running jobs: TERM, SIGTERM or\n"
    "                      15 (default TERM); KILL follows if they stay\n";

/* submit stops at the first argument: the rest is the job's argv. */
static const struct ctl_cmd ctl_cmd_SUBMIT = {
	.optstring = "+n:p:c:",
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
