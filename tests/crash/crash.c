/*
 * The crash test (issue 4): for many rounds, submit a load of jobs through
 * the real jobctl (one client or several at once, every submit with a key),
 * kill jobd with SIGKILL at a random moment, look at its database while it
 * is down, start it again on the same folder and socket, send again the
 * submits that got no reply, and check that jobd kept its promises:
 *
 * - every submit that got a reply is in the store exactly once, under the
 *   id of the reply, and the store holds no job the test did not submit;
 * - a submit sent again after a kill gives back the job already made (if
 *   the store had it) or a new one, never a second job for one key;
 * - no attempt of a job ran twice: every job appends "ID ATTEMPT" to a
 *   ledger file (O_APPEND) when it starts and "ID ATTEMPT end" before it
 *   exits, and the ledger is checked against the store;
 * - every attempt that was running when jobd died (read from the database
 *   while jobd is down) ends with the exit code its command gives, or is
 *   lost with a reason; at the end nothing is left running;
 * - PRAGMA integrity_check is "ok" after every kill.
 *
 * The test makes itself a child subreaper: the supervisors a killed jobd
 * leaves behind become its children, and it reaps them, so no zombie
 * accumulates whatever PID 1 does. tests/crash/README.md says how to run
 * it by hand (1000 rounds) and what it prints.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "harness.h"
#include "proto.h"

#define CRASH_MAX_CLIENTS  4     /* jobctl submits in flight at once */
#define CRASH_MAX_SUBMITS  16    /* submits started in one round */
#define CRASH_KILL_MAX_MS  1200  /* the kill comes this long into a round */
#define CRASH_RECENT       40    /* dependencies: among the last acked */
#define CRASH_MAX_ATTEMPTS 4     /* a job has at most 2 (retries 1) */
#define CRASH_END_S        120   /* at the end, every job ends by then */
#define CRASH_PING_MS      10000 /* a restarted jobd answers by then */
#define CRASH_IDS_CHUNK    500   /* ids per status or wait request */
#define CRASH_MAX_REPORTS  50    /* violations printed in full */
#define CRASH_ENV_TAG      "JOBD_HARNESS_DIR=" /* as harness.c sets it */

enum crash_sub_state {
	CRASH_NOREPLY, /* sent, no reply: the connection dropped */
	CRASH_ACKED,   /* a reply with the job's id */
	CRASH_REFUSED, /* an error reply: a dependency that cannot be met */
	CRASH_UNKNOWN, /* jobctl failed twice (a violation): not checked */
};

/* One submit (one key), and what became of it. */
struct crash_sub {
	char key[32];
	int code;       /* the exit code of its command */
	int sleep_ds;   /* how long it sleeps, in tenths of a second */
	int retry_lost; /* --retry-on-lost --retries 1 */
	int retries;    /* --retries 1 (also with retry_lost) */
	int64_t dep;    /* a job it depends on, or 0 */
	size_t dep_sub; /* that job's submit */
	int dep_any;    /* --after-any rather than --after */
	int sends;      /* 1, or 2 after a kill without a reply */
	int state;      /* enum crash_sub_state */
	int64_t id;     /* the id of the reply */
	int64_t db_id;  /* in the store, seen while jobd was down */
	char *refusal;  /* the refusal, as jobctl said it */
	json_t *job;    /* at the end: its job object */
	int ledger[CRASH_MAX_ATTEMPTS + 1][2]; /* starts and ends per attempt */
};

/* An attempt that was running when jobd was killed. */
struct crash_killed {
	int64_t id;
	int64_t attempt;
	int round;
};

/* One jobctl submit in flight. */
struct crash_client {
	struct harness_proc p;
	size_t sub;
	int64_t started;
	int live;
};

static struct {
	long rounds;
	unsigned long long seed;
	int seed_given;
	int keep;
	int verbose;
} crash_opts = { 30, 0, 0, 0, 0 };

static struct {
	struct jobd_inst inst;
	char ledger[PATH_MAX + 16];
	char db[PATH_MAX + 16];
	char tag[PATH_MAX + 32];
	uint64_t rng;
	int round;

	struct crash_sub *subs;
	size_t nsubs, capsubs;
	size_t *recent; /* acked submits, the last CRASH_RECENT */
	size_t nrecent;
	size_t *by_id; /* job id -> submit + 1 (0: none) */
	size_t nby_id;

	struct crash_killed *killed;
	size_t nkilled;
	int64_t *recovery; /* ms, one per restart */
	size_t nrecovery;
	long log_off; /* how far jobd's log has been read */

	long sent, acked, refused, noreply, resent, resent_existing, resent_new,
	    kills, running_at_kill, inflight_at_kill;
	long adopted_log, recorded_log, lost_log, orphans_reaped,
	    client_crashes;
	long violations, duplicates, missing;
	int64_t max_db_id;
	int64_t started_ms;
	char folder[PATH_MAX];
	int finished; /* the test got to its end */
} C;

/* xorshift64*: the same seed gives the same load and kill times. */
static uint64_t
crash_rand(void)
{
	C.rng ^= C.rng >> 12;
	C.rng ^= C.rng << 25;
	C.rng ^= C.rng >> 27;
	return (C.rng * 2685821657736338717ULL);
}

/* A number in [0, n). */
static int
crash_pick(int n)
{
	return ((int)(crash_rand() % (uint64_t)n));
}

/*
 * An invariant does not hold: say which, with the round and the seed to
 * replay it. The test goes on, so that one run shows every violation, and
 * fails at the end.
 */
static void __attribute__((format(printf, 1, 2)))
crash_violation(const char *fmt, ...)
{
	va_list ap;

	if (++C.violations > CRASH_MAX_REPORTS) {
		return;
	}
	if (C.round > crash_opts.rounds) {
		fprintf(stderr, "crash: VIOLATION (at the end, seed %llu): ",
		        crash_opts.seed);
	} else {
		fprintf(stderr,
		        "crash: VIOLATION (round %d, seed %llu): ", C.round,
		        crash_opts.seed);
	}
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/*
 * Print the lines of path that contain needle, or with prefix, that start
 * with it (evidence for a violation).
 */
static void
crash_grep(const char *what, const char *path, const char *needle, int prefix)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;

	if (C.violations > CRASH_MAX_REPORTS) {
		return;
	}
	fprintf(stderr, "  %s lines with '%s':\n", what, needle);
	while (f != NULL && getline(&line, &cap, f) > 0) {
		if (prefix ? strncmp(line, needle, strlen(needle)) == 0
		           : strstr(line, needle) != NULL) {
			fprintf(stderr, "    %s", line);
		}
	}
	free(line);
	if (f != NULL) {
		fclose(f);
	}
}

/* Evidence about job id: its ledger lines, jobd's log lines, its object. */
static void
crash_evidence(int64_t id, json_t *job)
{
	char needle[48];

	if (C.violations > CRASH_MAX_REPORTS || id <= 0) {
		return;
	}
	snprintf(needle, sizeof needle, "%lld ", (long long)id);
	crash_grep("ledger", C.ledger, needle, 1);
	snprintf(needle, sizeof needle, "job %lld ", (long long)id);
	crash_grep("jobd log", C.inst.log, needle, 0);
	snprintf(needle, sizeof needle, "job %lld:", (long long)id);
	crash_grep("jobd log", C.inst.log, needle, 0);
	if (job != NULL) {
		char *text = json_dumps(job, JSON_COMPACT);

		fprintf(stderr, "  job object: %s\n", text);
		free(text);
	}
}

static struct crash_sub *
crash_sub_of(int64_t id)
{
	if (id <= 0 || (size_t)id >= C.nby_id || C.by_id[id] == 0) {
		return (NULL);
	}
	return (&C.subs[C.by_id[id] - 1]);
}

static void
crash_map_id(int64_t id, size_t s)
{
	if ((size_t)id >= C.nby_id) {
		size_t n = (size_t)id * 2 + 64;

		C.by_id = realloc(C.by_id, n * sizeof *C.by_id);
		assert_non_null(C.by_id);
		memset(C.by_id + C.nby_id, 0, (n - C.nby_id) * sizeof *C.by_id);
		C.nby_id = n;
	}
	C.by_id[id] = s + 1;
}

/*
 * A new submit: its exit code, how long it runs, whether it is retried if
 * lost, what it depends on.
 */
static size_t
crash_sub_new(void)
{
	static const int codes[] = { 1, 2, 3, 7, 42 };
	struct crash_sub *s;
	size_t i = C.nsubs;

	if (i == C.capsubs) {
		C.capsubs = C.capsubs == 0 ? 64 : C.capsubs * 2;
		C.subs = realloc(C.subs, C.capsubs * sizeof *C.subs);
		assert_non_null(C.subs);
	}
	s = &C.subs[C.nsubs++];
	memset(s, 0, sizeof *s);
	snprintf(s->key, sizeof s->key, "crash-%zu", i);
	s->code = crash_pick(100) < 60 ? 0 : codes[crash_pick(5)];
	/* Short jobs end before the kill; long ones run through it. */
	s->sleep_ds = crash_pick(100) < 55 ? 0 : 2 + crash_pick(29);
	s->retry_lost = crash_pick(100) < 30;
	s->retries = s->retry_lost || crash_pick(100) < 10;
	if (C.nrecent > 0 && crash_pick(100) < 30) {
		s->dep_sub =
		    C.recent[(C.nrecent - 1 -
		              (size_t)crash_pick(C.nrecent < CRASH_RECENT
		                                     ? (int)C.nrecent
		                                     : CRASH_RECENT)) %
		             CRASH_RECENT];
		s->dep = C.subs[s->dep_sub].id;
		/* --after a failing job: cancelled, or refused at once. */
		s->dep_any =
		    crash_pick(100) < (C.subs[s->dep_sub].code == 0 ? 20 : 50);
	}
	return (i);
}

/* Start "jobctl submit" for submit i, with its key. */
static void
crash_client_start(struct crash_client *c, size_t i)
{
	struct crash_sub *s = &C.subs[i];
	const char *argv[24], *env[] = { C.tag, NULL };
	char dep[24], cmd[PATH_MAX * 2 + 256], sleep[32] = "";
	int n = 0;

	if (s->sleep_ds > 0) {
		snprintf(sleep, sizeof sleep, "sleep %d.%d; ", s->sleep_ds / 10,
		         s->sleep_ds % 10);
	}
	snprintf(cmd, sizeof cmd,
	         "echo \"$JOBD_JOB_ID $JOBD_ATTEMPT\" >> '%s'; %s"
	         "echo \"$JOBD_JOB_ID $JOBD_ATTEMPT end\" >> '%s'; exit %d",
	         C.ledger, sleep, C.ledger, s->code);
	argv[n++] = JOBCTL_PATH;
	argv[n++] = "--socket";
	argv[n++] = C.inst.url;
	argv[n++] = "submit";
	argv[n++] = "--key";
	argv[n++] = s->key;
	if (s->dep != 0) {
		argv[n++] = s->dep_any ? "--after-any" : "--after";
		argv[n++] = HARNESS_ID(dep, s->dep);
	}
	if (s->retry_lost) {
		argv[n++] = "--retry-on-lost";
	}
	if (s->retries) {
		argv[n++] = "--retries";
		argv[n++] = "1";
		argv[n++] = "--retry-delay";
		argv[n++] = "0";
	}
	argv[n++] = "-c";
	argv[n++] = cmd;
	argv[n] = NULL;
	harness_proc_start(&c->p, argv, env);
	c->sub = i;
	c->started = harness_now_ms();
	c->live = 1;
	s->sends++;
	C.sent += s->sends == 1;
}

/* The reply of an acked submit: its id, the same for every send. */
static void
crash_acked(struct crash_sub *s, size_t i, const char *out)
{
	char *end;
	long long id;

	errno = 0;
	id = strtoll(out, &end, 10);
	if (errno != 0 || end == out || id < 1 || strcmp(end, "\n") != 0) {
		crash_violation("submit %s printed '%s', not an id", s->key,
		                out);
		return;
	}
	if (s->state == CRASH_ACKED && s->id != id) {
		C.duplicates++;
		crash_violation("key %s: job %lld, then job %lld", s->key,
		                (long long)s->id, id);
		return;
	}
	if (s->sends > 1) {
		/* Sent again after a kill: the job the store had, or new. */
		if (s->db_id != 0 && s->db_id != id) {
			C.duplicates++;
			crash_violation("key %s was job %lld in the store, "
			                "sent again it made job %lld",
			                s->key, (long long)s->db_id, id);
		} else if (s->db_id == 0 && id <= C.max_db_id) {
			C.duplicates++;
			crash_violation("key %s was not in the store, sent "
			                "again it gave job %lld, an older one",
			                s->key, id);
		}
		C.resent_existing += s->db_id != 0;
		C.resent_new += s->db_id == 0;
	}
	if (crash_sub_of(id) != NULL && crash_sub_of(id) != s) {
		C.duplicates++;
		crash_violation("job %lld is the reply to keys %s and %s", id,
		                crash_sub_of(id)->key, s->key);
		return;
	}
	s->state = CRASH_ACKED;
	s->id = id;
	crash_map_id(id, i);
	C.acked++;
	C.recent[C.nrecent++ % CRASH_RECENT] = i;
}

/*
 * A submit's jobctl has ended with wait status: what does that say? A
 * jobctl that dies of a signal is a violation of its own; what it printed
 * says whether a reply came.
 */
static void
crash_result(struct crash_client *c, int status)
{
	struct crash_sub *s = &C.subs[c->sub];
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

	if (crash_opts.verbose && code != 0) {
		fprintf(stderr, "crash: round %d: submit %s exited %d: %s",
		        C.round, s->key, code, c->p.err);
	}
	if (WIFSIGNALED(status)) {
		/* SIGKILL: ours, for a hang (said already). */
		C.client_crashes++;
		if (WTERMSIG(status) != SIGKILL) {
			crash_violation("jobctl submit %s (send %d, pid %d) "
			                "died of signal %d; its stderr:\n%s",
			                s->key, s->sends, (int)c->p.pid,
			                WTERMSIG(status), c->p.err);
		}
		code = c->p.out_len > 0 ? 0 : 69;
	}
	if (code == 0) {
		crash_acked(s, c->sub, c->p.out);
	} else if (code == 69 && s->sends == 1) {
		/* jobd went down before it answered: sent again later. */
		s->state = CRASH_NOREPLY;
		C.noreply++;
	} else if (code == 1 && s->dep != 0 &&
	           (strstr(c->p.err, "never be satisfied") != NULL ||
	            strstr(c->p.err, "dependency") != NULL)) {
		/* Its dependency has ended in a way that cannot satisfy it. */
		s->state = CRASH_REFUSED;
		s->refusal = strdup(c->p.err);
		C.refused++;
	} else {
		if (!WIFSIGNALED(status)) {
			crash_violation("submit %s (send %d) exited %d: %s",
			                s->key, s->sends, code, c->p.err);
		}
		/* Sent again after the restart, or left unchecked. */
		s->state = s->sends == 1 ? CRASH_NOREPLY : CRASH_UNKNOWN;
		C.noreply += s->sends == 1;
	}
}

/* Reap a jobctl that has closed its output (bounded); its wait status. */
static int
crash_reap_client(struct crash_client *c)
{
	struct pollfd pfd = { .events = POLLIN };
	int status;

	if ((pfd.fd = pidfd_open(c->p.pid, 0)) >= 0) {
		if (poll(&pfd, 1, HARNESS_RUN_MS) != 1) {
			kill(c->p.pid, SIGKILL);
		}
		close(pfd.fd);
	}
	while (waitpid(c->p.pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fail_msg("waitpid %d: %s", (int)c->p.pid,
			         strerror(errno));
		}
	}
	return (status);
}

/* Kill jobd with SIGKILL, as a crash would. */
static void
crash_kill(int live)
{
	harness_kill9(&C.inst);
	C.kills++;
	C.inflight_at_kill += live;
}

/*
 * Run submits: up to parallel jobctl at once, each from next() (-1: no
 * more). With kill_at >= 0, kill jobd at that time (ms, monotonic), start
 * nothing after it, and let those in flight end. Returns when all ended.
 */
static void
crash_pump(int parallel, int64_t kill_at, ssize_t (*next)(void *), void *arg)
{
	struct crash_client cl[CRASH_MAX_CLIENTS];
	struct pollfd pfd[2 * CRASH_MAX_CLIENTS];
	int live = 0, more = 1, killed = kill_at < 0, nfd, timeout;
	ssize_t i;
	int64_t now;

	memset(cl, 0, sizeof cl);
	for (;;) {
		now = harness_now_ms();
		if (!killed && now >= kill_at) {
			crash_kill(live);
			killed = 1;
		}
		/* Nothing new starts once jobd is killed. */
		for (int k = 0;
		     k < parallel && more && (kill_at < 0 || !killed); k++) {
			if (cl[k].live) {
				continue;
			}
			if ((i = next(arg)) < 0) {
				more = 0;
				break;
			}
			crash_client_start(&cl[k], (size_t)i);
			live++;
		}
		if (live == 0 && (killed || !more)) {
			if (killed) {
				break;
			}
			/* All answered before the kill: jobs run on. */
			(void)poll(NULL, 0, (int)(kill_at - now));
			continue;
		}
		nfd = 0;
		for (int k = 0; k < parallel; k++) {
			pfd[2 * k].fd = cl[k].live ? cl[k].p.out_fd : -1;
			pfd[2 * k + 1].fd = cl[k].live ? cl[k].p.err_fd : -1;
			pfd[2 * k].events = pfd[2 * k + 1].events = POLLIN;
			pfd[2 * k].revents = pfd[2 * k + 1].revents = 0;
			nfd = 2 * k + 2;
		}
		timeout = killed ? 1000 : (int)(kill_at - now);
		if (poll(pfd, (nfds_t)nfd, timeout < 0 ? 0 : timeout) < 0 &&
		    errno != EINTR) {
			fail_msg("poll: %s", strerror(errno));
		}
		for (int k = 0; k < parallel; k++) {
			struct crash_client *c = &cl[k];

			if (!c->live) {
				continue;
			}
			if (pfd[2 * k].revents != 0) {
				harness_drain(&c->p.out_fd, &c->p.out,
				              &c->p.out_len);
			}
			if (pfd[2 * k + 1].revents != 0) {
				harness_drain(&c->p.err_fd, &c->p.err,
				              &c->p.err_len);
			}
			if (c->p.out_fd >= 0 || c->p.err_fd >= 0) {
				if (harness_now_ms() - c->started <=
				    HARNESS_RUN_MS) {
					continue;
				}
				/* Hung: a violation; kill it, go on. */
				crash_violation("jobctl submit %s (pid %d) "
				                "still runs after %d ms",
				                C.subs[c->sub].key,
				                (int)c->p.pid, HARNESS_RUN_MS);
				kill(c->p.pid, SIGKILL);
				if (c->p.out_fd >= 0) {
					close(c->p.out_fd);
					c->p.out_fd = -1;
				}
				if (c->p.err_fd >= 0) {
					close(c->p.err_fd);
					c->p.err_fd = -1;
				}
			}
			/* Both closed: it is exiting. */
			if (c->p.out == NULL) {
				c->p.out = calloc(1, 1);
			}
			if (c->p.err == NULL) {
				c->p.err = calloc(1, 1);
			}
			crash_result(c, crash_reap_client(c));
			harness_proc_free(&c->p);
			c->live = 0;
			live--;
		}
	}
}

/* The next new submit of this round, up to *left of them. */
static ssize_t
crash_next_new(void *arg)
{
	int *left = arg;

	if (*left <= 0) {
		return (-1);
	}
	(*left)--;
	return ((ssize_t)crash_sub_new());
}

/* The next submit that got no reply, to send again. */
static ssize_t
crash_next_noreply(void *arg)
{
	size_t *i = arg;

	for (; *i < C.nsubs; (*i)++) {
		if (C.subs[*i].state == CRASH_NOREPLY &&
		    C.subs[*i].sends == 1) {
			C.resent++;
			return ((ssize_t)(*i)++);
		}
	}
	return (-1);
}

/* The seq of a key the test made ("crash-SEQ"), or -1. */
static ssize_t
crash_key_sub(const char *key)
{
	char *end;
	long long v;

	if (key == NULL || strncmp(key, "crash-", 6) != 0) {
		return (-1);
	}
	errno = 0;
	v = strtoll(key + 6, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || (size_t)v >= C.nsubs) {
		return (-1);
	}
	return ((ssize_t)v);
}

/*
 * jobd is down: read its database directly. integrity_check must say "ok";
 * every acked submit is there once under its id; every job there is one of
 * ours; a submit without a reply that is there is noted (sent again, it
 * must give that job back). The jobs marked running are the attempts that
 * were running at the kill. With final, none may be running.
 */
static void
crash_db_check(int final)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	unsigned char *seen;
	int rc, rows = 0;

	/* Read-only: no checkpoint at close, the WAL stays as jobd left it. */
	if ((rc = sqlite3_open_v2(C.db, &db, SQLITE_OPEN_READONLY, NULL)) !=
	    SQLITE_OK) {
		fail_msg("open %s: %s", C.db, sqlite3_errstr(rc));
	}
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) !=
	    SQLITE_OK) {
		fail_msg("integrity_check: %s", sqlite3_errmsg(db));
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);

		if (rows++ > 0 || r == NULL || strcmp(r, "ok") != 0) {
			crash_violation("integrity_check: %s",
			                r != NULL ? r : "(null)");
		}
	}
	if (rc != SQLITE_DONE || rows == 0) {
		crash_violation("integrity_check did not run: %s",
		                sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);

	seen = calloc(C.nsubs + 1, 1);
	assert_non_null(seen);
	if (sqlite3_prepare_v2(db,
	                       "SELECT id, idem_key, state, attempt FROM jobs",
	                       -1, &st, NULL) != SQLITE_OK) {
		fail_msg("select jobs: %s", sqlite3_errmsg(db));
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *key = (const char *)sqlite3_column_text(st, 1);
		int state = sqlite3_column_int(st, 2);
		int64_t attempt = sqlite3_column_int64(st, 3);
		ssize_t i = crash_key_sub(key);
		struct crash_sub *s = i >= 0 ? &C.subs[i] : NULL;

		C.max_db_id = id > C.max_db_id ? id : C.max_db_id;
		if (s == NULL) {
			crash_violation("job %lld (key %s) is in the store, "
			                "but the test never submitted it",
			                (long long)id, key ? key : "(none)");
			continue;
		}
		if (seen[i]++ > 0) {
			C.duplicates++;
			crash_violation("key %s: two jobs in the store (one "
			                "is %lld)",
			                key, (long long)id);
		}
		if (s->state == CRASH_ACKED && s->id != id) {
			C.duplicates++;
			crash_violation("key %s: the reply said job %lld, the "
			                "store has job %lld",
			                key, (long long)s->id, (long long)id);
		} else if (s->state == CRASH_REFUSED) {
			crash_violation("key %s was refused (%s) but is job "
			                "%lld in the store",
			                key, s->refusal ? s->refusal : "?",
			                (long long)id);
		} else if (s->state == CRASH_NOREPLY) {
			s->db_id = id;
		} else if (s->state == CRASH_UNKNOWN) {
			crash_map_id(id, (size_t)i);
		}
		if (state == JOB_RUNNING) {
			if (final) {
				crash_violation("job %lld still running in the "
				                "store once jobd has stopped",
				                (long long)id);
				continue;
			}
			C.killed = realloc(C.killed,
			                   (C.nkilled + 1) * sizeof *C.killed);
			assert_non_null(C.killed);
			C.killed[C.nkilled++] = (struct crash_killed){
				.id = id, .attempt = attempt, .round = C.round
			};
			C.running_at_kill++;
		}
	}
	if (rc != SQLITE_DONE) {
		crash_violation("reading the jobs: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	for (size_t i = 0; i < C.nsubs; i++) {
		if (C.subs[i].state == CRASH_ACKED && !seen[i]) {
			C.missing++;
			crash_violation("key %s: accepted as job %lld, missing "
			                "from the store",
			                C.subs[i].key, (long long)C.subs[i].id);
			crash_evidence(C.subs[i].id, NULL);
		}
	}
	free(seen);
}

/* Count what jobd's log says since last time: adoptions, losses. */
static void
crash_log_scan(void)
{
	FILE *f = fopen(C.inst.log, "re");
	char *line = NULL;
	size_t cap = 0;

	if (f == NULL) {
		return;
	}
	if (fseek(f, C.log_off, SEEK_SET) == 0) {
		while (getline(&line, &cap, f) > 0) {
			C.adopted_log += strstr(line, "adopted its running "
			                              "supervisor") != NULL;
			C.recorded_log += strstr(line, "ended while jobd was "
			                               "down") != NULL;
			C.lost_log += strstr(line, ": lost\n") != NULL;
		}
		C.log_off = ftell(f);
	}
	free(line);
	fclose(f);
}

/*
 * Reap the children we did not start: supervisors a killed jobd left
 * behind, reparented to us (a subreaper). Only called when no jobctl of
 * ours runs, so jobd is the only child to leave alone. Returns how many
 * other children still run.
 */
static long
crash_reap_orphans(void)
{
	char path[300], buf[8192];
	DIR *d;
	struct dirent *de;
	long left = 0;

	if ((d = opendir("/proc/self/task")) == NULL) {
		return (0);
	}
	while ((de = readdir(d)) != NULL) {
		FILE *f;
		int pid, status;

		if (de->d_name[0] == '.') {
			continue;
		}
		snprintf(path, sizeof path, "/proc/self/task/%s/children",
		         de->d_name);
		if ((f = fopen(path, "re")) == NULL) {
			continue;
		}
		if (fgets(buf, sizeof buf, f) != NULL) {
			for (char *p = buf, *end;; p = end) {
				pid = (int)strtol(p, &end, 10);
				if (end == p) {
					break;
				}
				if (pid <= 1 || pid == C.inst.pid) {
					continue;
				}
				if (waitpid(pid, &status, WNOHANG) == pid) {
					C.orphans_reaped++;
				} else {
					left++;
				}
			}
		}
		fclose(f);
	}
	closedir(d);
	return (left);
}

/* Start jobd again and time it until it answers a ping. */
static void
crash_restart(void)
{
	int64_t t0 = harness_now_ms(), ms;
	char *err = NULL;
	int code;

	harness_restart(&C.inst);
	while ((code = harness_jobctl(&C.inst, NULL, &err, "ping", NULL)) !=
	       0) {
		if (harness_now_ms() - t0 > CRASH_PING_MS) {
			fail_msg("restarted jobd does not answer a ping "
			         "within %d ms: exit %d, %s",
			         CRASH_PING_MS, code, err);
		}
		free(err);
		err = NULL;
	}
	free(err);
	ms = harness_now_ms() - t0;
	C.recovery = realloc(C.recovery, (C.nrecovery + 1) * sizeof(int64_t));
	assert_non_null(C.recovery);
	C.recovery[C.nrecovery++] = ms;
}

/* One round: load, kill, look, restart, send again. */
static void
crash_round(void)
{
	int n = 1 + crash_pick(CRASH_MAX_SUBMITS);
	int parallel = 1 + crash_pick(CRASH_MAX_CLIENTS);
	int kill_ms = crash_pick(CRASH_KILL_MAX_MS);
	long acked = C.acked, noreply = C.noreply, running = C.running_at_kill;
	long adopted = C.adopted_log;
	size_t from = 0;

	crash_pump(parallel, harness_now_ms() + kill_ms, crash_next_new, &n);
	crash_db_check(0);
	crash_restart();
	crash_log_scan();
	(void)crash_reap_orphans();
	crash_pump(CRASH_MAX_CLIENTS, -1, crash_next_noreply, &from);
	if (crash_opts.verbose) {
		fprintf(stderr,
		        "crash: round %d: %d client(s), kill at %d ms: %ld "
		        "acked, %ld without reply, %ld running at the kill, "
		        "%ld adopted, recovery %lld ms\n",
		        C.round, parallel, kill_ms, C.acked - acked,
		        C.noreply - noreply, C.running_at_kill - running,
		        C.adopted_log - adopted,
		        (long long)C.recovery[C.nrecovery - 1]);
	} else if (C.round % 10 == 0 || C.round == crash_opts.rounds) {
		fprintf(stderr,
		        "crash: round %d/%ld: %ld acked, %ld violation(s)\n",
		        C.round, crash_opts.rounds, C.acked, C.violations);
	}
}

/* Read the ledger into each submit's counts; every line is a job of ours. */
static void
crash_ledger_read(void)
{
	FILE *f = fopen(C.ledger, "re");
	char *line = NULL, end[8];
	size_t cap = 0;
	long long id, attempt;
	int n;

	if (f == NULL) {
		if (C.acked > 0) {
			crash_violation("no ledger %s: no job ever ran",
			                C.ledger);
		}
		return;
	}
	while (getline(&line, &cap, f) > 0) {
		struct crash_sub *s;

		end[0] = '\0';
		n = sscanf(line, "%lld %lld %7s", &id, &attempt, end);
		s = crash_sub_of(id);
		if (n < 2 || (n == 3 && strcmp(end, "end") != 0) ||
		    attempt < 1 || attempt > CRASH_MAX_ATTEMPTS || s == NULL) {
			crash_violation("ledger line '%.*s': not an attempt of "
			                "a job in the store",
			                (int)strcspn(line, "\n"), line);
			continue;
		}
		s->ledger[attempt][n == 3]++;
	}
	free(line);
	fclose(f);
}

/* The jobs' objects, from status, into each submit's job. */
static void
crash_fetch_jobs(int64_t *ids, size_t n)
{
	const char **args = calloc(n + 3, sizeof *args);
	char(*num)[24] = calloc(n, sizeof *num);
	char *out, *err;
	json_t *jobs, *job;
	size_t i;
	int code;

	assert_non_null(args);
	assert_non_null(num);
	args[0] = "--json";
	args[1] = "status";
	for (i = 0; i < n; i++) {
		args[i + 2] = HARNESS_ID(num[i], ids[i]);
	}
	args[n + 2] = NULL;
	code = harness_jobctl_run(&C.inst, NULL, args, &out, &err);
	if (code != 0) {
		fail_msg("jobctl status exited %d: %s", code, err);
	}
	jobs = harness_json(out);
	if (json_is_object(jobs)) {
		jobs = json_pack("[o]", jobs);
	}
	json_array_foreach(jobs, i, job)
	{
		struct crash_sub *s = crash_sub_of(
		    json_integer_value(json_object_get(job, "id")));

		assert_non_null(s);
		json_decref(s->job);
		s->job = json_incref(job);
	}
	json_decref(jobs);
	free(out);
	free(err);
	free(args);
	free(num);
}

/* Wait (bounded) until every acked job has ended, then fetch them all. */
static void
crash_settle(void)
{
	int64_t *ids = calloc(C.nsubs + 1, sizeof *ids);
	int64_t deadline = harness_now_ms() + CRASH_END_S * 1000;
	size_t n = 0;

	assert_non_null(ids);
	for (size_t i = 0; i < C.nsubs; i++) {
		if (C.subs[i].state == CRASH_ACKED) {
			ids[n++] = C.subs[i].id;
		}
	}
	for (size_t i = 0; i < n; i += CRASH_IDS_CHUNK) {
		size_t k = n - i < CRASH_IDS_CHUNK ? n - i : CRASH_IDS_CHUNK;
		int64_t left = (deadline - harness_now_ms()) / 1000;

		/* Its code is the first job's; the states are checked next. */
		(void)harness_wait_within(&C.inst, ids + i, k,
		                          left < 1 ? 1 : (int)left);
	}
	for (size_t i = 0; i < n; i += CRASH_IDS_CHUNK) {
		crash_fetch_jobs(
		    ids + i, n - i < CRASH_IDS_CHUNK ? n - i : CRASH_IDS_CHUNK);
	}
	free(ids);
}

static const char *
crash_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return (s != NULL ? s : "");
}

/* Attempt number a of a job object, or NULL. */
static json_t *
crash_attempt(json_t *job, int64_t a)
{
	json_t *at;
	size_t i;

	json_array_foreach(json_object_get(job, "attempts"), i, at)
	{
		if (json_integer_value(json_object_get(at, "attempt")) == a) {
			return (at);
		}
	}
	return (NULL);
}

/* Lost jobs, by reason, for the summary. */
struct crash_reasons {
	char *text[16];
	long count[16];
	size_t n;
};

static void
crash_reason_add(struct crash_reasons *r, const char *text)
{
	size_t i;

	for (i = 0; i < r->n && strcmp(r->text[i], text) != 0; i++) {
		continue;
	}
	if (i == r->n) {
		if (r->n == 16) {
			return;
		}
		r->text[r->n++] = strdup(text);
	}
	r->count[i]++;
}

/*
 * One attempt a of submit s has ended as at says: an exit code must be the
 * true one, and the ledger must show the attempt ran to its end; lost needs
 * a reason. Returns 1 if it ended with its true exit code, 0 if lost.
 */
static int
crash_check_attempt(struct crash_sub *s, int64_t a, json_t *at,
                    struct crash_reasons *lost)
{
	const char *state = crash_str(at, "state");
	json_t *code = json_object_get(at, "exit_code");
	int starts = a <= CRASH_MAX_ATTEMPTS ? s->ledger[a][0] : 0;
	int ends = a <= CRASH_MAX_ATTEMPTS ? s->ledger[a][1] : 0;

	if (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0) {
		if (!json_is_integer(code) ||
		    json_integer_value(code) != s->code ||
		    !json_is_null(json_object_get(at, "signal"))) {
			crash_violation(
			    "job %lld attempt %lld: %s with exit "
			    "code %lld signal %lld, its command "
			    "exits %d",
			    (long long)s->id, (long long)a, state,
			    json_integer_value(code),
			    json_integer_value(json_object_get(at, "signal")),
			    s->code);
			crash_evidence(s->id, s->job);
		} else if (starts != 1 || ends != 1) {
			crash_violation("job %lld attempt %lld ended %s, but "
			                "the ledger has %d start(s) and %d "
			                "end(s) of it",
			                (long long)s->id, (long long)a, state,
			                starts, ends);
			crash_evidence(s->id, s->job);
		}
		return (1);
	}
	if (strcmp(state, "lost") == 0) {
		if (crash_str(at, "reason")[0] == '\0') {
			crash_violation("job %lld attempt %lld lost without a "
			                "reason",
			                (long long)s->id, (long long)a);
			crash_evidence(s->id, s->job);
		} else if (starts > 0) {
			/*
			 * Only jobd was killed, never a supervisor: once the
			 * job has started, its supervisor was there to
			 * record the outcome and a restarted jobd to adopt
			 * it. Lost is explained only for an attempt that
			 * never started (killed between commit and fork).
			 */
			crash_violation("job %lld attempt %lld lost, but it "
			                "had started (ledger: %d start, %d "
			                "end): its supervisor should have been "
			                "adopted",
			                (long long)s->id, (long long)a, starts,
			                ends);
			crash_evidence(s->id, s->job);
		}
		crash_reason_add(lost, crash_str(at, "reason"));
		return (0);
	}
	crash_violation("job %lld attempt %lld ended '%s'", (long long)s->id,
	                (long long)a, state);
	crash_evidence(s->id, s->job);
	return (0);
}

/* Every acked job has ended, as its command and the ledger say. */
static void
crash_check_jobs(struct crash_reasons *lost, long *lost_jobs,
                 long *lost_retried, long *cancelled)
{
	for (size_t i = 0; i < C.nsubs; i++) {
		struct crash_sub *s = &C.subs[i];
		json_t *job = s->job, *at;
		const char *state;
		int64_t attempt;
		size_t k;

		if (s->state == CRASH_UNKNOWN) {
			continue;
		}
		if (s->state != CRASH_ACKED) {
			for (int a = 0; a <= CRASH_MAX_ATTEMPTS; a++) {
				if (s->ledger[a][0] + s->ledger[a][1] > 0) {
					crash_violation("key %s was never "
					                "accepted, but ran",
					                s->key);
				}
			}
			continue;
		}
		if (job == NULL) {
			crash_violation("job %lld (key %s): no status",
			                (long long)s->id, s->key);
			continue;
		}
		state = crash_str(job, "state");
		attempt = json_integer_value(json_object_get(job, "attempt"));
		if (!JOB_TERMINAL(proto_state_parse(state))) {
			crash_violation("job %lld is still %s %d s after the "
			                "last restart",
			                (long long)s->id, state, CRASH_END_S);
			crash_evidence(s->id, job);
			continue;
		}
		if (json_array_size(json_object_get(job, "attempts")) !=
		    (size_t)attempt) {
			crash_violation(
			    "job %lld: attempt %lld but %zu "
			    "attempts recorded",
			    (long long)s->id, (long long)attempt,
			    json_array_size(json_object_get(job, "attempts")));
			crash_evidence(s->id, job);
		}
		for (int a = 0; a <= CRASH_MAX_ATTEMPTS; a++) {
			if (s->ledger[a][0] > 1 || s->ledger[a][1] > 1) {
				C.duplicates++;
				crash_violation("job %lld attempt %d ran %d "
				                "times",
				                (long long)s->id, a,
				                s->ledger[a][0]);
				crash_evidence(s->id, job);
			}
			if (s->ledger[a][0] + s->ledger[a][1] > 0 &&
			    a > attempt) {
				crash_violation("job %lld: the ledger has "
				                "attempt %d, the store %lld",
				                (long long)s->id, a,
				                (long long)attempt);
				crash_evidence(s->id, job);
			}
		}
		json_array_foreach(json_object_get(job, "attempts"), k, at)
		{
			int64_t a =
			    json_integer_value(json_object_get(at, "attempt"));

			if (strcmp(crash_str(at, "state"), "lost") == 0 &&
			    s->retry_lost && a == 1) {
				(*lost_retried)++;
			}
			(void)crash_check_attempt(s, a, at, lost);
		}
		if (strcmp(state, "lost") == 0) {
			(*lost_jobs)++;
		}
		if (strcmp(state, "cancelled") == 0) {
			struct crash_sub *d = crash_sub_of(s->dep);

			(*cancelled)++;
			/* Only a dependency that could not be met does it. */
			if (attempt != 0 || d == NULL || s->dep_any ||
			    strcmp(crash_str(d->job, "state"), "succeeded") ==
			        0 ||
			    strstr(crash_str(job, "reason"), "dependency") ==
			        NULL) {
				crash_violation("job %lld cancelled: '%s'",
				                (long long)s->id,
				                crash_str(job, "reason"));
				crash_evidence(s->id, job);
			}
		}
	}
}

/* Each attempt running at a kill: its true exit code, or lost. */
static void
crash_check_killed(long *attempts, long *true_code, long *lost)
{
	for (size_t i = 0; i < C.nkilled; i++) {
		struct crash_killed *k = &C.killed[i];
		struct crash_sub *s = crash_sub_of(k->id);
		json_t *at;

		/* A long job runs through several kills: count it once. */
		if (i > 0 && C.killed[i - 1].id == k->id &&
		    C.killed[i - 1].attempt == k->attempt) {
			continue;
		}
		(*attempts)++;
		if (s == NULL || s->job == NULL) {
			crash_violation("job %lld, running at the kill of "
			                "round %d, is not a job of ours",
			                (long long)k->id, k->round);
			continue;
		}
		if ((at = crash_attempt(s->job, k->attempt)) == NULL) {
			crash_violation("job %lld attempt %lld, running at "
			                "the kill of round %d, never ended",
			                (long long)k->id, (long long)k->attempt,
			                k->round);
			crash_evidence(k->id, s->job);
			continue;
		}
		if (strcmp(crash_str(at, "state"), "lost") == 0) {
			(*lost)++;
		} else {
			*true_code +=
			    strcmp(crash_str(at, "state"), "succeeded") == 0 ||
			    strcmp(crash_str(at, "state"), "failed") == 0;
		}
	}
}

/*
 * Processes that carry our tag (jobd, supervisors, jobs all inherit it):
 * none may be left once jobd is stopped and every job has ended.
 */
static long
crash_leftovers(void)
{
	size_t taglen = strlen(C.tag) + 1;
	DIR *d = opendir("/proc");
	struct dirent *de;
	long n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[300], buf[65536], cmd[256];
		pid_t pid = atoi(de->d_name);
		ssize_t len;
		int fd;

		if (pid <= 1 || pid == getpid()) {
			continue;
		}
		snprintf(path, sizeof path, "/proc/%s/environ", de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			continue;
		}
		len = read(fd, buf, sizeof buf);
		close(fd);
		if (len <= 0 ||
		    memmem(buf, (size_t)len, C.tag, taglen) == NULL) {
			continue;
		}
		snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
		cmd[0] = '\0';
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			len = read(fd, cmd, sizeof cmd - 1);
			close(fd);
			for (ssize_t i = 0; i < len - 1; i++) {
				cmd[i] = cmd[i] == '\0' ? ' ' : cmd[i];
			}
			cmd[len > 0 ? len : 0] = '\0';
		}
		crash_violation("pid %d left running after the end: %s",
		                (int)pid, cmd);
		n++;
	}
	if (d != NULL) {
		closedir(d);
	}
	return (n);
}

static int
crash_cmp_ms(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x < y ? -1 : x > y);
}

static int
crash_cmp_killed(const void *a, const void *b)
{
	const struct crash_killed *x = a, *y = b;

	if (x->id != y->id) {
		return (x->id < y->id ? -1 : 1);
	}
	return (x->attempt < y->attempt ? -1 : x->attempt > y->attempt);
}

static void
crash_test(void **state)
{
	struct crash_reasons lost = { .n = 0 };
	long lost_jobs = 0, lost_retried = 0, cancelled = 0, true_code = 0,
	     lost_at_kill = 0, at_kill = 0, left, children;
	int status;

	(void)state;
	C.started_ms = harness_now_ms();
	/* Kept if a step fails the test half-way; removed at a clean end. */
	setenv("JOBD_TEST_KEEP", "1", 1);
	/* Any seed, 0 too, gives a state xorshift can leave. */
	C.rng =
	    crash_opts.seed * 6364136223846793005ULL + 1442695040888963407ULL;
	C.rng = C.rng != 0 ? C.rng : 1;
	C.recent = calloc(CRASH_RECENT, sizeof *C.recent);
	assert_non_null(C.recent);
	/* Enough room that load does not pile up between kills. */
	harness_start(&C.inst, "--parallel", "16", NULL);
	snprintf(C.ledger, sizeof C.ledger, "%s/ledger", C.inst.dir);
	snprintf(C.db, sizeof C.db, "%s/jobd.db", C.inst.state);
	snprintf(C.tag, sizeof C.tag, CRASH_ENV_TAG "%s", C.inst.dir);
	snprintf(C.folder, sizeof C.folder, "%s", C.inst.dir);
	fprintf(stderr, "crash: %ld rounds, seed %llu, folder %s\n",
	        crash_opts.rounds, crash_opts.seed, C.inst.dir);

	for (C.round = 1; C.round <= crash_opts.rounds; C.round++) {
		crash_round();
	}

	/* The end: every job ends, then jobd stops cleanly. */
	crash_settle();
	crash_ledger_read();
	crash_check_jobs(&lost, &lost_jobs, &lost_retried, &cancelled);
	qsort(C.killed, C.nkilled, sizeof *C.killed, crash_cmp_killed);
	crash_check_killed(&at_kill, &true_code, &lost_at_kill);
	status = harness_signal(&C.inst, SIGTERM);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		crash_violation("jobd ended with status 0x%x on SIGTERM "
		                "(its log: %s)",
		                status, C.inst.log);
	}
	crash_db_check(1);
	crash_log_scan();
	(void)crash_reap_orphans();
	left = crash_leftovers();
	if (!crash_opts.keep && C.violations == 0) {
		unsetenv("JOBD_TEST_KEEP");
	}
	(void)harness_stop(&C.inst);
	C.finished = 1;
	if ((children = crash_reap_orphans()) != 0) {
		crash_violation("%ld child process(es) still running after "
		                "the end",
		                children);
	}
	qsort(C.recovery, C.nrecovery, sizeof *C.recovery, crash_cmp_ms);

	printf(
	    "crash: summary (seed %llu; replay with --seed %llu)\n"
	    "  rounds                   %d, each ended by a SIGKILL of jobd\n"
	    "  submits                  %ld sent, %ld acknowledged, %ld "
	    "refused (a dependency that can no longer be met)\n"
	    "  in flight at a kill      %ld jobctl, %ld of them without a "
	    "reply\n"
	    "  resent submits           %ld: %ld gave back the job the "
	    "store had, %ld made it, the rest refused\n"
	    "  accepted jobs missing    %ld (must be 0)\n"
	    "  duplicates               %ld (must be 0)\n"
	    "  jobctl crashes, hangs    %ld (must be 0)\n"
	    "  running at a kill        %ld attempts: %ld re-adopted or "
	    "recorded (their true exit code), %ld lost\n"
	    "  jobd log                 %ld adoptions, %ld outcomes "
	    "recorded while jobd was down, %ld attempts lost\n"
	    "  jobs lost                %ld (lost, no retry left); %ld lost "
	    "attempts retried; %ld cancelled by a dependency\n",
	    crash_opts.seed, crash_opts.seed, C.round - 1, C.sent, C.acked,
	    C.refused, C.inflight_at_kill, C.noreply, C.resent,
	    C.resent_existing, C.resent_new, C.missing, C.duplicates,
	    C.client_crashes, at_kill, true_code, lost_at_kill, C.adopted_log,
	    C.recorded_log, C.lost_log, lost_jobs, lost_retried, cancelled);
	for (size_t i = 0; i < lost.n; i++) {
		printf("    lost attempts (%ld) with the reason: %s\n",
		       lost.count[i], lost.text[i]);
		free(lost.text[i]);
	}
	printf("  recovery time            median %lld ms, max %lld ms over "
	       "%zu restarts (start to first answer)\n"
	       "  integrity_check          ok after %ld kills and at the end, "
	       "unless a violation says otherwise\n"
	       "  processes                %ld orphaned supervisors reaped; "
	       "%ld left at the end, %ld children (must be 0)\n"
	       "  violations               %ld\n"
	       "  time                     %.1f s\n",
	       C.nrecovery > 0 ? (long long)C.recovery[C.nrecovery / 2] : 0LL,
	       C.nrecovery > 0 ? (long long)C.recovery[C.nrecovery - 1] : 0LL,
	       C.nrecovery, C.kills, C.orphans_reaped, left, children,
	       C.violations, (double)(harness_now_ms() - C.started_ms) / 1000);
	fflush(stdout);
	for (size_t i = 0; i < C.nsubs; i++) {
		json_decref(C.subs[i].job);
		free(C.subs[i].refusal);
	}
	free(C.subs);
	free(C.recent);
	free(C.by_id);
	free(C.killed);
	free(C.recovery);
	if (C.violations > 0) {
		fail_msg("%ld violation(s); replay with --seed %llu",
		         C.violations, crash_opts.seed);
	}
}

/* A step failed the test half-way: say where, to replay it. */
static int
crash_teardown(void **state)
{
	(void)state;
	if (!C.finished) {
		fprintf(stderr,
		        "crash: stopped in round %d of %ld (seed %llu; replay "
		        "with --seed %llu), folder %s kept\n",
		        C.round, crash_opts.rounds, crash_opts.seed,
		        crash_opts.seed, C.folder[0] ? C.folder : "(none)");
	}
	return (0);
}

static void
crash_usage(void)
{
	fprintf(stderr, "usage: jobd_crash [--rounds N] [--seed S] [--keep] "
	                "[--verbose]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 's' },
		{ "keep", no_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(crash_test, crash_teardown),
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		errno = 0;
		switch (c) {
		case 'r':
			crash_opts.rounds = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' ||
			    crash_opts.rounds < 1) {
				crash_usage();
			}
			break;
		case 's':
			crash_opts.seed = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || *optarg == '-') {
				crash_usage();
			}
			crash_opts.seed_given = 1;
			break;
		case 'k':
			crash_opts.keep = 1;
			break;
		case 'v':
			crash_opts.verbose = 1;
			break;
		default:
			crash_usage();
		}
	}
	if (optind != argc) {
		crash_usage();
	}
	if (!crash_opts.seed_given) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		crash_opts.seed = ((unsigned long long)ts.tv_sec * 1000003ULL) ^
		                  (unsigned long long)ts.tv_nsec ^
		                  ((unsigned long long)getpid() << 32);
	}
	/* A killed jobd's supervisors become our children: we reap them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		fprintf(stderr, "jobd_crash: PR_SET_CHILD_SUBREAPER: %s\n",
		        strerror(errno));
		return (1);
	}
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
