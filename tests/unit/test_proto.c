/*
 * Unit tests for common/proto.c: the operations table, the central request
 * checks (proto_request_decode), replies, signal and state names, and the
 * SP framing jobctl writes by hand (proto_sp_*).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

struct decoded {
	int st;
	int op;
	char err[256];
	json_t *req;
};

/* Decode text; the caller frees d->req (NULL unless PROTO_OK). */
static void
decode(const char *text, struct decoded *d)
{
	memset(d, 0, sizeof *d);
	d->op = -42;
	d->st = proto_request_decode(text, strlen(text), &d->req, &d->op,
	                             d->err, sizeof d->err);
	if (d->st == PROTO_OK)
		assert_non_null(d->req);
}

/* text must decode as op. */
static void
assert_decodes(const char *text, int op)
{
	struct decoded d;

	decode(text, &d);
	if (d.st != PROTO_OK)
		fail_msg("%s: status %d (%s)", text, d.st, d.err);
	assert_int_equal(d.op, op);
	assert_int_equal(json_integer_value(json_object_get(d.req, "v")),
	                 PROTO_VERSION);
	json_decref(d.req);
}

/* text must fail with st, and the message must contain what. */
static void
assert_rejected(const char *text, int st, const char *what)
{
	struct decoded d;

	decode(text, &d);
	if (d.st != st)
		fail_msg("%s: status %d, expected %d (%s)", text, d.st, st,
		         d.err);
	assert_null(d.req);
	assert_int_equal(d.op, -42); /* written only on success */
	if (what != NULL && strstr(d.err, what) == NULL)
		fail_msg("%s: message '%s' does not mention '%s'", text, d.err,
		         what);
}

static void
test_ops_table(void **state)
{
	(void)state;
	for (int op = 0; op < PROTO_OP_MAX; op++) {
		const struct proto_op_info *info = &proto_ops[op];
		int nfields = 0;

		assert_non_null(info->name);
		assert_true(info->name[0] != '\0');
		assert_non_null(info->usage);
		assert_non_null(info->summary);
		assert_true(info->summary[0] != '\0');
		assert_non_null(info->fields);
		assert_int_equal(info->flags & ~(OPF_READ | OPF_WRITE |
		                                 OPF_ADMIN | OPF_PARK),
		                 0);
		/* Read or write, never both nor neither. */
		assert_true(!!(info->flags & OPF_READ) !=
		            !!(info->flags & OPF_WRITE));
		for (int k = 0; k < op; k++)
			assert_string_not_equal(info->name, proto_ops[k].name);
		/* The list ends; each field is sane and named once. */
		for (const struct proto_field *f = info->fields;
		     f->name != NULL; f++) {
			assert_true(++nfields < 64);
			assert_true(f->min <= f->max);
			assert_string_not_equal(f->name, "v");
			assert_string_not_equal(f->name, "op");
			for (const struct proto_field *g = info->fields; g < f;
			     g++)
				assert_string_not_equal(f->name, g->name);
		}
		assert_int_equal(proto_op_lookup(info->name), op);
	}
}

static void
test_op_lookup_unknown(void **state)
{
	(void)state;
	assert_int_equal(proto_op_lookup("nosuchop"), -1);
	assert_int_equal(proto_op_lookup(""), -1);
	assert_int_equal(proto_op_lookup("SUBMIT"), -1);
	assert_int_equal(proto_op_lookup("submit "), -1);
	assert_int_equal(proto_op_lookup("submit"), PROTO_OP_SUBMIT);
}

static void
test_request_new(void **state)
{
	(void)state;
	for (int op = 0; op < PROTO_OP_MAX; op++) {
		json_t *req = proto_request_new(op);
		char *text;

		assert_non_null(req);
		assert_string_equal(
		    json_string_value(json_object_get(req, "op")),
		    proto_ops[op].name);
		/* Ops without required fields decode as they are. */
		text = json_dumps(req, JSON_COMPACT);
		if (op == PROTO_OP_PING || op == PROTO_OP_VERSION ||
		    op == PROTO_OP_LIST)
			assert_decodes(text, op);
		free(text);
		json_decref(req);
	}
}

static void
test_decode_valid(void **state)
{
	static const struct {
		const char *text;
		int op;
	} ok[] = {
		{ "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\",\"argv\":[\"ls\"]}",
		  PROTO_OP_SUBMIT },
		{ "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/tmp\","
		  "\"shell\":\"echo hi\",\"name\":\"\",\"priority\":-1000000,"
		  "\"key\":\"k\",\"env\":[]}",
		  PROTO_OP_SUBMIT },
		{ "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\",\"argv\":[\"a\","
		  "\"\",\"b c\"],\"env\":[\"A=1\"],\"priority\":1000000}",
		  PROTO_OP_SUBMIT },
		{ "{\"v\":1,\"op\":\"status\",\"ids\":[1]}", PROTO_OP_STATUS },
		{ "{\"v\":1,\"op\":\"status\",\"ids\":[1,2,9007199254740993]}",
		  PROTO_OP_STATUS },
		{ "{\"v\":1,\"op\":\"list\"}", PROTO_OP_LIST },
		{ "{\"v\":1,\"op\":\"list\",\"state\":\"queued\","
		  "\"limit\":10000}",
		  PROTO_OP_LIST },
		{ "{\"v\":1,\"op\":\"logs\",\"id\":3}", PROTO_OP_LOGS },
		{ "{\"v\":1,\"op\":\"logs\",\"id\":3,\"stream\":\"stderr\","
		  "\"offset\":0,\"follow\":true}",
		  PROTO_OP_LOGS },
		{ "{\"v\":1,\"op\":\"wait\",\"ids\":[3]}", PROTO_OP_WAIT },
		{ "{\"v\":1,\"op\":\"wait\",\"ids\":[3,4],\"timeout_ms\":0}",
		  PROTO_OP_WAIT },
		{ "{\"v\":1,\"op\":\"cancel\",\"ids\":[3]}", PROTO_OP_CANCEL },
		{ "{\"v\":1,\"op\":\"cancel\",\"ids\":[3],\"signal\":\"KILL\"}",
		  PROTO_OP_CANCEL },
		{ "{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\",\"argv\":[\"ls\"],"
		  "\"queue\":\"q.1\",\"run_at\":0,\"after\":[1],"
		  "\"after_any\":[2],\"after_fail\":[3],\"timeout_ms\":1,"
		  "\"kill_after_ms\":0,\"retries\":1000,\"retry_delay_ms\":0,"
		  "\"retry_on_lost\":true,\"array_start\":0,"
		  "\"array_end\":1000000,\"array_limit\":1000}",
		  PROTO_OP_SUBMIT },
		{ "{\"v\":1,\"op\":\"list\",\"queue\":\"q\",\"name\":\"a*\","
		  "\"since\":1}",
		  PROTO_OP_LIST },
		{ "{\"v\":1,\"op\":\"set\",\"ids\":[3],\"priority\":-5}",
		  PROTO_OP_SET },
		{ "{\"v\":1,\"op\":\"hold\",\"ids\":[3]}", PROTO_OP_HOLD },
		{ "{\"v\":1,\"op\":\"release\",\"ids\":[3]}",
		  PROTO_OP_RELEASE },
		{ "{\"v\":1,\"op\":\"retry\",\"ids\":[3,4]}", PROTO_OP_RETRY },
		{ "{\"v\":1,\"op\":\"queue\",\"action\":\"list\"}",
		  PROTO_OP_QUEUE },
		{ "{\"v\":1,\"op\":\"queue\",\"action\":\"set\",\"name\":\"q\","
		  "\"parallel\":100000}",
		  PROTO_OP_QUEUE },
		{ "{\"v\":1,\"op\":\"purge\"}", PROTO_OP_PURGE },
		{ "{\"v\":1,\"op\":\"purge\",\"state\":\"failed\","
		  "\"older_than_ms\":0}",
		  PROTO_OP_PURGE },
		{ "{\"v\":1,\"op\":\"shutdown\"}", PROTO_OP_SHUTDOWN },
		{ "{\"v\":1,\"op\":\"shutdown\",\"mode\":\"drain\"}",
		  PROTO_OP_SHUTDOWN },
		{ "{\"v\":1,\"op\":\"backup\",\"path\":\"/tmp/x.db\"}",
		  PROTO_OP_BACKUP },
		{ "{\"v\":1,\"op\":\"ping\"}", PROTO_OP_PING },
		{ "{\"op\":\"version\",\"v\":1}", PROTO_OP_VERSION },
		{ " \n{\"v\":1,\"op\":\"ping\"}\n ", PROTO_OP_PING },
	};
	int seen[PROTO_OP_MAX] = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_decodes(ok[i].text, ok[i].op);
		seen[ok[i].op] = 1;
	}
	for (int op = 0; op < PROTO_OP_MAX; op++)
		if (!seen[op])
			fail_msg("no valid request tested for '%s'",
			         proto_ops[op].name);
}

static void
test_decode_not_json(void **state)
{
	static const char *bad[] = {
		"",
		"{",
		"not json",
		"{\"v\":1,\"op\":\"ping\"} trailing",
		"{\"v\":1,\"op\":\"ping\",}",
		"\"string\"",
		"42",
		"null",
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_rejected(bad[i], PROTO_EBADMSG, NULL);
	assert_rejected("nope", PROTO_EBADMSG, "not JSON");
}

static void
test_decode_bytes(void **state)
{
	static const char nul[] = "{\"v\":1,\"op\":\"ping\"}\0junk";
	static const char bad_utf8[] = "{\"v\":1,\"op\":\"p\xffng\"}";
	struct decoded d;
	json_t *req = NULL;
	int op = -42;

	(void)state;
	/* The length given is what is read, not up to a NUL. */
	d.st = proto_request_decode(nul, sizeof nul - 1, &req, &op, d.err,
	                            sizeof d.err);
	assert_int_equal(d.st, PROTO_EBADMSG);
	assert_null(req);
	d.st = proto_request_decode(nul, strlen(nul), &req, &op, d.err,
	                            sizeof d.err);
	assert_int_equal(d.st, PROTO_OK);
	assert_int_equal(op, PROTO_OP_PING);
	json_decref(req);
	assert_rejected(bad_utf8, PROTO_EBADMSG, NULL);
	assert_rejected("{\"v\":1,\"op\":\"ping\\u0000\"}", PROTO_EBADMSG,
	                NULL);
}

static void
test_decode_shape(void **state)
{
	(void)state;
	assert_rejected("[]", PROTO_EBADMSG, "object");
	assert_rejected("[{\"v\":1,\"op\":\"ping\"}]", PROTO_EBADMSG, "object");
	assert_rejected("{\"op\":\"ping\"}", PROTO_EBADMSG, "'v'");
	assert_rejected("{\"v\":\"1\",\"op\":\"ping\"}", PROTO_EBADMSG, "'v'");
	assert_rejected("{\"v\":1.0,\"op\":\"ping\"}", PROTO_EBADMSG, "'v'");
	assert_rejected("{\"v\":true,\"op\":\"ping\"}", PROTO_EBADMSG, "'v'");
	assert_rejected("{\"v\":2,\"op\":\"ping\"}", PROTO_EVERSION, "2");
	assert_rejected("{\"v\":0,\"op\":\"ping\"}", PROTO_EVERSION, NULL);
	/* The version is checked before anything else about the request. */
	assert_rejected("{\"v\":2,\"op\":\"nosuch\",\"x\":1}", PROTO_EVERSION,
	                NULL);
	assert_rejected("{\"v\":1}", PROTO_EBADMSG, "'op'");
	assert_rejected("{\"v\":1,\"op\":5}", PROTO_EBADMSG, "'op'");
	assert_rejected("{\"v\":1,\"op\":null}", PROTO_EBADMSG, "'op'");
	assert_rejected("{\"v\":1,\"op\":[\"ping\"]}", PROTO_EBADMSG, "'op'");
	assert_rejected("{\"v\":1,\"op\":\"frobnicate\"}", PROTO_EUNKNOWN,
	                "frobnicate");
	assert_rejected("{\"v\":1,\"op\":\"PING\"}", PROTO_EUNKNOWN, NULL);
}

static void
test_decode_unknown_field(void **state)
{
	(void)state;
	assert_rejected("{\"v\":1,\"op\":\"ping\",\"ids\":[1]}", PROTO_EBADMSG,
	                "'ids'");
	assert_rejected("{\"v\":1,\"op\":\"status\",\"ids\":[1],\"id\":1}",
	                PROTO_EBADMSG, "'id'");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"x\"],\"argv0\":\"x\"}",
	                PROTO_EBADMSG, "'argv0'");
}

static void
test_decode_wrong_types(void **state)
{
	(void)state;
	/* A string for an integer. */
	assert_rejected("{\"v\":1,\"op\":\"logs\",\"id\":\"3\"}", PROTO_EBADMSG,
	                "field 'id': expected an integer");
	assert_rejected("{\"v\":1,\"op\":\"list\",\"limit\":\"5\"}",
	                PROTO_EBADMSG, "'limit'");
	assert_rejected("{\"v\":1,\"op\":\"list\",\"limit\":5.0}",
	                PROTO_EBADMSG, "'limit'");
	/* An integer for a string. */
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":7,"
	                "\"argv\":[\"x\"]}",
	                PROTO_EBADMSG, "field 'cwd': expected a string");
	assert_rejected("{\"v\":1,\"op\":\"list\",\"state\":2}", PROTO_EBADMSG,
	                "'state'");
	/* Integers where strings are expected, and the reverse. */
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[1,2]}",
	                PROTO_EBADMSG,
	                "field 'argv': expected an array of strings");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"a\",null]}",
	                PROTO_EBADMSG, "'argv'");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":\"ls\"}",
	                PROTO_EBADMSG, "'argv'");
	assert_rejected("{\"v\":1,\"op\":\"status\",\"ids\":[\"1\"]}",
	                PROTO_EBADMSG,
	                "field 'ids': expected an array of integers");
	assert_rejected("{\"v\":1,\"op\":\"status\",\"ids\":1}", PROTO_EBADMSG,
	                "'ids'");
	assert_rejected("{\"v\":1,\"op\":\"status\",\"ids\":[1.5]}",
	                PROTO_EBADMSG, "'ids'");
	/* Booleans. */
	assert_rejected("{\"v\":1,\"op\":\"logs\",\"id\":1,\"follow\":1}",
	                PROTO_EBADMSG, "field 'follow': expected a boolean");
	assert_rejected("{\"v\":1,\"op\":\"logs\",\"id\":1,\"follow\":\"yes\"}",
	                PROTO_EBADMSG, "'follow'");
	assert_rejected("{\"v\":1,\"op\":\"logs\",\"id\":true}", PROTO_EBADMSG,
	                "'id'");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"shell\":false}",
	                PROTO_EBADMSG, "'shell'");
	/* null is not "absent". */
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"x\"],\"name\":null}",
	                PROTO_EBADMSG, "'name'");
}

static void
test_decode_ranges(void **state)
{
	char *text;
	size_t n;

	(void)state;
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"x\"],\"priority\":1000001}",
	                PROTO_EBADMSG,
	                "field 'priority': 1000001 is out of range");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"x\"],\"priority\":-1000001}",
	                PROTO_EBADMSG, "'priority'");
	assert_rejected("{\"v\":1,\"op\":\"list\",\"limit\":0}", PROTO_EBADMSG,
	                "field 'limit': 0 is out of range");
	/* The scheduling fields (docs/protocol.md, submit). */
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"x\"],\"retries\":-1}",
	                PROTO_EBADMSG, "field 'retries': -1 is out of range");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"x\"],\"retries\":1001}",
	                PROTO_EBADMSG, "'retries'");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"x\"],\"array_limit\":0}",
	                PROTO_EBADMSG, "'array_limit'");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"x\"],\"timeout_ms\":0}",
	                PROTO_EBADMSG, "'timeout_ms'");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"x\"],\"queue\":\"\"}",
	                PROTO_EBADMSG, "'queue'");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"x\"],\"array_end\":1000001}",
	                PROTO_EBADMSG, "'array_end'");
	assert_rejected("{\"v\":1,\"op\":\"queue\",\"action\":\"set\","
	                "\"name\":\"q\",\"parallel\":0}",
	                PROTO_EBADMSG, "'parallel'");
	assert_rejected("{\"v\":1,\"op\":\"queue\",\"action\":\"set\","
	                "\"name\":\"q\",\"parallel\":-1}",
	                PROTO_EBADMSG, "'parallel'");
	assert_rejected("{\"v\":1,\"op\":\"set\",\"ids\":[1]}", PROTO_EBADMSG,
	                "'priority' is required");
	assert_rejected("{\"v\":1,\"op\":\"list\",\"limit\":10001}",
	                PROTO_EBADMSG, "'limit'");
	assert_rejected("{\"v\":1,\"op\":\"status\",\"ids\":[-5]}",
	                PROTO_EBADMSG, "field 'ids': -5 is not a job id");
	assert_rejected("{\"v\":1,\"op\":\"status\",\"ids\":[1,0]}",
	                PROTO_EBADMSG, "'ids'");
	assert_rejected("{\"v\":1,\"op\":\"cancel\",\"ids\":[]}", PROTO_EBADMSG,
	                "field 'ids': number of elements 0 is out of range");
	assert_rejected("{\"v\":1,\"op\":\"logs\",\"id\":0}", PROTO_EBADMSG,
	                "'id'");
	assert_rejected("{\"v\":1,\"op\":\"logs\",\"id\":1,\"offset\":-1}",
	                PROTO_EBADMSG, "'offset'");
	assert_rejected("{\"v\":1,\"op\":\"logs\",\"id\":1,\"stream\":\"out\"}",
	                PROTO_EBADMSG, "'stream'");
	assert_rejected("{\"v\":1,\"op\":\"wait\",\"ids\":[1],"
	                "\"timeout_ms\":-1}",
	                PROTO_EBADMSG, "'timeout_ms'");
	/* Empty strings where at least one byte is needed. */
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"\","
	                "\"argv\":[\"x\"]}",
	                PROTO_EBADMSG, "field 'cwd': length 0");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[\"x\"],\"key\":\"\"}",
	                PROTO_EBADMSG, "'key'");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"cwd\":\"/\","
	                "\"argv\":[]}",
	                PROTO_EBADMSG, "'argv'");

	/* PROTO_MAX_IDS ids pass, one more does not. */
	for (int extra = 0; extra <= 1; extra++) {
		size_t cap = 64 + 12 * (PROTO_MAX_IDS + 1);

		text = malloc(cap);
		assert_non_null(text);
		n = (size_t)snprintf(text, cap,
		                     "{\"v\":1,\"op\":\"wait\","
		                     "\"ids\":[");
		for (int i = 1; i <= PROTO_MAX_IDS + extra; i++)
			n += (size_t)snprintf(text + n, cap - n, "%s%d",
			                      i > 1 ? "," : "", i);
		snprintf(text + n, cap - n, "]}");
		if (extra)
			assert_rejected(
			    text, PROTO_EBADMSG,
			    "number of elements 1001 is out of range");
		else
			assert_decodes(text, PROTO_OP_WAIT);
		free(text);
	}
	/* A name of 256 bytes passes, 257 does not. */
	for (int len = 256; len <= 257; len++) {
		text = malloc(512);
		assert_non_null(text);
		n = (size_t)snprintf(text, 512,
		                     "{\"v\":1,\"op\":\"submit\","
		                     "\"cwd\":\"/\",\"argv\":[\"x\"],"
		                     "\"name\":\"");
		memset(text + n, 'n', (size_t)len);
		snprintf(text + n + (size_t)len, 512 - n - (size_t)len, "\"}");
		if (len == 256)
			assert_decodes(text, PROTO_OP_SUBMIT);
		else
			assert_rejected(text, PROTO_EBADMSG, "'name'");
		free(text);
	}
}

static void
test_decode_duplicates_and_required(void **state)
{
	(void)state;
	assert_rejected("{\"v\":1,\"op\":\"ping\",\"op\":\"ping\"}",
	                PROTO_EBADMSG, NULL);
	assert_rejected("{\"v\":1,\"v\":1,\"op\":\"ping\"}", PROTO_EBADMSG,
	                NULL);
	assert_rejected("{\"v\":1,\"op\":\"status\",\"ids\":[1],\"ids\":[2]}",
	                PROTO_EBADMSG, NULL);
	assert_rejected("{\"v\":1,\"op\":\"status\"}", PROTO_EBADMSG,
	                "field 'ids' is required for status");
	assert_rejected("{\"v\":1,\"op\":\"logs\"}", PROTO_EBADMSG,
	                "field 'id' is required");
	assert_rejected("{\"v\":1,\"op\":\"submit\",\"argv\":[\"x\"]}",
	                PROTO_EBADMSG, "field 'cwd' is required");
	assert_rejected("{\"v\":1,\"op\":\"cancel\",\"signal\":\"TERM\"}",
	                PROTO_EBADMSG, "'ids'");
}

static void
test_decode_small_err_buffer(void **state)
{
	const char *text = "{\"v\":1,\"op\":\"status\"}";
	char err[8];
	json_t *req = NULL;
	int op = -1;

	(void)state;
	memset(err, 'X', sizeof err);
	assert_int_equal(proto_request_decode(text, strlen(text), &req, &op,
	                                      err, sizeof err),
	                 PROTO_EBADMSG);
	assert_int_equal(strlen(err), sizeof err - 1);
	assert_null(req);
}

static void
assert_reply(json_t *reply, int st, const char *msg)
{
	char buf[600];

	assert_non_null(reply);
	memset(buf, 0, sizeof buf);
	assert_int_equal(proto_reply_status(reply, buf, sizeof buf), st);
	if (msg != NULL)
		assert_string_equal(buf, msg);
	json_decref(reply);
}

static void
test_reply_round_trip(void **state)
{
	json_t *r;
	char big[700];

	(void)state;
	r = proto_reply_ok();
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_reply(r, PROTO_OK, NULL);
	for (int st = 1; st < PROTO_STATUS_MAX; st++) {
		r = proto_reply_error(st, "job %d: %s", st, "no");
		assert_true(json_is_false(json_object_get(r, "ok")));
		assert_string_equal(
		    json_string_value(json_object_get(r, "error")),
		    proto_status_name(st));
		assert_reply(r, st, NULL);
	}
	r = proto_reply_error(PROTO_ENOTFOUND, "job %d not found", 42);
	assert_reply(r, PROTO_ENOTFOUND, "job 42 not found");
	/* A long message is cut, not overflowed. */
	memset(big, 'm', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	r = proto_reply_error(PROTO_EINTERNAL, "%s", big);
	assert_true(json_string_length(json_object_get(r, "message")) <
	            sizeof big - 1);
	assert_reply(r, PROTO_EINTERNAL, NULL);
	/* Codes out of the table are "internal". */
	r = proto_reply_error(999, "x");
	assert_string_equal(json_string_value(json_object_get(r, "error")),
	                    "internal");
	assert_reply(r, PROTO_EINTERNAL, "x");
}

static void
test_reply_status_malformed(void **state)
{
	static const char *bad[] = {
		"[]",
		"{}",
		"{\"ok\":1}",
		"{\"ok\":\"true\"}",
		"{\"ok\":null}",
		"\"ok\"",
	};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *r = json_loads(bad[i], JSON_DECODE_ANY, NULL);

		assert_non_null(r);
		assert_int_equal(proto_reply_status(r, buf, sizeof buf),
		                 PROTO_EBADMSG);
		json_decref(r);
	}
	assert_int_equal(proto_reply_status(NULL, buf, sizeof buf),
	                 PROTO_EBADMSG);
	/* Unknown or missing codes are internal; the text is kept. */
	assert_reply(json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "no_such",
	                       "message", "why"),
	             PROTO_EINTERNAL, "why");
	assert_reply(json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "ok",
	                       "message", "odd"),
	             PROTO_EINTERNAL, "odd");
	assert_reply(json_pack("{s:b}", "ok", 0), PROTO_EINTERNAL, "error");
	assert_reply(json_pack("{s:b, s:i}", "ok", 0, "error", 3),
	             PROTO_EINTERNAL, NULL);
	assert_reply(json_pack("{s:b, s:s}", "ok", 0, "error", "not_found"),
	             PROTO_ENOTFOUND, "error");
}

static void
test_status_names(void **state)
{
	(void)state;
	assert_string_equal(proto_status_name(PROTO_OK), "ok");
	assert_string_equal(proto_status_name(PROTO_EBADMSG), "bad_request");
	assert_string_equal(proto_status_name(PROTO_EVERSION), "bad_version");
	assert_string_equal(proto_status_name(PROTO_EUNKNOWN), "unknown_op");
	assert_string_equal(proto_status_name(PROTO_ENOTFOUND), "not_found");
	assert_string_equal(proto_status_name(PROTO_EDENIED), "denied");
	assert_string_equal(proto_status_name(PROTO_ESTATE), "invalid_state");
	assert_string_equal(proto_status_name(PROTO_ESTORAGE), "storage");
	assert_string_equal(proto_status_name(PROTO_ESHUTDOWN),
	                    "shutting_down");
	assert_string_equal(proto_status_name(PROTO_EINTERNAL), "internal");
	assert_string_equal(proto_status_name(-1), "internal");
	assert_string_equal(proto_status_name(PROTO_STATUS_MAX), "internal");
}

static void
test_signal_parse(void **state)
{
	(void)state;
	assert_int_equal(proto_signal_parse("TERM"), SIGTERM);
	assert_int_equal(proto_signal_parse("SIGTERM"), SIGTERM);
	assert_int_equal(proto_signal_parse("term"), SIGTERM);
	assert_int_equal(proto_signal_parse("sigterm"), SIGTERM);
	assert_int_equal(proto_signal_parse("15"), 15);
	assert_int_equal(proto_signal_parse("KILL"), 9);
	assert_int_equal(proto_signal_parse("SIGKILL"), 9);
	assert_int_equal(proto_signal_parse("9"), 9);
	assert_int_equal(proto_signal_parse("HUP"), SIGHUP);
	assert_int_equal(proto_signal_parse("USR1"), SIGUSR1);
	assert_int_equal(proto_signal_parse("FOO"), -1);
	assert_int_equal(proto_signal_parse("SIGFOO"), -1);
	assert_int_equal(proto_signal_parse("SIG"), -1);
	assert_int_equal(proto_signal_parse("0"), -1);
	assert_int_equal(proto_signal_parse("-1"), -1);
	assert_int_equal(proto_signal_parse("-9"), -1);
	assert_int_equal(proto_signal_parse("99999"), -1);
	assert_int_equal(proto_signal_parse("15x"), -1);
	assert_int_equal(proto_signal_parse(" 15"), -1);
	assert_int_equal(proto_signal_parse("TERM "), -1);
	assert_int_equal(proto_signal_parse(""), -1);
}

static void
test_signal_name(void **state)
{
	(void)state;
	assert_string_equal(proto_signal_name(9), "KILL");
	assert_string_equal(proto_signal_name(SIGTERM), "TERM");
	assert_null(proto_signal_name(0));
	assert_null(proto_signal_name(-1));
	assert_null(proto_signal_name(SIGRTMIN));
	assert_null(proto_signal_name(99999));
	/* Every name parses back to its number. */
	for (int sig = 1; sig < SIGRTMIN; sig++) {
		const char *name = proto_signal_name(sig);
		char prefixed[32];

		if (name == NULL)
			continue;
		assert_int_equal(proto_signal_parse(name), sig);
		snprintf(prefixed, sizeof prefixed, "SIG%s", name);
		assert_int_equal(proto_signal_parse(prefixed), sig);
	}
}

static void
test_queue_name(void **state)
{
	static const char *const good[] = { "default", "a", "0", "q.1_x-y",
		                            "Z9" };
	static const char *const bad[] = { "",    "-x",
		                           ".x",  "_x",
		                           "a b", "x/y",
		                           "a\n", "\xc3\xa9t\xc3\xa9",
		                           "q:1" };
	char longest[PROTO_QUEUE_NAME_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_true(proto_queue_name_ok(good[i]));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(proto_queue_name_ok(bad[i]));
	memset(longest, 'q', sizeof longest - 1);
	longest[PROTO_QUEUE_NAME_MAX] = '\0';
	assert_true(proto_queue_name_ok(longest));
	longest[PROTO_QUEUE_NAME_MAX] = 'q';
	longest[PROTO_QUEUE_NAME_MAX + 1] = '\0';
	assert_false(proto_queue_name_ok(longest));
}

static void
test_states(void **state)
{
	static const char *names[JOB_STATE_MAX] = {
		"blocked",   "scheduled", "queued",    "running",
		"succeeded", "failed",    "cancelled", "lost",
	};

	(void)state;
	for (int s = 0; s < JOB_STATE_MAX; s++) {
		assert_string_equal(proto_state_name(s), names[s]);
		assert_int_equal(proto_state_parse(names[s]), s);
		assert_int_equal(JOB_TERMINAL(s), s >= JOB_SUCCEEDED);
	}
	assert_int_equal(proto_state_parse("bogus"), -1);
	assert_int_equal(proto_state_parse(""), -1);
	assert_int_equal(proto_state_parse("Queued"), -1);
	assert_string_equal(proto_state_name(-1), "unknown");
	assert_string_equal(proto_state_name(JOB_STATE_MAX), "unknown");
}

/* The greeting is nng's, byte for byte: jobd's nng must accept ours. */
static void
test_sp_hello(void **state)
{
	static const unsigned char req[PROTO_SP_HELLO] = { 0x00, 'S',  'P',
		                                           0x00, 0x00, 0x30,
		                                           0x00, 0x00 };
	static const unsigned char rep[PROTO_SP_HELLO] = { 0x00, 'S',  'P',
		                                           0x00, 0x00, 0x31,
		                                           0x00, 0x00 };
	unsigned char buf[PROTO_SP_HELLO + 1];

	(void)state;
	assert_int_equal(PROTO_SP_HELLO, 8);
	memset(buf, 0xa5, sizeof buf);
	proto_sp_hello(buf, PROTO_SP_REQ);
	assert_memory_equal(buf, req, sizeof req);
	assert_int_equal(buf[PROTO_SP_HELLO], 0xa5); /* nothing past it */
	proto_sp_hello(buf, PROTO_SP_REP);
	assert_memory_equal(buf, rep, sizeof rep);
}

static void
test_sp_hello_ok(void **state)
{
	unsigned char hello[PROTO_SP_HELLO], bad[PROTO_SP_HELLO];

	(void)state;
	proto_sp_hello(hello, PROTO_SP_REQ);
	assert_true(proto_sp_hello_ok(hello, PROTO_SP_REQ));
	assert_false(proto_sp_hello_ok(hello, PROTO_SP_REP));
	proto_sp_hello(hello, PROTO_SP_REP);
	assert_true(proto_sp_hello_ok(hello, PROTO_SP_REP));
	assert_false(proto_sp_hello_ok(hello, PROTO_SP_REQ));

	/* Each byte of the magic, and each reserved byte, matters. */
	proto_sp_hello(hello, PROTO_SP_REQ);
	for (int i = 0; i < PROTO_SP_HELLO; i++) {
		if (i == 4 || i == 5)
			continue; /* the protocol, checked above */
		memcpy(bad, hello, sizeof bad);
		bad[i] ^= 0x01;
		assert_false(proto_sp_hello_ok(bad, PROTO_SP_REQ));
		bad[i] = 0xff;
		assert_false(proto_sp_hello_ok(bad, PROTO_SP_REQ));
	}
	memcpy(bad, "\0SP\0\0\0\0", sizeof bad); /* protocol 0 */
	assert_false(proto_sp_hello_ok(bad, PROTO_SP_REQ));
	memcpy(bad, "HTTP/1.1", sizeof bad);
	assert_false(proto_sp_hello_ok(bad, PROTO_SP_REQ));
}

/* Type 1, the length of id and JSON (64 bits, big-endian), the id. */
static void
test_sp_head(void **state)
{
	static const unsigned char want[PROTO_SP_HEAD] = {
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x09, 0x80, 0x00, 0x00, 0x07,
	};
	static const unsigned char big[PROTO_SP_HEAD] = {
		0x01, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03,
		0x04, 0x09, 0xfe, 0xdc, 0xba, 0x98,
	};
	unsigned char buf[PROTO_SP_HEAD + 1];

	(void)state;
	assert_int_equal(PROTO_SP_HEAD, 13);
	memset(buf, 0xa5, sizeof buf);
	proto_sp_head(buf, 5, 7);
	assert_memory_equal(buf, want, sizeof want);
	assert_int_equal(buf[PROTO_SP_HEAD], 0xa5); /* nothing past it */

	/* Every byte in its place; an id with its top bit set keeps it. */
	proto_sp_head(buf, 0x0102030405ULL, 0x7edcba98);
	assert_memory_equal(buf, big, sizeof big);
	proto_sp_head(buf, 0x0102030405ULL, 0xfedcba98);
	assert_memory_equal(buf, big, sizeof big);
	proto_sp_head(buf, 0, 0);
	assert_int_equal(buf[8], 4);
	assert_int_equal(buf[9], 0x80);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ops_table),
		cmocka_unit_test(test_op_lookup_unknown),
		cmocka_unit_test(test_request_new),
		cmocka_unit_test(test_decode_valid),
		cmocka_unit_test(test_decode_not_json),
		cmocka_unit_test(test_decode_bytes),
		cmocka_unit_test(test_decode_shape),
		cmocka_unit_test(test_decode_unknown_field),
		cmocka_unit_test(test_decode_wrong_types),
		cmocka_unit_test(test_decode_ranges),
		cmocka_unit_test(test_decode_duplicates_and_required),
		cmocka_unit_test(test_decode_small_err_buffer),
		cmocka_unit_test(test_reply_round_trip),
		cmocka_unit_test(test_reply_status_malformed),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_signal_parse),
		cmocka_unit_test(test_signal_name),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_queue_name),
		cmocka_unit_test(test_sp_hello),
		cmocka_unit_test(test_sp_hello_ok),
		cmocka_unit_test(test_sp_head),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
