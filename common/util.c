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

/*
 * ms as a duration util_parse_duration_ms reads back: "1h30m", "500ms",
 * "0s"; a negative one is "invalid".
 */
void
util_duration_format(int64_t ms, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 },
		{ "s", 1000 },     { "ms", 1 },
	};
	size_t off = 0;
	int n;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (ms < 0) {
		snprintf(buf, len, "invalid");
		return;
	}
	if (ms == 0) {
		snprintf(buf, len, "0s");
		return;
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (ms < units[i].ms)
			continue;
		n = snprintf(buf + off, len - off, "%lld%s",
		             (long long)(ms / units[i].ms), units[i].unit);
		if (n < 0 || (size_t)n >= len - off)
			return;
		off += n;
		ms %= units[i].ms;
	}
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

	/* Not strftime: it reads the time zone file, for nothing here. */
	if (ms < 0 || gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999) {
		snprintf(buf, len, "invalid");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/*
 * Read exactly n digits at *sp into *vp and move *sp past them.
 */
static int
util_time_digits(const char **sp, int n, int *vp)
{
	const char *s = *sp;
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return (-1);
		v = v * 10 + (s[i] - '0');
	}
	*sp = s + n;
	*vp = v;
	return (0);
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t
util_time_days(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	/* Howard Hinnant's days_from_civil. */
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (era * 146097 + doe - 719468);
}

static int
util_time_mdays(int y, int m)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30,
		                       31, 31, 30, 31, 30, 31 };

	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return (29);
	return (mdays[m - 1]);
}

/*
 * "HH:MM:SS" (leap second 60 allowed: RFC 3339 permits it) or, with
 * seconds unset, "HH:MM" or "HH:MM:SS" (no leap second: no wall clock
 * shows it). Moves *sp past it.
 */
static int
util_time_hms(const char **sp, int rfc, int *hp, int *mp, int *secp)
{
	const char *s = *sp;
	int h, m, sec = 0;

	if (util_time_digits(&s, 2, &h) != 0 || *s++ != ':' ||
	    util_time_digits(&s, 2, &m) != 0)
		return (-1);
	if (rfc || *s == ':') {
		if (*s++ != ':' || util_time_digits(&s, 2, &sec) != 0)
			return (-1);
	}
	if (h > 23 || m > 59 || sec > (rfc ? 60 : 59))
		return (-1);
	*sp = s;
	*hp = h;
	*mp = m;
	*secp = sec;
	return (0);
}

/*
 * RFC 3339: "2026-11-28T09:00:00Z", with 'T', 't' or a space between date
 * and time, an optional fraction (cut to milliseconds), and 'Z', 'z' or an
 * offset "+01:00"/"-05:30". Nothing may follow.
 */
static int
util_time_rfc3339(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, sec, oh, om, ms = 0, sign = 0;
	int64_t t;

	if (util_time_digits(&s, 4, &y) != 0 || *s++ != '-' ||
	    util_time_digits(&s, 2, &mo) != 0 || *s++ != '-' ||
	    util_time_digits(&s, 2, &d) != 0)
		return (-1);
	if (mo < 1 || mo > 12 || d < 1 || d > util_time_mdays(y, mo))
		return (-1);
	if (*s != 'T' && *s != 't' && *s != ' ')
		return (-1);
	s++;
	if (util_time_hms(&s, 1, &h, &mi, &sec) != 0)
		return (-1);
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return (-1);
		/* Digits past the third weigh 0: cut, not rounded. */
		for (int w = 100; isdigit((unsigned char)*s); s++, w /= 10)
			ms += (*s - '0') * w;
	}
	if (*s == 'Z' || *s == 'z')
		s++;
	else if (*s == '+' || *s == '-') {
		sign = *s++ == '+' ? 1 : -1;
		if (util_time_digits(&s, 2, &oh) != 0 || *s++ != ':' ||
		    util_time_digits(&s, 2, &om) != 0 || oh > 23 || om > 59)
			return (-1);
	} else
		return (-1);
	if (*s != '\0')
		return (-1);
	t = util_time_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	if (sign != 0)
		t -= sign * (oh * 3600 + om * 60);
	*out = t * 1000 + ms;
	return (0);
}

/*
 * The times at h:m:s local time on the day days after base's (at most two
 * on a day the clocks go back), in order, into ts. Returns how many there
 * are: 0 for a time the clocks skip, which then comes out in *skipped as
 * mktime moves it (02:30 on the day of a one-hour jump: 03:30).
 */
static int
util_time_local(const struct tm *base, int days, int h, int m, int s,
                time_t ts[2], time_t *skipped)
{
	static const int isdst[] = { -1, 0, 1 };
	struct tm tm, check;
	time_t t;
	int n = 0, mday = -1;

	*skipped = (time_t)-1;
	for (size_t i = 0; i < sizeof isdst / sizeof isdst[0]; i++) {
		tm = *base;
		tm.tm_mday += days;
		tm.tm_hour = h;
		tm.tm_min = m;
		tm.tm_sec = s;
		tm.tm_isdst = isdst[i];
		if ((t = mktime(&tm)) == (time_t)-1)
			continue;
		if (i == 0) {
			/* The day asked for, once mktime has normalised it. */
			mday = tm.tm_mday;
			*skipped = t;
		}
		/* A tm_isdst that does not hold moves the time by an hour. */
		if (localtime_r(&t, &check) == NULL || check.tm_hour != h ||
		    check.tm_min != m || check.tm_sec != s ||
		    check.tm_mday != mday)
			continue;
		if (n == 2 || (n == 1 && ts[0] == t))
			continue;
		ts[n++] = t;
	}
	if (n == 2 && ts[1] < ts[0]) {
		t = ts[0];
		ts[0] = ts[1];
		ts[1] = t;
	}
	return (n);
}

/*
 * "HH:MM" or "HH:MM:SS" in local time: with dir > 0 the first such time
 * after now_ms (today if it is still ahead, else tomorrow); with dir < 0
 * the last one at or before now_ms. Days are counted in the calendar
 * (mktime), not as 24 hours, so that a day the clocks change on is right.
 */
static int
util_time_clock(const char *s, int64_t now_ms, int dir, int64_t *out)
{
	struct tm base;
	time_t now, ts[2], skipped;
	int h, m, sec, n;

	if (util_time_hms(&s, 0, &h, &m, &sec) != 0 || *s != '\0')
		return (-1);
	now = (time_t)(now_ms / 1000 - (now_ms % 1000 < 0));
	if (localtime_r(&now, &base) == NULL)
		return (-1);
	/* Today, then the next (or previous) day; one of them has it. */
	for (int day = 0; day != 2 * dir; day += dir) {
		n = util_time_local(&base, day, h, m, sec, ts, &skipped);
		if (n == 0 && skipped != (time_t)-1)
			ts[n++] = skipped;
		for (int i = 0; i < n; i++) {
			/* Earliest after now, or latest at or before it. */
			int k = dir > 0 ? i : n - 1 - i;
			int64_t ms = (int64_t)ts[k] * 1000;

			if (dir > 0 ? ms > now_ms : ms <= now_ms) {
				*out = ms;
				return (0);
			}
		}
	}
	return (-1);
}

int
util_parse_time(const char *text, int64_t now_ms, int64_t *out_ms)
{
	if (text == NULL)
		return (-1);
	if (util_time_rfc3339(text, out_ms) == 0)
		return (0);
	return (util_time_clock(text, now_ms, 1, out_ms));
}

int
util_parse_time_past(const char *text, int64_t now_ms, int64_t *out_ms)
{
	if (text == NULL)
		return (-1);
	if (util_time_rfc3339(text, out_ms) == 0)
		return (0);
	return (util_time_clock(text, now_ms, -1, out_ms));
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
