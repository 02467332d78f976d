/* Shared fixture code for the unit tests; see fixture.h. */
#include <sys/stat.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

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
