/*
 * The job store: the only file that calls sqlite. One database in the state
 * folder, WAL with synchronous=FULL, every statement prepared once. Writes go
 * into the transaction that server_loop() commits once per loop iteration
 * (group commit); nothing a reply promises is sent before that commit.
 * The schema version lives in PRAGMA user_version; a newer one is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "jobd.h"

#define QUEUE_SCHEMA_VERSION 3

static const char queue_schema_v1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE jobs("
    " id INTEGER PRIMARY KEY AUTOINCREMENT," /* ids are never reused */
    " state INTEGER NOT NULL,"               /* enum job_state */
    " name TEXT,"
    " argv BLOB," /* NUL-terminated strings; NULL for a shell job */
    " shell TEXT,"
    " cwd TEXT NOT NULL,"
    " env BLOB," /* NUL-terminated NAME=VALUE strings */
    " idem_key TEXT,"
    " uid INTEGER NOT NULL, gid INTEGER NOT NULL, pid INTEGER,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " attempt INTEGER NOT NULL DEFAULT 0,"
    " exit_code INTEGER, signal INTEGER, reason TEXT,"
    " submitted_at INTEGER NOT NULL, started_at INTEGER,"
    " finished_at INTEGER,"
    /* what a later jobd needs to find a job's supervisor */
    " sup_pid INTEGER, run_file TEXT, instance TEXT,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0);"
    /* the claim path: independent of how much history is kept */
    "CREATE INDEX jobs_queued ON jobs(priority DESC, id) WHERE state = 2;"
    "CREATE INDEX jobs_state ON jobs(state, id);"
    "CREATE INDEX jobs_owner ON jobs(uid, id);"
    "CREATE UNIQUE INDEX jobs_idem ON jobs(uid, idem_key)"
    " WHERE idem_key IS NOT NULL;";

/* Version 2: queues, start times, dependencies, retries, arrays. */
static const char queue_schema_v2[] =
    "CREATE TABLE queues(name TEXT PRIMARY KEY, parallel INTEGER,"
    " paused INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "INSERT INTO queues(name) VALUES('" PROTO_DEFAULT_QUEUE "');"
    "ALTER TABLE jobs ADD COLUMN queue TEXT NOT NULL"
    " DEFAULT '" PROTO_DEFAULT_QUEUE "';"
    "ALTER TABLE jobs ADD COLUMN held INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN run_at INTEGER;"
    "ALTER TABLE jobs ADD COLUMN deps_pending INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN array_wait INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN timeout_ms INTEGER;"
    "ALTER TABLE jobs ADD COLUMN kill_after_ms INTEGER NOT NULL DEFAULT 10000;"
    "ALTER TABLE jobs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN retry_delay_ms INTEGER NOT NULL DEFAULT 1000;"
    "ALTER TABLE jobs ADD COLUMN retry_on_lost INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN retry_base INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN array_id INTEGER;"
    "ALTER TABLE jobs ADD COLUMN array_index INTEGER;"
    "ALTER TABLE jobs ADD COLUMN array_limit INTEGER;"
    /* dep_id has no foreign key: a dependency may be purged first. */
    "CREATE TABLE job_deps("
    " job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " dep_id INTEGER NOT NULL, type INTEGER NOT NULL,"
    " met INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(job_id, dep_id)) WITHOUT ROWID;"
    "CREATE INDEX job_deps_by_dep ON job_deps(dep_id);"
    "CREATE TABLE attempts("
    " job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " attempt INTEGER NOT NULL, state INTEGER NOT NULL,"
    " exit_code INTEGER, signal INTEGER, reason TEXT,"
    " started_at INTEGER, finished_at INTEGER,"
    " PRIMARY KEY(job_id, attempt)) WITHOUT ROWID;"
    /* Each of these serves one query, whatever the history kept. */
    "DROP INDEX jobs_queued;"
    "CREATE INDEX jobs_queued ON jobs(queue, priority DESC, id)"
    " WHERE state = 2 AND held = 0;"
    "CREATE INDEX jobs_scheduled ON jobs(run_at) WHERE state = 1;"
    "CREATE INDEX jobs_finished ON jobs(finished_at) WHERE state >= 4;"
    "CREATE INDEX jobs_finished_owner ON jobs(uid, finished_at)"
    " WHERE state >= 4;"
    "CREATE INDEX jobs_submitted ON jobs(submitted_at);"
    "CREATE INDEX jobs_array ON jobs(array_id, array_index)"
    " WHERE array_id IS NOT NULL;"
    "CREATE INDEX jobs_array_wait ON jobs(array_id, array_index)"
    " WHERE array_wait = 1;"
    "CREATE INDEX jobs_queue ON jobs(queue, id);";

/*
 * Version 3: each distinct environment is kept once, in envs, and jobs
 * refer to it (a user's jobs mostly share one). An empty one has no row:
 * env_id is NULL. An env is found by a 64-bit hash of its bytes
 * (queue_env_hash; env_hash() in SQL), not by a unique index on them,
 * which would hold a second copy of every env: envs_hash is not unique,
 * and the bytes of each row with the hash are compared. jobs_env finds
 * whether an env is still used when jobs are purged. The jobs' env column
 * is not indexed, so DROP COLUMN can take the old copies (the rows shrink
 * in place; their pages come free as those jobs go). The GROUP BY sorts
 * on the hash first, so only rows with equal hashes compare their bytes;
 * the UPDATE probes envs_hash once for each job.
 */
static const char queue_schema_v3[] =
    "CREATE TABLE envs(id INTEGER PRIMARY KEY, hash INTEGER NOT NULL,"
    " env BLOB NOT NULL);"
    "ALTER TABLE jobs ADD COLUMN env_id INTEGER;"
    "INSERT INTO envs(hash, env) SELECT env_hash(env), env FROM jobs"
    " WHERE length(env) > 0 GROUP BY env_hash(env), env;"
    "CREATE INDEX envs_hash ON envs(hash);"
    "UPDATE jobs SET env_id = (SELECT id FROM envs"
    " WHERE hash = env_hash(jobs.env) AND env = jobs.env)"
    " WHERE length(env) > 0;"
    "ALTER TABLE jobs DROP COLUMN env;"
    "CREATE INDEX jobs_env ON jobs(env_id);";

/*
 * At start, a store of at most this many pages (32 MiB of 4 KiB pages, some
 * 100000 queued jobs) is checked whole (quick_check reads every page: two
 * seconds at a million jobs, all before jobd could answer). A larger one
 * gets its header, its schema and its meta table checked; sqlite finds a
 * damaged page of the rest when a request reads it (a storage error, and
 * the page named in jobd's log).
 */
#define QUEUE_CHECK_ALL_PAGES 8192

/* sqlite's page cache: its default size (2000 KiB), in 4 KiB pages. */
#define QUEUE_CACHE_PAGES 500

/* Each step takes the schema from version i to i + 1. */
static const char *const queue_steps[QUEUE_SCHEMA_VERSION] = {
	queue_schema_v1,
	queue_schema_v2,
	queue_schema_v3,
};

#define JOB_COLS                                                               \
	"id, state, name, argv, shell, cwd, idem_key, uid, gid, pid, "         \
	"priority, attempt, exit_code, signal, reason, submitted_at, "         \
	"started_at, finished_at, sup_pid, cancel_requested, queue, held, "    \
	"run_at, deps_pending, array_wait, timeout_ms, kill_after_ms, "        \
	"retries, retry_delay_ms, retry_on_lost, retry_base, array_id, "       \
	"array_index, array_limit, instance"

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_INSERT,
	ST_FIND_KEY,
	ST_GET,
	ST_GET_ENV,
	ST_ENV_FIND,
	ST_ENV_ADD,
	ST_ENV_DROP,
	ST_NEXT,
	ST_CLAIM,
	ST_UNCLAIM,
	ST_FINISH,
	ST_CANCEL_WAITING,
	ST_CANCEL_RUNNING,
	ST_RUNNING,
	ST_QUEUE_LIST,
	ST_QUEUE_GET,
	ST_QUEUE_COUNT,
	ST_QUEUE_ENSURE,
	ST_QUEUE_SET,
	ST_DEP_ADD,
	ST_DEPS,
	ST_DEPENDENTS,
	ST_DEP_MARK,
	ST_DEP_MET,
	ST_ARRAY_SLOT,
	ST_ARRAY_TASKS,
	ST_ARRAY_HOLDERS,
	ST_RESERVE_ID,
	ST_SEQ_INIT,
	ST_LAST_ID,
	ST_ATTEMPT_ADD,
	ST_ATTEMPTS,
	ST_REQUEUE,
	ST_SET_PRIORITY,
	ST_SET_HELD,
	ST_NEXT_RUN_AT,
	ST_SHIFT_RETRIES,
	ST_DUE,
	ST_PURGE_SELECT,
	ST_PURGE_OWNER,
	ST_DELETE,
	ST_FINISHED_NTH,
	ST_MAX
};

static const char *queue_sql[ST_MAX] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT submit",
	[ST_RELEASE] = "RELEASE submit",
	[ST_ROLLBACK_TO] = "ROLLBACK TO submit",
	[ST_INSERT] =
	    "INSERT INTO jobs(id, state, name, argv, shell, cwd, env_id, "
	    "idem_key, uid, gid, pid, priority, submitted_at, queue, held, "
	    "run_at, deps_pending, array_wait, timeout_ms, kill_after_ms, "
	    "retries, retry_delay_ms, retry_on_lost, array_id, array_index, "
	    "array_limit) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_FIND_KEY] = "SELECT id FROM jobs WHERE uid = ? AND idem_key = ?",
	[ST_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?",
	/* A row with a NULL env (none, or empty) if the job exists. */
	[ST_GET_ENV] = "SELECT e.env FROM jobs j LEFT JOIN envs e "
	               "ON e.id = j.env_id WHERE j.id = ?",
	/* Every env with this hash: the caller compares the bytes. */
	[ST_ENV_FIND] = "SELECT id, env FROM envs WHERE hash = ?",
	[ST_ENV_ADD] = "INSERT INTO envs(hash, env) VALUES(?, ?)",
	/* An env no job uses any more: one probe of jobs_env, no scan. */
	[ST_ENV_DROP] = "DELETE FROM envs WHERE id = ?1 AND NOT EXISTS "
	                "(SELECT 1 FROM jobs INDEXED BY jobs_env "
	                "WHERE env_id = ?1)",
	/* The next job of one queue; the planner must not pick a sort. */
	[ST_NEXT] = "SELECT id, priority FROM jobs INDEXED BY jobs_queued "
	            "WHERE state = 2 AND held = 0 AND queue = ? "
	            "ORDER BY priority DESC, id LIMIT 1",
	[ST_CLAIM] = "UPDATE jobs SET state = 3, started_at = ?, "
	             "attempt = attempt + 1, instance = ?, exit_code = NULL, "
	             "signal = NULL, reason = NULL, finished_at = NULL "
	             "WHERE id = ? AND state = 2 AND held = 0",
	[ST_UNCLAIM] = "UPDATE jobs SET state = 2, started_at = NULL, "
	               "attempt = attempt - 1, instance = NULL "
	               "WHERE id = ? AND state = 3",
	[ST_FINISH] = "UPDATE jobs SET state = ?, exit_code = ?, signal = ?, "
	              "reason = ?, started_at = coalesce(?, started_at), "
	              "finished_at = ?, array_wait = 0 WHERE id = ?",
	[ST_CANCEL_WAITING] = "UPDATE jobs SET state = 6, finished_at = ?, "
	                      "cancel_requested = 1, reason = ?, "
	                      "array_wait = 0 "
	                      "WHERE id = ? AND state IN (0, 1, 2)",
	[ST_CANCEL_RUNNING] = "UPDATE jobs SET cancel_requested = 1, "
	                      "reason = coalesce(?, reason) "
	                      "WHERE id = ? AND state = 3",
	[ST_RUNNING] = "SELECT " JOB_COLS " FROM jobs WHERE state = 3 "
	               "ORDER BY id",
	[ST_QUEUE_LIST] = "SELECT name, parallel, paused FROM queues "
	                  "ORDER BY name",
	[ST_QUEUE_GET] = "SELECT name, parallel, paused FROM queues "
	                 "WHERE name = ?1",
	[ST_QUEUE_COUNT] = "SELECT count(*) FROM queues",
	[ST_QUEUE_ENSURE] = "INSERT OR IGNORE INTO queues(name) VALUES(?)",
	[ST_QUEUE_SET] = "INSERT INTO queues(name, parallel, paused) "
	                 "VALUES(?1, ?2, coalesce(?3, 0)) "
	                 "ON CONFLICT(name) DO UPDATE SET "
	                 "parallel = coalesce(?2, parallel), "
	                 "paused = coalesce(?3, paused)",
	[ST_DEP_ADD] = "INSERT OR IGNORE INTO job_deps(job_id, dep_id, type, "
	               "met) VALUES(?, ?, ?, ?)",
	[ST_DEPS] = "SELECT dep_id, type FROM job_deps WHERE job_id = ? "
	            "ORDER BY dep_id",
	/* Dependents still waiting: through job_deps_by_dep, no scan. */
	[ST_DEPENDENTS] = "SELECT d.job_id, d.type FROM job_deps d "
	                  "JOIN jobs j ON j.id = d.job_id "
	                  "WHERE d.dep_id = ? AND d.met = 0 AND j.state = 0 "
	                  "ORDER BY d.job_id",
	[ST_DEP_MARK] = "UPDATE job_deps SET met = 1 WHERE job_id = ? "
	                "AND dep_id = ?",
	/* The last pending one met: scheduled if run_at is ahead, else queued.
	 */
	[ST_DEP_MET] = "UPDATE jobs SET deps_pending = deps_pending - 1, "
	               "state = CASE WHEN deps_pending > 1 THEN 0 "
	               "WHEN coalesce(run_at, 0) > ?2 THEN 1 ELSE 2 END "
	               "WHERE id = ?1 AND state = 0 RETURNING state",
	[ST_ARRAY_SLOT] =
	    "UPDATE jobs SET array_wait = 0, deps_pending = deps_pending - 1, "
	    "state = CASE WHEN deps_pending > 1 THEN 0 "
	    "WHEN coalesce(run_at, 0) > ?2 THEN 1 ELSE 2 END "
	    "WHERE id = (SELECT id FROM jobs INDEXED BY jobs_array_wait "
	    "WHERE array_wait = 1 AND array_id = ?1 AND state = 0 "
	    "ORDER BY array_index LIMIT 1) AND state = 0 RETURNING id, state",
	[ST_ARRAY_TASKS] = "SELECT id, state FROM jobs WHERE array_id = ? "
	                   "ORDER BY array_index",
	[ST_ARRAY_HOLDERS] = "SELECT count(*) FROM jobs WHERE array_id = ? "
	                     "AND state < 4 AND array_wait = 0",
	/* An array's id: taken from the jobs' own sequence, never a job's. */
	[ST_RESERVE_ID] = "UPDATE sqlite_sequence SET seq = seq + 1 "
	                  "WHERE name = 'jobs' RETURNING seq",
	[ST_SEQ_INIT] = "INSERT INTO sqlite_sequence(name, seq) "
	                "SELECT 'jobs', 0 WHERE NOT EXISTS (SELECT 1 FROM "
	                "sqlite_sequence WHERE name = 'jobs')",
	[ST_LAST_ID] = "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'",
	[ST_ATTEMPT_ADD] =
	    "INSERT OR REPLACE INTO attempts(job_id, attempt, state, "
	    "exit_code, "
	    "signal, reason, started_at, finished_at) "
	    "SELECT id, attempt, ?2, ?3, ?4, ?5, coalesce(?6, started_at), ?7 "
	    "FROM jobs WHERE id = ?1 AND attempt > 0",
	[ST_ATTEMPTS] = "SELECT attempt, state, exit_code, signal, reason, "
	                "started_at, finished_at FROM attempts "
	                "WHERE job_id = ? ORDER BY attempt",
	/* ?5: a retry by hand, which starts a new series of retries. */
	[ST_REQUEUE] = "UPDATE jobs SET state = ?2, run_at = ?3, reason = ?4, "
	               "exit_code = NULL, signal = NULL, finished_at = NULL, "
	               "started_at = NULL, cancel_requested = 0, "
	               "sup_pid = NULL, run_file = NULL, "
	               "retry_base = CASE WHEN ?5 THEN attempt "
	               "ELSE retry_base END, array_wait = ?6, "
	               "deps_pending = ?6 WHERE id = ?1",
	[ST_SET_PRIORITY] = "UPDATE jobs SET priority = ? WHERE id = ? "
	                    "AND state IN (0, 1, 2)",
	[ST_SET_HELD] = "UPDATE jobs SET held = ? WHERE id = ? "
	                "AND state IN (0, 1, 2)",
	/* Without INDEXED BY the planner takes jobs_state and reads rows. */
	[ST_NEXT_RUN_AT] = "SELECT run_at FROM jobs INDEXED BY jobs_scheduled "
	                   "WHERE state = 1 ORDER BY run_at LIMIT 1",
	/* Only retries: a job that never ran waits for a time (--at). */
	[ST_SHIFT_RETRIES] = "UPDATE jobs INDEXED BY jobs_scheduled "
	                     "SET run_at = max(run_at + ?, 0) "
	                     "WHERE state = 1 AND attempt > 0",
	[ST_DUE] = "UPDATE jobs INDEXED BY jobs_scheduled SET state = 2 "
	           "WHERE state = 1 AND run_at <= ? RETURNING id",
	/* ?1 limit, ?2 cutoff, ?3 state or NULL, ?4 owner */
	[ST_PURGE_SELECT] = "SELECT id FROM jobs INDEXED BY jobs_finished "
	                    "WHERE state >= 4 AND finished_at <= ?2 "
	                    "AND (?3 IS NULL OR state = ?3) "
	                    "ORDER BY finished_at LIMIT ?1",
	[ST_PURGE_OWNER] =
	    "SELECT id FROM jobs INDEXED BY jobs_finished_owner "
	    "WHERE state >= 4 AND uid = ?4 AND finished_at <= ?2 "
	    "AND (?3 IS NULL OR state = ?3) "
	    "ORDER BY finished_at LIMIT ?1",
	[ST_DELETE] = "DELETE FROM jobs WHERE id = ? AND state >= 4 "
	              "RETURNING env_id",
	[ST_FINISHED_NTH] = "SELECT finished_at FROM jobs INDEXED BY "
	                    "jobs_finished WHERE state >= 4 "
	                    "ORDER BY finished_at DESC LIMIT 1 OFFSET ?",
};

static sqlite3 *queue_db;
static int queue_txn_open; /* queue_begin() ran; the commit has not */
static sqlite3_stmt *queue_st[ST_MAX];
/* list's statements, one per set of filters, prepared on first use. */
#define QUEUE_LIST_KINDS (1 << 5)
static sqlite3_stmt *queue_list_st[QUEUE_LIST_KINDS];

static int
queue_fail(const char *what)
{
	log_warnx("store: %s: %s", what, sqlite3_errmsg(queue_db));
	return (-1);
}

/* Run one prepared statement that returns no rows; 0 or -1. */
static int
queue_exec_st(int st)
{
	int rc = sqlite3_step(queue_st[st]);

	sqlite3_reset(queue_st[st]);
	sqlite3_clear_bindings(queue_st[st]);
	if (rc != SQLITE_DONE)
		return (queue_fail(queue_sql[st]));
	return (0);
}

/* The first column of the first row of sql, as an int or text. */
static int
queue_pragma(const char *sql, int *ip, char *text, size_t len)
{
	sqlite3_stmt *st;
	int rv = -1;

	if (sqlite3_prepare_v2(queue_db, sql, -1, &st, NULL) != SQLITE_OK)
		return (queue_fail(sql));
	if (sqlite3_step(st) == SQLITE_ROW) {
		if (ip != NULL)
			*ip = sqlite3_column_int(st, 0);
		if (text != NULL)
			snprintf(text, len, "%s",
			         (const char *)sqlite3_column_text(st, 0));
		rv = 0;
	} else
		queue_fail(sql);
	sqlite3_finalize(st);
	return (rv);
}

/*
 * FNV-1a (64 bits) of the len bytes at p, as sqlite's signed integer: the
 * key envs rows are found by. It is part of the store's format: a jobd
 * with another hash would not find the envs already stored (and would add
 * them again). Not unique: rows with the same hash differ in their bytes.
 */
static int64_t
queue_env_fnv(const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return ((int64_t)h);
}

/* The hash of an env; the tests replace it to make hashes collide. */
int64_t (*queue_env_hash)(const void *, size_t) = queue_env_fnv;

/* env_hash(X): queue_env_hash of blob X in SQL (NULL for NULL). */
static void
queue_env_hash_sql(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const void *p;
	int len;

	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	p = sqlite3_value_blob(argv[0]);
	len = sqlite3_value_bytes(argv[0]);
	sqlite3_result_int64(ctx, queue_env_hash(p, (size_t)len));
}

/*
 * Bring a database of schema version (0: new) up to this jobd's, one step
 * per version, each in its own transaction: a failed step leaves the
 * database at the version before it, data intact.
 */
static int
queue_migrate(int version)
{
	char bump[64];
	int from = version;

	for (; version < QUEUE_SCHEMA_VERSION; version++) {
		snprintf(bump, sizeof bump, "PRAGMA user_version = %d; COMMIT",
		         version + 1);
		if (sqlite3_exec(queue_db, "BEGIN IMMEDIATE", NULL, NULL,
		                 NULL) != SQLITE_OK ||
		    sqlite3_exec(queue_db, queue_steps[version], NULL, NULL,
		                 NULL) != SQLITE_OK ||
		    sqlite3_exec(queue_db, bump, NULL, NULL, NULL) !=
		        SQLITE_OK) {
			queue_fail("upgrading the schema");
			sqlite3_exec(queue_db, "ROLLBACK", NULL, NULL, NULL);
			return (-1);
		}
		if (from > 0)
			log_info("store: schema upgraded to version %d",
			         version + 1);
	}
	return (0);
}

/*
 * Open (or create) the store at path. A corrupt database, or one of a
 * newer schema, is refused before anything is written to it. Returns 0, or
 * -1 after logging why.
 */
int
queue_open(const char *path)
{
	/* auto_vacuum first: it only takes effect before page 1 is written. */
	static const char *pragmas = "PRAGMA auto_vacuum = INCREMENTAL;"
	                             "PRAGMA journal_mode = WAL;"
	                             "PRAGMA synchronous = FULL;"
	                             "PRAGMA foreign_keys = ON;"
	                             "PRAGMA secure_delete = OFF;"
	                             "PRAGMA trusted_schema = OFF;"
	                             "PRAGMA journal_size_limit = 67108864;";
	char check[512];
	int i, version, pages, hdr = 0;

	/*
	 * The page cache in one block of its own, taken at open: pages
	 * malloc'd one by one as the cache fills sit among the requests'
	 * short-lived allocations and split the free heap into holes that
	 * every later malloc searches (after a million submits, each request
	 * paid milliseconds for it). Before sqlite's first use only; a later
	 * call (tests open the store again) changes nothing.
	 */
	if (sqlite3_config(SQLITE_CONFIG_PCACHE_HDRSZ, &hdr) == SQLITE_OK)
		sqlite3_config(SQLITE_CONFIG_PAGECACHE, (void *)0, 4096 + hdr,
		               QUEUE_CACHE_PAGES);
	if (sqlite3_open_v2(path, &queue_db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                        SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
	                    NULL) != SQLITE_OK) {
		queue_fail(path);
		goto fail;
	}
	sqlite3_db_config(queue_db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	/* Only an outside process (an admin's sqlite3) can hold the lock. */
	sqlite3_busy_timeout(queue_db, 200);
	if (queue_pragma("PRAGMA page_count", &pages, NULL, 0) != 0 ||
	    queue_pragma(pages <= QUEUE_CHECK_ALL_PAGES
	                     ? "PRAGMA quick_check"
	                     : "PRAGMA quick_check(meta)",
	                 NULL, check, sizeof check) != 0) {
		log_warnx("store: %s is damaged: it cannot be checked", path);
		goto fail;
	}
	if (strcmp(check, "ok") != 0) {
		/* The first problem found; there may be more. */
		log_warnx("store: %s is damaged (%s)", path, check);
		goto fail;
	}
	if (queue_pragma("PRAGMA user_version", &version, NULL, 0) != 0)
		goto fail;
	if (version > QUEUE_SCHEMA_VERSION) {
		log_warnx("store: %s has schema version %d, newer than this "
		          "jobd's %d; refusing to touch it",
		          path, version, QUEUE_SCHEMA_VERSION);
		goto fail;
	}
	if (sqlite3_exec(queue_db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		queue_fail("setting up the database");
		goto fail;
	}
	/* For the upgrade to version 3, which moves the envs. */
	if (sqlite3_create_function(
	        queue_db, "env_hash", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
	        NULL, queue_env_hash_sql, NULL, NULL) != SQLITE_OK) {
		queue_fail("adding env_hash()");
		goto fail;
	}
	if (queue_migrate(version) != 0)
		goto fail;
	for (i = 0; i < ST_MAX; i++) {
		if (sqlite3_prepare_v3(queue_db, queue_sql[i], -1,
		                       SQLITE_PREPARE_PERSISTENT, &queue_st[i],
		                       NULL) != SQLITE_OK) {
			queue_fail(queue_sql[i]);
			goto fail;
		}
	}
	return (0);
fail:
	queue_close();
	return (-1);
}

void
queue_close(void)
{
	queue_backup_end();
	queue_txn_open = 0;
	for (size_t i = 0; i < QUEUE_LIST_KINDS; i++) {
		sqlite3_finalize(queue_list_st[i]);
		queue_list_st[i] = NULL;
	}
	for (int i = 0; i < ST_MAX; i++) {
		sqlite3_finalize(queue_st[i]);
		queue_st[i] = NULL;
	}
	if (queue_db != NULL)
		sqlite3_close(queue_db);
	queue_db = NULL;
}

/*
 * Online backup (sqlite's backup API), one at a time, into a database file
 * that the caller created empty. It runs on jobd's own connection, so the
 * changes jobd commits meanwhile go into the copy as well, and it is
 * stepped between transactions only, so that the copy never holds one that
 * may yet be rolled back. The copy is written without a journal or syncs:
 * the caller fsyncs the file once it is complete.
 */
static sqlite3 *queue_bk_db;
static sqlite3_backup *queue_bk;

/* Start a backup into path; returns 0, or -1 with a message in err. */
int
queue_backup_begin(const char *path, char *err, size_t errlen)
{
	if (sqlite3_open_v2(path, &queue_bk_db, SQLITE_OPEN_READWRITE, NULL) !=
	        SQLITE_OK ||
	    sqlite3_exec(queue_bk_db,
	                 "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF",
	                 NULL, NULL, NULL) != SQLITE_OK ||
	    (queue_bk = sqlite3_backup_init(queue_bk_db, "main", queue_db,
	                                    "main")) == NULL) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(queue_bk_db));
		queue_backup_end();
		return (-1);
	}
	return (0);
}

/*
 * Copy up to pages more pages. Returns 1 if there is more to copy, 0 when
 * the copy is complete, -1 with a message in err if it failed.
 */
int
queue_backup_step(int pages, char *err, size_t errlen)
{
	int rc;

	if (queue_txn_open)
		return (1); /* after the commit */
	switch ((rc = sqlite3_backup_step(queue_bk, pages))) {
	case SQLITE_OK:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return (1);
	case SQLITE_DONE:
		if ((rc = sqlite3_backup_finish(queue_bk)) == SQLITE_OK) {
			queue_bk = NULL;
			return (0);
		}
		queue_bk = NULL;
		break;
	}
	snprintf(err, errlen, "%s", sqlite3_errstr(rc));
	return (-1);
}

/* End the backup, complete or not, and close the copy. */
void
queue_backup_end(void)
{
	if (queue_bk != NULL)
		sqlite3_backup_finish(queue_bk);
	queue_bk = NULL;
	if (queue_bk_db != NULL)
		sqlite3_close(queue_bk_db);
	queue_bk_db = NULL;
}

/* Is the loop iteration's transaction open? */
int
queue_in_txn(void)
{
	return (queue_txn_open);
}

/*
 * Open the loop iteration's transaction, if it is not open yet. Returns -1
 * if it cannot, or if sqlite has already rolled it back on its own after an
 * error (then nothing more may be written until the commit reports it).
 */
int
queue_begin(void)
{
	if (queue_txn_open)
		return (sqlite3_get_autocommit(queue_db) ? -1 : 0);
	if (queue_exec_st(ST_BEGIN) != 0)
		return (-1);
	queue_txn_open = 1;
	return (0);
}

/*
 * Commit the open transaction. Returns -1 if it failed, or if sqlite rolled
 * it back earlier on an error: either way none of its writes happened.
 */
int
queue_commit(void)
{
	if (!queue_txn_open)
		return (0);
	queue_txn_open = 0;
	if (sqlite3_get_autocommit(queue_db)) {
		log_warnx("store: the transaction was rolled back by an error");
		return (-1);
	}
	if (queue_exec_st(ST_COMMIT) != 0) {
		if (!sqlite3_get_autocommit(queue_db))
			queue_exec_st(ST_ROLLBACK);
		return (-1);
	}
	return (0);
}

void
queue_rollback(void)
{
	queue_txn_open = 0;
	if (queue_db != NULL && !sqlite3_get_autocommit(queue_db))
		queue_exec_st(ST_ROLLBACK);
}

/*
 * Mark the open transaction (one mark at a time), so that what is written
 * after the mark can be undone alone (queue_rollback_to) or kept with the
 * rest (queue_release): a request's writes, all or none, in a transaction
 * other requests share. Returns -1 outside a transaction, where SAVEPOINT
 * would begin one of its own (which RELEASE would commit).
 */
int
queue_savepoint(void)
{
	if (!queue_txn_open || sqlite3_get_autocommit(queue_db))
		return (-1);
	return (queue_exec_st(ST_SAVEPOINT));
}

/*
 * Keep what was written since the mark, in the transaction, and drop the
 * mark. -1 if sqlite has rolled back the whole transaction on an error
 * (the commit reports it).
 */
int
queue_release(void)
{
	if (sqlite3_get_autocommit(queue_db))
		return (-1);
	return (queue_exec_st(ST_RELEASE));
}

/*
 * Undo what was written since the mark, keep what was written before it,
 * and drop the mark. -1 as queue_release().
 */
int
queue_rollback_to(void)
{
	if (sqlite3_get_autocommit(queue_db))
		return (-1);
	if (queue_exec_st(ST_ROLLBACK_TO) != 0)
		return (-1);
	return (queue_exec_st(ST_RELEASE));
}

/* Pack a NULL-terminated string array into one blob of NUL-ended strings. */
static char *
queue_pack(char **v, int *lenp)
{
	size_t len = 0, n;
	char *blob, *p;
	int i;

	for (i = 0; v[i] != NULL; i++)
		len += strlen(v[i]) + 1;
	p = blob = xmalloc(len);
	for (i = 0; v[i] != NULL; i++) {
		n = strlen(v[i]) + 1;
		memcpy(p, v[i], n);
		p += n;
	}
	*lenp = (int)len;
	return (blob);
}

static char *
queue_col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return (s != NULL ? xstrdup((const char *)s) : NULL);
}

static int64_t
queue_col_int(sqlite3_stmt *st, int col)
{
	return (sqlite3_column_int64(st, col));
}

/* Fill j from a row of JOB_COLS. */
static void
queue_row(sqlite3_stmt *st, struct job *j)
{
	memset(j, 0, sizeof *j);
	j->id = queue_col_int(st, 0);
	j->state = (int)queue_col_int(st, 1);
	j->name = queue_col_text(st, 2);
	if (sqlite3_column_type(st, 3) != SQLITE_NULL)
		j->argv = util_strv_split(sqlite3_column_blob(st, 3),
		                          (size_t)sqlite3_column_bytes(st, 3));
	j->shell = queue_col_text(st, 4);
	j->cwd = queue_col_text(st, 5);
	j->key = queue_col_text(st, 6);
	j->uid = queue_col_int(st, 7);
	j->gid = queue_col_int(st, 8);
	j->pid = queue_col_int(st, 9);
	j->priority = queue_col_int(st, 10);
	j->attempt = queue_col_int(st, 11);
	j->has_exit = sqlite3_column_type(st, 12) != SQLITE_NULL;
	j->exit_code = (int)queue_col_int(st, 12);
	j->signal = (int)queue_col_int(st, 13);
	j->reason = queue_col_text(st, 14);
	j->submitted_at = queue_col_int(st, 15);
	j->started_at = queue_col_int(st, 16);
	j->finished_at = queue_col_int(st, 17);
	j->sup_pid = queue_col_int(st, 18);
	j->cancel_requested = (int)queue_col_int(st, 19);
	j->queue = queue_col_text(st, 20);
	j->held = (int)queue_col_int(st, 21);
	j->run_at = queue_col_int(st, 22);
	j->deps_pending = queue_col_int(st, 23);
	j->array_wait = (int)queue_col_int(st, 24);
	j->timeout_ms = queue_col_int(st, 25);
	j->kill_after_ms = queue_col_int(st, 26);
	j->retries = queue_col_int(st, 27);
	j->retry_delay_ms = queue_col_int(st, 28);
	j->retry_on_lost = (int)queue_col_int(st, 29);
	j->retry_base = queue_col_int(st, 30);
	j->array_id = queue_col_int(st, 31);
	j->array_index = queue_col_int(st, 32);
	j->array_limit = queue_col_int(st, 33);
	j->instance = queue_col_text(st, 34);
}

/* Free what j owns and zero it. */
void
job_clear(struct job *j)
{
	free(j->name);
	util_strv_free(j->argv);
	free(j->shell);
	free(j->cwd);
	util_strv_free(j->env);
	free(j->key);
	free(j->reason);
	free(j->queue);
	free(j->instance);
	memset(j, 0, sizeof *j);
}

static void
queue_bind_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, col, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, col);
}

static void
queue_bind_strv(sqlite3_stmt *st, int col, char **v)
{
	char *blob;
	int len;

	if (v == NULL) {
		sqlite3_bind_null(st, col);
		return;
	}
	blob = queue_pack(v, &len);
	sqlite3_bind_blob(st, col, blob, len, free);
}

/* Bind v, or NULL if it is 0 (the store's "none"). */
static void
queue_bind_opt(sqlite3_stmt *st, int col, int64_t v)
{
	if (v != 0)
		sqlite3_bind_int64(st, col, v);
	else
		sqlite3_bind_null(st, col);
}

/* Delete env id if no job uses it any more. */
static int
queue_env_drop(int64_t id)
{
	sqlite3_bind_int64(queue_st[ST_ENV_DROP], 1, id);
	return (queue_exec_st(ST_ENV_DROP));
}

/*
 * The id of the envs row that holds env, added if no job has it yet; 0 for
 * an empty (or NULL) env, which has no row. A row is found by its hash and
 * then its bytes: a collision costs a row, never a job another's env.
 * Returns 0 or -1.
 */
static int
queue_env_id(char **env, int64_t *idp)
{
	sqlite3_stmt *st = queue_st[ST_ENV_FIND];
	int64_t id = 0, hash;
	const void *p;
	char *blob;
	int len, rc;

	if (env == NULL || env[0] == NULL) {
		*idp = 0;
		return (0);
	}
	blob = queue_pack(env, &len);
	hash = queue_env_hash(blob, (size_t)len);
	sqlite3_bind_int64(st, 1, hash);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		p = sqlite3_column_blob(st, 1);
		if (p != NULL && sqlite3_column_bytes(st, 1) == len &&
		    memcmp(p, blob, (size_t)len) == 0) {
			id = sqlite3_column_int64(st, 0);
			break;
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE) {
		sqlite3_bind_int64(queue_st[ST_ENV_ADD], 1, hash);
		sqlite3_bind_blob(queue_st[ST_ENV_ADD], 2, blob, len,
		                  SQLITE_STATIC);
		if (queue_exec_st(ST_ENV_ADD) == 0)
			id = sqlite3_last_insert_rowid(queue_db);
	} else if (rc != SQLITE_ROW)
		queue_fail("finding an env");
	free(blob);
	if (id == 0)
		return (-1);
	*idp = id;
	return (0);
}

/*
 * Insert a new job from j (everything a submit sets) and set j->id; j->id
 * already set (an array task) is kept. Inside the loop's transaction.
 * Returns 0 or -1; a failed insert may leave the env row it added, which
 * the caller's queue_rollback_to() (or rollback) takes away.
 */
int
queue_job_insert(struct job *j)
{
	sqlite3_stmt *st = queue_st[ST_INSERT];
	int64_t env_id;

	if (queue_env_id(j->env, &env_id) != 0)
		return (-1);
	queue_bind_opt(st, 1, j->id);
	sqlite3_bind_int(st, 2, j->state);
	queue_bind_text(st, 3, j->name);
	queue_bind_strv(st, 4, j->argv);
	queue_bind_text(st, 5, j->shell);
	queue_bind_text(st, 6, j->cwd);
	queue_bind_opt(st, 7, env_id);
	queue_bind_text(st, 8, j->key);
	sqlite3_bind_int64(st, 9, j->uid);
	sqlite3_bind_int64(st, 10, j->gid);
	sqlite3_bind_int64(st, 11, j->pid);
	sqlite3_bind_int64(st, 12, j->priority);
	sqlite3_bind_int64(st, 13, j->submitted_at);
	queue_bind_text(st, 14, j->queue);
	sqlite3_bind_int(st, 15, j->held);
	queue_bind_opt(st, 16, j->run_at);
	sqlite3_bind_int64(st, 17, j->deps_pending);
	sqlite3_bind_int(st, 18, j->array_wait);
	queue_bind_opt(st, 19, j->timeout_ms);
	sqlite3_bind_int64(st, 20, j->kill_after_ms);
	sqlite3_bind_int64(st, 21, j->retries);
	sqlite3_bind_int64(st, 22, j->retry_delay_ms);
	sqlite3_bind_int(st, 23, j->retry_on_lost);
	queue_bind_opt(st, 24, j->array_id);
	if (j->array_id != 0)
		sqlite3_bind_int64(st, 25, j->array_index);
	queue_bind_opt(st, 26, j->array_limit);
	if (queue_exec_st(ST_INSERT) != 0)
		return (-1);
	j->id = sqlite3_last_insert_rowid(queue_db);
	return (0);
}

/* Look up the job of owner uid with this key: 0 (found), 1 (none), -1. */
int
queue_job_find_key(int64_t uid, const char *key, int64_t *idp)
{
	sqlite3_stmt *st = queue_st[ST_FIND_KEY];
	int rc, rv = -1;

	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*idp = sqlite3_column_int64(st, 0);
		rv = 0;
	} else if (rc == SQLITE_DONE)
		rv = 1;
	else
		queue_fail("finding a key");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return (rv);
}

/* Read job id (without its env) into j: 0 (found), 1 (none), -1 (error). */
int
queue_job_get(int64_t id, struct job *j)
{
	sqlite3_stmt *st = queue_st[ST_GET];
	int rc, rv = -1;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		queue_row(st, j);
		rv = 0;
	} else if (rc == SQLITE_DONE)
		rv = 1;
	else
		queue_fail("reading a job");
	sqlite3_reset(st);
	return (rv);
}

/* Call cb for each row of st; the job is cleared after each call. */
static int
queue_each(sqlite3_stmt *st, void (*cb)(struct job *, void *), void *arg)
{
	struct job j;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		queue_row(st, &j);
		cb(&j, arg);
		job_clear(&j);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return (rc == SQLITE_DONE ? 0 : queue_fail("listing jobs"));
}

/*
 * The jobs that match f, newest first, at most f->limit. The statement is
 * built for the filters given (each one's column has an index) and kept
 * for the next list with the same ones.
 */
int
queue_job_list(const struct job_filter *f, void (*cb)(struct job *, void *),
               void *arg)
{
	sqlite3_stmt *st;
	char sql[1024];
	int mask;

	mask = (f->state >= 0) | (f->uid >= 0) << 1 | (f->queue != NULL) << 2 |
	       (f->name != NULL) << 3 | (f->since > 0) << 4;
	if ((st = queue_list_st[mask]) == NULL) {
		snprintf(sql, sizeof sql,
		         "SELECT " JOB_COLS " FROM jobs WHERE 1%s%s%s%s%s "
		         "ORDER BY id DESC LIMIT ?1",
		         mask & 1 ? " AND state = ?2" : "",
		         mask & 2 ? " AND uid = ?3" : "",
		         mask & 4 ? " AND queue = ?4" : "",
		         mask & 8 ? " AND name GLOB ?5" : "",
		         /* The first such id bounds the walk down the ids. */
		         mask & 16 ? " AND submitted_at >= ?6 AND id >= "
		                     "(SELECT min(id) FROM jobs INDEXED BY "
		                     "jobs_submitted WHERE submitted_at >= ?6)"
		                   : "");
		if (sqlite3_prepare_v3(queue_db, sql, -1,
		                       SQLITE_PREPARE_PERSISTENT, &st,
		                       NULL) != SQLITE_OK)
			return (queue_fail(sql));
		queue_list_st[mask] = st;
	}
	sqlite3_bind_int(st, 1, f->limit);
	if (mask & 1)
		sqlite3_bind_int(st, 2, f->state);
	if (mask & 2)
		sqlite3_bind_int64(st, 3, f->uid);
	if (mask & 4)
		sqlite3_bind_text(st, 4, f->queue, -1, SQLITE_STATIC);
	if (mask & 8)
		sqlite3_bind_text(st, 5, f->name, -1, SQLITE_STATIC);
	if (mask & 16)
		sqlite3_bind_int64(st, 6, f->since);
	return (queue_each(st, cb, arg));
}

/* Every job in state running, oldest first. */
int
queue_job_running(void (*cb)(struct job *, void *), void *arg)
{
	return (queue_each(queue_st[ST_RUNNING], cb, arg));
}

/*
 * The next job to start in queue q (highest priority, then oldest): 0 and
 * its id and priority, 1 if the queue has none ready, -1.
 */
int
queue_job_next(const char *q, int64_t *idp, int64_t *priop)
{
	sqlite3_stmt *st = queue_st[ST_NEXT];
	int rc, rv = -1;

	sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*idp = sqlite3_column_int64(st, 0);
		*priop = sqlite3_column_int64(st, 1);
		rv = 0;
	} else if (rc == SQLITE_DONE)
		rv = 1;
	else
		queue_fail("finding queued jobs");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return (rv);
}

/*
 * Mark queued job id running (attempt + 1, started now, this instance) and
 * read it with its env into j. Returns 0, 1 if it is no longer queued, -1.
 */
int
queue_job_claim(int64_t id, struct job *j)
{
	sqlite3_stmt *st = queue_st[ST_CLAIM];
	int rc;

	sqlite3_bind_int64(st, 1, util_now_ms());
	sqlite3_bind_text(st, 2, jobd_instance, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, id);
	if (queue_exec_st(ST_CLAIM) != 0)
		return (-1);
	if (sqlite3_changes(queue_db) == 0)
		return (1);
	if (queue_job_get(id, j) != 0)
		return (-1);
	st = queue_st[ST_GET_ENV];
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		j->env = util_strv_split(sqlite3_column_blob(st, 0),
		                         (size_t)sqlite3_column_bytes(st, 0));
	else
		j->env = xcalloc(1, sizeof *j->env);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		job_clear(j);
		return (queue_fail("reading a job's env"));
	}
	return (0);
}

/* Undo a claim whose start failed: the job is queued again. */
int
queue_job_unclaim(int64_t id)
{
	sqlite3_bind_int64(queue_st[ST_UNCLAIM], 1, id);
	return (queue_exec_st(ST_UNCLAIM));
}

/*
 * Record how job j->id ended: state, exit code (if has_exit), signal,
 * reason, finished_at, and started_at if known.
 */
int
queue_job_finish(const struct job *j)
{
	sqlite3_stmt *st = queue_st[ST_FINISH];

	sqlite3_bind_int(st, 1, j->state);
	if (j->has_exit)
		sqlite3_bind_int(st, 2, j->exit_code);
	if (j->signal > 0)
		sqlite3_bind_int(st, 3, j->signal);
	queue_bind_text(st, 4, j->reason);
	if (j->started_at > 0)
		sqlite3_bind_int64(st, 5, j->started_at);
	sqlite3_bind_int64(st, 6, j->finished_at);
	sqlite3_bind_int64(st, 7, j->id);
	return (queue_exec_st(ST_FINISH));
}

/*
 * Cancel job id: a job that has not started ends cancelled now (with
 * reason, which may be NULL); a running one is marked so that it ends
 * cancelled (with reason, if its outcome gives none).
 */
int
queue_job_cancel(int64_t id, int running, int64_t now, const char *reason)
{
	sqlite3_stmt *st;

	if (running) {
		st = queue_st[ST_CANCEL_RUNNING];
		queue_bind_text(st, 1, reason);
		sqlite3_bind_int64(st, 2, id);
		return (queue_exec_st(ST_CANCEL_RUNNING));
	}
	st = queue_st[ST_CANCEL_WAITING];
	sqlite3_bind_int64(st, 1, now);
	queue_bind_text(st, 2, reason);
	sqlite3_bind_int64(st, 3, id);
	return (queue_exec_st(ST_CANCEL_WAITING));
}

/*
 * Step st, which returns ids in its first column, into ids (at most n).
 * Returns how many, or -1.
 */
static int
queue_ids(int sti, int64_t *ids, int n)
{
	sqlite3_stmt *st = queue_st[sti];
	int rc = SQLITE_DONE, k = 0;

	while (k < n && (rc = sqlite3_step(st)) == SQLITE_ROW)
		ids[k++] = sqlite3_column_int64(st, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		k = queue_fail(queue_sql[sti]);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return (k);
}

/* Every queue (or only the one called name), by name. */
int
queue_queue_list(const char *name,
                 void (*cb)(const char *, int64_t, int, void *), void *arg)
{
	int sti = name != NULL ? ST_QUEUE_GET : ST_QUEUE_LIST, rc;
	sqlite3_stmt *st = queue_st[sti];

	if (name != NULL)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cb((const char *)sqlite3_column_text(st, 0),
		   queue_col_int(st, 1), (int)queue_col_int(st, 2), arg);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return (rc == SQLITE_DONE ? 0 : queue_fail("listing queues"));
}

static void
queue_found(const char *name, int64_t parallel, int paused, void *arg)
{
	(void)name;
	(void)parallel;
	(void)paused;
	*(int *)arg = 1;
}

/*
 * May queue name be used: it exists, or there are fewer than max queues?
 * Returns 1 (yes), 0 (no: too many), or -1.
 */
int
queue_queue_room(const char *name, int64_t max)
{
	int64_t n;
	int found = 0;

	if (queue_queue_list(name, queue_found, &found) != 0)
		return (-1);
	if (found)
		return (1);
	if (queue_ids(ST_QUEUE_COUNT, &n, 1) != 1)
		return (-1);
	return (n < max);
}

/*
 * Create queue name if it does not exist; with parallel > 0 set its limit,
 * with paused >= 0 its paused flag.
 */
int
queue_queue_set(const char *name, int64_t parallel, int paused)
{
	sqlite3_stmt *st;

	if (parallel <= 0 && paused < 0) {
		st = queue_st[ST_QUEUE_ENSURE];
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		return (queue_exec_st(ST_QUEUE_ENSURE));
	}
	st = queue_st[ST_QUEUE_SET];
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	if (parallel > 0)
		sqlite3_bind_int64(st, 2, parallel);
	if (paused >= 0)
		sqlite3_bind_int(st, 3, paused);
	return (queue_exec_st(ST_QUEUE_SET));
}

/*
 * Record that job id depends on dep (met: already satisfied). Returns 1 if
 * added, 0 if it was there already (listed twice), -1.
 */
int
queue_dep_add(int64_t id, int64_t dep, int type, int met)
{
	sqlite3_stmt *st = queue_st[ST_DEP_ADD];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, dep);
	sqlite3_bind_int(st, 3, type);
	sqlite3_bind_int(st, 4, met);
	if (queue_exec_st(ST_DEP_ADD) != 0)
		return (-1);
	return (sqlite3_changes(queue_db) > 0);
}

/* Job id's dependencies, by id: cb(dep_id, type). */
int
queue_deps(int64_t id, void (*cb)(int64_t, int, void *), void *arg)
{
	sqlite3_stmt *st = queue_st[ST_DEPS];
	int rc;

	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cb(queue_col_int(st, 0), (int)queue_col_int(st, 1), arg);
	sqlite3_reset(st);
	return (rc == SQLITE_DONE ? 0 : queue_fail("reading dependencies"));
}

/*
 * The blocked jobs that depend on dep, at most n, into ids and types.
 * Returns how many, or -1.
 */
int
queue_dependents(int64_t dep, int64_t *ids, int *types, int n)
{
	sqlite3_stmt *st = queue_st[ST_DEPENDENTS];
	int rc = SQLITE_DONE, k = 0;

	sqlite3_bind_int64(st, 1, dep);
	while (k < n && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ids[k] = queue_col_int(st, 0);
		types[k++] = (int)queue_col_int(st, 1);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		k = queue_fail("finding dependents");
	sqlite3_reset(st);
	return (k);
}

/*
 * Blocked job id's dependency dep is met. Returns the job's state after it
 * (blocked, or scheduled/queued once nothing is pending), or -1.
 */
int
queue_dep_met(int64_t id, int64_t dep, int64_t now)
{
	sqlite3_stmt *st = queue_st[ST_DEP_MET];
	int rc, state = -1;

	sqlite3_bind_int64(queue_st[ST_DEP_MARK], 1, id);
	sqlite3_bind_int64(queue_st[ST_DEP_MARK], 2, dep);
	if (queue_exec_st(ST_DEP_MARK) != 0)
		return (-1);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		state = (int)queue_col_int(st, 0);
	else if (rc == SQLITE_DONE)
		state = JOB_BLOCKED; /* no longer blocked: nothing to do */
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return (queue_fail("releasing a dependent"));
	return (state);
}

/*
 * A task of array aid gave back its slot: the next task waiting for one
 * takes it. Returns 1 and that task's id and new state, 0 if none waits,
 * -1.
 */
int
queue_array_slot(int64_t aid, int64_t now, int64_t *idp, int *statep)
{
	sqlite3_stmt *st = queue_st[ST_ARRAY_SLOT];
	int rc, rv = 0;

	sqlite3_bind_int64(st, 1, aid);
	sqlite3_bind_int64(st, 2, now);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*idp = queue_col_int(st, 0);
		*statep = (int)queue_col_int(st, 1);
		rv = 1;
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return (queue_fail("giving an array slot"));
	return (rv);
}

/*
 * The tasks of array aid in a state of mask (bit 1 << state), in index
 * order, at most n. Returns how many, or -1.
 */
int
queue_array_tasks(int64_t aid, int mask, int64_t *ids, int n)
{
	sqlite3_stmt *st = queue_st[ST_ARRAY_TASKS];
	int rc, k = 0;

	sqlite3_bind_int64(st, 1, aid);
	while (k < n && (rc = sqlite3_step(st)) == SQLITE_ROW)
		if (mask & (1 << sqlite3_column_int(st, 1)))
			ids[k++] = queue_col_int(st, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		k = queue_fail("reading an array's tasks");
	sqlite3_reset(st);
	return (k);
}

/*
 * Tasks of array aid that hold one of its slots (not ended, not waiting
 * for one), or -1.
 */
int64_t
queue_array_holders(int64_t aid)
{
	int64_t n;

	sqlite3_bind_int64(queue_st[ST_ARRAY_HOLDERS], 1, aid);
	return (queue_ids(ST_ARRAY_HOLDERS, &n, 1) == 1 ? n : -1);
}

/*
 * Take the next id of the jobs' sequence for an array, so that no job ever
 * has it. Returns it, or -1.
 */
int64_t
queue_reserve_id(void)
{
	int64_t id;

	if (queue_exec_st(ST_SEQ_INIT) != 0 ||
	    queue_ids(ST_RESERVE_ID, &id, 1) != 1)
		return (-1);
	return (id);
}

/* The largest id ever given (a job's or an array's), 0 if none, or -1. */
int64_t
queue_last_id(void)
{
	int64_t id = 0;

	return (queue_ids(ST_LAST_ID, &id, 1) < 0 ? -1 : id);
}

/* Record the end of job j->id's current attempt (state, exit, times). */
int
queue_attempt_add(const struct job *j)
{
	sqlite3_stmt *st = queue_st[ST_ATTEMPT_ADD];

	sqlite3_bind_int64(st, 1, j->id);
	sqlite3_bind_int(st, 2, j->state);
	if (j->has_exit)
		sqlite3_bind_int(st, 3, j->exit_code);
	if (j->signal > 0)
		sqlite3_bind_int(st, 4, j->signal);
	queue_bind_text(st, 5, j->reason);
	queue_bind_opt(st, 6, j->started_at);
	sqlite3_bind_int64(st, 7, j->finished_at);
	return (queue_exec_st(ST_ATTEMPT_ADD));
}

/*
 * Job id's ended attempts, oldest first: cb gets each as a job with only
 * its attempt, state, exit, signal, reason and times set.
 */
int
queue_attempts(int64_t id, void (*cb)(const struct job *, void *), void *arg)
{
	sqlite3_stmt *st = queue_st[ST_ATTEMPTS];
	struct job a;
	int rc;

	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&a, 0, sizeof a);
		a.id = id;
		a.attempt = queue_col_int(st, 0);
		a.state = (int)queue_col_int(st, 1);
		a.has_exit = sqlite3_column_type(st, 2) != SQLITE_NULL;
		a.exit_code = (int)queue_col_int(st, 2);
		a.signal = (int)queue_col_int(st, 3);
		a.reason = queue_col_text(st, 4);
		a.started_at = queue_col_int(st, 5);
		a.finished_at = queue_col_int(st, 6);
		cb(&a, arg);
		job_clear(&a);
	}
	sqlite3_reset(st);
	return (rc == SQLITE_DONE ? 0 : queue_fail("reading attempts"));
}

/*
 * Put job id back to wait for a new attempt: in state (scheduled with
 * run_at, queued, or blocked waiting for a slot of its array), with reason
 * (may be NULL). manual: a retry by hand, which starts a new series of
 * automatic retries.
 */
int
queue_job_requeue(int64_t id, int state, int64_t run_at, const char *reason,
                  int manual)
{
	sqlite3_stmt *st = queue_st[ST_REQUEUE];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, state);
	queue_bind_opt(st, 3, run_at);
	queue_bind_text(st, 4, reason);
	sqlite3_bind_int(st, 5, manual);
	sqlite3_bind_int(st, 6, state == JOB_BLOCKED);
	return (queue_exec_st(ST_REQUEUE));
}

/* Set a waiting job's priority. */
int
queue_job_set_priority(int64_t id, int64_t priority)
{
	sqlite3_bind_int64(queue_st[ST_SET_PRIORITY], 1, priority);
	sqlite3_bind_int64(queue_st[ST_SET_PRIORITY], 2, id);
	return (queue_exec_st(ST_SET_PRIORITY));
}

/* Hold (1) or release (0) a waiting job. */
int
queue_job_set_held(int64_t id, int held)
{
	sqlite3_bind_int(queue_st[ST_SET_HELD], 1, held);
	sqlite3_bind_int64(queue_st[ST_SET_HELD], 2, id);
	return (queue_exec_st(ST_SET_HELD));
}

/* The earliest start time of a scheduled job: 0 and *atp, 1 if none, -1. */
int
queue_next_run_at(int64_t *atp)
{
	sqlite3_stmt *st = queue_st[ST_NEXT_RUN_AT];
	int rc, rv = -1;

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*atp = queue_col_int(st, 0);
		rv = 0;
	} else if (rc == SQLITE_DONE)
		rv = 1;
	else
		queue_fail("finding the next start time");
	sqlite3_reset(st);
	return (rv);
}

/*
 * Scheduled jobs whose time has come (run_at <= now) become queued; their
 * ids (at most n) go into ids. Returns how many, or -1.
 */
/*
 * The wall clock jumped by ms: move the start times of the retries waiting
 * for their delay by as much, since a delay is a duration, not a time.
 */
int
queue_shift_retries(int64_t ms)
{
	sqlite3_bind_int64(queue_st[ST_SHIFT_RETRIES], 1, ms);
	return (queue_exec_st(ST_SHIFT_RETRIES));
}

int
queue_jobs_due(int64_t now, int64_t *ids, int n)
{
	sqlite3_bind_int64(queue_st[ST_DUE], 1, now);
	return (queue_ids(ST_DUE, ids, n));
}

/*
 * Delete ended job id and set *envp to the env it used (0: none, or no
 * such job). Returns 0 or -1.
 */
static int
queue_job_delete(int64_t id, int64_t *envp)
{
	sqlite3_stmt *st = queue_st[ST_DELETE];
	int64_t env = 0;
	int rc;

	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		env = queue_col_int(st, 0);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return (queue_fail(queue_sql[ST_DELETE]));
	*envp = env;
	return (0);
}

/*
 * Delete at most n ended jobs that finished at or before cutoff (of state,
 * if >= 0; of owner uid, if >= 0), oldest first; their ids go into ids.
 * Their dependencies and attempts go with them, and each env that no job
 * uses any more. Returns how many, or -1.
 */
int
queue_purge(int64_t cutoff, int state, int64_t uid, int64_t *ids, int n)
{
	int sti = uid >= 0 ? ST_PURGE_OWNER : ST_PURGE_SELECT, k;
	sqlite3_stmt *st = queue_st[sti];
	int64_t env, last = 0;

	sqlite3_bind_int(st, 1, n);
	sqlite3_bind_int64(st, 2, cutoff);
	if (state >= 0)
		sqlite3_bind_int(st, 3, state);
	if (uid >= 0)
		sqlite3_bind_int64(st, 4, uid);
	if ((k = queue_ids(sti, ids, n)) <= 0)
		return (k);
	/*
	 * Neighbours mostly share an env: each is checked once its run of
	 * jobs is gone, so every env is checked after its last job here.
	 */
	for (int i = 0; i < k; i++) {
		if (queue_job_delete(ids[i], &env) != 0)
			return (-1);
		if (env == 0 || env == last)
			continue;
		if (last != 0 && queue_env_drop(last) != 0)
			return (-1);
		last = env;
	}
	if (last != 0 && queue_env_drop(last) != 0)
		return (-1);
	return (k);
}

/*
 * The finish time of the (n+1)-th most recently ended job: 0 and *atp, 1
 * if there are not that many, -1.
 */
int
queue_finished_nth(int64_t n, int64_t *atp)
{
	sqlite3_bind_int64(queue_st[ST_FINISHED_NTH], 1, n);
	switch (queue_ids(ST_FINISHED_NTH, atp, 1)) {
	case 1:
		return (0);
	case 0:
		return (1);
	default:
		return (-1);
	}
}
