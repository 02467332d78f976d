/* Helpers shared by every binary; see util.h. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <pwd.h>

#include "log.h"
#include "util.h"

void *
xmalloc(size_t n)
{
	void *p = malloc(n == 0 ? 1 : n);

	if (p == NULL)
		fatal("malloc %zu bytes", n);
	return (p);
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

	if (p == NULL)
		fatal("calloc %zu x %zu bytes", n, size);
	return (p);
}

void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n == 0 ? 1 : n)) == NULL)
		fatal("realloc %zu bytes", n);
	return (p);
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatal("strdup");
	return (p);
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		fatal("vasprintf");
	va_end(ap);
	return (s);
}

/* A whole decimal number in [min, max]; no sign games, no trailing bytes. */
int
util_parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return (-1);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return (-1);
	*out = v;
	return (0);
}

/*
 * A duration: a number with a unit, or several ("1h30m"). Units: ms, s, m,
 * h, d; a bare number means seconds. The result is in milliseconds.
 */
int
util_parse_duration_ms(const char *s, long long *out)
{
	static const struct {
		const char *unit;
		long long ms;
	} units[] = {
		{ "ms", 1 },      { "s", 1000 },     { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	long long total = 0, n;
	char *end;
	size_t i, len;
	int first = 1;

	if (s == NULL || !isdigit((unsigned char)*s))
		return (-1);
	while (*s != '\0') {
		if (!isdigit((unsigned char)*s))
			return (-1);
		errno = 0;
		n = strtoll(s, &end, 10);
		if (errno != 0)
			return (-1);
		s = end;
		if (*s == '\0' && first) {
			if (n > LLONG_MAX / 1000)
				return (-1);
			*out = n * 1000;
			return (0);
		}
		for (i = 0; i < sizeof units / sizeof units[0]; i++) {
			len = strlen(units[i].unit);
			if (strncmp(s, units[i].unit, len) == 0 &&
			    !isalpha((unsigned char)s[len]))
				break;
		}
		if (i == sizeof units / sizeof units[0])
			return (-1);
		if (n > (LLONG_MAX - total) / units[i].ms)
			return (-1);
		total += n * units[i].ms;
		s += len;
		first = 0;
	}
	*out = total;
	return (0);
}

int64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

int64_t
util_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

void
util_time_format(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char sec[24];

	if (ms < 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "invalid");
		return;
	}
	if (strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, len, "invalid");
		return;
	}
	snprintf(buf, len, "%s.%03dZ", sec, (int)(ms % 1000));
}

int
util_socket_url(const char *arg, char *out, size_t len)
{
	const char *path = arg;
	int n;

	if (strstr(arg, "://") != NULL) {
		if (strncmp(arg, "ipc://", 6) != 0)
			return (-1);
		path = arg + 6;
	}
	if (*path == '\0' ||
	    strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return (-1);
	n = snprintf(out, len, "ipc://%s", path);
	return (n < 0 || (size_t)n >= len ? -1 : 0);
}

int
util_default_paths(char *sock, size_t socklen, char *state, size_t statelen)
{
	const char *rt, *xs, *home;
	struct passwd *pw;
	char dir[PATH_MAX];
	int n;

	if (geteuid() == 0) {
		snprintf(sock, socklen, "ipc://%s", UTIL_SYSTEM_SOCKET);
		snprintf(state, statelen, "/var/lib/jobd");
		return (0);
	}
	if ((xs = getenv("XDG_STATE_HOME")) != NULL && *xs == '/')
		n = snprintf(dir, sizeof dir, "%s/jobd", xs);
	else {
		if ((home = getenv("HOME")) == NULL || *home != '/') {
			if ((pw = getpwuid(geteuid())) == NULL)
				return (-1);
			home = pw->pw_dir;
		}
		n = snprintf(dir, sizeof dir, "%s/.local/state/jobd", home);
	}
	if (n < 0 || (size_t)n >= sizeof dir)
		return (-1);
	snprintf(state, statelen, "%s", dir);
	if ((rt = getenv("XDG_RUNTIME_DIR")) != NULL && *rt == '/')
		n = snprintf(sock, socklen, "ipc://%s/jobd/jobd.sock", rt);
	else
		n = snprintf(sock, socklen, "ipc://%s/jobd.sock", dir);
	return (n < 0 || (size_t)n >= socklen ? -1 : 0);
}

/* mkdir, or nothing if path is already a folder. */
static int
util_mkdir(const char *path, mode_t mode)
{
	struct stat sb;

	if (mkdir(path, mode) == 0)
		return (0);
	if (errno != EEXIST)
		return (-1);
	if (stat(path, &sb) != 0)
		return (-1);
	if (!S_ISDIR(sb.st_mode)) {
		errno = ENOTDIR;
		return (-1);
	}
	return (0);
}

/* mkdir -p; existing folders are left as they are. */
int
util_mkdir_p(const char *path, mode_t mode)
{
	char *p, *s = xstrdup(path);
	int rv = -1;

	for (p = s + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (util_mkdir(s, mode) != 0)
			goto out;
		*p = '/';
	}
	if (util_mkdir(s, mode) != 0)
		goto out;
	rv = 0;
out:
	free(s);
	return (rv);
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
util_base64_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = xmalloc(4 * ((len + 2) / 3) + 1), *o = out;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		*o++ = b64[in[i] >> 2];
		*o++ = b64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*o++ = b64[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		*o++ = b64[in[i + 2] & 63];
	}
	if (i < len) {
		*o++ = b64[in[i] >> 2];
		if (i + 1 < len) {
			*o++ = b64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			*o++ = b64[(in[i + 1] & 15) << 2];
		} else {
			*o++ = b64[(in[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = '\0';
	return (out);
}

int
util_base64_decode(const char *s, void **outp, size_t *lenp)
{
	size_t len = strlen(s), i, n = 0;
	unsigned char *out;
	unsigned int acc = 0;
	int bits = 0, pad = 0;
	const char *c;

	if (len % 4 != 0)
		return (-1);
	out = xmalloc(len / 4 * 3 + 1);
	for (i = 0; i < len; i++) {
		if (s[i] == '=') {
			if (i < len - 2)
				goto bad;
			pad++;
			continue;
		}
		if (pad || (c = strchr(b64, s[i])) == NULL || s[i] == '\0')
			goto bad;
		acc = (acc << 6) | (unsigned int)(c - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	*outp = out;
	*lenp = n;
	return (0);
bad:
	free(out);
	return (-1);
}

/*
 * Split len bytes of NUL-terminated strings into a new NULL-terminated
 * array of copies (bytes after the last NUL are dropped). Free it with
 * util_strv_free.
 */
char **
util_strv_split(const char *buf, size_t len)
{
	size_t n = 0, i, k = 0;
	char **v;

	for (i = 0; i < len; i++)
		n += buf[i] == '\0';
	v = xcalloc(n + 1, sizeof *v);
	for (i = 0; i < len && k < n; i += strlen(buf + i) + 1)
		v[k++] = xstrdup(buf + i);
	return (v);
}

void
util_strv_free(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}
