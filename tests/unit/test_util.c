/*
 * Unit tests for common/util.c: number, duration and time parsing, time
 * formatting, socket URLs, base64, mkdir -p.
 */
#include <sys/stat.h>
#include <sys/un.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "util.h"

#define SUN_PATH_LEN sizeof(((struct sockaddr_un *)0)->sun_path)

/* A fresh temporary folder per test. */
struct fixture {
	char dir[64];
};

static int
setup_dir(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	if (fx == NULL)
		return (-1);
	if (fixture_mkdtemp(fx->dir, sizeof fx->dir, "util") == -1) {
		free(fx);
		return (-1);
	}
	*state = fx;
	return (0);
}

static int
teardown_dir(void **state)
{
	struct fixture *fx = *state;
	int rv;

	rv = fixture_rmtree(fx->dir);
	free(fx);
	return (rv);
}

/* Parse s as an int in [min, max]; out stays 777 on failure. */
static int
parse_int(const char *s, long long min, long long max, long long *out)
{
	*out = 777;
	return (util_parse_int(s, min, max, out));
}

static void
assert_int_rejected(const char *s, long long min, long long max)
{
	long long v;

	if (parse_int(s, min, max, &v) != -1)
		fail_msg("util_parse_int(\"%s\") accepted: %lld",
		         s != NULL ? s : "(null)", v);
	assert_int_equal(v, 777);
}

static void
test_parse_int(void **state)
{
	long long v;

	(void)state;
	assert_int_equal(parse_int("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_int("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_int("-3", -5, 5, &v), 0);
	assert_int_equal(v, -3);
	assert_int_equal(parse_int("007", 0, 10, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(parse_int("9223372036854775807", 0, LLONG_MAX, &v), 0);
	assert_true(v == LLONG_MAX);
	assert_int_equal(parse_int("-9223372036854775808", LLONG_MIN, 0, &v),
	                 0);
	assert_true(v == LLONG_MIN);

	assert_int_rejected(NULL, 0, 10);
	assert_int_rejected("", 0, 10);
	assert_int_rejected(" ", 0, 10);
	assert_int_rejected(" 5", 0, 10);
	assert_int_rejected("\t5", 0, 10);
	assert_int_rejected("5 ", 0, 10);
	assert_int_rejected("5\n", 0, 10);
	assert_int_rejected("5x", 0, 10);
	assert_int_rejected("0x5", 0, 10);
	assert_int_rejected("1e3", 0, 10000);
	assert_int_rejected("1.0", 0, 10);
	assert_int_rejected("-", -10, 10);
	assert_int_rejected("11", 0, 10);
	assert_int_rejected("-1", 0, 10);
	assert_int_rejected("9223372036854775808", 0, LLONG_MAX);
	assert_int_rejected("-9223372036854775809", LLONG_MIN, 0);
	assert_int_rejected("99999999999999999999999", LLONG_MIN, LLONG_MAX);
}

static void
assert_duration(const char *s, long long ms)
{
	long long v = 777;

	if (util_parse_duration_ms(s, &v) != 0)
		fail_msg("duration \"%s\" rejected", s);
	if (v != ms)
		fail_msg("duration \"%s\": %lld ms, expected %lld", s, v, ms);
}

static void
assert_duration_rejected(const char *s)
{
	long long v = 777;

	if (util_parse_duration_ms(s, &v) != -1)
		fail_msg("duration \"%s\" accepted: %lld ms",
		         s != NULL ? s : "(null)", v);
	assert_int_equal(v, 777);
}

static void
test_parse_duration(void **state)
{
	(void)state;
	assert_duration("90s", 90000);
	assert_duration("5m", 300000);
	assert_duration("2h", 7200000);
	assert_duration("1d", 86400000);
	assert_duration("500ms", 500);
	assert_duration("1h30m", 5400000);
	assert_duration("1m30s", 90000);
	assert_duration("1d2h3m4s5ms", 93784005);
	assert_duration("10", 10000);
	assert_duration("0", 0);
	assert_duration("0s", 0);
	assert_duration("9223372036854775ms", 9223372036854775LL);
	assert_duration("9223372036854775", 9223372036854775000LL);

	assert_duration_rejected(NULL);
	assert_duration_rejected("");
	assert_duration_rejected("s");
	assert_duration_rejected("ms");
	assert_duration_rejected("-5s");
	assert_duration_rejected("+5s");
	assert_duration_rejected(" 5s");
	assert_duration_rejected("5 s");
	assert_duration_rejected("5s ");
	assert_duration_rejected("5x");
	assert_duration_rejected("5mx");
	assert_duration_rejected("5sec");
	assert_duration_rejected("5S");
	assert_duration_rejected("1.5s");
	assert_duration_rejected("1h30");
	assert_duration_rejected("1h-30m");
	/* Overflow: of strtoll, of the unit, of the sum. */
	assert_duration_rejected("99999999999999999999s");
	assert_duration_rejected("9223372036854776");
	assert_duration_rejected("9223372036854776s");
	assert_duration("106751991167d", 106751991167LL * 86400000);
	assert_duration_rejected("106751991168d");
	assert_duration_rejected("106751991167d86400s");
}

/*
 * A bare number means seconds only when it stands alone: "1s10" is
 * rejected, and so must be "0s10" (a unit given, then a bare number).
 */
static void
test_parse_duration_bare_after_unit(void **state)
{
	(void)state;
	assert_duration_rejected("1s10");
	assert_duration_rejected("0s10");
	assert_duration_rejected("0h0m5");
}

/* util_duration_format's text, and that it reads back as the same. */
static void
assert_duration_text(int64_t ms, const char *want)
{
	char buf[UTIL_DURATION_LEN];
	long long back = -1;

	util_duration_format(ms, buf, sizeof buf);
	assert_string_equal(buf, want);
	if (ms >= 0) {
		assert_int_equal(util_parse_duration_ms(buf, &back), 0);
		assert_int_equal(back, ms);
	}
}

static void
test_duration_format(void **state)
{
	(void)state;
	assert_duration_text(0, "0s");
	assert_duration_text(1, "1ms");
	assert_duration_text(500, "500ms");
	assert_duration_text(1000, "1s");
	assert_duration_text(90000, "1m30s");
	assert_duration_text(5400000, "1h30m");
	assert_duration_text(86400000, "1d");
	assert_duration_text(93784005, "1d2h3m4s5ms");
	assert_duration_text(1LL << 53, "104249991d8h59m992ms");
	assert_duration_text(3600001, "1h1ms");
	assert_duration_text(-1, "invalid");
}

static void
assert_time(int64_t ms, const char *want)
{
	char buf[UTIL_TIME_LEN];

	memset(buf, 'X', sizeof buf);
	util_time_format(ms, buf, sizeof buf);
	assert_string_equal(buf, want);
}

static void
test_time_format(void **state)
{
	char small[11];

	(void)state;
	assert_time(0, "1970-01-01T00:00:00.000Z");
	assert_time(1, "1970-01-01T00:00:00.001Z");
	assert_time(999, "1970-01-01T00:00:00.999Z");
	assert_time(1700000000123LL, "2023-11-14T22:13:20.123Z");
	assert_time(951782400005LL, "2000-02-29T00:00:00.005Z");
	assert_time(253402300799999LL, "9999-12-31T23:59:59.999Z");
	assert_time(-1, "invalid");
	assert_int_equal(
	    strlen("2023-11-14T22:13:20.123Z") + 1 <= UTIL_TIME_LEN, 1);
	/* A short buffer is cut and still terminated. */
	util_time_format(1700000000123LL, small, sizeof small);
	assert_string_equal(small, "2023-11-14");
}

/* buf is "invalid" or ends like RFC 3339 with ms: ":SS.mmmZ". */
static int
time_well_formed(const char *buf)
{
	size_t n = strlen(buf);

	if (strcmp(buf, "invalid") == 0)
		return (1);
	return (n >= 24 && buf[n - 1] == 'Z' && buf[n - 5] == '.' &&
	        buf[n - 8] == ':' && isdigit((unsigned char)buf[n - 7]) &&
	        isdigit((unsigned char)buf[n - 6]));
}

/*
 * A time whose year needs more digits than the formatter's buffer holds
 * (from a corrupt outcome file, say) must not come out cut in the middle.
 */
static void
test_time_format_far_future(void **state)
{
	static const int64_t times[] = {
		253402300800000LL,     /* year 10000 */
		3200000000000000000LL, /* year 101405933 */
		INT64_MAX,
	};
	char buf[UTIL_TIME_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		util_time_format(times[i], buf, sizeof buf);
		if (!time_well_formed(buf))
			fail_msg("%lld ms formats as \"%s\"",
			         (long long)times[i], buf);
	}
}

/* 2026-11-28T10:00:00Z, a Saturday: the "now" of the local-time tests. */
#define NOW_MS 1795860000000LL
/* Central European time, as a POSIX rule: no tz database needed. */
#define TZ_CET "CET-1CEST,M3.5.0,M10.5.0/3"

/* Make local time TZ (a POSIX TZ value) for the tests that follow. */
static void
set_tz(const char *tz)
{
	assert_int_equal(setenv("TZ", tz, 1), 0);
	tzset();
}

static void
assert_ptime(const char *s, int64_t now, int64_t want)
{
	int64_t v = 777;

	if (util_parse_time(s, now, &v) != 0)
		fail_msg("time \"%s\" rejected", s);
	if (v != want)
		fail_msg("time \"%s\": %lld ms, expected %lld", s, (long long)v,
		         (long long)want);
}

static void
assert_ptime_past(const char *s, int64_t now, int64_t want)
{
	int64_t v = 777;

	if (util_parse_time_past(s, now, &v) != 0)
		fail_msg("time \"%s\" rejected", s);
	if (v != want)
		fail_msg("past time \"%s\": %lld ms, expected %lld", s,
		         (long long)v, (long long)want);
}

static void
assert_ptime_rejected(const char *s)
{
	int64_t v = 777;

	if (util_parse_time(s, NOW_MS, &v) != -1)
		fail_msg("time \"%s\" accepted: %lld ms", s, (long long)v);
	assert_int_equal(v, 777);
	if (util_parse_time_past(s, NOW_MS, &v) != -1)
		fail_msg("past time \"%s\" accepted: %lld ms", s, (long long)v);
	assert_int_equal(v, 777);
}

static void
test_parse_time_rfc3339(void **state)
{
	(void)state;
	set_tz(TZ_CET); /* must not matter */
	assert_ptime("2026-11-28T09:00:00Z", NOW_MS, 1795856400000LL);
	assert_ptime("2026-11-28t09:00:00z", NOW_MS, 1795856400000LL);
	assert_ptime("2026-11-28 09:00:00Z", NOW_MS, 1795856400000LL);
	assert_ptime("2026-11-28T09:00:00+00:00", NOW_MS, 1795856400000LL);
	assert_ptime("2026-11-28T09:00:00-00:00", NOW_MS, 1795856400000LL);
	assert_ptime("2026-11-28T09:00:00.5+01:00", NOW_MS, 1795852800500LL);
	assert_ptime("2026-11-28T09:00:00.05Z", NOW_MS, 1795856400050LL);
	assert_ptime("2026-11-28T09:00:00.123Z", NOW_MS, 1795856400123LL);
	/* Below a millisecond is cut, not rounded. */
	assert_ptime("2026-11-28T09:00:00.123999999Z", NOW_MS, 1795856400123LL);
	assert_ptime("2026-11-28T04:30:00-04:30", NOW_MS, 1795856400000LL);
	/* An offset may move the date either way. */
	assert_ptime("2026-11-28T23:45:00+23:59", NOW_MS,
	             1795856400000LL - 9 * 3600000LL - 14 * 60000LL);
	assert_ptime("2026-11-29T01:00:00+02:00", NOW_MS,
	             1795856400000LL + 14 * 3600000LL);
	assert_ptime("2024-02-29T23:59:59Z", NOW_MS, 1709251199000LL);
	assert_ptime("2000-02-29T00:00:00Z", NOW_MS, 951782400000LL);
	assert_ptime("2026-12-31T23:59:59Z", NOW_MS, 1798761599000LL);
	/* A leap second is the next second. */
	assert_ptime("2026-12-31T23:59:60Z", NOW_MS, 1798761600000LL);
	assert_ptime("1970-01-01T00:00:00Z", NOW_MS, 0);
	assert_ptime("1969-12-31T23:59:59Z", NOW_MS, -1000);
	assert_ptime("9999-12-31T23:59:59.999Z", NOW_MS, 253402300799999LL);
	assert_ptime("0000-01-01T00:00:00Z", NOW_MS, -62167219200000LL);
	/* Past or future, RFC 3339 is what it says. */
	assert_ptime_past("2026-11-28T09:00:00Z", NOW_MS, 1795856400000LL);
	assert_ptime_past("2030-01-01T00:00:00Z", NOW_MS, 1893456000000LL);
}

static void
test_parse_time_bad(void **state)
{
	static const char *const bad[] = {
		"",
		" ",
		"now",
		"2026-11-28",
		"2026-11-28T09:00",
		"2026-11-28T09:00Z",
		"2026-11-28T09:00:00",   /* RFC 3339 needs an offset */
		"2026-11-28T09:00:00Zx", /* trailing junk */
		"2026-11-28T09:00:00Z ",
		" 2026-11-28T09:00:00Z",
		"2026-11-28T09:00:00ZZ",
		"2026-11-28T09:00:00+01:00x",
		"2026-11-28X09:00:00Z",
		"2026-11-28  09:00:00Z",
		"2026-11-28T9:00:00Z",
		"2026-1-28T09:00:00Z",
		"26-11-28T09:00:00Z",
		"+2026-11-28T09:00:00Z",
		"20261-11-28T09:00:00Z",
		"2026/11/28T09:00:00Z",
		"2026-13-01T00:00:00Z", /* month 13 */
		"2026-00-01T00:00:00Z",
		"2026-11-00T00:00:00Z",
		"2026-11-31T00:00:00Z",
		"2026-02-29T00:00:00Z", /* not a leap year */
		"1900-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z",
		"2026-11-28T24:00:00Z",
		"2026-11-28T25:00:00Z",
		"2026-11-28T09:60:00Z",
		"2026-11-28T09:00:61Z", /* 61 seconds */
		"2026-11-28T09:00:00.Z",
		"2026-11-28T09:00:00.+01:00",
		"2026-11-28T09:00:00,5Z",
		"2026-11-28T09:00:00.5.5Z",
		"2026-11-28T09:00:00+0100",
		"2026-11-28T09:00:00+01",
		"2026-11-28T09:00:00+1:00",
		"2026-11-28T09:00:00+24:00",
		"2026-11-28T09:00:00+01:60",
		"2026-11-28T09:00:00 +01:00",
		"2026-11-28T-9:00:00Z",
		"25:00", /* 25 o'clock */
		"24:00",
		"12:60",
		"12:00:60", /* no wall clock shows a leap second */
		"12:00:61",
		"9:00",
		"09:0",
		"0900",
		"09",
		"09:",
		"09:00:",
		"09:00:0",
		"09:00 ",
		" 09:00",
		"09:00x",
		"09:00Z",
		"09:00:00Z",
		"09:00:00.5",
		"-09:00",
		"+09:00",
		"09:00:00:00",
	};

	(void)state;
	set_tz("UTC0");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_ptime_rejected(bad[i]);
	assert_ptime_rejected(NULL);
}

/* HH:MM is the next such time: today if still ahead, else tomorrow. */
static void
test_parse_time_clock(void **state)
{
	const int64_t h = 3600000;

	(void)state;
	set_tz("UTC0");
	assert_ptime("11:00", NOW_MS, NOW_MS + h);
	assert_ptime("10:00:01", NOW_MS, NOW_MS + 1000);
	assert_ptime("23:59:59", NOW_MS, NOW_MS + 14 * h - 1000);
	/* Now itself is not ahead: tomorrow. */
	assert_ptime("10:00", NOW_MS, NOW_MS + 24 * h);
	assert_ptime("10:00:00", NOW_MS, NOW_MS + 24 * h);
	assert_ptime("09:00", NOW_MS, NOW_MS + 23 * h);
	assert_ptime("00:00", NOW_MS, NOW_MS + 14 * h);
	assert_ptime("09:59:59", NOW_MS, NOW_MS + 24 * h - 1000);
	/* Now with milliseconds: 10:00:00 is already behind. */
	assert_ptime("10:00:00", NOW_MS + 500, NOW_MS + 24 * h);
	assert_ptime("10:00:01", NOW_MS + 500, NOW_MS + 1000);
	/* Over the end of a month and of a year. */
	assert_ptime("08:00", 1798761599000LL, 1798761600000LL + 8 * h);
	/* The last such time at or before now. */
	assert_ptime_past("09:00", NOW_MS, NOW_MS - h);
	assert_ptime_past("10:00", NOW_MS, NOW_MS);
	assert_ptime_past("10:00:01", NOW_MS, NOW_MS - 24 * h + 1000);
	assert_ptime_past("23:00", NOW_MS, NOW_MS - 11 * h);

	/* Local time one hour ahead of UTC (CET in November). */
	set_tz(TZ_CET);
	assert_ptime("12:00", NOW_MS, NOW_MS + h); /* 11:00Z today */
	assert_ptime("11:00", NOW_MS, NOW_MS + 24 * h);
	assert_ptime("09:00", NOW_MS, NOW_MS + 22 * h); /* 08:00Z tomorrow */
	assert_ptime("00:30", NOW_MS, NOW_MS + 13 * h + 30 * 60000);
	assert_ptime_past("09:00", NOW_MS, NOW_MS - 2 * h);
	/* Twelve hours behind: it is still Friday 22:00 there. */
	set_tz("XXX12");
	assert_ptime("23:00", NOW_MS, NOW_MS + h);
	assert_ptime("00:30", NOW_MS, NOW_MS + 2 * h + 30 * 60000);
	assert_ptime("21:00", NOW_MS, NOW_MS + 23 * h);
	assert_ptime_past("21:00", NOW_MS, NOW_MS - h);
	set_tz("UTC0");
}

/*
 * Days are counted in the calendar: on the day the clocks change, "the
 * same time tomorrow" is 23 or 25 hours away, and a time that occurs twice
 * or not at all still gives one answer.
 */
static void
test_parse_time_dst(void **state)
{
	const int64_t h = 3600000;

	(void)state;
	set_tz(TZ_CET);
	/* Sat 2026-03-28 12:00Z (13:00 CET); Sunday is 23 hours long. */
	assert_ptime("09:00", 1774699200000LL, 1774767600000LL); /* CEST */
	assert_ptime("13:00", 1774699200000LL, 1774699200000LL + 23 * h);
	/* 02:30 does not exist on Sunday: it comes out an hour on. */
	assert_ptime("02:30", 1774699200000LL, 1774747800000LL);
	/* Sat 2026-10-24 12:00Z (14:00 CEST); Sunday is 25 hours long. */
	assert_ptime("09:00", 1792843200000LL, 1792915200000LL); /* CET */
	assert_ptime("14:00", 1792843200000LL, 1792843200000LL + 25 * h);
	/* Sun 2026-10-25 00:45Z is 02:45 CEST: 02:30 comes again, in CET. */
	assert_ptime("02:30", 1792889100000LL, 1792891800000LL);
	/* Before both: the first one. */
	assert_ptime("02:30", 1792889100000LL - h, 1792888200000LL);
	/* And looking back from after both, the second. */
	assert_ptime_past("02:30", 1792891800000LL + h, 1792891800000LL);
	assert_ptime_past("02:30", 1792889100000LL, 1792888200000LL);
	set_tz("UTC0");
}

static void
test_clocks(void **state)
{
	int64_t a, b;

	(void)state;
	/* After 2020-01-01 and not absurdly far in the future. */
	assert_true(util_now_ms() > 1577836800000LL);
	assert_true(util_now_ms() < 32503680000000LL);
	a = util_mono_ms();
	b = util_mono_ms();
	assert_true(b >= a);
}

static void
assert_url(const char *arg, const char *want)
{
	char out[256];

	memset(out, 'X', sizeof out);
	if (util_socket_url(arg, out, sizeof out) != 0)
		fail_msg("util_socket_url(\"%s\") failed", arg);
	assert_string_equal(out, want);
}

static void
assert_url_rejected(const char *arg, size_t outlen)
{
	char out[256];

	assert_true(outlen <= sizeof out);
	if (util_socket_url(arg, out, outlen) != -1)
		fail_msg("util_socket_url(\"%s\") accepted", arg);
}

static void
test_socket_url(void **state)
{
	char path[SUN_PATH_LEN + 8];

	(void)state;
	assert_url("/run/jobd/jobd.sock", "ipc:///run/jobd/jobd.sock");
	assert_url("ipc:///tmp/x.sock", "ipc:///tmp/x.sock");
	assert_url("rel.sock", "ipc://rel.sock");
	assert_url_rejected("tcp://127.0.0.1:5555", 256);
	assert_url_rejected("inproc://x", 256);
	assert_url_rejected("IPC:///tmp/x", 256);
	assert_url_rejected("", 256);
	assert_url_rejected("ipc://", 256);
	/* The output buffer must hold the URL. */
	assert_url_rejected("/tmp/x.sock", 10);
	assert_url_rejected("/tmp/x.sock", strlen("ipc:///tmp/x.sock"));

	/* The longest path a Unix socket takes, then one byte more. */
	memset(path, 'a', sizeof path);
	path[0] = '/';
	path[SUN_PATH_LEN - 1] = '\0';
	{
		char want[SUN_PATH_LEN + 16];

		snprintf(want, sizeof want, "ipc://%s", path);
		assert_url(path, want);
	}
	path[SUN_PATH_LEN - 1] = 'a';
	path[SUN_PATH_LEN] = '\0';
	assert_url_rejected(path, 256);
	{
		char url[SUN_PATH_LEN + 16];

		snprintf(url, sizeof url, "ipc://%s", path);
		assert_url_rejected(url, 256);
	}
}

static void
test_default_paths(void **state)
{
	char sock[PATH_MAX + 8], dir[PATH_MAX];

	(void)state;
	assert_int_equal(util_default_paths(sock, sizeof sock, dir, sizeof dir),
	                 0);
	assert_true(strncmp(sock, "ipc:///", 7) == 0);
	assert_true(dir[0] == '/');
	if (geteuid() == 0) {
		assert_string_equal(sock, "ipc://" UTIL_SYSTEM_SOCKET);
		assert_string_equal(dir, "/var/lib/jobd");
	}
}

static void
assert_b64(const char *plain, size_t len, const char *want)
{
	char *enc = util_base64_encode(plain, len);
	void *dec = NULL;
	size_t declen = 999;

	assert_string_equal(enc, want);
	assert_int_equal(util_base64_decode(enc, &dec, &declen), 0);
	assert_int_equal(declen, len);
	assert_memory_equal(dec, plain, len);
	free(dec);
	free(enc);
}

static void
test_base64_vectors(void **state)
{
	(void)state;
	/* RFC 4648, section 10. */
	assert_b64("", 0, "");
	assert_b64("f", 1, "Zg==");
	assert_b64("fo", 2, "Zm8=");
	assert_b64("foo", 3, "Zm9v");
	assert_b64("foob", 4, "Zm9vYg==");
	assert_b64("fooba", 5, "Zm9vYmE=");
	assert_b64("foobar", 6, "Zm9vYmFy");
	assert_b64("\xff\xfe\xfd", 3, "//79");
	assert_b64("\0\0", 2, "AAA=");
}

/* Encode and decode buf[0..len); the text is the expected length. */
static void
assert_b64_round_trip(const unsigned char *buf, size_t len)
{
	char *enc = util_base64_encode(buf, len);
	void *dec = NULL;
	size_t declen = 999;

	assert_int_equal(strlen(enc), 4 * ((len + 2) / 3));
	assert_int_equal(util_base64_decode(enc, &dec, &declen), 0);
	assert_int_equal(declen, len);
	if (len > 0)
		assert_memory_equal(dec, buf, len);
	free(dec);
	free(enc);
}

static void
test_base64_round_trip(void **state)
{
	unsigned char all[256];

	(void)state;
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	assert_b64_round_trip(all, sizeof all);
	/* Every length 0..10, at every offset, so every byte value lands in
	 * every position of a group. */
	for (size_t len = 0; len <= 10; len++)
		for (size_t off = 0; off + len <= sizeof all; off++)
			assert_b64_round_trip(all + off, len);
	for (size_t len = 0; len <= 10; len++) {
		unsigned char rev[10];

		for (size_t i = 0; i < len; i++)
			rev[i] = (unsigned char)(255 - i * 37);
		assert_b64_round_trip(rev, len);
	}
}

static void
test_base64_bad(void **state)
{
	static const char *bad[] = {
		"Z",      "Zg",   "Zg=",  "Zm9vY",    "Zg=a",
		"Z===",   "====", "=Zg=", "Zg==Zg==", "Zm9v!A==",
		"Zm9v\n", "Zm9 ", "Zm=v", "Zm9v-_==", "Zm9v Zg==",
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		void *out = (void *)0x1;
		size_t len = 999;

		if (util_base64_decode(bad[i], &out, &len) != -1)
			fail_msg("base64 \"%s\" accepted", bad[i]);
		assert_ptr_equal(out, (void *)0x1);
		assert_int_equal(len, 999);
	}
}

static int
is_dir(const char *path, mode_t *modep)
{
	struct stat sb;

	if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return (0);
	if (modep != NULL)
		*modep = sb.st_mode & 07777;
	return (1);
}

static void
test_mkdir_p(void **state)
{
	struct fixture *fx = *state;
	char path[256], leaf[256];
	mode_t mode, old = umask(0);

	snprintf(path, sizeof path, "%s/a/b/c", fx->dir);
	assert_int_equal(util_mkdir_p(path, 0750), 0);
	assert_true(is_dir(path, &mode));
	assert_int_equal(mode, 0750);
	snprintf(leaf, sizeof leaf, "%s/a/b", fx->dir);
	assert_true(is_dir(leaf, NULL));
	/* Again: existing folders are fine and left as they are. */
	assert_int_equal(chmod(path, 0700), 0);
	assert_int_equal(util_mkdir_p(path, 0755), 0);
	assert_true(is_dir(path, &mode));
	assert_int_equal(mode, 0700);
	/* A trailing slash and doubled slashes. */
	snprintf(path, sizeof path, "%s/d//e/", fx->dir);
	assert_int_equal(util_mkdir_p(path, 0700), 0);
	snprintf(path, sizeof path, "%s/d/e", fx->dir);
	assert_true(is_dir(path, NULL));
	/* A file in the way of a folder. */
	snprintf(leaf, sizeof leaf, "%s/file", fx->dir);
	assert_int_equal(close(creat(leaf, 0600)), 0);
	snprintf(path, sizeof path, "%s/file/sub", fx->dir);
	assert_int_equal(util_mkdir_p(path, 0700), -1);
	umask(old);
}

/* mkdir -p of a path that is a regular file fails (as mkdir -p does). */
static void
test_mkdir_p_on_file(void **state)
{
	struct fixture *fx = *state;
	char path[256];

	snprintf(path, sizeof path, "%s/file", fx->dir);
	assert_int_equal(close(creat(path, 0600)), 0);
	assert_int_equal(util_mkdir_p(path, 0700), -1);
}

static void
test_xalloc(void **state)
{
	char *s;

	(void)state;
	s = xasprintf("%s-%d", "job", 42);
	assert_string_equal(s, "job-42");
	free(s);
	s = xstrdup("");
	assert_string_equal(s, "");
	free(s);
	/* Zero sizes still give a pointer to free. */
	s = xmalloc(0);
	assert_non_null(s);
	s = xrealloc(s, 0);
	assert_non_null(s);
	free(s);
	s = xcalloc(0, 0);
	assert_non_null(s);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_int),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_duration_bare_after_unit),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_time_format_far_future),
		cmocka_unit_test(test_parse_time_rfc3339),
		cmocka_unit_test(test_parse_time_bad),
		cmocka_unit_test(test_parse_time_clock),
		cmocka_unit_test(test_parse_time_dst),
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_socket_url),
		cmocka_unit_test(test_default_paths),
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_base64_round_trip),
		cmocka_unit_test(test_base64_bad),
		cmocka_unit_test_setup_teardown(test_mkdir_p, setup_dir,
		                                teardown_dir),
		cmocka_unit_test_setup_teardown(test_mkdir_p_on_file, setup_dir,
		                                teardown_dir),
		cmocka_unit_test(test_xalloc),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
