/*
 * Unit tests for daemon/queue.c, the job store: schema creation and
 * version checks, every field through insert and get, group commit, the
 * claim path and the state changes. Each test has its own temporary folder
 * and database.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "jobd.h"
#include "fixture.h"

#define TEST_INSTANCE "test-instance-1"

struct fixture {
	char dir[64];
	char db[128];
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	if (fx == NULL)
		return (-1);
	if (fixture_mkdtemp(fx->dir, sizeof fx->dir, "queue") == -1) {
		free(fx);
		return (-1);
	}
	snprintf(fx->db, sizeof fx->db, "%s/jobs.db", fx->dir);
	jobd_instance = TEST_INSTANCE;
	*state = fx;
	return (0);
}

/* setup, then open a fresh store. */
static int
setup_open(void **state)
{
	struct fixture *fx;

	if (setup(state) != 0)
		return (-1);
	fx = *state;
	return (queue_open(fx->db));
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	int rv;

	queue_rollback();
	queue_close();
	rv = fixture_rmtree(fx->dir);
	free(fx);
	return (rv);
}

/* A NULL-terminated, owned copy of the strings given (NULL-ended). */
static char **
strv(const char *first, ...)
{
	char **v = xcalloc(1, sizeof *v);
	size_t n = 0;
	va_list ap;
	const char *s;

	va_start(ap, first);
	for (s = first; s != NULL; s = va_arg(ap, const char *)) {
		v = xrealloc(v, (n + 2) * sizeof *v);
		v[n++] = xstrdup(s);
		v[n] = NULL;
	}
	va_end(ap);
	return (v);
}

static void
assert_strv_equal(char **got, char **want)
{
	size_t i;

	assert_non_null(got);
	for (i = 0; want[i] != NULL; i++) {
		assert_non_null(got[i]);
		assert_string_equal(got[i], want[i]);
	}
	assert_null(got[i]);
}

/* An argv job of uid with priority and key (may be NULL); not inserted. */
static void
job_make(struct job *j, int64_t uid, int64_t priority, const char *key)
{
	memset(j, 0, sizeof *j);
	j->state = JOB_QUEUED;
	j->argv = strv("/bin/echo", "hello", NULL);
	j->cwd = xstrdup("/tmp");
	j->env = strv("PATH=/bin", NULL);
	j->key = key != NULL ? xstrdup(key) : NULL;
	j->uid = uid;
	j->gid = uid + 1;
	j->pid = 4242;
	j->priority = priority;
	j->submitted_at = util_now_ms();
}

/* Insert and commit a job; returns its id. */
static int64_t
insert_job(int64_t uid, int64_t priority, const char *key)
{
	struct job j;
	int64_t id;

	job_make(&j, uid, priority, key);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_insert(&j), 0);
	assert_int_equal(queue_commit(), 0);
	id = j.id;
	assert_true(id > 0);
	job_clear(&j);
	return (id);
}

/* Claim id inside a committed transaction; the job read is in j. */
static void
claim_job(int64_t id, struct job *j)
{
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_claim(id, j), 0);
	assert_int_equal(queue_commit(), 0);
}

/* Insert a job of uid 1000 and claim it; returns its id. */
static int64_t
insert_running(void)
{
	struct job j;
	int64_t id;

	id = insert_job(1000, 0, NULL);
	claim_job(id, &j);
	job_clear(&j);
	return (id);
}

/* One integer from sql on the database file at path, opened directly. */
static long long
db_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long v;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	return (v);
}

/* The whole file at path (to free) and its size. */
static unsigned char *
file_read(const char *path, size_t *lenp)
{
	struct stat sb;
	unsigned char *buf;
	int fd;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	buf = xmalloc((size_t)sb.st_size);
	assert_int_equal(read(fd, buf, (size_t)sb.st_size), sb.st_size);
	close(fd);
	*lenp = (size_t)sb.st_size;
	return (buf);
}

static void
file_write(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* queue_open(path) must fail and leave the file's bytes as they were. */
static void
assert_open_refused_unchanged(const char *path)
{
	unsigned char *before, *after;
	size_t nbefore, nafter, diff;
	char side[160];

	before = file_read(path, &nbefore);
	assert_int_equal(queue_open(path), -1);
	assert_int_equal(queue_in_txn(), 0);
	after = file_read(path, &nafter);
	for (diff = 0; diff < nbefore && diff < nafter; diff++)
		if (before[diff] != after[diff])
			break;
	free(before);
	free(after);
	if (nafter != nbefore || diff != nbefore)
		fail_msg("%s was changed: %zu bytes, then %zu; first "
		         "difference at offset %zu",
		         path, nbefore, nafter, diff);
	snprintf(side, sizeof side, "%s-wal", path);
	assert_int_equal(access(side, F_OK), -1);
}

static void
test_open_creates_schema(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(queue_open(fx->db), 0);
	assert_int_equal(queue_in_txn(), 0);
	queue_close();
	assert_int_equal(db_int(fx->db, "PRAGMA user_version"), 1);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM sqlite_master "
	                                "WHERE type = 'table' AND name IN "
	                                "('jobs', 'meta')"),
	                 2);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM sqlite_master "
	                                "WHERE type = 'index' AND name IN "
	                                "('jobs_queued', 'jobs_state', "
	                                "'jobs_idem')"),
	                 3);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs"), 0);
	/* WAL is kept in the file header. */
	assert_int_equal(db_int(fx->db, "SELECT journal_mode = 'wal' FROM "
	                                "pragma_journal_mode"),
	                 1);
	/* The schema asks for incremental auto-vacuum (2). */
	assert_int_equal(db_int(fx->db, "PRAGMA auto_vacuum"), 2);
}

static void
test_reopen_keeps_data(void **state)
{
	struct fixture *fx = *state;
	struct job j;
	int64_t id;

	assert_int_equal(queue_open(fx->db), 0);
	id = insert_job(1000, 5, "reopen");
	queue_close();
	/* A second open neither recreates nor migrates. */
	assert_int_equal(queue_open(fx->db), 0);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.priority, 5);
	assert_string_equal(j.key, "reopen");
	job_clear(&j);
	/* Ids are never reused, even after a reopen. */
	assert_true(insert_job(1000, 0, NULL) > id);
	queue_close();
	assert_int_equal(db_int(fx->db, "PRAGMA user_version"), 1);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs"), 2);
}

static void
test_newer_version_refused(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(fx->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "CREATE TABLE future(x);"
	                              "INSERT INTO future VALUES(42);"
	                              "PRAGMA user_version = 99;",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	assert_open_refused_unchanged(fx->db);
	assert_int_equal(db_int(fx->db, "PRAGMA user_version"), 99);
	assert_int_equal(db_int(fx->db, "SELECT x FROM future"), 42);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM sqlite_master "
	                                "WHERE name = 'jobs'"),
	                 0);
}

static void
test_corrupt_refused(void **state)
{
	struct fixture *fx = *state;
	unsigned char junk[8192];
	uint32_t x = 2463534242u;

	for (size_t i = 0; i < sizeof junk; i++) {
		x ^= x << 13; /* xorshift32: fixed, so reproducible */
		x ^= x >> 17;
		x ^= x << 5;
		junk[i] = (unsigned char)x;
	}
	file_write(fx->db, junk, sizeof junk);
	assert_open_refused_unchanged(fx->db);
}

static void
test_insert_get_round_trip(void **state)
{
	struct job j, got;
	char **argv = strv("/usr/bin/prog", "", "two words", " lead", "trail ",
	                   "tab\there", "", NULL);
	char **env = strv("A=1", "EMPTY=", "SPACE=a b", "EQ=x=y", NULL);

	(void)state;
	memset(&j, 0, sizeof j);
	j.state = JOB_QUEUED;
	j.name = xstrdup("the name");
	j.argv = argv;
	j.cwd = xstrdup("/var/tmp/some dir");
	j.env = env;
	j.key = xstrdup("key-1");
	j.uid = 1001;
	j.gid = 1002;
	j.pid = 31337;
	j.priority = -17;
	j.submitted_at = 1700000000123LL;
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_insert(&j), 0);
	assert_int_equal(queue_commit(), 0);
	assert_true(j.id > 0);

	memset(&got, 0x5a, sizeof got);
	assert_int_equal(queue_job_get(j.id, &got), 0);
	assert_int_equal(got.id, j.id);
	assert_int_equal(got.state, JOB_QUEUED);
	assert_string_equal(got.name, "the name");
	assert_strv_equal(got.argv, argv);
	assert_null(got.shell);
	assert_string_equal(got.cwd, "/var/tmp/some dir");
	assert_null(got.env); /* get reads no env; claim does */
	assert_string_equal(got.key, "key-1");
	assert_int_equal(got.uid, 1001);
	assert_int_equal(got.gid, 1002);
	assert_int_equal(got.pid, 31337);
	assert_int_equal(got.priority, -17);
	assert_int_equal(got.attempt, 0);
	assert_int_equal(got.has_exit, 0);
	assert_int_equal(got.signal, 0);
	assert_null(got.reason);
	assert_int_equal(got.submitted_at, 1700000000123LL);
	assert_int_equal(got.started_at, 0);
	assert_int_equal(got.finished_at, 0);
	assert_int_equal(got.sup_pid, 0);
	assert_int_equal(got.cancel_requested, 0);
	job_clear(&got);

	/* The env comes back with the claim. */
	claim_job(j.id, &got);
	assert_strv_equal(got.env, env);
	assert_strv_equal(got.argv, argv);
	job_clear(&got);
	job_clear(&j);
}

static void
test_insert_shell_job(void **state)
{
	struct job j, got;

	(void)state;
	memset(&j, 0, sizeof j);
	j.state = JOB_QUEUED;
	j.shell = xstrdup("echo 'a  b' | tr a b; exit 3");
	j.cwd = xstrdup("/");
	j.env = xcalloc(1, sizeof *j.env);
	j.uid = 0;
	j.submitted_at = 1;
	assert_int_equal(queue_job_insert(&j), 0);
	assert_int_equal(queue_job_get(j.id, &got), 0);
	assert_null(got.name);
	assert_null(got.argv);
	assert_null(got.key);
	assert_string_equal(got.shell, "echo 'a  b' | tr a b; exit 3");
	assert_string_equal(got.cwd, "/");
	job_clear(&got);
	/* An empty env comes back empty, not NULL. */
	claim_job(j.id, &got);
	assert_non_null(got.env);
	assert_null(got.env[0]);
	job_clear(&got);
	job_clear(&j);
	assert_int_equal(queue_job_get(9999, &got), 1);
}

static void
test_find_key(void **state)
{
	struct job j;
	int64_t id, found = -7;

	(void)state;
	id = insert_job(1000, 0, "k1");
	insert_job(1000, 0, "k2");
	assert_int_equal(queue_job_find_key(1000, "k1", &found), 0);
	assert_int_equal(found, id);
	found = -7;
	assert_int_equal(queue_job_find_key(2000, "k1", &found), 1);
	assert_int_equal(queue_job_find_key(1000, "k3", &found), 1);
	assert_int_equal(found, -7);
	/* The same key is another job for another uid, but not twice. */
	assert_true(insert_job(2000, 0, "k1") != id);
	job_make(&j, 1000, 0, "k1");
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_insert(&j), -1);
	queue_rollback();
	job_clear(&j);
	assert_int_equal(queue_job_find_key(1000, "k1", &found), 0);
	assert_int_equal(found, id);
}

static void
test_group_commit(void **state)
{
	struct fixture *fx = *state;
	struct job j;
	int64_t ids[3];

	assert_int_equal(queue_in_txn(), 0);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_in_txn(), 1);
	for (int i = 0; i < 3; i++) {
		job_make(&j, 1000, i, NULL);
		/* A second begin joins the open transaction. */
		assert_int_equal(queue_begin(), 0);
		assert_int_equal(queue_job_insert(&j), 0);
		ids[i] = j.id;
		job_clear(&j);
	}
	/* Not on disk before the commit. */
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs"), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_in_txn(), 0);
	assert_int_equal(queue_commit(), 0); /* nothing open: a no-op */
	queue_close();
	assert_int_equal(queue_open(fx->db), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(fixture_job_state(ids[i]), JOB_QUEUED);
}

static void
test_rollback(void **state)
{
	struct fixture *fx = *state;
	struct job j;
	int64_t ids[2], kept;

	kept = insert_job(1000, 0, NULL);
	assert_int_equal(queue_begin(), 0);
	for (int i = 0; i < 2; i++) {
		job_make(&j, 1000, 0, NULL);
		assert_int_equal(queue_job_insert(&j), 0);
		ids[i] = j.id;
		job_clear(&j);
	}
	assert_int_equal(fixture_job_state(ids[0]),
	                 JOB_QUEUED); /* seen inside */
	queue_rollback();
	assert_int_equal(queue_in_txn(), 0);
	queue_rollback(); /* nothing open: a no-op */
	for (int i = 0; i < 2; i++)
		assert_int_equal(fixture_job_state(ids[i]), -1);
	assert_int_equal(fixture_job_state(kept), JOB_QUEUED);
	queue_close();
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs"), 1);
	assert_int_equal(queue_open(fx->db), 0);
}

static void
test_next_order(void **state)
{
	int64_t a, b, c, d, e, ids[8];

	(void)state;
	a = insert_job(1000, 0, NULL);
	b = insert_job(1000, 10, NULL);
	c = insert_job(1000, -5, NULL);
	d = insert_job(1000, 10, NULL);
	e = insert_job(1000, 0, NULL);

	memset(ids, 0, sizeof ids);
	assert_int_equal(queue_job_next(ids, 8), 5);
	assert_int_equal(ids[0], b);
	assert_int_equal(ids[1], d);
	assert_int_equal(ids[2], a);
	assert_int_equal(ids[3], e);
	assert_int_equal(ids[4], c);
	assert_int_equal(ids[5], 0);

	memset(ids, 0, sizeof ids);
	assert_int_equal(queue_job_next(ids, 2), 2);
	assert_int_equal(ids[0], b);
	assert_int_equal(ids[1], d);
	assert_int_equal(ids[2], 0);
	assert_int_equal(queue_job_next(ids, 0), 0);

	/* Only queued jobs count. */
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_cancel(b, 0, util_now_ms()), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_job_next(ids, 1), 1);
	assert_int_equal(ids[0], d);
}

static void
test_claim(void **state)
{
	struct job j;
	int64_t id, before;

	(void)state;
	id = insert_job(1000, 0, NULL);
	before = util_now_ms();
	claim_job(id, &j);
	assert_int_equal(j.id, id);
	assert_int_equal(j.state, JOB_RUNNING);
	assert_int_equal(j.attempt, 1);
	assert_true(j.started_at >= before);
	assert_true(j.started_at <= util_now_ms());
	assert_non_null(j.env);
	assert_string_equal(j.env[0], "PATH=/bin");
	assert_null(j.env[1]);
	assert_string_equal(j.argv[0], "/bin/echo");
	job_clear(&j);

	assert_int_equal(fixture_job_state(id), JOB_RUNNING);
	/* The claim records this jobd's instance. */
	queue_close();
	{
		struct fixture *fx = *state;
		sqlite3 *db;
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_open(fx->db, &db), SQLITE_OK);
		assert_int_equal(
		    sqlite3_prepare_v2(db,
		                       "SELECT instance FROM jobs WHERE id = ?",
		                       -1, &st, NULL),
		    SQLITE_OK);
		sqlite3_bind_int64(st, 1, id);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0),
		                    TEST_INSTANCE);
		sqlite3_finalize(st);
		sqlite3_close(db);
		assert_int_equal(queue_open(fx->db), 0);
	}
}

static void
test_claim_not_queued(void **state)
{
	struct job j;
	int64_t id;

	(void)state;
	id = insert_running();
	memset(&j, 0, sizeof j);
	assert_int_equal(queue_begin(), 0);
	/* Running already, then no such job. */
	assert_int_equal(queue_job_claim(id, &j), 1);
	assert_int_equal(queue_job_claim(id + 100, &j), 1);
	assert_int_equal(queue_commit(), 0);
	assert_null(j.argv);
	assert_null(j.env);
	assert_int_equal(fixture_job_state(id), JOB_RUNNING);

	/* A cancelled job is not claimed either. */
	id = insert_job(1000, 0, NULL);
	assert_int_equal(queue_job_cancel(id, 0, util_now_ms()), 0);
	assert_int_equal(queue_job_claim(id, &j), 1);
	assert_int_equal(fixture_job_state(id), JOB_CANCELLED);
}

static void
test_unclaim(void **state)
{
	struct job j;
	int64_t id, ids[2];

	(void)state;
	id = insert_running();
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_unclaim(id), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.state, JOB_QUEUED);
	assert_int_equal(j.attempt, 0);
	assert_int_equal(j.started_at, 0);
	job_clear(&j);
	assert_int_equal(queue_job_next(ids, 2), 1);
	assert_int_equal(ids[0], id);
	/* Unclaim of a job that is not running changes nothing. */
	assert_int_equal(queue_job_unclaim(id), 0);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.state, JOB_QUEUED);
	assert_int_equal(j.attempt, 0);
	job_clear(&j);
}

static void
test_started(void **state)
{
	struct job j;
	int64_t id;

	(void)state;
	id = insert_running();
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_started(id, 12345, "/x/run/1.run"), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.sup_pid, 12345);
	assert_int_equal(j.state, JOB_RUNNING);
	job_clear(&j);
}

/* Finish id with these values, committed; read it back into got. */
static void
finish_job(int64_t id, int state, int has_exit, int code, int sig,
           const char *reason, int64_t started, int64_t finished,
           struct job *got)
{
	struct job f;

	memset(&f, 0, sizeof f);
	f.id = id;
	f.state = state;
	f.has_exit = has_exit;
	f.exit_code = code;
	f.signal = sig;
	f.reason = reason != NULL ? xstrdup(reason) : NULL;
	f.started_at = started;
	f.finished_at = finished;
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_finish(&f), 0);
	assert_int_equal(queue_commit(), 0);
	job_clear(&f);
	assert_int_equal(queue_job_get(id, got), 0);
}

static void
test_finish(void **state)
{
	struct job j;
	int64_t id, started;

	(void)state;
	/* Exit code, no signal; started_at kept when not given. */
	id = insert_job(1000, 0, NULL);
	claim_job(id, &j);
	started = j.started_at;
	job_clear(&j);
	finish_job(id, JOB_FAILED, 1, 3, 0, NULL, 0, started + 50, &j);
	assert_int_equal(j.state, JOB_FAILED);
	assert_int_equal(j.has_exit, 1);
	assert_int_equal(j.exit_code, 3);
	assert_int_equal(j.signal, 0);
	assert_null(j.reason);
	assert_int_equal(j.started_at, started);
	assert_int_equal(j.finished_at, started + 50);
	job_clear(&j);

	/* Killed by a signal: no exit code; times from the outcome. */
	id = insert_running();
	finish_job(id, JOB_FAILED, 0, 0, 9, "killed", 1000, 2000, &j);
	assert_int_equal(j.has_exit, 0);
	assert_int_equal(j.signal, 9);
	assert_string_equal(j.reason, "killed");
	assert_int_equal(j.started_at, 1000);
	assert_int_equal(j.finished_at, 2000);
	job_clear(&j);

	/* Success: exit code 0 is an exit code. */
	id = insert_running();
	finish_job(id, JOB_SUCCEEDED, 1, 0, 0, NULL, 0, 3000, &j);
	assert_int_equal(j.state, JOB_SUCCEEDED);
	assert_int_equal(j.has_exit, 1);
	assert_int_equal(j.exit_code, 0);
	job_clear(&j);

	/* Lost. */
	id = insert_running();
	finish_job(id, JOB_LOST, 0, 0, 0, "gone", 0, 4000, &j);
	assert_int_equal(j.state, JOB_LOST);
	assert_int_equal(j.has_exit, 0);
	assert_string_equal(j.reason, "gone");
	job_clear(&j);
}

static void
test_cancel_queued(void **state)
{
	struct job j;
	int64_t id, other;

	(void)state;
	id = insert_job(1000, 0, NULL);
	other = insert_job(1000, 0, NULL);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_cancel(id, 0, 1234567), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.state, JOB_CANCELLED);
	assert_int_equal(j.finished_at, 1234567);
	assert_int_equal(j.started_at, 0);
	assert_int_equal(j.attempt, 0);
	job_clear(&j);
	assert_int_equal(fixture_job_state(other), JOB_QUEUED);
	/* Cancel of an ended job changes nothing. */
	assert_int_equal(queue_job_cancel(id, 0, 7654321), 0);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.finished_at, 1234567);
	job_clear(&j);
}

static void
test_cancel_running(void **state)
{
	struct job j;
	int64_t id;

	(void)state;
	id = insert_running();
	assert_int_equal(queue_begin(), 0);
	/* "Not running" does not touch a running job. */
	assert_int_equal(queue_job_cancel(id, 0, 99), 0);
	assert_int_equal(queue_job_cancel(id, 1, 99), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.state, JOB_RUNNING);
	assert_int_equal(j.cancel_requested, 1);
	assert_int_equal(j.finished_at, 0);
	job_clear(&j);
}

struct collected {
	int64_t ids[32];
	int states[32];
	int n;
};

static void
collect_cb(struct job *j, void *arg)
{
	struct collected *c = arg;

	assert_true(c->n < 32);
	c->ids[c->n] = j->id;
	c->states[c->n] = j->state;
	c->n++;
}

static void
test_list(void **state)
{
	struct collected c;
	struct job j;
	int64_t ids[5];

	(void)state;
	for (int i = 0; i < 5; i++)
		ids[i] = insert_job(1000 + i, 0, NULL);
	claim_job(ids[1], &j);
	job_clear(&j);
	claim_job(ids[3], &j);
	job_clear(&j);
	assert_int_equal(queue_job_cancel(ids[4], 0, 5), 0);

	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(-1, -1, 100, collect_cb, &c), 0);
	assert_int_equal(c.n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(c.ids[i], ids[4 - i]);
	assert_int_equal(c.states[0], JOB_CANCELLED);
	assert_int_equal(c.states[1], JOB_RUNNING);

	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(-1, -1, 2, collect_cb, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], ids[4]);
	assert_int_equal(c.ids[1], ids[3]);

	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(JOB_QUEUED, -1, 100, collect_cb, &c),
	                 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], ids[2]);
	assert_int_equal(c.ids[1], ids[0]);

	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(JOB_RUNNING, -1, 1, collect_cb, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], ids[3]);

	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(JOB_LOST, -1, 100, collect_cb, &c), 0);
	assert_int_equal(c.n, 0);

	/* Running jobs, oldest first. */
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_running(collect_cb, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], ids[1]);
	assert_int_equal(c.ids[1], ids[3]);
	assert_int_equal(c.states[0], JOB_RUNNING);
}

static void
test_list_fields(void **state)
{
	struct collected c;
	struct job j;
	int64_t id;

	(void)state;
	/* A listed job carries its fields, like get. */
	id = insert_job(1234, 7, "lk");
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(-1, -1, 1, collect_cb, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], id);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.uid, 1234);
	assert_int_equal(j.gid, 1235);
	assert_int_equal(j.priority, 7);
	job_clear(&j);
	/* An empty store lists nothing and is not an error. */
	assert_int_equal(queue_job_cancel(id, 0, 1), 0);
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_running(collect_cb, &c), 0);
	assert_int_equal(c.n, 0);
}

static void
test_list_by_owner(void **state)
{
	struct collected c;
	int64_t mine, theirs;

	(void)state;
	/* The limit counts the owner's jobs, not everyone's. */
	mine = insert_job(1000, 0, NULL);
	theirs = insert_job(2000, 0, NULL);
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(-1, 1000, 1, collect_cb, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], mine);
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(JOB_QUEUED, 2000, 5, collect_cb, &c),
	                 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], theirs);
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(-1, 3000, 5, collect_cb, &c), 0);
	assert_int_equal(c.n, 0);
}

int
main(void)
{
#define T(f)        cmocka_unit_test_setup_teardown(f, setup_open, teardown)
#define T_CLOSED(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T_CLOSED(test_open_creates_schema),
		T_CLOSED(test_reopen_keeps_data),
		T_CLOSED(test_newer_version_refused),
		T_CLOSED(test_corrupt_refused),
		T(test_insert_get_round_trip),
		T(test_insert_shell_job),
		T(test_find_key),
		T(test_group_commit),
		T(test_rollback),
		T(test_next_order),
		T(test_claim),
		T(test_claim_not_queued),
		T(test_unclaim),
		T(test_started),
		T(test_finish),
		T(test_cancel_queued),
		T(test_cancel_running),
		T(test_list),
		T(test_list_fields),
		T(test_list_by_owner),
	};
#undef T
#undef T_CLOSED

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
