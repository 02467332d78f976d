/*
 * outcome: paths, write/read round trips, the strict reader. Each test runs
 * in a fresh temporary state folder with run/ and out/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "outcome.h"

struct fixture {
	char state[64];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (f == NULL)
		return (-1);
	if (fixture_mkstate(f->state, sizeof f->state, "outcome") == -1) {
		free(f);
		return (-1);
	}
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int rv;

	rv = fixture_rmtree(f->state);
	free(f);
	return (rv);
}

/* Write the status file of job id by hand. */
static void
put_status(const struct fixture *f, int64_t id, const char *buf, size_t len)
{
	char path[PATH_MAX];
	FILE *fp;

	assert_int_equal(
	    outcome_path(path, sizeof path, f->state, id, OUTCOME_STATUS), 0);
	assert_non_null(fp = fopen(path, "w"));
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void
test_paths(void **state)
{
	struct fixture *f = *state;
	char buf[PATH_MAX], want[PATH_MAX], tiny[8];

	assert_int_equal(outcome_path(buf, sizeof buf, "/s", 42, OUTCOME_RUN),
	                 0);
	assert_string_equal(buf, "/s/run/42.run");
	assert_int_equal(
	    outcome_path(buf, sizeof buf, "/s", 42, OUTCOME_STATUS), 0);
	assert_string_equal(buf, "/s/run/42.status");
	assert_int_equal(
	    outcome_path(buf, sizeof buf, "/s", 42, OUTCOME_STDOUT), 0);
	assert_string_equal(buf, "/s/out/42.out");
	assert_int_equal(
	    outcome_path(buf, sizeof buf, "/s", 42, OUTCOME_STDERR), 0);
	assert_string_equal(buf, "/s/out/42.err");

	assert_int_equal(
	    outcome_path(buf, sizeof buf, f->state, INT64_MAX, OUTCOME_STATUS),
	    0);
	snprintf(want, sizeof want, "%s/run/9223372036854775807.status",
	         f->state);
	assert_string_equal(buf, want);

	/* "/s/run/1.run" needs 13 bytes. */
	errno = 0;
	assert_int_equal(outcome_path(tiny, sizeof tiny, "/s", 1, OUTCOME_RUN),
	                 -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(outcome_path(buf, 13, "/s", 1, OUTCOME_RUN), 0);
	assert_int_equal(outcome_path(buf, 12, "/s", 1, OUTCOME_RUN), -1);
	assert_int_equal(outcome_path(buf, sizeof buf, "/s", -1, OUTCOME_RUN),
	                 -1);
	assert_int_equal(
	    outcome_path(buf, sizeof buf, "/s", 1, (enum outcome_file)99), -1);
}

static void
test_round_trip_exit(void **state)
{
	struct fixture *f = *state;
	struct outcome o, r;

	memset(&o, 0, sizeof o);
	o.exit_code = 3;
	o.started_at = 1700000000123;
	o.finished_at = 1700000004567;
	assert_int_equal(outcome_write(f->state, 7, &o), 0);
	memset(&r, 0xa5, sizeof r);
	assert_int_equal(outcome_read(f->state, 7, &r), 0);
	assert_int_equal(r.exit_code, 3);
	assert_int_equal(r.signal, 0);
	assert_int_equal(r.started_at, 1700000000123);
	assert_int_equal(r.finished_at, 1700000004567);
	assert_string_equal(r.reason, "");

	/* Exit code 0 is an outcome too; rewriting replaces the file. */
	o.exit_code = 0;
	assert_int_equal(outcome_write(f->state, 7, &o), 0);
	assert_int_equal(outcome_read(f->state, 7, &r), 0);
	assert_int_equal(r.exit_code, 0);
}

static void
test_round_trip_signal(void **state)
{
	struct fixture *f = *state;
	struct outcome o, r;

	memset(&o, 0, sizeof o);
	o.exit_code = -1;
	o.signal = 9;
	o.started_at = 1;
	o.finished_at = 2;
	assert_int_equal(outcome_write(f->state, 8, &o), 0);
	assert_int_equal(outcome_read(f->state, 8, &r), 0);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.signal, 9);
	assert_int_equal(r.started_at, 1);
	assert_int_equal(r.finished_at, 2);
}

static void
test_round_trip_reason(void **state)
{
	struct fixture *f = *state;
	struct outcome o, r;

	memset(&o, 0, sizeof o);
	o.exit_code = -1;
	o.started_at = 5;
	o.finished_at = 5;
	snprintf(o.reason, sizeof o.reason, "two\nlines\r\nand key 1");
	assert_int_equal(outcome_write(f->state, 9, &o), 0);
	assert_int_equal(outcome_read(f->state, 9, &r), 0);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.signal, 0);
	assert_string_equal(r.reason, "two lines  and key 1");

	/* A reason filling the whole field, without its NUL, is cut. */
	memset(o.reason, 'x', sizeof o.reason);
	assert_int_equal(outcome_write(f->state, 9, &o), 0);
	assert_int_equal(outcome_read(f->state, 9, &r), 0);
	assert_int_equal(strlen(r.reason), sizeof r.reason - 1);

	/* An exit code and a reason together are fine (a failed exec). */
	o.exit_code = 127;
	snprintf(o.reason, sizeof o.reason, "cannot execute 'x'");
	assert_int_equal(outcome_write(f->state, 9, &o), 0);
	assert_int_equal(outcome_read(f->state, 9, &r), 0);
	assert_int_equal(r.exit_code, 127);
	assert_string_equal(r.reason, "cannot execute 'x'");
}

static void
test_write_invalid(void **state)
{
	struct fixture *f = *state;
	struct outcome o;
	char path[PATH_MAX];

	memset(&o, 0, sizeof o);
	o.exit_code = -1; /* no code, no signal, no reason: says nothing */
	errno = 0;
	assert_int_equal(outcome_write(f->state, 1, &o), -1);
	assert_int_equal(errno, EINVAL);
	o.exit_code = 0;
	o.signal = 9; /* both */
	assert_int_equal(outcome_write(f->state, 1, &o), -1);
	o.signal = 0;
	o.exit_code = 256;
	assert_int_equal(outcome_write(f->state, 1, &o), -1);
	o.exit_code = -1;
	o.signal = -3;
	assert_int_equal(outcome_write(f->state, 1, &o), -1);

	snprintf(path, sizeof path, "%s/run/1.status", f->state);
	assert_int_equal(access(path, F_OK), -1);
}

static void
test_read_missing(void **state)
{
	struct fixture *f = *state;
	struct outcome r;

	memset(&r, 0x5a, sizeof r);
	errno = 0;
	assert_int_equal(outcome_read(f->state, 12, &r), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(r.exit_code, 0x5a5a5a5a); /* untouched */
}

static void
test_read_lenient(void **state)
{
	struct fixture *f = *state;
	struct outcome r;
	static const char ok[] = "signal 15\n"
	                         "future_key whatever it says\n"
	                         "started_at 10\n"
	                         "finished_at 20\n"
	                         "reason \n";

	/* exit_code may be omitted; unknown keys are skipped. */
	put_status(f, 3, ok, sizeof ok - 1);
	assert_int_equal(outcome_read(f->state, 3, &r), 0);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.signal, 15);
	assert_int_equal(r.started_at, 10);
	assert_int_equal(r.finished_at, 20);
	assert_string_equal(r.reason, "");
}

static void
test_read_malformed(void **state)
{
	struct fixture *f = *state;
	static const char *bad[] = {
		"",
		"\n",
		/* no trailing newline: a torn file */
		"exit_code 0\nsignal 0\nstarted_at 1\nfinished_at 2",
		"exit_code x\nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"exit_code 3x\nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"exit_code +3\nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"exit_code 03\nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"exit_code  3\nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"exit_code 3 \nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"exit_code \nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"exit_code 256\nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"exit_code -2\nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"exit_code 99999999999999999999\nsignal 0\nstarted_at 1\n"
		"finished_at 2\n",
		"exit_code 1\nsignal -1\nstarted_at 1\nfinished_at 2\n",
		"exit_code 1\nsignal 4096\nstarted_at 1\nfinished_at 2\n",
		"exit_code 1\nsignal 0\nstarted_at -5\nfinished_at 2\n",
		/* duplicated key */
		"exit_code 1\nexit_code 2\nsignal 0\nstarted_at 1\n"
		"finished_at 2\n",
		/* a required key missing */
		"exit_code 1\nstarted_at 1\nfinished_at 2\n",
		"exit_code 1\nsignal 0\nfinished_at 2\n",
		"exit_code 1\nsignal 0\nstarted_at 1\n",
		/* says nothing: no code, no signal, no reason */
		"exit_code -1\nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"signal 0\nstarted_at 1\nfinished_at 2\nreason \n",
		/* says two things */
		"exit_code 0\nsignal 9\nstarted_at 1\nfinished_at 2\n",
		/* not key value lines */
		"exit_code 1\n\nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"exit_code 1\nsignal 0\nstarted_at 1\nfinished_at 2\nbare\n",
		"exit_code 1\nsignal 0\nstarted_at 1\nfinished_at 2\n x\n",
		"Exit_Code 1\nsignal 0\nstarted_at 1\nfinished_at 2\n",
		"exit_code\t1\nsignal 0\nstarted_at 1\nfinished_at 2\n",
	};
	static const char with_nul[] = "exit_code 1\nsignal 0\0\nstarted_at 1\n"
	                               "finished_at 2\n";
	struct outcome r;
	char *big;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		put_status(f, 4, bad[i], strlen(bad[i]));
		memset(&r, 0x5a, sizeof r);
		errno = 0;
		if (outcome_read(f->state, 4, &r) != -1 || errno != EINVAL)
			fail_msg("case %zu was accepted (errno %d): %s", i,
			         errno, bad[i]);
		assert_int_equal(r.exit_code, 0x5a5a5a5a);
	}

	/* A NUL byte inside. */
	put_status(f, 4, with_nul, sizeof with_nul - 1);
	errno = 0;
	assert_int_equal(outcome_read(f->state, 4, &r), -1);
	assert_int_equal(errno, EINVAL);

	/* A reason longer than the field. */
	big = malloc(1024);
	assert_non_null(big);
	i = (size_t)snprintf(big, 1024,
	                     "signal 0\nstarted_at 1\nfinished_at 2\nreason ");
	memset(big + i, 'y', 300);
	big[i + 300] = '\n';
	put_status(f, 4, big, i + 301);
	errno = 0;
	assert_int_equal(outcome_read(f->state, 4, &r), -1);
	assert_int_equal(errno, EINVAL);
	free(big);

	/* Over 64 KiB, even if every line would parse. */
	big = malloc(70000);
	assert_non_null(big);
	i = (size_t)snprintf(big, 70000,
	                     "exit_code 1\nsignal 0\nstarted_at 1\n"
	                     "finished_at 2\n");
	while (i + 8 < 66 * 1024) {
		memcpy(big + i, "pad 123\n", 8);
		i += 8;
	}
	put_status(f, 4, big, i);
	errno = 0;
	assert_int_equal(outcome_read(f->state, 4, &r), -1);
	assert_int_equal(errno, EINVAL);
	free(big);
}

static void
test_read_not_regular(void **state)
{
	struct fixture *f = *state;
	struct outcome r;
	char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/run/5.status", f->state);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(outcome_read(f->state, 5, &r), -1);
	assert_int_equal(rmdir(path), 0);

	/* A symlink is not followed. */
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(outcome_read(f->state, 5, &r), -1);
	assert_int_equal(errno, ELOOP);
}

static void
test_no_tmp_left(void **state)
{
	struct fixture *f = *state;
	struct outcome o;
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	memset(&o, 0, sizeof o);
	o.exit_code = 1;
	assert_int_equal(outcome_write(f->state, 6, &o), 0);
	assert_int_equal(outcome_write(f->state, 6, &o), 0);

	snprintf(path, sizeof path, "%s/run", f->state);
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		assert_string_equal(de->d_name, "6.status");
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);

	/* A failed write leaves nothing either: run/ is gone. */
	snprintf(path, sizeof path, "%s/run/6.status", f->state);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof path, "%s/run", f->state);
	assert_int_equal(rmdir(path), 0);
	errno = 0;
	assert_int_equal(outcome_write(f->state, 6, &o), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_status_mode(void **state)
{
	struct fixture *f = *state;
	struct outcome o;
	struct stat st;
	char path[PATH_MAX];

	memset(&o, 0, sizeof o);
	o.exit_code = 1;
	assert_int_equal(outcome_write(f->state, 10, &o), 0);
	snprintf(path, sizeof path, "%s/run/10.status", f->state);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_exit, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_signal, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_reason, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_write_invalid, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_read_missing, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_read_lenient, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_read_malformed, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_read_not_regular, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_no_tmp_left, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_status_mode, setup,
		                                teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
