/*
 * What jobctl prints: error messages on stderr; on stdout either JSON (--json)
 * or text for people: the "field: value" block of one job, the table of
 * several, the table of queues. Every job object printed here has
 * passed ctl-cmds.c's check (an object with an integer id and a string
 * state); any other field may be missing, null or of another type, and is
 * then left out rather than trusted.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>

#include "ctl.h"
#include "util.h"

/* The columns of the job table. */
enum output_col {
	OUTPUT_ID,
	OUTPUT_STATE,
	OUTPUT_QUEUE,
	OUTPUT_EXIT,
	OUTPUT_SUBMITTED,
	OUTPUT_NAME,
	OUTPUT_COMMAND,
	OUTPUT_NCOLS
};

static const char *output_headers[OUTPUT_NCOLS] = {
	"ID", "STATE", "QUEUE", "EXIT", "SUBMITTED", "NAME", "COMMAND",
};

/* The columns of the queue table. */
enum output_qcol {
	OUTPUT_Q_NAME,
	OUTPUT_Q_PARALLEL,
	OUTPUT_Q_PAUSED,
	OUTPUT_Q_RUNNING,
	OUTPUT_Q_NCOLS
};

static const char *output_qheaders[OUTPUT_Q_NCOLS] = {
	"QUEUE",
	"PARALLEL",
	"PAUSED",
	"RUNNING",
};

/* Width of the labels in a job's "field: value" block. */
#define OUTPUT_LABEL 11

void
output_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("jobctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A value as indented JSON on stdout. */
void
output_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
}

/* A value as JSON on one line, flushed: for a stream of objects. */
void
output_json_line(json_t *v)
{
	json_dumpf(v, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	fflush(stdout);
}

/* job[key] if it is a string, else NULL. */
static const char *
output_str(json_t *job, const char *key)
{
	return (json_string_value(json_object_get(job, key)));
}

/* job[key] in *vp if it is an integer; returns 0 or -1. */
static int
output_int(json_t *job, const char *key, long long *vp)
{
	json_t *v = json_object_get(job, key);

	if (!json_is_integer(v))
		return (-1);
	*vp = json_integer_value(v);
	return (0);
}

/* A signal's name ("KILL"), or its number if it has none. */
static const char *
output_signal(long long sig, char *buf, size_t len)
{
	const char *name = NULL;

	if (sig > 0 && sig < INT_MAX)
		name = proto_signal_name((int)sig);
	if (name != NULL)
		return (name);
	snprintf(buf, len, "%lld", sig);
	return (buf);
}

/* Does arg need quotes to read back as one shell word? */
static int
output_needs_quotes(const char *arg)
{
	return (*arg == '\0' || strpbrk(arg, " \t\n'\"") != NULL);
}

/* Append arg to buf at *lenp, in single quotes if it needs them. */
static char *
output_append_arg(char *buf, size_t *lenp, const char *arg)
{
	size_t len = *lenp, n = strlen(arg);
	const char *p;

	/* At worst every byte is a quote, which takes four: '\'' */
	buf = xrealloc(buf, len + 4 * n + 4);
	if (len != 0)
		buf[len++] = ' ';
	if (!output_needs_quotes(arg)) {
		memcpy(buf + len, arg, n);
		len += n;
	} else {
		buf[len++] = '\'';
		for (p = arg; *p != '\0'; p++) {
			if (*p == '\'') {
				memcpy(buf + len, "'\\''", 4);
				len += 4;
			} else
				buf[len++] = *p;
		}
		buf[len++] = '\'';
	}
	buf[len] = '\0';
	*lenp = len;
	return (buf);
}

/*
 * The job's command as one line to free: its argv joined by spaces, words
 * quoted where needed, or its shell command as it is.
 */
char *
output_command(json_t *job)
{
	json_t *argv = json_object_get(job, "argv"), *arg;
	const char *shell = output_str(job, "shell");
	char *buf = xstrdup("");
	size_t i, len = 0;

	if (shell != NULL) {
		free(buf);
		return (xstrdup(shell));
	}
	json_array_foreach(argv, i, arg)
	{
		if (json_is_string(arg))
			buf = output_append_arg(buf, &len,
			                        json_string_value(arg));
	}
	return (buf);
}

/* The EXIT column: the exit code, the signal's name, or "-". */
static char *
output_exit(json_t *job)
{
	char buf[32];
	long long v;

	if (output_int(job, "exit_code", &v) == 0)
		return (xasprintf("%lld", v));
	if (output_int(job, "signal", &v) == 0)
		return (xstrdup(output_signal(v, buf, sizeof buf)));
	return (xstrdup("-"));
}

/* A string field, or "-" if it is missing or empty. */
static char *
output_cell(json_t *job, const char *key)
{
	const char *s = output_str(job, key);

	return (xstrdup(s != NULL && *s != '\0' ? s : "-"));
}

/* The state, "queued (held)" for a held job. */
static char *
output_state(json_t *job)
{
	const char *state = output_str(job, "state");

	if (json_is_true(json_object_get(job, "held")))
		return (xasprintf("%s (held)", state));
	return (xstrdup(state));
}

static void
output_row(json_t *job, char **row)
{
	long long id = 0;

	output_int(job, "id", &id);
	row[OUTPUT_ID] = xasprintf("%lld", id);
	row[OUTPUT_STATE] = output_state(job);
	row[OUTPUT_QUEUE] = output_cell(job, "queue");
	row[OUTPUT_EXIT] = output_exit(job);
	row[OUTPUT_SUBMITTED] = output_cell(job, "submitted_at");
	row[OUTPUT_NAME] = output_cell(job, "name");
	row[OUTPUT_COMMAND] = output_command(job);
}

/*
 * A table of the array's elements with a header, columns aligned, the last
 * one not padded. row fills the ncols cells of one element (strings to
 * free).
 */
static void
output_table(json_t *arr, const char **headers, size_t ncols,
             void (*row)(json_t *, char **))
{
	size_t nrows = json_array_size(arr) + 1, i, c, n;
	char **cells = xcalloc(nrows * ncols, sizeof *cells);
	size_t *width = xcalloc(ncols, sizeof *width);
	json_t *v;

	for (c = 0; c < ncols; c++)
		cells[c] = xstrdup(headers[c]);
	json_array_foreach(arr, i, v)
	{
		row(v, cells + (i + 1) * ncols);
	}
	for (i = 0; i < nrows * ncols; i++) {
		n = strlen(cells[i]);
		if (n > width[i % ncols])
			width[i % ncols] = n;
	}
	for (i = 0; i < nrows; i++) {
		char **r = cells + i * ncols;

		for (c = 0; c + 1 < ncols; c++)
			printf("%-*s  ", (int)width[c], r[c]);
		printf("%s\n", r[ncols - 1]);
	}
	for (i = 0; i < nrows * ncols; i++)
		free(cells[i]);
	free(cells);
	free(width);
}

/* An array of jobs as a table. */
void
output_jobs(json_t *jobs)
{
	output_table(jobs, output_headers, OUTPUT_NCOLS, output_row);
}

/* An integer field as a cell, or "-" if it is not an integer. */
static char *
output_int_cell(json_t *obj, const char *key)
{
	long long v;

	if (output_int(obj, key, &v) != 0)
		return (xstrdup("-"));
	return (xasprintf("%lld", v));
}

static void
output_queue_row(json_t *q, char **row)
{
	json_t *paused = json_object_get(q, "paused");

	row[OUTPUT_Q_NAME] = output_cell(q, "name");
	row[OUTPUT_Q_PARALLEL] = output_int_cell(q, "parallel");
	row[OUTPUT_Q_PAUSED] = xstrdup(!json_is_boolean(paused) ? "-"
	                               : json_is_true(paused)   ? "yes"
	                                                        : "no");
	row[OUTPUT_Q_RUNNING] = output_int_cell(q, "running");
}

/*
 * An array of queues ({"name", "parallel", "paused", "running"}) as a
 * table; a limit of null (none of the queue's own) shows as "-".
 */
void
output_queues(json_t *queues)
{
	output_table(queues, output_qheaders, OUTPUT_Q_NCOLS, output_queue_row);
}

/* One "label: value" line of a job's block. */
static void
output_field(const char *label, const char *fmt, ...)
{
	char lab[OUTPUT_LABEL + 2];
	va_list ap;

	/* An empty label continues the field above. */
	snprintf(lab, sizeof lab, "%s%s", label, *label != '\0' ? ":" : "");
	printf("%-*s", OUTPUT_LABEL, lab);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* A string field's line, if the field is a string. */
static void
output_field_str(json_t *job, const char *label, const char *key)
{
	const char *s = output_str(job, key);

	if (s != NULL)
		output_field(label, "%s", s);
}

/* An integer field's line, if the field is an integer. */
static void
output_field_int(json_t *job, const char *label, const char *key)
{
	long long v;

	if (output_int(job, key, &v) == 0)
		output_field(label, "%lld", v);
}

static void
output_field_owner(json_t *job)
{
	struct passwd *pw;
	long long uid;

	if (output_int(json_object_get(job, "owner"), "uid", &uid) != 0)
		return;
	if (uid >= 0 && uid < UINT_MAX && (pw = getpwuid((uid_t)uid)) != NULL)
		output_field("owner", "%s (uid %lld)", pw->pw_name, uid);
	else
		output_field("owner", "uid %lld", uid);
}

static void
output_field_command(json_t *job)
{
	char *cmd = output_command(job);

	output_field(output_str(job, "shell") != NULL ? "shell" : "command",
	             "%s", cmd);
	free(cmd);
}

static void
output_field_signal(json_t *job)
{
	char buf[32];
	long long sig;

	if (output_int(job, "signal", &sig) == 0)
		output_field("signal", "%s (%lld)",
		             output_signal(sig, buf, sizeof buf), sig);
}

static void
output_field_state(json_t *job)
{
	char *state = output_state(job);

	output_field("state", "%s", state);
	free(state);
}

/* "array: 41, index 3 (at most 2 at once)", for an array's task. */
static void
output_field_array(json_t *job)
{
	long long id, index, limit;

	if (output_int(job, "array_id", &id) != 0 ||
	    output_int(job, "array_index", &index) != 0)
		return;
	if (output_int(job, "array_limit", &limit) == 0)
		output_field("array", "%lld, index %lld (at most %lld at once)",
		             id, index, limit);
	else
		output_field("array", "%lld, index %lld", id, index);
}

/* "after: 12 (ok), 13 (any), 14 (fail)": the job's dependencies. */
static void
output_field_after(json_t *job)
{
	json_t *after = json_object_get(job, "after"), *dep;
	const char *type;
	char *line = xstrdup(""), *next;
	long long id;
	size_t i;

	json_array_foreach(after, i, dep)
	{
		if (output_int(dep, "id", &id) != 0)
			continue;
		type = output_str(dep, "type");
		next =
		    xasprintf("%s%s%lld (%s)", line, *line != '\0' ? ", " : "",
		              id, type != NULL ? type : "?");
		free(line);
		line = next;
	}
	if (*line != '\0')
		output_field("after", "%s", line);
	free(line);
}

/* "timeout: 5m, then KILL after 10s". */
static void
output_field_timeout(json_t *job)
{
	char t[UTIL_DURATION_LEN], k[UTIL_DURATION_LEN];
	long long v, kill;

	if (output_int(job, "timeout_ms", &v) != 0)
		return;
	util_duration_format(v, t, sizeof t);
	if (output_int(job, "kill_after_ms", &kill) != 0) {
		output_field("timeout", "%s", t);
		return;
	}
	util_duration_format(kill, k, sizeof k);
	output_field("timeout", "%s, then KILL after %s", t, k);
}

/* "retries: 3, the first after 1s, also when lost", if there are any. */
static void
output_field_retries(json_t *job)
{
	char d[UTIL_DURATION_LEN];
	const char *lost;
	long long n, delay;

	lost = json_is_true(json_object_get(job, "retry_on_lost"))
	           ? ", also when lost"
	           : "";
	if (output_int(job, "retries", &n) != 0 || n <= 0)
		return;
	if (output_int(job, "retry_delay_ms", &delay) != 0) {
		output_field("retries", "%lld%s", n, lost);
		return;
	}
	util_duration_format(delay, d, sizeof d);
	output_field("retries", "%lld, the first after %s%s", n, d, lost);
}

/*
 * How one attempt ended: "failed (exit 1)", "failed (signal TERM,
 * timeout)", "lost (supervisor gone)".
 */
static char *
output_attempt_end(json_t *a)
{
	const char *state = output_str(a, "state");
	const char *reason = output_str(a, "reason");
	char buf[32], how[64] = "";
	long long v;

	if (state == NULL)
		state = "?";
	if (output_int(a, "exit_code", &v) == 0)
		snprintf(how, sizeof how, "exit %lld", v);
	else if (output_int(a, "signal", &v) == 0)
		snprintf(how, sizeof how, "signal %s",
		         output_signal(v, buf, sizeof buf));
	if (*how != '\0' && reason != NULL)
		return (xasprintf("%s (%s, %s)", state, how, reason));
	if (*how != '\0' || reason != NULL)
		return (
		    xasprintf("%s (%s)", state, *how != '\0' ? how : reason));
	return (xstrdup(state));
}

/*
 * The ended attempts, one a line, oldest first:
 * "attempts: 1 failed (exit 1), START to END".
 */
static void
output_field_attempts(json_t *job)
{
	json_t *attempts = json_object_get(job, "attempts"), *a;
	const char *started, *finished;
	const char *label = "attempts";
	char *end;
	long long n;
	size_t i;

	json_array_foreach(attempts, i, a)
	{
		if (output_int(a, "attempt", &n) != 0)
			continue;
		started = output_str(a, "started_at");
		finished = output_str(a, "finished_at");
		end = output_attempt_end(a);
		output_field(label, "%lld %s, %s to %s", n, end,
		             started != NULL ? started : "-",
		             finished != NULL ? finished : "-");
		free(end);
		label = "";
	}
}

/* One job as an aligned "field: value" block; null fields are left out. */
void
output_job(json_t *job)
{
	output_field_int(job, "id", "id");
	output_field_str(job, "name", "name");
	output_field_state(job);
	output_field_str(job, "queue", "queue");
	output_field_command(job);
	output_field_str(job, "cwd", "cwd");
	output_field_owner(job);
	output_field_int(job, "priority", "priority");
	output_field_array(job);
	output_field_after(job);
	output_field_str(job, "start at", "run_at");
	output_field_timeout(job);
	output_field_retries(job);
	output_field_int(job, "attempt", "attempt");
	output_field_int(job, "exit code", "exit_code");
	output_field_signal(job);
	output_field_str(job, "reason", "reason");
	output_field_str(job, "submitted", "submitted_at");
	output_field_str(job, "started", "started_at");
	output_field_str(job, "finished", "finished_at");
	output_field_str(job, "stdout", "stdout");
	output_field_str(job, "stderr", "stderr");
	output_field_attempts(job);
}

/*
 * The length of the UTF-8 sequence at s (n > 0 bytes there): its length if
 * it is valid; 0 if it is cut short by the end of s; otherwise minus the
 * number of bytes that make up its invalid start (the "maximal subpart" that
 * one U+FFFD replaces).
 */
static int
output_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	int need, i;

	if (s[0] < 0x80)
		return (1);
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		if (s[0] == 0xe0)
			lo = 0xa0; /* overlong */
		if (s[0] == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		if (s[0] == 0xf0)
			lo = 0x90; /* overlong */
		if (s[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return (-1);
	for (i = 1; i < need; i++) {
		if ((size_t)i == n)
			return (0);
		if (s[i] < lo || s[i] > hi)
			return (-i);
		lo = 0x80;
		hi = 0xbf;
	}
	return (need);
}

/*
 * Copy len bytes of data into a new string to free (*outlenp bytes, NUL
 * added), each invalid UTF-8 sequence replaced by U+FFFD. Unless last is
 * set, a sequence cut short at the end is left for the next call: *usedp says
 * how many bytes were taken.
 */
char *
output_utf8(const void *data, size_t len, int last, size_t *usedp,
            size_t *outlenp)
{
	const unsigned char *in = data;
	char *out = xmalloc(3 * len + 1);
	size_t i = 0, o = 0;
	int n;

	while (i < len) {
		n = output_utf8_seq(in + i, len - i);
		if (n == 0 && !last)
			break;
		if (n > 0) {
			memcpy(out + o, in + i, n);
			o += n;
			i += n;
			continue;
		}
		memcpy(out + o, "\xef\xbf\xbd", 3);
		o += 3;
		i += n < 0 ? (size_t)-n : len - i;
	}
	out[o] = '\0';
	*usedp = i;
	*outlenp = o;
	return (out);
}
