/*
 * Shared fixture code for the unit tests: a fresh temporary folder per test,
 * removed with everything in it afterwards.
 */
#ifndef JOBD_TEST_FIXTURE_H
#define JOBD_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Make a fresh folder /tmp/jobd-test-<name>.XXXXXX and write its path to buf
 * (len bytes). Returns 0, or -1 if the path does not fit or mkdtemp fails.
 */
int fixture_mkdtemp(char *buf, size_t len, const char *name);

/*
 * As fixture_mkdtemp, then make the run/ and out/ folders of a state folder
 * in it (mode 0700). On failure the folder made is removed again.
 */
int fixture_mkstate(char *buf, size_t len, const char *name);

/* Remove dir and everything under it; symbolic links are not followed. */
int fixture_rmtree(const char *dir);

/* The state of job id in the open store, or -1 if there is no such job. */
int fixture_job_state(int64_t id);

struct job;

/*
 * Fill j as a minimal job of the current user, as submit would make it:
 * queued, /bin/true in /, an empty env, queue q (NULL: the default queue),
 * priority, and the defaults of the scheduling fields. Not inserted; the
 * caller may change any field first and owns what j holds.
 */
void fixture_job_init(struct job *j, const char *q, int64_t priority);

/*
 * Insert j (in the open transaction, or a new one) and commit; j->id is
 * set. Returns the id, or -1 if the store refused it (rolled back).
 */
int64_t fixture_job_insert(struct job *j);

#endif
