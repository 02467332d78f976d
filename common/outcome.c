/*
 * A job's outcome file and the paths of a job's files; see outcome.h.
 *
 * The status file is text, one "key value" per line, each line ending in a
 * newline:
 *
 *   exit_code N      0..255, or -1 (or omitted) when the job did not exit
 *   signal N         the signal that killed the job, 0 if none
 *   started_at MS    wall clock, ms since the epoch
 *   finished_at MS
 *   reason TEXT      optional, the rest of the line (never a newline in it)
 *
 * signal, started_at and finished_at are required; unknown keys are skipped
 * so that a newer supervisor can add some. The writer writes a temporary
 * file, fsyncs it, renames it over ID.status and fsyncs the folder, so a
 * reader sees either no outcome or a whole one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outcome.h"
#include "util.h"

#define OUTCOME_MAX_FILE (64 * 1024) /* a real one is under 400 bytes */

static const struct {
	const char *folder;
	const char *ext;
} outcome_files[] = {
	[OUTCOME_RUN] = { "run", "run" },
	[OUTCOME_STATUS] = { "run", "status" },
	[OUTCOME_STDOUT] = { "out", "out" },
	[OUTCOME_STDERR] = { "out", "err" },
};

int
outcome_path(char *buf, size_t len, const char *state, int64_t id,
             enum outcome_file which)
{
	int n;

	if (id < 0 ||
	    (unsigned)which >= sizeof outcome_files / sizeof outcome_files[0]) {
		errno = EINVAL;
		return (-1);
	}
	n = snprintf(buf, len, "%s/%s/%" PRId64 ".%s", state,
	             outcome_files[which].folder, id, outcome_files[which].ext);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	return (0);
}

/*
 * An outcome says something: the job exited, was killed, or never ran for
 * a stated reason. It cannot claim both an exit code and a signal.
 */
static int
outcome_valid(const struct outcome *o)
{
	if (o->exit_code < -1 || o->exit_code > 255)
		return (0);
	if (o->signal < 0 || o->signal >= NSIG)
		return (0);
	if (o->exit_code >= 0 && o->signal > 0)
		return (0);
	if (o->started_at < 0 || o->finished_at < 0)
		return (0);
	return (o->exit_code >= 0 || o->signal > 0 || o->reason[0] != '\0');
}

static int
outcome_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		buf += n;
		len -= (size_t)n;
	}
	return (0);
}

static int
outcome_fsync_folder(const char *state)
{
	char path[PATH_MAX];
	int fd, n, rv;

	n = snprintf(path, sizeof path, "%s/run", state);
	if (n < 0 || (size_t)n >= sizeof path) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return (-1);
	rv = fsync(fd);
	close(fd);
	return (rv);
}

int
outcome_write(const char *state, int64_t id, const struct outcome *o)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], buf[512],
	    reason[sizeof o->reason];
	char *p;
	size_t len;
	int fd = -1, n, saved;

	if (!outcome_valid(o)) {
		errno = EINVAL;
		return (-1);
	}
	if (outcome_path(path, sizeof path, state, id, OUTCOME_STATUS) == -1)
		return (-1);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);

	/* The reason is one line: newlines would start a new key. */
	len = strnlen(o->reason, sizeof reason - 1);
	memcpy(reason, o->reason, len);
	reason[len] = '\0';
	for (p = reason; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
	n = snprintf(buf, sizeof buf,
	             "exit_code %d\nsignal %d\nstarted_at %" PRId64
	             "\nfinished_at %" PRId64 "\n",
	             o->exit_code, o->signal, o->started_at, o->finished_at);
	if (reason[0] != '\0')
		n += snprintf(buf + n, sizeof buf - (size_t)n, "reason %s\n",
		              reason);

	fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
	          0600);
	if (fd == -1)
		return (-1);
	if (outcome_write_all(fd, buf, (size_t)n) == -1 || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	/* The rename is durable only once the folder is on disk too. */
	return (outcome_fsync_folder(state));
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	errno = saved;
	return (-1);
}

enum outcome_key {
	OUTCOME_KEY_EXIT_CODE,
	OUTCOME_KEY_SIGNAL,
	OUTCOME_KEY_STARTED_AT,
	OUTCOME_KEY_FINISHED_AT,
	OUTCOME_KEY_REASON,
	OUTCOME_KEY_COUNT,
};

#define OUTCOME_REQUIRED                                                       \
	((1u << OUTCOME_KEY_SIGNAL) | (1u << OUTCOME_KEY_STARTED_AT) |         \
	 (1u << OUTCOME_KEY_FINISHED_AT))

static const struct {
	const char *name;
	long long min, max;
} outcome_keys[OUTCOME_KEY_COUNT] = {
	[OUTCOME_KEY_EXIT_CODE] = { "exit_code", -1, 255 },
	[OUTCOME_KEY_SIGNAL] = { "signal", 0, NSIG - 1 },
	[OUTCOME_KEY_STARTED_AT] = { "started_at", 0, INT64_MAX },
	[OUTCOME_KEY_FINISHED_AT] = { "finished_at", 0, INT64_MAX },
	[OUTCOME_KEY_REASON] = { "reason", 0, 0 },
};

/* A number in [min, max] written the way outcome_write writes it. */
static int
outcome_number(const char *s, long long min, long long max, int64_t *out)
{
	long long v;
	char canon[32];

	if (util_parse_int(s, min, max, &v) == -1)
		return (-1);
	snprintf(canon, sizeof canon, "%lld", v);
	if (strcmp(canon, s) != 0)
		return (-1); /* "+3", "03", "-0" */
	*out = v;
	return (0);
}

/* Parse one NUL-terminated line into o; seen holds the keys met so far. */
static int
outcome_parse_line(char *line, struct outcome *o, unsigned *seen)
{
	enum outcome_key k;
	char *value, *c;
	size_t len;
	int64_t v;

	if ((value = strchr(line, ' ')) == NULL || value == line)
		return (-1);
	*value++ = '\0';
	for (c = line; *c != '\0'; c++) {
		if ((*c < 'a' || *c > 'z') && *c != '_')
			return (-1);
	}
	for (k = 0; k < OUTCOME_KEY_COUNT; k++) {
		if (strcmp(line, outcome_keys[k].name) == 0)
			break;
	}
	if (k == OUTCOME_KEY_COUNT)
		return (0); /* a newer writer's key */
	if (*seen & (1u << k))
		return (-1);
	*seen |= 1u << k;
	if (k == OUTCOME_KEY_REASON) {
		if ((len = strlen(value)) >= sizeof o->reason)
			return (-1);
		memcpy(o->reason, value, len + 1);
		return (0);
	}
	if (outcome_number(value, outcome_keys[k].min, outcome_keys[k].max,
	                   &v) == -1)
		return (-1);
	switch (k) {
	case OUTCOME_KEY_EXIT_CODE:
		o->exit_code = (int)v;
		break;
	case OUTCOME_KEY_SIGNAL:
		o->signal = (int)v;
		break;
	case OUTCOME_KEY_STARTED_AT:
		o->started_at = v;
		break;
	default:
		o->finished_at = v;
		break;
	}
	return (0);
}

static int
outcome_parse(char *buf, size_t len, struct outcome *o)
{
	char *line, *nl, *end = buf + len;
	unsigned seen = 0;

	if (len == 0 || buf[len - 1] != '\n' || memchr(buf, '\0', len) != NULL)
		return (-1);
	for (line = buf; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		*nl = '\0';
		if (outcome_parse_line(line, o, &seen) == -1)
			return (-1);
	}
	if ((seen & OUTCOME_REQUIRED) != OUTCOME_REQUIRED)
		return (-1);
	return (outcome_valid(o) ? 0 : -1);
}

int
outcome_read(const char *state, int64_t id, struct outcome *out)
{
	char path[PATH_MAX], *buf = NULL;
	struct outcome o;
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd, rv = -1, saved;

	if (outcome_path(path, sizeof path, state, id, OUTCOME_STATUS) == -1)
		return (-1);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return (-1);
	if (fstat(fd, &st) == -1)
		goto out;
	if (!S_ISREG(st.st_mode) || st.st_size > OUTCOME_MAX_FILE) {
		errno = EINVAL;
		goto out;
	}
	/* One byte more than allowed, to notice a file that grew. */
	buf = xmalloc(OUTCOME_MAX_FILE + 1);
	for (;;) {
		n = read(fd, buf + len, OUTCOME_MAX_FILE + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto out;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > OUTCOME_MAX_FILE) {
			errno = EINVAL;
			goto out;
		}
	}
	memset(&o, 0, sizeof o);
	o.exit_code = -1;
	if (outcome_parse(buf, len, &o) == -1) {
		errno = EINVAL;
		goto out;
	}
	*out = o;
	rv = 0;
out:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return (rv);
}
