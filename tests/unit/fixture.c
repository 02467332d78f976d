/* Shared fixture code for the unit tests; see fixture.h. */
#include <sys/stat.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd.h"
#include "fixture.h"

int
fixture_mkdtemp(char *buf, size_t len, const char *name)
{
	int n;

	n = snprintf(buf, len, "/tmp/jobd-test-%s.XXXXXX", name);
	if (n < 0 || (size_t)n >= len)
		return (-1);
	if (mkdtemp(buf) == NULL)
		return (-1);
	return (0);
}

int
fixture_mkstate(char *buf, size_t len, const char *name)
{
	static const char *const sub[] = { "run", "out" };
	char path[PATH_MAX];

	if (fixture_mkdtemp(buf, len, name) == -1)
		return (-1);
	for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", buf, sub[i]);
		if (mkdir(path, 0700) == -1) {
			fixture_rmtree(buf);
			return (-1);
		}
	}
	return (0);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return (remove(path));
}

int
fixture_rmtree(const char *dir)
{
	return (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS));
}

int
fixture_job_state(int64_t id)
{
	struct job j;
	int s;

	if (queue_job_get(id, &j) != 0)
		return (-1);
	s = j.state;
	job_clear(&j);
	return (s);
}

void
fixture_job_init(struct job *j, const char *q, int64_t priority)
{
	memset(j, 0, sizeof *j);
	j->state = JOB_QUEUED;
	j->argv = xcalloc(2, sizeof *j->argv);
	j->argv[0] = xstrdup("/bin/true");
	j->cwd = xstrdup("/");
	j->env = xcalloc(1, sizeof *j->env);
	j->uid = geteuid();
	j->gid = getegid();
	j->pid = getpid();
	j->priority = priority;
	j->submitted_at = util_now_ms();
	j->queue = xstrdup(q != NULL ? q : PROTO_DEFAULT_QUEUE);
	j->kill_after_ms = PROTO_KILL_AFTER_MS;
	j->retry_delay_ms = PROTO_RETRY_DELAY_MS;
}

int64_t
fixture_job_insert(struct job *j)
{
	if (queue_begin() != 0)
		return (-1);
	if (queue_job_insert(j) != 0) {
		queue_rollback();
		return (-1);
	}
	if (queue_commit() != 0)
		return (-1);
	return (j->id);
}
