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

#define QUEUE_SCHEMA_VERSION 1

static const char *queue_schema_v1 =
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

#define JOB_COLS                                                               \
	"id, state, name, argv, shell, cwd, idem_key, uid, gid, pid, "         \
	"priority, attempt, exit_code, signal, reason, submitted_at, "         \
	"started_at, finished_at, sup_pid, cancel_requested"

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT,
	ST_FIND_KEY,
	ST_GET,
	ST_GET_ENV,
	ST_LIST_ALL,
	ST_LIST_STATE,
	ST_LIST_OWNER,
	ST_LIST_OWNER_STATE,
	ST_NEXT,
	ST_CLAIM,
	ST_UNCLAIM,
	ST_STARTED,
	ST_FINISH,
	ST_CANCEL_QUEUED,
	ST_CANCEL_RUNNING,
	ST_RUNNING,
	ST_MAX
};

static const char *queue_sql[ST_MAX] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_INSERT] = "INSERT INTO jobs(state, name, argv, shell, cwd, env, "
	              "idem_key, uid, gid, pid, priority, submitted_at) "
	              "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_FIND_KEY] = "SELECT id FROM jobs WHERE uid = ? AND idem_key = ?",
	[ST_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?",
	[ST_GET_ENV] = "SELECT env FROM jobs WHERE id = ?",
	/* ?1 limit, ?2 state, ?3 owner; each uses an index (jobs_state or
	   jobs_owner) for both the filter and the order. */
	[ST_LIST_ALL] = "SELECT " JOB_COLS " FROM jobs ORDER BY id DESC "
	                "LIMIT ?1",
	[ST_LIST_STATE] = "SELECT " JOB_COLS " FROM jobs WHERE state = ?2 "
	                  "ORDER BY id DESC LIMIT ?1",
	[ST_LIST_OWNER] = "SELECT " JOB_COLS " FROM jobs WHERE uid = ?3 "
	                  "ORDER BY id DESC LIMIT ?1",
	[ST_LIST_OWNER_STATE] = "SELECT " JOB_COLS " FROM jobs WHERE uid = ?3 "
	                        "AND state = ?2 ORDER BY id DESC LIMIT ?1",
	/* Without INDEXED BY the planner may take jobs_state and sort. */
	[ST_NEXT] =
	    "SELECT id FROM jobs INDEXED BY jobs_queued WHERE state = 2 "
	    "ORDER BY priority DESC, id LIMIT ?",
	[ST_CLAIM] = "UPDATE jobs SET state = 3, started_at = ?, "
	             "attempt = attempt + 1, instance = ? "
	             "WHERE id = ? AND state = 2",
	[ST_UNCLAIM] = "UPDATE jobs SET state = 2, started_at = NULL, "
	               "attempt = attempt - 1, instance = NULL "
	               "WHERE id = ? AND state = 3",
	[ST_STARTED] = "UPDATE jobs SET sup_pid = ?, run_file = ? WHERE id = ?",
	[ST_FINISH] = "UPDATE jobs SET state = ?, exit_code = ?, signal = ?, "
	              "reason = ?, started_at = coalesce(?, started_at), "
	              "finished_at = ? WHERE id = ?",
	[ST_CANCEL_QUEUED] = "UPDATE jobs SET state = 6, finished_at = ?, "
	                     "cancel_requested = 1 "
	                     "WHERE id = ? AND state IN (0, 1, 2)",
	[ST_CANCEL_RUNNING] = "UPDATE jobs SET cancel_requested = 1 "
	                      "WHERE id = ? AND state = 3",
	[ST_RUNNING] = "SELECT " JOB_COLS " FROM jobs WHERE state = 3 "
	               "ORDER BY id",
};

static sqlite3 *queue_db;
static int queue_txn_open; /* queue_begin() ran; the commit has not */
static sqlite3_stmt *queue_st[ST_MAX];

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

/* Bring a database of schema version (0: new) up to this jobd's. */
static int
queue_migrate(int version)
{
	if (version == QUEUE_SCHEMA_VERSION)
		return (0);
	/* Version 0: a new database. Later versions add steps here. */
	if (sqlite3_exec(queue_db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	        SQLITE_OK ||
	    sqlite3_exec(queue_db, queue_schema_v1, NULL, NULL, NULL) !=
	        SQLITE_OK ||
	    sqlite3_exec(queue_db, "PRAGMA user_version = 1; COMMIT", NULL,
	                 NULL, NULL) != SQLITE_OK) {
		queue_fail("creating the schema");
		sqlite3_exec(queue_db, "ROLLBACK", NULL, NULL, NULL);
		return (-1);
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
	char check[64];
	int i, version;

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
	if (queue_pragma("PRAGMA quick_check", NULL, check, sizeof check) !=
	        0 ||
	    strcmp(check, "ok") != 0) {
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
	queue_txn_open = 0;
	for (int i = 0; i < ST_MAX; i++) {
		sqlite3_finalize(queue_st[i]);
		queue_st[i] = NULL;
	}
	if (queue_db != NULL)
		sqlite3_close(queue_db);
	queue_db = NULL;
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

/*
 * Insert a new job (state, name, argv or shell, cwd, env, key, owner,
 * priority, submitted_at taken from j) and set j->id. Inside the loop's
 * transaction. Returns 0 or -1.
 */
int
queue_job_insert(struct job *j)
{
	sqlite3_stmt *st = queue_st[ST_INSERT];

	sqlite3_bind_int(st, 1, j->state);
	queue_bind_text(st, 2, j->name);
	queue_bind_strv(st, 3, j->argv);
	queue_bind_text(st, 4, j->shell);
	queue_bind_text(st, 5, j->cwd);
	queue_bind_strv(st, 6, j->env);
	queue_bind_text(st, 7, j->key);
	sqlite3_bind_int64(st, 8, j->uid);
	sqlite3_bind_int64(st, 9, j->gid);
	sqlite3_bind_int64(st, 10, j->pid);
	sqlite3_bind_int64(st, 11, j->priority);
	sqlite3_bind_int64(st, 12, j->submitted_at);
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
 * Jobs in state (or all, if state < 0) of owner uid (or everyone's, if
 * uid < 0), newest first, at most limit.
 */
int
queue_job_list(int state, int64_t uid, int limit,
               void (*cb)(struct job *, void *), void *arg)
{
	sqlite3_stmt *st;

	if (uid < 0)
		st = queue_st[state < 0 ? ST_LIST_ALL : ST_LIST_STATE];
	else
		st = queue_st[state < 0 ? ST_LIST_OWNER : ST_LIST_OWNER_STATE];
	sqlite3_bind_int(st, 1, limit);
	if (state >= 0)
		sqlite3_bind_int(st, 2, state);
	if (uid >= 0)
		sqlite3_bind_int64(st, 3, uid);
	return (queue_each(st, cb, arg));
}

/* Every job in state running, oldest first. */
int
queue_job_running(void (*cb)(struct job *, void *), void *arg)
{
	return (queue_each(queue_st[ST_RUNNING], cb, arg));
}

/*
 * The ids of at most n queued jobs in start order (priority, then id).
 * Returns how many, or -1.
 */
int
queue_job_next(int64_t *ids, int n)
{
	sqlite3_stmt *st = queue_st[ST_NEXT];
	int rc, k = 0;

	sqlite3_bind_int(st, 1, n);
	while (k < n && (rc = sqlite3_step(st)) == SQLITE_ROW)
		ids[k++] = sqlite3_column_int64(st, 0);
	if (k < n && rc != SQLITE_DONE)
		k = queue_fail("finding queued jobs");
	sqlite3_reset(st);
	return (k);
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

/* Record the supervisor of running job id. */
int
queue_job_started(int64_t id, int64_t sup_pid, const char *run_file)
{
	sqlite3_stmt *st = queue_st[ST_STARTED];

	sqlite3_bind_int64(st, 1, sup_pid);
	sqlite3_bind_text(st, 2, run_file, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, id);
	return (queue_exec_st(ST_STARTED));
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
 * Cancel job id: a job that has not started ends cancelled now; a running
 * one is marked so that it ends cancelled.
 */
int
queue_job_cancel(int64_t id, int running, int64_t now)
{
	sqlite3_stmt *st;

	if (running) {
		st = queue_st[ST_CANCEL_RUNNING];
		sqlite3_bind_int64(st, 1, id);
		return (queue_exec_st(ST_CANCEL_RUNNING));
	}
	st = queue_st[ST_CANCEL_QUEUED];
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, id);
	return (queue_exec_st(ST_CANCEL_QUEUED));
}
