/*
 * bench-floors: what the machine allows, measured in the same run as the
 * benchmarks that are compared with it (issue 5, "Floors"):
 *
 *   exec_noop        fork + exec + wait of bench-noop, a dynamically linked C
 *                    program that does nothing: the floor of any CLI call;
 *   forkexec_true_1  fork + exec + wait of /bin/true, one at a time;
 *   forkexec_true_2  the same with two in flight: the floor of running jobs
 *                    two at a time (each job of jobd also costs a
 *                    supervisor);
 *   sqlite_commit    one INSERT committed in WAL mode with synchronous=FULL:
 *                    the floor of a durable submit.
 *
 *   bench-floors [--runs N] [--dir DIR]
 *
 * Each line of the output is: name, samples, median, p90, min and max time
 * per operation in microseconds, and operations per second at the median,
 * separated by tabs after a header line. The two forkexec floors are timed
 * in batches (BATCH operations each), the others one operation at a time.
 * DIR (default /var/tmp) holds the database: give the file system jobd's
 * state would be on.
 */
#include <sys/wait.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define FLOORS_BATCH 20 /* forkexec operations timed together */

static char *const floors_noenv[] = { NULL };

static int64_t
floors_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

static void
floors_die(const char *what)
{
	fprintf(stderr, "bench-floors: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int
floors_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return ((x > y) - (x < y));
}

/* Print one line of results for the n samples in us (sorted here). */
static void
floors_report(const char *name, int64_t *us, int n)
{
	int64_t med;

	qsort(us, (size_t)n, sizeof *us, floors_cmp);
	med = us[n / 2];
	printf("%s\t%d\t%lld\t%lld\t%lld\t%lld\t%.0f\n", name, n,
	       (long long)med, (long long)us[(n * 9) / 10], (long long)us[0],
	       (long long)us[n - 1], med > 0 ? 1e6 / (double)med : 0.0);
	fflush(stdout);
}

/* Start path with no arguments and an empty environment; returns its pid. */
static pid_t
floors_spawn(const char *path)
{
	char *argv[] = { (char *)path, NULL };
	pid_t pid = fork();

	if (pid == -1)
		floors_die("fork");
	if (pid == 0) {
		execve(path, argv, floors_noenv);
		_exit(127);
	}
	return (pid);
}

static void
floors_reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		floors_die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench-floors: a child failed (status %d)\n",
		        status);
		exit(1);
	}
}

/* fork + exec + wait of path, one at a time, runs times. */
static void
floors_exec(const char *name, const char *path, int runs)
{
	int64_t *us = calloc((size_t)runs, sizeof *us), t;

	if (us == NULL)
		floors_die("calloc");
	for (int i = 0; i < runs; i++) {
		t = floors_now_us();
		floors_reap(floors_spawn(path));
		us[i] = floors_now_us() - t;
	}
	floors_report(name, us, runs);
	free(us);
}

/*
 * fork + exec + wait of path with inflight children at once, in batches of
 * FLOORS_BATCH; each sample is a batch's time per operation.
 */
static void
floors_inflight(const char *name, const char *path, int inflight, int runs)
{
	int batches = runs / FLOORS_BATCH > 0 ? runs / FLOORS_BATCH : 1;
	int64_t *us = calloc((size_t)batches, sizeof *us), t;

	if (us == NULL)
		floors_die("calloc");
	for (int b = 0; b < batches; b++) {
		int started = 0, running = 0, status;

		t = floors_now_us();
		while (started < FLOORS_BATCH || running > 0) {
			while (running < inflight && started < FLOORS_BATCH) {
				floors_spawn(path);
				started++;
				running++;
			}
			if (wait(&status) == -1)
				floors_die("wait");
			running--;
		}
		us[b] = (floors_now_us() - t) / FLOORS_BATCH;
	}
	floors_report(name, us, batches);
	free(us);
}

static void
floors_sql(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench-floors: %s: %s\n", sql,
		        sqlite3_errmsg(db));
		exit(1);
	}
}

/* One row committed per transaction, WAL, synchronous=FULL. */
static void
floors_sqlite(const char *dir, int runs)
{
	char tmpl[PATH_MAX], path[PATH_MAX + 16];
	int64_t *us = calloc((size_t)runs, sizeof *us), t;
	sqlite3 *db;

	if (us == NULL)
		floors_die("calloc");
	snprintf(tmpl, sizeof tmpl, "%s/bench-floors.XXXXXX", dir);
	if (mkdtemp(tmpl) == NULL)
		floors_die(tmpl);
	snprintf(path, sizeof path, "%s/floor.db", tmpl);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		floors_die(path);
	floors_sql(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	               "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
	for (int i = 0; i < runs; i++) {
		t = floors_now_us();
		floors_sql(db, "BEGIN; INSERT INTO t (v) VALUES "
		               "('a typical shell command'); COMMIT");
		us[i] = floors_now_us() - t;
	}
	sqlite3_close(db);
	floors_report("sqlite_commit", us, runs);
	free(us);
	snprintf(path, sizeof path, "%s/floor.db", tmpl);
	unlink(path);
	snprintf(path, sizeof path, "%s/floor.db-wal", tmpl);
	unlink(path);
	snprintf(path, sizeof path, "%s/floor.db-shm", tmpl);
	unlink(path);
	rmdir(tmpl);
}

int
main(int argc, char **argv)
{
	const char *dir = "/var/tmp";
	char noop[PATH_MAX], *slash;
	int runs = 200;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else {
			fprintf(stderr,
			        "usage: bench-floors [--runs N] [--dir DIR]\n");
			return (2);
		}
	}
	if (runs < 1 || runs > 1000000) {
		fprintf(stderr, "bench-floors: --runs must be 1 to 1000000\n");
		return (2);
	}
	/* bench-noop is built beside this program. */
	snprintf(noop, sizeof noop, "%s", argv[0]);
	if ((slash = strrchr(noop, '/')) == NULL) {
		fprintf(stderr, "bench-floors: run it by its path\n");
		return (2);
	}
	snprintf(slash + 1, sizeof noop - (size_t)(slash + 1 - noop),
	         "bench-noop");

	printf("floor\tsamples\tmedian_us\tp90_us\tmin_us\tmax_us\tper_s\n");
	floors_exec("exec_noop", noop, runs);
	floors_inflight("forkexec_true_1", "/bin/true", 1, runs);
	floors_inflight("forkexec_true_2", "/bin/true", 2, runs);
	floors_sqlite(dir, runs);
	return (0);
}
