/*
 * The operations table and the central request checks. Nothing here trusts
 * its input: every decode returns a status and a message, never aborts.
 */
#include <ctype.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto.h"
#include "util.h"

#define ID_MAX    INT64_MAX
#define NAME_MAX_ 256

static const struct proto_field proto_fields_SUBMIT[] = {
	{ "argv", PROTO_T_STRINGS, 0, 1, PROTO_MAX_ARGS },
	{ "shell", PROTO_T_STRING, 0, 1, PROTO_MAX_MSG },
	{ "shells", PROTO_T_STRINGS, 0, 1, PROTO_MAX_BATCH },
	{ "name", PROTO_T_STRING, 0, 0, NAME_MAX_ },
	{ "priority", PROTO_T_INT, 0, PROTO_PRIO_MIN, PROTO_PRIO_MAX },
	{ "key", PROTO_T_STRING, 0, 1, NAME_MAX_ },
	{ "cwd", PROTO_T_STRING, 1, 1, 4096 },
	{ "env", PROTO_T_STRINGS, 0, 0, PROTO_MAX_ARGS },
	{ "queue", PROTO_T_STRING, 0, 1, PROTO_QUEUE_NAME_MAX },
	{ "run_at", PROTO_T_INT, 0, 0, PROTO_TIME_MAX },
	{ "after", PROTO_T_INTS, 0, 1, PROTO_MAX_IDS },
	{ "after_any", PROTO_T_INTS, 0, 1, PROTO_MAX_IDS },
	{ "after_fail", PROTO_T_INTS, 0, 1, PROTO_MAX_IDS },
	{ "timeout_ms", PROTO_T_INT, 0, 1, PROTO_DURATION_MAX },
	{ "kill_after_ms", PROTO_T_INT, 0, 0, PROTO_DAY_MS },
	{ "retries", PROTO_T_INT, 0, 0, PROTO_MAX_RETRIES },
	{ "retry_delay_ms", PROTO_T_INT, 0, 0, PROTO_DAY_MS },
	{ "retry_on_lost", PROTO_T_BOOL, 0, 0, 1 },
	{ "array_start", PROTO_T_INT, 0, 0, PROTO_ARRAY_INDEX_MAX },
	{ "array_end", PROTO_T_INT, 0, 0, PROTO_ARRAY_INDEX_MAX },
	{ "array_limit", PROTO_T_INT, 0, 1, PROTO_MAX_ARRAY },
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_STATUS[] = {
	{ "ids", PROTO_T_INTS, 1, 1, PROTO_MAX_IDS },
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_LIST[] = {
	{ "state", PROTO_T_STRING, 0, 1, 32 },
	{ "limit", PROTO_T_INT, 0, 1, PROTO_MAX_LIST },
	{ "queue", PROTO_T_STRING, 0, 1, PROTO_QUEUE_NAME_MAX },
	{ "name", PROTO_T_STRING, 0, 1, NAME_MAX_ },
	{ "since", PROTO_T_INT, 0, 0, PROTO_TIME_MAX },
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_LOGS[] = {
	{ "id", PROTO_T_INT, 1, 1, ID_MAX },
	{ "stream", PROTO_T_STRING, 0, 6, 6 },
	{ "offset", PROTO_T_INT, 0, 0, INT64_MAX },
	{ "follow", PROTO_T_BOOL, 0, 0, 1 },
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_WAIT[] = {
	{ "ids", PROTO_T_INTS, 1, 1, PROTO_MAX_IDS },
	{ "timeout_ms", PROTO_T_INT, 0, 0, INT64_MAX },
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_CANCEL[] = {
	{ "ids", PROTO_T_INTS, 1, 1, PROTO_MAX_IDS },
	{ "signal", PROTO_T_STRING, 0, 1, 16 },
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_SET[] = {
	{ "ids", PROTO_T_INTS, 1, 1, PROTO_MAX_IDS },
	{ "priority", PROTO_T_INT, 1, PROTO_PRIO_MIN, PROTO_PRIO_MAX },
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_HOLD[] = {
	{ "ids", PROTO_T_INTS, 1, 1, PROTO_MAX_IDS },
	{ NULL, 0, 0, 0, 0 },
};
#define proto_fields_RELEASE proto_fields_HOLD
#define proto_fields_RETRY   proto_fields_HOLD
static const struct proto_field proto_fields_QUEUE[] = {
	{ "action", PROTO_T_STRING, 1, 1, 16 },
	{ "name", PROTO_T_STRING, 0, 1, PROTO_QUEUE_NAME_MAX },
	{ "parallel", PROTO_T_INT, 0, 1, PROTO_MAX_PARALLEL },
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_PURGE[] = {
	{ "state", PROTO_T_STRING, 0, 1, 32 },
	{ "older_than_ms", PROTO_T_INT, 0, 0, PROTO_DURATION_MAX },
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_SHUTDOWN[] = {
	{ "mode", PROTO_T_STRING, 0, 1, 16 }, /* now, drain, stop_jobs */
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_BACKUP[] = {
	{ "path", PROTO_T_STRING, 1, 2, 4096 }, /* absolute */
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_PING[] = {
	{ NULL, 0, 0, 0, 0 },
};
static const struct proto_field proto_fields_VERSION[] = {
	{ NULL, 0, 0, 0, 0 },
};

const struct proto_op_info proto_ops[PROTO_OP_MAX] = {
#define X(ident, name, flags, usage, summary)                                  \
	[PROTO_OP_##                                                           \
	    ident] = { name, flags, usage, summary, proto_fields_##ident },
#include "proto-ops.def"
#undef X
};

static const char *proto_status_names[PROTO_STATUS_MAX] = {
	[PROTO_OK] = "ok",
	[PROTO_EBADMSG] = "bad_request",
	[PROTO_EVERSION] = "bad_version",
	[PROTO_EUNKNOWN] = "unknown_op",
	[PROTO_ENOTFOUND] = "not_found",
	[PROTO_EDENIED] = "denied",
	[PROTO_ESTATE] = "invalid_state",
	[PROTO_ESTORAGE] = "storage",
	[PROTO_ESHUTDOWN] = "shutting_down",
	[PROTO_EINTERNAL] = "internal",
};

static const char *proto_state_names[JOB_STATE_MAX] = {
	[JOB_BLOCKED] = "blocked",     [JOB_SCHEDULED] = "scheduled",
	[JOB_QUEUED] = "queued",       [JOB_RUNNING] = "running",
	[JOB_SUCCEEDED] = "succeeded", [JOB_FAILED] = "failed",
	[JOB_CANCELLED] = "cancelled", [JOB_LOST] = "lost",
};

const char *
proto_status_name(int st)
{
	if (st < 0 || st >= PROTO_STATUS_MAX)
		return ("internal");
	return (proto_status_names[st]);
}

const char *
proto_state_name(int s)
{
	if (s < 0 || s >= JOB_STATE_MAX)
		return ("unknown");
	return (proto_state_names[s]);
}

/* Returns the state called name, or -1. */
int
proto_state_parse(const char *name)
{
	for (int s = 0; s < JOB_STATE_MAX; s++)
		if (strcmp(proto_state_names[s], name) == 0)
			return (s);
	return (-1);
}

/*
 * Is name a queue name: 1 to PROTO_QUEUE_NAME_MAX bytes of letters, digits,
 * '.', '_' and '-', the first a letter or a digit?
 */
int
proto_queue_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > PROTO_QUEUE_NAME_MAX ||
	    !isalnum((unsigned char)*name))
		return (0);
	for (const char *p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("._-", *p) == NULL)
			return (0);
	return (1);
}

/* Returns the operation called name, or -1. */
int
proto_op_lookup(const char *name)
{
	for (int op = 0; op < PROTO_OP_MAX; op++)
		if (strcmp(proto_ops[op].name, name) == 0)
			return (op);
	return (-1);
}

/* "TERM" for SIGTERM; NULL for a number that names no signal. */
const char *
proto_signal_name(int sig)
{
	if (sig <= 0 || sig >= SIGRTMIN)
		return (NULL);
	return (sigabbrev_np(sig));
}

/*
 * Accepts "TERM", "SIGTERM", "term" or "15". Returns the signal number, or
 * -1 if the text names no signal a job can be sent.
 */
int
proto_signal_parse(const char *text)
{
	long long n;

	if (util_parse_int(text, 1, SIGRTMIN - 1, &n) == 0)
		return (proto_signal_name((int)n) != NULL ? (int)n : -1);
	if (strncasecmp(text, "SIG", 3) == 0)
		text += 3;
	for (int sig = 1; sig < SIGRTMIN; sig++) {
		const char *name = proto_signal_name(sig);
		if (name != NULL && strcasecmp(name, text) == 0)
			return (sig);
	}
	return (-1);
}

static const char *
proto_type_name(enum proto_type t)
{
	switch (t) {
	case PROTO_T_INT:
		return ("an integer");
	case PROTO_T_BOOL:
		return ("a boolean");
	case PROTO_T_STRING:
		return ("a string");
	case PROTO_T_INTS:
		return ("an array of integers");
	case PROTO_T_STRINGS:
		return ("an array of strings");
	}
	return ("?");
}

/* Check one field's value against its spec. */
static int
proto_field_check(const struct proto_field *f, json_t *v, char *err,
                  size_t errlen)
{
	size_t i, n;
	json_t *e;
	long long x;
	const char *what = "length";

	switch (f->type) {
	case PROTO_T_INT:
		if (!json_is_integer(v))
			goto badtype;
		x = json_integer_value(v);
		if (x < f->min || x > f->max) {
			snprintf(
			    err, errlen,
			    "field '%s': %lld is out of range [%lld, %lld]",
			    f->name, x, f->min, f->max);
			return (-1);
		}
		return (0);
	case PROTO_T_BOOL:
		if (!json_is_boolean(v))
			goto badtype;
		return (0);
	case PROTO_T_STRING:
		if (!json_is_string(v))
			goto badtype;
		n = json_string_length(v);
		break;
	case PROTO_T_INTS:
	case PROTO_T_STRINGS:
		if (!json_is_array(v))
			goto badtype;
		json_array_foreach(v, i, e)
		{
			if (f->type == PROTO_T_STRINGS && !json_is_string(e))
				goto badtype;
			if (f->type == PROTO_T_INTS && !json_is_integer(e))
				goto badtype;
			if (f->type == PROTO_T_INTS &&
			    json_integer_value(e) < 1) {
				snprintf(err, errlen,
				         "field '%s': %lld is not a job id",
				         f->name,
				         (long long)json_integer_value(e));
				return (-1);
			}
		}
		n = json_array_size(v);
		what = "number of elements";
		break;
	default:
		goto badtype;
	}
	if ((long long)n < f->min || (long long)n > f->max) {
		snprintf(err, errlen,
		         "field '%s': %s %zu is out of range "
		         "[%lld, %lld]",
		         f->name, what, n, f->min, f->max);
		return (-1);
	}
	return (0);
badtype:
	snprintf(err, errlen, "field '%s': expected %s", f->name,
	         proto_type_name(f->type));
	return (-1);
}

int
proto_request_decode(const void *buf, size_t len, json_t **reqp, int *opp,
                     char *err, size_t errlen)
{
	const struct proto_field *f;
	json_error_t jerr;
	json_t *req, *v;
	const char *key, *opname;
	int op, st = PROTO_EBADMSG;

	req = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL) {
		snprintf(err, errlen, "not JSON: %s", jerr.text);
		return (PROTO_EBADMSG);
	}
	if (!json_is_object(req)) {
		snprintf(err, errlen, "a request must be a JSON object");
		goto fail;
	}
	v = json_object_get(req, "v");
	if (!json_is_integer(v)) {
		snprintf(err, errlen, "field 'v' (protocol version) missing");
		goto fail;
	}
	if (json_integer_value(v) != PROTO_VERSION) {
		snprintf(err, errlen,
		         "protocol version %lld is not supported "
		         "(this jobd speaks %d)",
		         (long long)json_integer_value(v), PROTO_VERSION);
		st = PROTO_EVERSION;
		goto fail;
	}
	opname = json_string_value(json_object_get(req, "op"));
	if (opname == NULL) {
		snprintf(err, errlen, "field 'op' missing or not a string");
		goto fail;
	}
	if ((op = proto_op_lookup(opname)) < 0) {
		snprintf(err, errlen, "unknown operation '%.64s'", opname);
		st = PROTO_EUNKNOWN;
		goto fail;
	}
	json_object_foreach(req, key, v)
	{
		if (strcmp(key, "v") == 0 || strcmp(key, "op") == 0)
			continue;
		for (f = proto_ops[op].fields; f->name != NULL; f++)
			if (strcmp(f->name, key) == 0)
				break;
		if (f->name == NULL) {
			snprintf(err, errlen, "unknown field '%.64s' for %s",
			         key, opname);
			goto fail;
		}
		if (proto_field_check(f, v, err, errlen) != 0)
			goto fail;
	}
	for (f = proto_ops[op].fields; f->name != NULL; f++) {
		if (f->required && json_object_get(req, f->name) == NULL) {
			snprintf(err, errlen, "field '%s' is required for %s",
			         f->name, opname);
			goto fail;
		}
	}
	*reqp = req;
	*opp = op;
	return (PROTO_OK);
fail:
	json_decref(req);
	return (st);
}

json_t *
proto_request_new(int op)
{
	return (json_pack("{s:i, s:s}", "v", PROTO_VERSION, "op",
	                  proto_ops[op].name));
}

json_t *
proto_reply_ok(void)
{
	return (json_pack("{s:b}", "ok", 1));
}

json_t *
proto_text(const char *text)
{
	json_t *v;
	char *copy;

	if (text == NULL)
		return (json_null());
	if ((v = json_string(text)) != NULL)
		return (v);
	/* Not UTF-8 (or cut in the middle of a character): keep ASCII. */
	copy = xstrdup(text);
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return (v);
}

json_t *
proto_reply_error(int st, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* The message may quote a client's bytes, cut anywhere. */
	return (json_pack("{s:b, s:s, s:o}", "ok", 0, "error",
	                  proto_status_name(st), "message", proto_text(msg)));
}

int
proto_reply_status(json_t *reply, char *msg, size_t msglen)
{
	const char *code, *text;
	json_t *ok;

	if (!json_is_object(reply) ||
	    !json_is_boolean(ok = json_object_get(reply, "ok"))) {
		snprintf(msg, msglen, "malformed reply from jobd");
		return (PROTO_EBADMSG);
	}
	if (json_is_true(ok))
		return (PROTO_OK);
	code = json_string_value(json_object_get(reply, "error"));
	text = json_string_value(json_object_get(reply, "message"));
	snprintf(msg, msglen, "%s", text != NULL ? text : "error");
	for (int st = 1; code != NULL && st < PROTO_STATUS_MAX; st++)
		if (strcmp(code, proto_status_names[st]) == 0)
			return (st);
	return (PROTO_EINTERNAL);
}

static void
proto_put_be(unsigned char *p, uint64_t v, int bytes)
{
	while (bytes-- > 0) {
		p[bytes] = v & 0xff;
		v >>= 8;
	}
}

/* The greeting of a peer speaking proto (PROTO_SP_REQ, PROTO_SP_REP). */
void
proto_sp_hello(unsigned char *hello, unsigned proto)
{
	memcpy(hello, "\0SP\0", 4);
	proto_put_be(hello + 4, proto, 2);
	proto_put_be(hello + 6, 0, 2);
}

/* Is hello the greeting of a peer speaking proto? */
int
proto_sp_hello_ok(const unsigned char *hello, unsigned proto)
{
	unsigned char want[PROTO_SP_HELLO];

	proto_sp_hello(want, proto);
	return (memcmp(hello, want, sizeof want) == 0);
}

/* The head of a request of len bytes of JSON with request id (31 bits). */
void
proto_sp_head(unsigned char *head, size_t len, uint32_t id)
{
	head[0] = 1;
	proto_put_be(head + 1, (uint64_t)len + 4, 8);
	proto_put_be(head + 9, id | 0x80000000u, 4);
}
