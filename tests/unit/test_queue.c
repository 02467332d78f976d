/*
 * Unit tests for daemon/queue.c, the job store: schema creation, version
 * checks and the migrations from versions 1 and 2, every field through
 * insert and get, group commit, the claim path per queue, the state
 * changes, savepoints, queues, dependencies, array slots and ids, start
 * times, attempts, purging, and the environments shared between jobs.
 * Each test has its own temporary folder and database.
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
#define TEST_SCHEMA   3 /* QUEUE_SCHEMA_VERSION in daemon/queue.c */

struct fixture {
	char dir[64];
	char db[128];
};

/* jobd's own env hash, put back after each test that replaces it. */
static int64_t (*env_hash_orig)(const void *, size_t);

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
	queue_env_hash = env_hash_orig;
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
	j->queue = xstrdup(PROTO_DEFAULT_QUEUE);
	j->kill_after_ms = PROTO_KILL_AFTER_MS;
	j->retry_delay_ms = PROTO_RETRY_DELAY_MS;
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
	assert_int_equal(db_int(fx->db, "PRAGMA user_version"), TEST_SCHEMA);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM sqlite_master "
	                                "WHERE type = 'table' AND name IN "
	                                "('jobs', 'meta', 'queues', "
	                                "'job_deps', 'attempts', 'envs')"),
	                 6);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM sqlite_master "
	                                "WHERE type = 'index' AND name IN "
	                                "('jobs_queued', 'jobs_state', "
	                                "'jobs_idem', 'jobs_scheduled', "
	                                "'jobs_finished', 'jobs_array', "
	                                "'jobs_array_wait', 'jobs_queue', "
	                                "'job_deps_by_dep', 'jobs_env', "
	                                "'envs_hash')"),
	                 11);
	/* envs is found by a hash, not by a second copy of each env. */
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM pragma_index_list"
	                                "('envs') WHERE \"unique\""),
	                 0);
	/* A job holds an env's id, not a copy of it. */
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM pragma_table_info"
	                                "('jobs') WHERE name = 'env'"),
	                 0);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs"), 0);
	/* A new store has the default queue, without a limit. */
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM queues WHERE "
	                                "name = 'default' AND parallel IS NULL "
	                                "AND paused = 0"),
	                 1);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM queues"), 1);
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
	assert_int_equal(db_int(fx->db, "PRAGMA user_version"), TEST_SCHEMA);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs"), 2);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM queues"), 1);
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
	j.queue = xstrdup(PROTO_DEFAULT_QUEUE);
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
	j.queue = xstrdup(PROTO_DEFAULT_QUEUE);
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

/*
 * The next job to start in queue q, or 0 if none is ready. The out
 * parameters are written only when there is one.
 */
static int64_t
next_in(const char *q, int64_t *priop)
{
	int64_t id = -7, prio = -7;
	int rv;

	rv = queue_job_next(q, &id, &prio);
	assert_true(rv == 0 || rv == 1);
	if (rv == 1) {
		assert_int_equal(id, -7);
		assert_int_equal(prio, -7);
		return (0);
	}
	if (priop != NULL)
		*priop = prio;
	return (id);
}

/* Claim job id (it must be queued); the job read is dropped. */
static void
claim_drop(int64_t id)
{
	struct job j;

	claim_job(id, &j);
	job_clear(&j);
}

static void
test_next_order(void **state)
{
	int64_t a, b, c, d, e, f, g, prio;

	(void)state;
	a = insert_job(1000, 0, NULL);
	b = insert_job(1000, 10, NULL);
	c = insert_job(1000, -5, NULL);
	d = insert_job(1000, 10, NULL);
	e = insert_job(1000, 0, NULL);

	/* Highest priority first, then the lowest id: b, d, a, e, c. */
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, &prio), b);
	assert_int_equal(prio, 10);
	/* Asking again without a claim gives the same job. */
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, NULL), b);
	claim_drop(b);
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, &prio), d);
	assert_int_equal(prio, 10);
	claim_drop(d);
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, &prio), a);
	assert_int_equal(prio, 0);
	claim_drop(a);
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, NULL), e);
	claim_drop(e);
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, &prio), c);
	assert_int_equal(prio, -5);
	claim_drop(c);
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, NULL), 0);

	/* Only queued jobs count. */
	f = insert_job(1000, 1, NULL);
	g = insert_job(1000, 1, NULL);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_cancel(f, 0, util_now_ms(), NULL), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, NULL), g);
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
	assert_int_equal(queue_job_cancel(id, 0, util_now_ms(), NULL), 0);
	assert_int_equal(queue_job_claim(id, &j), 1);
	assert_int_equal(fixture_job_state(id), JOB_CANCELLED);
}

static void
test_unclaim(void **state)
{
	struct job j;
	int64_t id;

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
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, NULL), id);
	/* Unclaim of a job that is not running changes nothing. */
	assert_int_equal(queue_job_unclaim(id), 0);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.state, JOB_QUEUED);
	assert_int_equal(j.attempt, 0);
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
	assert_int_equal(queue_job_cancel(id, 0, 1234567, NULL), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.state, JOB_CANCELLED);
	assert_int_equal(j.finished_at, 1234567);
	assert_int_equal(j.started_at, 0);
	assert_int_equal(j.attempt, 0);
	job_clear(&j);
	assert_int_equal(fixture_job_state(other), JOB_QUEUED);
	/* Cancel of an ended job changes nothing. */
	assert_int_equal(queue_job_cancel(id, 0, 7654321, NULL), 0);
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
	assert_int_equal(queue_job_cancel(id, 0, 99, NULL), 0);
	assert_int_equal(queue_job_cancel(id, 1, 99, NULL), 0);
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

/* queue_job_list with a state, an owner and a limit only. */
static int
list_jobs(int state, int64_t uid, int limit, struct collected *c)
{
	struct job_filter f = { .state = state, .uid = uid, .limit = limit };

	return (queue_job_list(&f, collect_cb, c));
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
	assert_int_equal(queue_job_cancel(ids[4], 0, 5, NULL), 0);

	memset(&c, 0, sizeof c);
	assert_int_equal(list_jobs(-1, -1, 100, &c), 0);
	assert_int_equal(c.n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(c.ids[i], ids[4 - i]);
	assert_int_equal(c.states[0], JOB_CANCELLED);
	assert_int_equal(c.states[1], JOB_RUNNING);

	memset(&c, 0, sizeof c);
	assert_int_equal(list_jobs(-1, -1, 2, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], ids[4]);
	assert_int_equal(c.ids[1], ids[3]);

	memset(&c, 0, sizeof c);
	assert_int_equal(list_jobs(JOB_QUEUED, -1, 100, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], ids[2]);
	assert_int_equal(c.ids[1], ids[0]);

	memset(&c, 0, sizeof c);
	assert_int_equal(list_jobs(JOB_RUNNING, -1, 1, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], ids[3]);

	memset(&c, 0, sizeof c);
	assert_int_equal(list_jobs(JOB_LOST, -1, 100, &c), 0);
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
	assert_int_equal(list_jobs(-1, -1, 1, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], id);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.uid, 1234);
	assert_int_equal(j.gid, 1235);
	assert_int_equal(j.priority, 7);
	job_clear(&j);
	/* An empty store lists nothing and is not an error. */
	assert_int_equal(queue_job_cancel(id, 0, 1, NULL), 0);
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
	assert_int_equal(list_jobs(-1, 1000, 1, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], mine);
	memset(&c, 0, sizeof c);
	assert_int_equal(list_jobs(JOB_QUEUED, 2000, 5, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], theirs);
	memset(&c, 0, sizeof c);
	assert_int_equal(list_jobs(-1, 3000, 5, &c), 0);
	assert_int_equal(c.n, 0);
}

/* The schema of a version 1 store, as daemon/queue.c had it. */
static const char test_schema_v1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE jobs("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " state INTEGER NOT NULL,"
    " name TEXT,"
    " argv BLOB,"
    " shell TEXT,"
    " cwd TEXT NOT NULL,"
    " env BLOB,"
    " idem_key TEXT,"
    " uid INTEGER NOT NULL, gid INTEGER NOT NULL, pid INTEGER,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " attempt INTEGER NOT NULL DEFAULT 0,"
    " exit_code INTEGER, signal INTEGER, reason TEXT,"
    " submitted_at INTEGER NOT NULL, started_at INTEGER,"
    " finished_at INTEGER,"
    " sup_pid INTEGER, run_file TEXT, instance TEXT,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX jobs_queued ON jobs(priority DESC, id) WHERE state = 2;"
    "CREATE INDEX jobs_state ON jobs(state, id);"
    "CREATE INDEX jobs_owner ON jobs(uid, id);"
    "CREATE UNIQUE INDEX jobs_idem ON jobs(uid, idem_key)"
    " WHERE idem_key IS NOT NULL;";

/* Run sql on the database file at path through a connection of its own. */
static void
db_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	char *err = NULL;
	int rc;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, err != NULL ? err : "?");
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/*
 * A version 1 store at path, as jobd 0.1 left it: a queued job 7 (shell,
 * priority 3, key "old") and a job 8 that succeeded.
 */
static void
make_v1_store(const char *path)
{
	char sql[2048];

	snprintf(sql, sizeof sql,
	         "BEGIN; %s"
	         "INSERT INTO jobs(id, state, name, shell, cwd, env, idem_key,"
	         " uid, gid, pid, priority, submitted_at) VALUES(7, 2, 'old',"
	         " 'echo hi', '/', X'413D3100', 'old', 1000, 1001, 42, 3,"
	         " 1700000000000);"
	         "INSERT INTO jobs(id, state, shell, cwd, uid, gid,"
	         " attempt, exit_code, submitted_at, started_at, finished_at)"
	         " VALUES(8, 4, 'true', '/', 1000, 1000, 1, 0, 1700000000000,"
	         " 1700000000100, 1700000000200);"
	         "PRAGMA user_version = 1; COMMIT;",
	         test_schema_v1);
	db_exec(path, sql);
}

static void
test_migrate_v1(void **state)
{
	struct fixture *fx = *state;
	struct job j;
	int64_t id, at, ids[4];

	make_v1_store(fx->db);
	assert_int_equal(queue_open(fx->db), 0);

	/* The old job is there, in the default queue, with the defaults. */
	assert_int_equal(queue_job_get(7, &j), 0);
	assert_int_equal(j.state, JOB_QUEUED);
	assert_string_equal(j.name, "old");
	assert_string_equal(j.shell, "echo hi");
	assert_string_equal(j.key, "old");
	assert_int_equal(j.uid, 1000);
	assert_int_equal(j.gid, 1001);
	assert_int_equal(j.priority, 3);
	assert_int_equal(j.submitted_at, 1700000000000LL);
	assert_string_equal(j.queue, PROTO_DEFAULT_QUEUE);
	assert_int_equal(j.held, 0);
	assert_int_equal(j.run_at, 0);
	assert_int_equal(j.deps_pending, 0);
	assert_int_equal(j.array_wait, 0);
	assert_int_equal(j.timeout_ms, 0);
	assert_int_equal(j.kill_after_ms, PROTO_KILL_AFTER_MS);
	assert_int_equal(j.retries, 0);
	assert_int_equal(j.retry_delay_ms, PROTO_RETRY_DELAY_MS);
	assert_int_equal(j.retry_on_lost, 0);
	assert_int_equal(j.retry_base, 0);
	assert_int_equal(j.array_id, 0);
	assert_int_equal(j.array_limit, 0);
	job_clear(&j);
	assert_int_equal(fixture_job_state(8), JOB_SUCCEEDED);

	/* The new queries work on the old rows. */
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, NULL), 7);
	assert_int_equal(queue_finished_nth(0, &at), 0);
	assert_int_equal(at, 1700000000200LL);
	assert_int_equal(queue_job_find_key(1000, "old", &id), 0);
	assert_int_equal(id, 7);
	claim_job(7, &j);
	assert_int_equal(j.attempt, 1);
	assert_non_null(j.env);
	assert_string_equal(j.env[0], "A=1");
	assert_null(j.env[1]);
	job_clear(&j);

	/* Ids go on after the old ones, for jobs and arrays alike. */
	assert_int_equal(queue_last_id(), 8);
	assert_int_equal(insert_job(1000, 0, NULL), 9);
	assert_int_equal(queue_reserve_id(), 10);
	assert_int_equal(insert_job(1000, 0, NULL), 11);

	/* Purging reaches the old ended job. */
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_purge(util_now_ms(), -1, -1, ids, 4), 1);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(ids[0], 8);
	queue_close();

	assert_int_equal(db_int(fx->db, "PRAGMA user_version"), TEST_SCHEMA);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM queues WHERE "
	                                "name = 'default'"),
	                 1);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM sqlite_master "
	                                "WHERE name IN ('job_deps', "
	                                "'attempts', 'jobs_scheduled')"),
	                 3);
	/* A second open does not migrate again. */
	assert_int_equal(queue_open(fx->db), 0);
	assert_int_equal(fixture_job_state(7), JOB_RUNNING);
}

/*
 * A step that fails leaves the store at the version before it, its data
 * intact: here a version 1 store that somehow has a table "queues".
 */
static void
test_migrate_failed_step(void **state)
{
	struct fixture *fx = *state;

	make_v1_store(fx->db);
	db_exec(fx->db, "CREATE TABLE queues(x)");
	assert_int_equal(queue_open(fx->db), -1);
	assert_int_equal(queue_in_txn(), 0);
	assert_int_equal(db_int(fx->db, "PRAGMA user_version"), 1);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs"), 2);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM sqlite_master "
	                                "WHERE name IN ('job_deps', "
	                                "'attempts')"),
	                 0);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM pragma_table_info"
	                                "('jobs') WHERE name = 'held'"),
	                 0);
	/* Once the stray table is gone, the migration goes through. */
	db_exec(fx->db, "DROP TABLE queues");
	assert_int_equal(queue_open(fx->db), 0);
	assert_int_equal(fixture_job_state(7), JOB_QUEUED);
}

/* A store one version ahead (a newer jobd opened it) is left alone. */
static void
test_next_version_refused(void **state)
{
	struct fixture *fx = *state;
	char sql[64];
	int64_t id;

	assert_int_equal(queue_open(fx->db), 0);
	id = insert_job(1000, 0, NULL);
	queue_close();
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", TEST_SCHEMA + 1);
	db_exec(fx->db, sql);
	assert_open_refused_unchanged(fx->db);
	assert_int_equal(db_int(fx->db, "PRAGMA user_version"),
	                 TEST_SCHEMA + 1);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs"), 1);
	/* Back at this jobd's version, it opens again. */
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", TEST_SCHEMA);
	db_exec(fx->db, sql);
	assert_int_equal(queue_open(fx->db), 0);
	assert_int_equal(fixture_job_state(id), JOB_QUEUED);
}

/* Insert j as it is (committed), clear it, return its id. */
static int64_t
insert_custom(struct job *j)
{
	int64_t id = fixture_job_insert(j);

	assert_true(id > 0);
	job_clear(j);
	return (id);
}

/* Insert a job of uid 1000 in queue q with priority (held if held). */
static int64_t
insert_in(const char *q, int64_t priority, int held)
{
	struct job j;

	job_make(&j, 1000, priority, NULL);
	free(j.queue);
	j.queue = xstrdup(q);
	j.held = held;
	return (insert_custom(&j));
}

/*
 * Insert a blocked job waiting for pending dependencies (not recorded
 * here), with start time run_at (0: none).
 */
static int64_t
insert_blocked(int64_t pending, int64_t run_at)
{
	struct job j;

	job_make(&j, 1000, 0, NULL);
	j.state = JOB_BLOCKED;
	j.deps_pending = pending;
	j.run_at = run_at;
	return (insert_custom(&j));
}

/* Insert a scheduled job that starts at run_at. */
static int64_t
insert_scheduled(int64_t run_at)
{
	struct job j;

	job_make(&j, 1000, 0, NULL);
	j.state = JOB_SCHEDULED;
	j.run_at = run_at;
	return (insert_custom(&j));
}

static void
test_insert_get_sched_fields(void **state)
{
	struct job j, got;

	(void)state;
	job_make(&j, 1000, 0, NULL);
	j.state = JOB_BLOCKED;
	free(j.queue);
	j.queue = xstrdup("gpu-1.x_y");
	j.held = 1;
	j.run_at = 1800000000123LL;
	j.deps_pending = 3;
	j.array_wait = 1;
	j.timeout_ms = (1LL << 53);
	j.kill_after_ms = 0;
	j.retries = 1000;
	j.retry_delay_ms = 86400000;
	j.retry_on_lost = 1;
	j.array_id = 77;
	j.array_index = 0; /* index 0 is an index, not "none" */
	j.array_limit = 5;
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_insert(&j), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_job_get(j.id, &got), 0);
	assert_int_equal(got.state, JOB_BLOCKED);
	assert_string_equal(got.queue, "gpu-1.x_y");
	assert_int_equal(got.held, 1);
	assert_int_equal(got.run_at, 1800000000123LL);
	assert_int_equal(got.deps_pending, 3);
	assert_int_equal(got.array_wait, 1);
	assert_int_equal(got.timeout_ms, 1LL << 53);
	assert_int_equal(got.kill_after_ms, 0);
	assert_int_equal(got.retries, 1000);
	assert_int_equal(got.retry_delay_ms, 86400000);
	assert_int_equal(got.retry_on_lost, 1);
	assert_int_equal(got.retry_base, 0);
	assert_int_equal(got.array_id, 77);
	assert_int_equal(got.array_index, 0);
	assert_int_equal(got.array_limit, 5);
	job_clear(&got);
	job_clear(&j);

	/* The other job's fields are the submit defaults. */
	assert_int_equal(queue_job_get(insert_job(1000, 0, NULL), &got), 0);
	assert_string_equal(got.queue, PROTO_DEFAULT_QUEUE);
	assert_int_equal(got.held, 0);
	assert_int_equal(got.run_at, 0);
	assert_int_equal(got.timeout_ms, 0);
	assert_int_equal(got.kill_after_ms, PROTO_KILL_AFTER_MS);
	assert_int_equal(got.array_id, 0);
	job_clear(&got);
}

/* The claim query takes one queue: priority, then id; held jobs wait. */
static void
test_next_per_queue(void **state)
{
	struct job j;
	int64_t a1, a2, a3, a4, b1, d1, prio;

	(void)state;
	a1 = insert_in("a", 0, 0);
	d1 = insert_in(PROTO_DEFAULT_QUEUE, 100, 0);
	a2 = insert_in("a", 5, 0);
	a3 = insert_in("a", 7, 1); /* held */
	b1 = insert_in("b", 1, 1); /* held */

	/* Another queue's job never comes out, whatever its priority. */
	assert_int_equal(next_in("a", &prio), a2);
	assert_int_equal(prio, 5);
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, &prio), d1);
	assert_int_equal(prio, 100);
	/* A queue with only held jobs has none ready, as has an unknown one. */
	assert_int_equal(next_in("b", NULL), 0);
	assert_int_equal(next_in("nosuch", NULL), 0);

	/* Release a3: it goes first. Hold a2: a1 comes after a3. */
	assert_int_equal(queue_job_set_held(a3, 0), 0);
	assert_int_equal(queue_job_set_held(a2, 1), 0);
	assert_int_equal(next_in("a", &prio), a3);
	assert_int_equal(prio, 7);
	claim_drop(a3);
	assert_int_equal(next_in("a", NULL), a1);
	claim_drop(a1);
	assert_int_equal(next_in("a", NULL), 0);
	/* A held job is not claimed either. */
	memset(&j, 0, sizeof j);
	assert_int_equal(queue_job_claim(a2, &j), 1);
	assert_null(j.argv);
	assert_int_equal(fixture_job_state(a2), JOB_QUEUED);
	assert_int_equal(queue_job_set_held(b1, 0), 0);
	assert_int_equal(next_in("b", NULL), b1);
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, NULL), d1);
	/* Priority changes reorder the queue. */
	assert_int_equal(queue_job_set_held(a2, 0), 0);
	a4 = insert_in("a", 5, 0);
	assert_int_equal(next_in("a", NULL), a2);
	assert_int_equal(queue_job_set_priority(a4, 6), 0);
	assert_int_equal(next_in("a", &prio), a4);
	assert_int_equal(prio, 6);
}

/* Priority and held change only jobs that have not started. */
static void
test_set_priority_held(void **state)
{
	static const int want[4] = { JOB_RUNNING, JOB_CANCELLED, JOB_BLOCKED,
		                     JOB_SCHEDULED };
	struct job j;
	int64_t ids[4];

	(void)state;
	ids[0] = insert_running();
	ids[1] = insert_job(1000, 0, NULL);
	assert_int_equal(queue_job_cancel(ids[1], 0, 1, NULL), 0);
	ids[2] = insert_blocked(1, 0);
	ids[3] = insert_scheduled(util_now_ms() + 3600000);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(queue_job_set_priority(ids[i], 42), 0);
		assert_int_equal(queue_job_set_held(ids[i], 1), 0);
	}
	for (int i = 0; i < 4; i++) {
		int waiting = i >= 2;

		assert_int_equal(queue_job_get(ids[i], &j), 0);
		/* held is a flag: the state stays what it was. */
		assert_int_equal(j.state, want[i]);
		assert_int_equal(j.priority, waiting ? 42 : 0);
		assert_int_equal(j.held, waiting);
		job_clear(&j);
	}
	/* Release; releasing again changes nothing. */
	for (int k = 0; k < 2; k++) {
		assert_int_equal(queue_job_set_held(ids[2], 0), 0);
		assert_int_equal(queue_job_get(ids[2], &j), 0);
		assert_int_equal(j.held, 0);
		assert_int_equal(j.state, JOB_BLOCKED);
		job_clear(&j);
	}
}

struct queue_row {
	char name[PROTO_QUEUE_NAME_MAX + 1];
	int64_t parallel;
	int paused;
};

struct queue_rows {
	struct queue_row q[8];
	int n;
};

static void
queue_row_cb(const char *name, int64_t parallel, int paused, void *arg)
{
	struct queue_rows *rows = arg;

	assert_true(rows->n < 8);
	snprintf(rows->q[rows->n].name, sizeof rows->q[0].name, "%s", name);
	rows->q[rows->n].parallel = parallel;
	rows->q[rows->n].paused = paused;
	rows->n++;
}

/* The queues (or only name), into rows; returns how many. */
static int
list_queues(const char *name, struct queue_rows *rows)
{
	memset(rows, 0, sizeof *rows);
	assert_int_equal(queue_queue_list(name, queue_row_cb, rows), 0);
	return (rows->n);
}

static void
assert_queue(const struct queue_row *q, const char *name, int64_t parallel,
             int paused)
{
	assert_string_equal(q->name, name);
	assert_int_equal(q->parallel, parallel);
	assert_int_equal(q->paused, paused);
}

static void
test_queue_set_list(void **state)
{
	struct fixture *fx = *state;
	struct queue_rows rows;

	/* A new store has the default queue, no limit, not paused. */
	assert_int_equal(list_queues(NULL, &rows), 1);
	assert_queue(&rows.q[0], PROTO_DEFAULT_QUEUE, 0, 0);

	assert_int_equal(queue_begin(), 0);
	/* Made on first use, with no limit; a second use changes nothing. */
	assert_int_equal(queue_queue_set("gpu", 0, -1), 0);
	assert_int_equal(list_queues("gpu", &rows), 1);
	assert_queue(&rows.q[0], "gpu", 0, 0);
	assert_int_equal(queue_queue_set("gpu", 0, -1), 0);
	assert_int_equal(list_queues(NULL, &rows), 2);

	/* set, then pause: each keeps the other setting. */
	assert_int_equal(queue_queue_set("gpu", 2, -1), 0);
	assert_int_equal(list_queues("gpu", &rows), 1);
	assert_queue(&rows.q[0], "gpu", 2, 0);
	assert_int_equal(queue_queue_set("gpu", 0, 1), 0);
	assert_int_equal(list_queues("gpu", &rows), 1);
	assert_queue(&rows.q[0], "gpu", 2, 1);
	assert_int_equal(queue_queue_set("gpu", 5, -1), 0);
	assert_int_equal(list_queues("gpu", &rows), 1);
	assert_queue(&rows.q[0], "gpu", 5, 1);
	/* First use by set or pause makes the queue with that setting. */
	assert_int_equal(queue_queue_set("batch", 0, 1), 0);
	assert_int_equal(queue_queue_set("a.b-c_1", 100000, -1), 0);
	/* Resume. */
	assert_int_equal(queue_queue_set("gpu", 0, 0), 0);
	assert_int_equal(queue_commit(), 0);

	/* By name, and only the one asked for. */
	assert_int_equal(list_queues(NULL, &rows), 4);
	assert_queue(&rows.q[0], "a.b-c_1", 100000, 0);
	assert_queue(&rows.q[1], "batch", 0, 1);
	assert_queue(&rows.q[2], PROTO_DEFAULT_QUEUE, 0, 0);
	assert_queue(&rows.q[3], "gpu", 5, 0);
	assert_int_equal(list_queues("nosuch", &rows), 0);

	/* Kept across a restart. */
	queue_close();
	assert_int_equal(queue_open(fx->db), 0);
	assert_int_equal(list_queues(NULL, &rows), 4);
	assert_queue(&rows.q[0], "a.b-c_1", 100000, 0);
	assert_queue(&rows.q[1], "batch", 0, 1);
	assert_queue(&rows.q[2], PROTO_DEFAULT_QUEUE, 0, 0);
	assert_queue(&rows.q[3], "gpu", 5, 0);

	/* A rolled-back change is not kept. */
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_queue_set("gone", 1, 1), 0);
	assert_int_equal(queue_queue_set("gpu", 0, 1), 0);
	queue_rollback();
	assert_int_equal(list_queues("gone", &rows), 0);
	assert_int_equal(list_queues("gpu", &rows), 1);
	assert_queue(&rows.q[0], "gpu", 5, 0);
}

struct dep_rows {
	int64_t ids[8];
	int types[8];
	int n;
};

static void
dep_row_cb(int64_t dep, int type, void *arg)
{
	struct dep_rows *rows = arg;

	assert_true(rows->n < 8);
	rows->ids[rows->n] = dep;
	rows->types[rows->n++] = type;
}

/* The dependents of dep still waiting, into rows; returns how many. */
static int
dependents(int64_t dep, struct dep_rows *rows)
{
	memset(rows, 0, sizeof *rows);
	rows->n = queue_dependents(dep, rows->ids, rows->types, 8);
	assert_true(rows->n >= 0);
	return (rows->n);
}

static void
test_deps(void **state)
{
	struct dep_rows rows;
	struct job j;
	int64_t d1, d2, job;

	(void)state;
	d1 = insert_job(1000, 0, NULL);
	d2 = insert_job(1000, 0, NULL);
	job = insert_blocked(2, 0);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_dep_add(job, d2, DEP_ANY, 0), 1);
	assert_int_equal(queue_dep_add(job, d1, DEP_OK, 0), 1);
	/* Listed twice: the first one counts, as its type. */
	assert_int_equal(queue_dep_add(job, d1, DEP_FAIL, 0), 0);
	assert_int_equal(queue_commit(), 0);

	/* The job's dependencies by id, each with its type. */
	memset(&rows, 0, sizeof rows);
	assert_int_equal(queue_deps(job, dep_row_cb, &rows), 0);
	assert_int_equal(rows.n, 2);
	assert_int_equal(rows.ids[0], d1);
	assert_int_equal(rows.types[0], DEP_OK);
	assert_int_equal(rows.ids[1], d2);
	assert_int_equal(rows.types[1], DEP_ANY);
	memset(&rows, 0, sizeof rows);
	assert_int_equal(queue_deps(d1, dep_row_cb, &rows), 0);
	assert_int_equal(rows.n, 0);

	/* Each dependency knows its dependent. */
	assert_int_equal(dependents(d1, &rows), 1);
	assert_int_equal(rows.ids[0], job);
	assert_int_equal(rows.types[0], DEP_OK);
	assert_int_equal(dependents(d2, &rows), 1);
	assert_int_equal(rows.ids[0], job);
	assert_int_equal(rows.types[0], DEP_ANY);
	assert_int_equal(dependents(job, &rows), 0);

	/* One met: still blocked, one pending; it is not returned again. */
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_dep_met(job, d1, util_now_ms()), JOB_BLOCKED);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_job_get(job, &j), 0);
	assert_int_equal(j.state, JOB_BLOCKED);
	assert_int_equal(j.deps_pending, 1);
	job_clear(&j);
	assert_int_equal(dependents(d1, &rows), 0);
	assert_int_equal(dependents(d2, &rows), 1);
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, NULL), d1);

	/* Both met: queued. */
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_dep_met(job, d2, util_now_ms()), JOB_QUEUED);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_job_get(job, &j), 0);
	assert_int_equal(j.state, JOB_QUEUED);
	assert_int_equal(j.deps_pending, 0);
	job_clear(&j);
	assert_int_equal(dependents(d2, &rows), 0);
	claim_drop(d1);
	claim_drop(d2);
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, NULL), job);
}

/* Deps met before the start time: scheduled; after it: queued. */
static void
test_deps_start_time(void **state)
{
	int64_t d1, d2, later, past, at, ids[4], now = 5000000;

	(void)state;
	d1 = insert_job(1000, 0, NULL);
	d2 = insert_job(1000, 0, NULL);
	later = insert_blocked(2, now + 1);
	past = insert_blocked(1, now);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_dep_add(later, d1, DEP_OK, 0), 1);
	assert_int_equal(queue_dep_add(later, d2, DEP_OK, 0), 1);
	assert_int_equal(queue_dep_add(past, d1, DEP_ANY, 0), 1);
	assert_int_equal(queue_dep_met(later, d1, now), JOB_BLOCKED);
	assert_int_equal(queue_dep_met(later, d2, now), JOB_SCHEDULED);
	assert_int_equal(queue_dep_met(past, d1, now), JOB_QUEUED);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(fixture_job_state(later), JOB_SCHEDULED);
	assert_int_equal(fixture_job_state(past), JOB_QUEUED);
	/* The scheduled one is due at its time like any other. */
	assert_int_equal(queue_next_run_at(&at), 0);
	assert_int_equal(at, now + 1);
	assert_int_equal(queue_jobs_due(now + 1, ids, 4), 1);
	assert_int_equal(ids[0], later);
	assert_int_equal(fixture_job_state(later), JOB_QUEUED);
}

/* Only blocked jobs with the dependency still unmet are dependents. */
static void
test_dependents_filter(void **state)
{
	struct dep_rows rows;
	int64_t dep, met, cancelled, a, b, c;

	(void)state;
	dep = insert_job(1000, 0, NULL);
	met = insert_blocked(1, 0); /* this one met at submit, another not */
	cancelled = insert_blocked(1, 0);
	a = insert_blocked(1, 0);
	b = insert_blocked(1, 0);
	c = insert_blocked(1, 0);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_dep_add(met, dep, DEP_ANY, 1), 1);
	assert_int_equal(queue_dep_add(cancelled, dep, DEP_OK, 0), 1);
	assert_int_equal(queue_dep_add(c, dep, DEP_FAIL, 0), 1);
	assert_int_equal(queue_dep_add(a, dep, DEP_OK, 0), 1);
	assert_int_equal(queue_dep_add(b, dep, DEP_ANY, 0), 1);
	assert_int_equal(queue_job_cancel(cancelled, 0, 1, "by hand"), 0);
	assert_int_equal(queue_commit(), 0);

	/* By id; at most n. */
	assert_int_equal(dependents(dep, &rows), 3);
	assert_int_equal(rows.ids[0], a);
	assert_int_equal(rows.types[0], DEP_OK);
	assert_int_equal(rows.ids[1], b);
	assert_int_equal(rows.types[1], DEP_ANY);
	assert_int_equal(rows.ids[2], c);
	assert_int_equal(rows.types[2], DEP_FAIL);
	memset(&rows, 0, sizeof rows);
	assert_int_equal(queue_dependents(dep, rows.ids, rows.types, 2), 2);
	assert_int_equal(rows.ids[0], a);
	assert_int_equal(rows.ids[1], b);
	assert_int_equal(rows.ids[2], 0);
	/* A job that is not blocked any more is left as it is. */
	assert_true(queue_dep_met(cancelled, dep, 1) >= 0);
	assert_int_equal(fixture_job_state(cancelled), JOB_CANCELLED);
}

/* Insert array task index of aid: with limit, waiting for a slot if wait. */
static int64_t
insert_task(int64_t aid, int64_t index, int64_t limit, int wait, int64_t deps,
            int64_t run_at)
{
	struct job j;

	job_make(&j, 1000, 0, NULL);
	j.array_id = aid;
	j.array_index = index;
	j.array_limit = limit;
	j.array_wait = wait;
	j.deps_pending = deps + wait;
	j.run_at = run_at;
	if (j.deps_pending > 0)
		j.state = JOB_BLOCKED;
	return (insert_custom(&j));
}

/* Give back one slot of aid; returns the task that took it, or 0. */
static int64_t
slot(int64_t aid, int64_t now, int *statep)
{
	int64_t id = -7;
	int st = -7, rv;

	assert_int_equal(queue_begin(), 0);
	rv = queue_array_slot(aid, now, &id, &st);
	assert_int_equal(queue_commit(), 0);
	assert_true(rv == 0 || rv == 1);
	if (rv == 0) {
		assert_int_equal(id, -7);
		assert_int_equal(st, -7);
		return (0);
	}
	*statep = st;
	return (id);
}

static void
test_array_slot(void **state)
{
	struct job j;
	int64_t aid, other, t[7], tasks[8], now = util_now_ms();
	int st;

	(void)state;
	aid = queue_reserve_id();
	other = queue_reserve_id();
	assert_true(aid > 0 && other > aid);
	/* Limit 2. The waiting ones go in out of index order. */
	t[0] = insert_task(aid, 10, 2, 0, 0, 0);
	t[1] = insert_task(aid, 11, 2, 0, 0, 0);
	t[4] = insert_task(aid, 14, 2, 1, 0, 0);
	t[2] = insert_task(aid, 12, 2, 1, 0, 0);
	t[5] = insert_task(aid, 15, 2, 1, 1, 0); /* also a dependency */
	t[3] = insert_task(aid, 13, 2, 1, 0, 0);
	t[6] = insert_task(aid, 16, 2, 1, 0, now + 3600000); /* later */
	insert_task(other, 0, 1, 1, 0, 0);

	/* The tasks in index order, at most n. */
	assert_int_equal(queue_array_tasks(aid, CMD_ANY, tasks, 8), 7);
	for (int i = 0; i < 7; i++)
		assert_int_equal(tasks[i], t[i]);
	assert_int_equal(queue_array_tasks(aid, CMD_ANY, tasks, 3), 3);
	assert_int_equal(tasks[2], t[2]);
	assert_int_equal(queue_array_tasks(t[0], CMD_ANY, tasks, 8), 0);

	/* Slots go in index order. */
	assert_int_equal(slot(aid, now, &st), t[2]);
	assert_int_equal(st, JOB_QUEUED);
	assert_int_equal(queue_job_get(t[2], &j), 0);
	assert_int_equal(j.state, JOB_QUEUED);
	assert_int_equal(j.array_wait, 0);
	assert_int_equal(j.deps_pending, 0);
	job_clear(&j);
	assert_int_equal(slot(aid, now, &st), t[3]);
	assert_int_equal(st, JOB_QUEUED);
	/* A cancelled task does not take one. */
	assert_int_equal(queue_job_cancel(t[4], 0, now, NULL), 0);
	/* A task with a dependency left stays blocked with its slot. */
	assert_int_equal(slot(aid, now, &st), t[5]);
	assert_int_equal(st, JOB_BLOCKED);
	assert_int_equal(queue_job_get(t[5], &j), 0);
	assert_int_equal(j.array_wait, 0);
	assert_int_equal(j.deps_pending, 1);
	job_clear(&j);
	/* A task whose start time is ahead is scheduled. */
	assert_int_equal(slot(aid, now, &st), t[6]);
	assert_int_equal(st, JOB_SCHEDULED);
	/* Nobody waits any more; the other array's task never moved. */
	assert_int_equal(slot(aid, now, &st), 0);
	assert_int_equal(queue_array_tasks(other, CMD_ANY, tasks, 8), 1);
	assert_int_equal(fixture_job_state(tasks[0]), JOB_BLOCKED);
	assert_int_equal(slot(other, now, &st), tasks[0]);
	assert_int_equal(st, JOB_QUEUED);
}

static void
test_reserve_id(void **state)
{
	struct fixture *fx = *state;
	struct job j;
	int64_t aid, id, aid2, ids[1];

	/* An empty store: nothing given yet. */
	assert_int_equal(queue_last_id(), 0);
	assert_int_equal(queue_begin(), 0);
	aid = queue_reserve_id();
	assert_int_equal(queue_commit(), 0);
	assert_true(aid > 0);
	assert_int_equal(queue_last_id(), aid);
	/* No job has it, and the next job comes after it. */
	assert_int_equal(queue_job_get(aid, &j), 1);
	id = insert_job(1000, 0, NULL);
	assert_int_equal(id, aid + 1);
	assert_int_equal(queue_array_tasks(aid, CMD_ANY, &id, 1), 0);
	aid2 = queue_reserve_id();
	assert_int_equal(aid2, id + 1);
	assert_int_equal(insert_job(1000, 0, NULL), aid2 + 1);
	/* After a restart too. */
	queue_close();
	assert_int_equal(queue_open(fx->db), 0);
	assert_int_equal(queue_last_id(), aid2 + 1);
	assert_int_equal(queue_reserve_id(), aid2 + 2);
	assert_int_equal(insert_job(1000, 0, NULL), aid2 + 3);
	assert_int_equal(queue_job_get(aid2 + 2, &j), 1);
	/* A reservation rolled back is given again: it was never used. */
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_reserve_id(), aid2 + 4);
	queue_rollback();
	assert_int_equal(queue_reserve_id(), aid2 + 4);
	/* Purging the newest job does not give its id again. */
	id = insert_job(1000, 0, NULL);
	assert_int_equal(id, aid2 + 5);
	assert_int_equal(queue_job_cancel(id, 0, 1, NULL), 0);
	assert_int_equal(queue_purge(1, -1, -1, ids, 1), 1);
	assert_int_equal(ids[0], id);
	assert_int_equal(queue_last_id(), id);
	assert_int_equal(queue_reserve_id(), id + 1);
}

static void
test_jobs_due(void **state)
{
	int64_t s1, s2, s3, s4, s5, b, q, at, ids[8];

	(void)state;
	/* Nothing scheduled. */
	assert_int_equal(queue_next_run_at(&at), 1);
	assert_int_equal(queue_jobs_due(INT64_MAX, ids, 8), 0);

	s1 = insert_scheduled(5000);
	s2 = insert_scheduled(3000);
	s3 = insert_scheduled(3000);
	b = insert_blocked(1, 1000); /* not scheduled: does not count */
	q = insert_job(1000, 0, NULL);
	assert_int_equal(queue_next_run_at(&at), 0);
	assert_int_equal(at, 3000);

	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_jobs_due(2999, ids, 8), 0);
	assert_int_equal(queue_jobs_due(3000, ids, 8), 2);
	assert_int_equal(queue_commit(), 0);
	assert_true((ids[0] == s2 && ids[1] == s3) ||
	            (ids[0] == s3 && ids[1] == s2));
	assert_int_equal(fixture_job_state(s2), JOB_QUEUED);
	assert_int_equal(fixture_job_state(s3), JOB_QUEUED);
	assert_int_equal(fixture_job_state(s1), JOB_SCHEDULED);
	assert_int_equal(queue_next_run_at(&at), 0);
	assert_int_equal(at, 5000);

	/* Every due job moves, even beyond the n ids asked for. */
	s4 = insert_scheduled(4000);
	s5 = insert_scheduled(4500);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_jobs_due(6000, ids, 1), 1);
	assert_int_equal(queue_commit(), 0);
	assert_true(ids[0] == s1 || ids[0] == s4 || ids[0] == s5);
	assert_int_equal(fixture_job_state(s1), JOB_QUEUED);
	assert_int_equal(fixture_job_state(s4), JOB_QUEUED);
	assert_int_equal(fixture_job_state(s5), JOB_QUEUED);
	assert_int_equal(queue_next_run_at(&at), 1);
	/* Blocked and queued jobs are not touched. */
	assert_int_equal(fixture_job_state(b), JOB_BLOCKED);
	assert_int_equal(fixture_job_state(q), JOB_QUEUED);
}

/* The store's rows of job id in table, through a second connection. */
static long long
rows_of(const char *db, const char *table, const char *col, int64_t id)
{
	char sql[128];

	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s = %lld",
	         table, col, (long long)id);
	return (db_int(db, sql));
}

/* Running job id ends in state at finished. */
static void
end_running(int64_t id, int state, int64_t finished)
{
	struct job f;

	memset(&f, 0, sizeof f);
	f.id = id;
	f.state = state;
	f.has_exit = state == JOB_SUCCEEDED || state == JOB_FAILED;
	f.exit_code = state == JOB_FAILED;
	f.finished_at = finished;
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_attempt_add(&f), 0);
	assert_int_equal(queue_job_finish(&f), 0);
	assert_int_equal(queue_commit(), 0);
}

/* Queued job id runs one attempt and ends in state at finished. */
static void
end_job(int64_t id, int state, int64_t finished)
{
	claim_drop(id);
	end_running(id, state, finished);
}

/* A job of uid that ran one attempt and ended in state at finished. */
static int64_t
insert_ended(int64_t uid, int state, int64_t finished)
{
	struct job j;
	int64_t id;

	job_make(&j, uid, 0, NULL);
	id = insert_custom(&j);
	end_job(id, state, finished);
	return (id);
}

/* queue_purge in a committed transaction. */
static int
purge(int64_t cutoff, int st, int64_t uid, int64_t *ids, int n)
{
	int k;

	assert_int_equal(queue_begin(), 0);
	k = queue_purge(cutoff, st, uid, ids, n);
	assert_int_equal(queue_commit(), 0);
	return (k);
}

static void
test_purge(void **state)
{
	struct fixture *fx = *state;
	int64_t e[8], waiting, running, ids[8];

	e[1] = insert_ended(1000, JOB_SUCCEEDED, 100);
	e[2] = insert_ended(1000, JOB_FAILED, 200);
	e[3] = insert_ended(2000, JOB_SUCCEEDED, 300);
	e[4] = insert_ended(1000, JOB_CANCELLED, 400);
	e[5] = insert_ended(2000, JOB_FAILED, 500);
	e[6] = insert_ended(2000, JOB_LOST, 600);
	e[7] = insert_ended(1000, JOB_SUCCEEDED, 700);
	waiting = insert_blocked(1, 0);
	running = insert_running();
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_dep_add(e[2], e[1], DEP_OK, 1), 1);
	assert_int_equal(queue_dep_add(waiting, e[2], DEP_ANY, 0), 1);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(rows_of(fx->db, "attempts", "job_id", e[1]), 1);
	assert_int_equal(rows_of(fx->db, "job_deps", "job_id", e[2]), 1);

	/* Nothing finished that long ago. */
	assert_int_equal(purge(99, -1, -1, ids, 8), 0);
	/* At or before the cutoff, oldest first. */
	assert_int_equal(purge(200, -1, -1, ids, 8), 2);
	assert_int_equal(ids[0], e[1]);
	assert_int_equal(ids[1], e[2]);
	assert_int_equal(fixture_job_state(e[1]), -1);
	assert_int_equal(fixture_job_state(e[2]), -1);
	/* Their attempts and dependencies went with them. */
	assert_int_equal(rows_of(fx->db, "attempts", "job_id", e[1]), 0);
	assert_int_equal(rows_of(fx->db, "attempts", "job_id", e[2]), 0);
	assert_int_equal(rows_of(fx->db, "job_deps", "job_id", e[2]), 0);
	/* A dependent's own row stays: its dependency may go first. */
	assert_int_equal(rows_of(fx->db, "job_deps", "job_id", waiting), 1);
	assert_int_equal(fixture_job_state(waiting), JOB_BLOCKED);
	assert_int_equal(rows_of(fx->db, "attempts", "job_id", e[3]), 1);

	/* One state only. */
	assert_int_equal(purge(1000, JOB_FAILED, -1, ids, 8), 1);
	assert_int_equal(ids[0], e[5]);
	/* One owner only. */
	assert_int_equal(purge(1000, -1, 2000, ids, 8), 2);
	assert_int_equal(ids[0], e[3]);
	assert_int_equal(ids[1], e[6]);
	assert_int_equal(purge(1000, JOB_SUCCEEDED, 3000, ids, 8), 0);
	/* A batch at a time: e4, then e7, then nothing. */
	assert_int_equal(purge(1000, -1, -1, ids, 1), 1);
	assert_int_equal(ids[0], e[4]);
	assert_int_equal(purge(1000, -1, -1, ids, 1), 1);
	assert_int_equal(ids[0], e[7]);
	assert_int_equal(purge(INT64_MAX, -1, -1, ids, 8), 0);
	/* Jobs that have not ended are never purged. */
	assert_int_equal(fixture_job_state(waiting), JOB_BLOCKED);
	assert_int_equal(fixture_job_state(running), JOB_RUNNING);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM attempts"), 0);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs"), 2);
}

static void
test_finished_nth(void **state)
{
	int64_t at = -7, id;

	(void)state;
	assert_int_equal(queue_finished_nth(0, &at), 1);
	insert_ended(1000, JOB_SUCCEEDED, 100);
	insert_ended(1000, JOB_FAILED, 300);
	id = insert_ended(2000, JOB_LOST, 200);
	insert_running();
	insert_job(1000, 0, NULL);
	/* The (n+1)-th most recent end. */
	assert_int_equal(queue_finished_nth(0, &at), 0);
	assert_int_equal(at, 300);
	assert_int_equal(queue_finished_nth(1, &at), 0);
	assert_int_equal(at, 200);
	assert_int_equal(queue_finished_nth(2, &at), 0);
	assert_int_equal(at, 100);
	at = -7;
	assert_int_equal(queue_finished_nth(3, &at), 1);
	assert_int_equal(at, -7);
	/* A job run again has not ended any more. */
	assert_int_equal(queue_job_requeue(id, JOB_QUEUED, 0, NULL, 1), 0);
	assert_int_equal(queue_finished_nth(1, &at), 0);
	assert_int_equal(at, 100);
	assert_int_equal(queue_finished_nth(2, &at), 1);
}

/* Insert a queued job of uid 1000 with env (taken over); returns its id. */
static int64_t
insert_env(char **env)
{
	struct job j;

	job_make(&j, 1000, 0, NULL);
	util_strv_free(j.env);
	j.env = env;
	return (insert_custom(&j));
}

/* One integer from sql, a format with one job id, on the store at db. */
static long long
db_job_int(const char *db, const char *fmt, int64_t id)
{
	char sql[256];

	snprintf(sql, sizeof sql, fmt, (long long)id);
	return (db_int(db, sql));
}

/* The env row job id refers to, 0 if none. */
static long long
env_of(const char *db, int64_t id)
{
	return (db_job_int(
	    db, "SELECT coalesce(env_id, 0) FROM jobs WHERE id = %lld", id));
}

/* Claim job id: it starts with exactly the env want. */
static void
assert_claim_env(int64_t id, char **want)
{
	struct job j;

	claim_job(id, &j);
	assert_strv_equal(j.env, want);
	job_clear(&j);
}

/* Every env hashes alike: each lookup meets every row. */
static int64_t
env_hash_same(const void *p, size_t len)
{
	(void)p;
	(void)len;
	return (-42);
}

/*
 * Jobs with the same env share one row of envs, whatever the order of
 * submits and commits; each still starts with its own env.
 */
static void
test_env_shared(void **state)
{
	struct fixture *fx = *state;
	char **a = strv("PATH=/bin", "HOME=/root", "S=a b", NULL);
	char **b = strv("PATH=/usr/bin", "HOME=/root", "S=a b", NULL);
	char **prefix = strv("PATH=/bin", NULL), **none = strv(NULL);
	struct job j;
	int64_t a1, a2, a3, a4, b1, p1, e1, n1;

	a1 = insert_env(strv("PATH=/bin", "HOME=/root", "S=a b", NULL));
	a2 = insert_env(strv("PATH=/bin", "HOME=/root", "S=a b", NULL));
	b1 = insert_env(strv("PATH=/usr/bin", "HOME=/root", "S=a b", NULL));
	p1 = insert_env(strv("PATH=/bin", NULL));
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 3);
	assert_int_equal(env_of(fx->db, a1), env_of(fx->db, a2));
	assert_true(env_of(fx->db, a1) != env_of(fx->db, b1));
	assert_true(env_of(fx->db, p1) != env_of(fx->db, a1));

	/* An empty env has no row, and neither has none at all. */
	e1 = insert_env(strv(NULL));
	n1 = insert_env(NULL);
	assert_int_equal(env_of(fx->db, e1), 0);
	assert_int_equal(env_of(fx->db, n1), 0);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 3);

	/* Two submits of a new env in one transaction: one row. */
	assert_int_equal(queue_begin(), 0);
	job_make(&j, 1000, 0, NULL);
	util_strv_free(j.env);
	j.env = strv("NEW=1", NULL);
	assert_int_equal(queue_job_insert(&j), 0);
	a3 = j.id;
	job_clear(&j);
	job_make(&j, 2000, 0, NULL);
	util_strv_free(j.env);
	j.env = strv("NEW=1", NULL);
	assert_int_equal(queue_job_insert(&j), 0);
	a4 = j.id;
	job_clear(&j);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 4);
	assert_int_equal(env_of(fx->db, a3), env_of(fx->db, a4));

	/* A submit the store refuses, undone to its savepoint (as submit
	   does), leaves no env behind. */
	assert_int_equal(queue_begin(), 0);
	job_make(&j, 1000, 0, "k");
	assert_int_equal(queue_job_insert(&j), 0);
	job_clear(&j);
	assert_int_equal(queue_savepoint(), 0);
	job_make(&j, 1000, 0, "k");
	util_strv_free(j.env);
	j.env = strv("REFUSED=1", NULL);
	assert_int_equal(queue_job_insert(&j), -1);
	job_clear(&j);
	assert_int_equal(queue_rollback_to(), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 4);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs WHERE "
	                                "idem_key = 'k'"),
	                 1);

	/* A rolled back submit leaves no env behind. */
	assert_int_equal(queue_begin(), 0);
	job_make(&j, 1000, 0, NULL);
	util_strv_free(j.env);
	j.env = strv("GONE=1", NULL);
	assert_int_equal(queue_job_insert(&j), 0);
	job_clear(&j);
	queue_rollback();
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 4);

	assert_claim_env(a1, a);
	assert_claim_env(a2, a);
	assert_claim_env(b1, b);
	assert_claim_env(p1, prefix);
	assert_claim_env(e1, none);
	assert_claim_env(n1, none);
	util_strv_free(a);
	util_strv_free(b);
	util_strv_free(prefix);
	util_strv_free(none);
}

/*
 * Purging a job deletes its env once no other job, ended or not, uses it;
 * within one batch too, whatever the order of the jobs.
 */
static void
test_env_purge(void **state)
{
	struct fixture *fx = *state;
	char **a = strv("E=a", NULL);
	int64_t a1, a2, b1, c1, q, x1, y1, x2, ids[8];

	a1 = insert_env(strv("E=a", NULL));
	b1 = insert_env(strv("E=b", NULL));
	c1 = insert_env(strv("E=c", NULL));
	a2 = insert_env(strv("E=a", NULL));
	q = insert_env(strv("E=c", NULL)); /* stays queued */
	end_job(a1, JOB_SUCCEEDED, 100);
	end_job(b1, JOB_FAILED, 200);
	end_job(c1, JOB_SUCCEEDED, 300);
	end_job(a2, JOB_SUCCEEDED, 400);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 3);

	/* One of two jobs with env a: the env stays. */
	assert_int_equal(purge(100, -1, -1, ids, 8), 1);
	assert_int_equal(rows_of(fx->db, "envs", "id", env_of(fx->db, a2)), 1);
	/* b's last job goes, and b with it; c is still used by q. */
	assert_int_equal(purge(300, -1, -1, ids, 8), 2);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 2);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs "
	                                "WHERE env = CAST('E=b' || X'00' AS "
	                                "BLOB)"),
	                 0);
	assert_int_equal(rows_of(fx->db, "envs", "id", env_of(fx->db, q)), 1);
	/* The last job with a goes: a goes. */
	assert_int_equal(purge(400, -1, -1, ids, 8), 1);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 1);
	assert_int_equal(rows_of(fx->db, "envs", "id", env_of(fx->db, q)), 1);

	/* x, y, x in one batch: both go. */
	x1 = insert_env(strv("E=x", NULL));
	y1 = insert_env(strv("E=y", NULL));
	x2 = insert_env(strv("E=x", NULL));
	end_job(x1, JOB_SUCCEEDED, 500);
	end_job(y1, JOB_SUCCEEDED, 600);
	end_job(x2, JOB_SUCCEEDED, 700);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 3);
	assert_int_equal(purge(700, -1, -1, ids, 8), 3);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 1);

	/* An env that went may come back, as a new row. */
	a1 = insert_env(strv("E=a", NULL));
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 2);
	assert_claim_env(a1, a);
	util_strv_free(a);
}

/*
 * A version 2 store, made from a version 1 one by jobd's own step, is
 * upgraded: each distinct env is kept once, byte for byte, with the hash
 * a submit looks it up by, each job refers to its own, and the old copies
 * are gone.
 */
static void
migrate_env(struct fixture *fx)
{
	static const char a_bytes[] = "A=1\0S=a b\0U=\xc3\xa9"; /* and NUL */
	char sql[4096];
	char **a = strv("A=1", "S=a b", "U=\xc3\xa9", NULL);
	char **b = strv("PATH=/bin", NULL), **c = strv("A=1", NULL);
	char **none = strv(NULL);
	int64_t ids[4];

#define ENV_A "X'413D3100533D61206200553DC3A900'"
#define ENV_B "X'504154483D2F62696E00'"
#define ENV_C "X'413D3100'" /* a prefix of A */
	snprintf(sql, sizeof sql,
	         "BEGIN; %s"
	         "INSERT INTO jobs(id, state, shell, cwd, env, uid, gid,"
	         " submitted_at) VALUES"
	         " (1, 2, 'true', '/', " ENV_A ", 1000, 1000, 1),"
	         " (2, 2, 'true', '/', " ENV_A ", 1000, 1000, 2),"
	         " (3, 2, 'true', '/', " ENV_B ", 1000, 1000, 3),"
	         " (4, 2, 'true', '/', NULL, 1000, 1000, 4),"
	         " (5, 2, 'true', '/', X'', 1000, 1000, 5),"
	         " (6, 2, 'true', '/', " ENV_C ", 1000, 1000, 6);"
	         "INSERT INTO jobs(id, state, shell, cwd, env, uid, gid,"
	         " attempt, exit_code, submitted_at, started_at, finished_at)"
	         " VALUES(7, 4, 'true', '/', " ENV_B ", 1000, 1000, 1, 0, 7,"
	         " 8, 9);"
	         "PRAGMA user_version = 1; COMMIT;",
	         test_schema_v1);
	db_exec(fx->db, sql);
	/* A stray envs table stops the upgrade after version 2. */
	db_exec(fx->db, "CREATE TABLE envs(x)");
	assert_int_equal(queue_open(fx->db), -1);
	assert_int_equal(db_int(fx->db, "PRAGMA user_version"), 2);
	assert_int_equal(
	    db_int(fx->db, "SELECT count(*) FROM jobs WHERE env = " ENV_A), 2);
	db_exec(fx->db, "DROP TABLE envs");

	assert_int_equal(queue_open(fx->db), 0);
	queue_close();
	assert_int_equal(db_int(fx->db, "PRAGMA user_version"), TEST_SCHEMA);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM pragma_table_info"
	                                "('jobs') WHERE name = 'env'"),
	                 0);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM sqlite_master "
	                                "WHERE name = 'jobs_env'"),
	                 1);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs"), 7);
	/* Three distinct envs, each once, byte for byte. */
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 3);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs j JOIN envs "
	                                "e ON e.id = j.env_id WHERE j.id IN "
	                                "(1, 2) AND e.env = " ENV_A),
	                 2);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs j JOIN envs "
	                                "e ON e.id = j.env_id WHERE j.id IN "
	                                "(3, 7) AND e.env = " ENV_B),
	                 2);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs j JOIN envs "
	                                "e ON e.id = j.env_id WHERE j.id = 6 "
	                                "AND e.env = " ENV_C),
	                 1);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs WHERE id IN "
	                                "(4, 5) AND env_id IS NULL"),
	                 2);
	assert_int_equal(db_job_int(fx->db,
	                            "SELECT e.hash FROM jobs j JOIN envs e ON "
	                            "e.id = j.env_id WHERE j.id = %lld",
	                            1),
	                 queue_env_hash(a_bytes, sizeof a_bytes));
#undef ENV_A
#undef ENV_B
#undef ENV_C

	/* Each job starts with its own env; the moved ones are shared. */
	assert_int_equal(queue_open(fx->db), 0);
	assert_claim_env(1, a);
	assert_claim_env(2, a);
	assert_claim_env(3, b);
	assert_claim_env(4, none);
	assert_claim_env(5, none);
	assert_claim_env(6, c);
	assert_true(insert_env(strv("A=1", "S=a b", "U=\xc3\xa9", NULL)) > 7);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 3);
	/* Purging job 7 keeps b, which job 3 uses. */
	assert_int_equal(purge(INT64_MAX, -1, -1, ids, 4), 1);
	assert_int_equal(ids[0], 7);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 3);
	util_strv_free(a);
	util_strv_free(b);
	util_strv_free(c);
	util_strv_free(none);
}

static void
test_migrate_env(void **state)
{
	migrate_env(*state);
}

/* The same upgrade when every env has the same hash: still one row each. */
static void
test_migrate_env_collision(void **state)
{
	struct fixture *fx = *state;

	queue_env_hash = env_hash_same;
	migrate_env(fx);
	assert_int_equal(
	    db_int(fx->db, "SELECT count(DISTINCT hash) FROM envs"), 1);
}

/*
 * A supervisor's pid that an older jobd stored is still read (worker.c
 * falls back on it when the run file has none), and a requeue clears it.
 */
static void
test_sup_pid_read(void **state)
{
	struct fixture *fx = *state;
	char sql[128];
	struct job j;
	int64_t id;

	id = insert_running();
	snprintf(sql, sizeof sql,
	         "UPDATE jobs SET sup_pid = 12345, run_file = '/x/1.run' "
	         "WHERE id = %lld",
	         (long long)id);
	db_exec(fx->db, sql);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.sup_pid, 12345);
	assert_int_equal(j.state, JOB_RUNNING);
	job_clear(&j);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_job_requeue(id, JOB_QUEUED, 0, NULL, 1), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.sup_pid, 0);
	job_clear(&j);
	assert_int_equal(
	    db_job_int(fx->db,
	               "SELECT run_file IS NULL FROM jobs WHERE id = %lld", id),
	    1);
}

/*
 * The hash is FNV-1a, 64 bits (the published value for "a"), stored as
 * sqlite's signed integer: it is part of the store's format.
 */
static void
test_env_hash(void **state)
{
	struct fixture *fx = *state;
	const char env[] = "PATH=/bin"; /* with its NUL, as stored */
	int64_t id;

	assert_int_equal((uint64_t)queue_env_hash("a", 1),
	                 0xaf63dc4c8601ec8cULL);
	assert_int_equal((uint64_t)queue_env_hash("", 0),
	                 0xcbf29ce484222325ULL);
	id = insert_env(strv("PATH=/bin", NULL));
	assert_int_equal(db_job_int(fx->db,
	                            "SELECT e.hash FROM jobs j JOIN envs e ON "
	                            "e.id = j.env_id WHERE j.id = %lld",
	                            id),
	                 queue_env_hash(env, sizeof env));
}

/*
 * Different envs with the same hash each get a row of their own, found by
 * their bytes: every job starts with exactly its env, and an equal env
 * still shares its row.
 */
static void
test_env_collision(void **state)
{
	struct fixture *fx = *state;
	char **a = strv("PATH=/bin", "HOME=/root", NULL);
	char **b = strv("PATH=/usr", "HOME=/root", NULL); /* a's length */
	char **p = strv("PATH=/bin", NULL), **e = strv("", NULL);
	struct job j;
	int64_t a1, b1, p1, e1, a2, b2, ids[8];

	queue_env_hash = env_hash_same;
	a1 = insert_env(strv("PATH=/bin", "HOME=/root", NULL));
	b1 = insert_env(strv("PATH=/usr", "HOME=/root", NULL));
	p1 = insert_env(strv("PATH=/bin", NULL)); /* a prefix of a */
	e1 = insert_env(strv("", NULL));          /* one byte: a NUL */
	a2 = insert_env(strv("PATH=/bin", "HOME=/root", NULL));
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 4);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs "
	                                "WHERE hash = -42"),
	                 4);
	assert_int_equal(env_of(fx->db, a1), env_of(fx->db, a2));
	assert_true(env_of(fx->db, a1) != env_of(fx->db, b1));
	assert_true(env_of(fx->db, a1) != env_of(fx->db, p1));
	assert_true(env_of(fx->db, p1) != env_of(fx->db, e1));

	/* The same again in one transaction: b found among the others. */
	assert_int_equal(queue_begin(), 0);
	job_make(&j, 1000, 0, NULL);
	util_strv_free(j.env);
	j.env = strv("PATH=/usr", "HOME=/root", NULL);
	assert_int_equal(queue_job_insert(&j), 0);
	b2 = j.id;
	job_clear(&j);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 4);
	assert_int_equal(env_of(fx->db, b1), env_of(fx->db, b2));

	assert_claim_env(a1, a);
	assert_claim_env(b1, b);
	assert_claim_env(p1, p);
	assert_claim_env(e1, e);
	assert_claim_env(a2, a);
	assert_claim_env(b2, b);

	/* Purging b's jobs takes b's row only. */
	end_running(b1, JOB_SUCCEEDED, 100);
	end_running(b2, JOB_SUCCEEDED, 200);
	assert_int_equal(purge(200, -1, -1, ids, 8), 2);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 3);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs WHERE env = "
	                                "CAST('PATH=/usr' || X'00' || "
	                                "'HOME=/root' || X'00' AS BLOB)"),
	                 0);
	util_strv_free(a);
	util_strv_free(b);
	util_strv_free(p);
	util_strv_free(e);
}

/*
 * A savepoint in the loop's transaction: rolling back to it takes away
 * what was written after it (a job, and the env it added), keeps what was
 * written before it, and the transaction goes on; released, its writes
 * stay. Outside a transaction there is none (SAVEPOINT would begin one).
 */
static void
test_savepoint(void **state)
{
	struct fixture *fx = *state;
	struct job j;
	int64_t before, gone, after, kept;

	assert_int_equal(queue_savepoint(), -1);
	assert_int_equal(queue_in_txn(), 0);

	assert_int_equal(queue_begin(), 0);
	job_make(&j, 1000, 0, "before");
	assert_int_equal(queue_job_insert(&j), 0);
	before = j.id;
	job_clear(&j);
	assert_int_equal(queue_savepoint(), 0);
	job_make(&j, 1000, 0, "gone");
	util_strv_free(j.env);
	j.env = strv("GONE=1", NULL);
	assert_int_equal(queue_job_insert(&j), 0);
	gone = j.id;
	job_clear(&j);
	assert_int_equal(queue_queue_set("gone", 3, -1), 0);
	assert_int_equal(queue_rollback_to(), 0);
	assert_int_equal(queue_in_txn(), 1);
	/* Again, released this time. */
	assert_int_equal(queue_savepoint(), 0);
	job_make(&j, 1000, 0, "after");
	assert_int_equal(queue_job_insert(&j), 0);
	after = j.id;
	job_clear(&j);
	assert_int_equal(queue_release(), 0);
	job_make(&j, 1000, 0, "kept");
	assert_int_equal(queue_job_insert(&j), 0);
	kept = j.id;
	job_clear(&j);
	assert_int_equal(queue_commit(), 0);

	assert_true(before > 0 && gone > before);
	assert_true(after > before && kept > after);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs"), 3);
	assert_int_equal(rows_of(fx->db, "jobs", "id", before), 1);
	assert_int_equal(rows_of(fx->db, "jobs", "id", after), 1);
	assert_int_equal(rows_of(fx->db, "jobs", "id", kept), 1);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM jobs WHERE "
	                                "idem_key = 'gone'"),
	                 0);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM envs"), 1);
	assert_int_equal(db_int(fx->db, "SELECT count(*) FROM queues "
	                                "WHERE name = 'gone'"),
	                 0);

	/* Outside a transaction still: a begin works (none was opened). */
	assert_int_equal(queue_savepoint(), -1);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_commit(), 0);
}

struct attempt_rows {
	struct {
		int64_t attempt;
		int state, has_exit, exit_code, signal;
		char reason[64];
		int64_t started_at, finished_at;
	} a[8];
	int n;
};

static void
attempt_cb(const struct job *a, void *arg)
{
	struct attempt_rows *rows = arg;

	assert_true(rows->n < 8);
	rows->a[rows->n].attempt = a->attempt;
	rows->a[rows->n].state = a->state;
	rows->a[rows->n].has_exit = a->has_exit;
	rows->a[rows->n].exit_code = a->exit_code;
	rows->a[rows->n].signal = a->signal;
	snprintf(rows->a[rows->n].reason, sizeof rows->a[0].reason, "%s",
	         a->reason != NULL ? a->reason : "(null)");
	rows->a[rows->n].started_at = a->started_at;
	rows->a[rows->n].finished_at = a->finished_at;
	rows->n++;
}

/* Attempts and requeue: what a retry leaves in the store. */
static void
test_attempts_requeue(void **state)
{
	struct attempt_rows rows;
	struct job j, f;
	int64_t id, started;

	(void)state;
	id = insert_job(1000, 0, NULL);
	/* An attempt that never started is not recorded. */
	memset(&f, 0, sizeof f);
	f.id = id;
	f.state = JOB_FAILED;
	assert_int_equal(queue_attempt_add(&f), 0);
	memset(&rows, 0, sizeof rows);
	assert_int_equal(queue_attempts(id, attempt_cb, &rows), 0);
	assert_int_equal(rows.n, 0);

	claim_job(id, &j);
	started = j.started_at;
	job_clear(&j);
	f.has_exit = 1;
	f.exit_code = 3;
	f.reason = xstrdup("timeout");
	f.finished_at = started + 10;
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(queue_attempt_add(&f), 0);
	assert_int_equal(queue_job_requeue(id, JOB_SCHEDULED, started + 1000,
	                                   "retry 1 of 1", 0),
	                 0);
	assert_int_equal(queue_commit(), 0);
	job_clear(&f);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.state, JOB_SCHEDULED);
	assert_int_equal(j.run_at, started + 1000);
	assert_string_equal(j.reason, "retry 1 of 1");
	assert_int_equal(j.attempt, 1);
	assert_int_equal(j.retry_base, 0);
	assert_int_equal(j.has_exit, 0);
	assert_int_equal(j.started_at, 0);
	assert_int_equal(j.finished_at, 0);
	job_clear(&j);

	assert_int_equal(queue_jobs_due(started + 1000, &id, 1), 1);
	claim_job(id, &j);
	assert_int_equal(j.attempt, 2);
	job_clear(&j);
	memset(&f, 0, sizeof f);
	f.id = id;
	f.state = JOB_FAILED;
	f.signal = 9;
	f.started_at = 111;
	f.finished_at = 222;
	assert_int_equal(queue_attempt_add(&f), 0);
	assert_int_equal(queue_job_finish(&f), 0);
	/* The same attempt recorded twice is one row, the last one. */
	f.signal = 15;
	assert_int_equal(queue_attempt_add(&f), 0);

	memset(&rows, 0, sizeof rows);
	assert_int_equal(queue_attempts(id, attempt_cb, &rows), 0);
	assert_int_equal(rows.n, 2);
	assert_int_equal(rows.a[0].attempt, 1);
	assert_int_equal(rows.a[0].state, JOB_FAILED);
	assert_int_equal(rows.a[0].has_exit, 1);
	assert_int_equal(rows.a[0].exit_code, 3);
	assert_int_equal(rows.a[0].signal, 0);
	assert_string_equal(rows.a[0].reason, "timeout");
	assert_int_equal(rows.a[0].started_at, started);
	assert_int_equal(rows.a[0].finished_at, started + 10);
	assert_int_equal(rows.a[1].attempt, 2);
	assert_int_equal(rows.a[1].has_exit, 0);
	assert_int_equal(rows.a[1].signal, 15);
	assert_string_equal(rows.a[1].reason, "(null)");
	assert_int_equal(rows.a[1].started_at, 111);
	assert_int_equal(rows.a[1].finished_at, 222);

	/* A retry by hand starts a new series from the attempts so far. */
	assert_int_equal(queue_job_requeue(id, JOB_QUEUED, 0, NULL, 1), 0);
	assert_int_equal(queue_job_get(id, &j), 0);
	assert_int_equal(j.state, JOB_QUEUED);
	assert_int_equal(j.retry_base, 2);
	assert_int_equal(j.attempt, 2);
	assert_int_equal(j.run_at, 0);
	assert_null(j.reason);
	assert_int_equal(j.signal, 0);
	assert_int_equal(j.finished_at, 0);
	job_clear(&j);
	assert_int_equal(next_in(PROTO_DEFAULT_QUEUE, NULL), id);
}

/* Cancelling a waiting job records the reason given. */
static void
test_cancel_reason(void **state)
{
	struct job j;
	int64_t blocked, sched;

	(void)state;
	blocked = insert_task(1, 3, 1, 1, 1, 0);
	sched = insert_scheduled(util_now_ms() + 60000);
	assert_int_equal(queue_begin(), 0);
	assert_int_equal(
	    queue_job_cancel(blocked, 0, 777, "dependency 12 failed"), 0);
	assert_int_equal(queue_job_cancel(sched, 0, 778, NULL), 0);
	assert_int_equal(queue_commit(), 0);
	assert_int_equal(queue_job_get(blocked, &j), 0);
	assert_int_equal(j.state, JOB_CANCELLED);
	assert_string_equal(j.reason, "dependency 12 failed");
	assert_int_equal(j.finished_at, 777);
	assert_int_equal(j.array_wait, 0);
	assert_int_equal(j.cancel_requested, 1);
	job_clear(&j);
	assert_int_equal(queue_job_get(sched, &j), 0);
	assert_int_equal(j.state, JOB_CANCELLED);
	assert_null(j.reason);
	job_clear(&j);
}

static void
test_list_filters(void **state)
{
	struct job_filter f;
	struct collected c;
	struct job j;
	int64_t a, b, c1, d;

	(void)state;
	job_make(&j, 1000, 0, NULL);
	j.name = xstrdup("build-1");
	j.submitted_at = 1000;
	a = insert_custom(&j);
	job_make(&j, 1000, 0, NULL);
	j.name = xstrdup("build-2");
	j.submitted_at = 2000;
	free(j.queue);
	j.queue = xstrdup("gpu");
	b = insert_custom(&j);
	job_make(&j, 2000, 0, NULL);
	j.name = xstrdup("test[1]");
	j.submitted_at = 3000;
	free(j.queue);
	j.queue = xstrdup("gpu");
	c1 = insert_custom(&j);
	job_make(&j, 1000, 0, NULL); /* no name */
	j.submitted_at = 4000;
	d = insert_custom(&j);
	assert_int_equal(queue_job_cancel(b, 0, 5000, NULL), 0);

	memset(&f, 0, sizeof f);
	f.state = -1;
	f.uid = -1;
	f.limit = 100;
	f.queue = "gpu";
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], c1);
	assert_int_equal(c.ids[1], b);

	/* A glob, case-sensitive; a job without a name never matches. */
	f.queue = NULL;
	f.name = "build-*";
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], b);
	assert_int_equal(c.ids[1], a);
	f.name = "BUILD-*";
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 0);
	f.name = "build-?";
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 2);
	f.name = "test[[]1]";
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], c1);
	f.name = "*";
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 3);

	/* Submitted at or after since. */
	f.name = NULL;
	f.since = 2000;
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.ids[0], d);
	assert_int_equal(c.ids[2], b);

	/* Every filter at once, then each one in turn with the others. */
	f.state = JOB_QUEUED;
	f.uid = 2000;
	f.queue = "gpu";
	f.name = "test*";
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], c1);
	f.since = 3001;
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 0);
	f.since = 0;
	f.uid = 1000;
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 0);
	f.uid = -1;
	f.name = NULL;
	f.state = JOB_CANCELLED;
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], b);
	/* The statements are kept; after a reopen they are made again. */
	f.limit = 1;
	f.queue = NULL;
	f.state = -1;
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], d);
}

static void
test_list_filters_reopen(void **state)
{
	struct fixture *fx = *state;
	struct job_filter f = { .state = -1, .uid = -1, .limit = 10 };
	struct collected c;
	int64_t id;

	f.queue = PROTO_DEFAULT_QUEUE;
	id = insert_job(1000, 0, NULL);
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 1);
	queue_close();
	assert_int_equal(queue_open(fx->db), 0);
	memset(&c, 0, sizeof c);
	assert_int_equal(queue_job_list(&f, collect_cb, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], id);
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
		T(test_sup_pid_read),
		T(test_finish),
		T(test_cancel_queued),
		T(test_cancel_running),
		T(test_list),
		T(test_list_fields),
		T(test_list_by_owner),
		T_CLOSED(test_migrate_v1),
		T_CLOSED(test_migrate_failed_step),
		T_CLOSED(test_next_version_refused),
		T(test_insert_get_sched_fields),
		T(test_next_per_queue),
		T(test_set_priority_held),
		T(test_queue_set_list),
		T(test_deps),
		T(test_deps_start_time),
		T(test_dependents_filter),
		T(test_array_slot),
		T(test_reserve_id),
		T(test_jobs_due),
		T(test_purge),
		T(test_finished_nth),
		T(test_env_shared),
		T(test_env_purge),
		T(test_env_hash),
		T(test_env_collision),
		T(test_savepoint),
		T_CLOSED(test_migrate_env),
		T_CLOSED(test_migrate_env_collision),
		T(test_attempts_requeue),
		T(test_cancel_reason),
		T(test_list_filters),
		T(test_list_filters_reopen),
	};
#undef T
#undef T_CLOSED

	env_hash_orig = queue_env_hash;
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
