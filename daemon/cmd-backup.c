/*
 * backup: a consistent copy of the database, taken while jobd runs. The
 * copy goes to a new file beside the one asked for, a few hundred pages per
 * loop turn (the loop never stalls on it), is synced, and only then gets
 * its name; jobd never overwrites a file. One backup at a time; its request
 * waits for the end.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd.h"

#define CMD_BACKUP_PAGES 256 /* pages copied per loop turn */

static struct {
	struct request *r; /* the request of the backup running, or NULL */
	char *path;        /* its file */
	char *tmp;         /* the file being written */
	struct event *ev;  /* the next step */
} cmd_bk;

static void
cmd_backup_end(void)
{
	queue_backup_end();
	if (cmd_bk.tmp != NULL)
		unlink(cmd_bk.tmp);
	free(cmd_bk.tmp);
	free(cmd_bk.path);
	if (cmd_bk.ev != NULL)
		event_free(cmd_bk.ev);
	memset(&cmd_bk, 0, sizeof cmd_bk);
}

/* fsync path (a file or a folder); returns 0 or -1 with errno set. */
static int
cmd_backup_sync(const char *path, int flags)
{
	int fd, rv, saved;

	if ((fd = open(path, flags | O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	rv = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return (rv);
}

/* The copy is complete: sync it, name it, answer. */
static void
cmd_backup_done(void)
{
	struct request *r = cmd_bk.r;
	char *dir = xstrdup(cmd_bk.path);
	struct stat sb;

	queue_backup_end();
	if (cmd_backup_sync(cmd_bk.tmp, 0) == -1 ||
	    renameat2(AT_FDCWD, cmd_bk.tmp, AT_FDCWD, cmd_bk.path,
	              RENAME_NOREPLACE) == -1 ||
	    stat(cmd_bk.path, &sb) == -1)
		dispatch_error(r, PROTO_ESTATE, "cannot write %s: %s",
		               cmd_bk.path, strerror(errno));
	else {
		free(cmd_bk.tmp);
		cmd_bk.tmp = NULL; /* it has its name now */
		if (cmd_backup_sync(dirname(dir), O_DIRECTORY) == -1)
			log_warn("fsync the folder of %s", cmd_bk.path);
		log_info("backup written to %s (%lld bytes)", cmd_bk.path,
		         (long long)sb.st_size);
		dispatch_reply(r, json_pack("{s:b, s:s, s:I}", "ok", 1, "path",
		                            cmd_bk.path, "bytes",
		                            (json_int_t)sb.st_size));
	}
	free(dir);
	cmd_backup_end();
}

static void
cmd_backup_step_cb(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval now = { 0, 0 };
	char err[256];

	(void)fd;
	(void)what;
	(void)arg;
	switch (queue_backup_step(CMD_BACKUP_PAGES, err, sizeof err)) {
	case 1:
		evtimer_add(cmd_bk.ev, &now);
		return;
	case 0:
		cmd_backup_done();
		break;
	default:
		dispatch_error(cmd_bk.r, PROTO_ESTATE, "cannot copy to %s: %s",
		               cmd_bk.path, err);
		cmd_backup_end();
		break;
	}
	server_wake();
}

enum cmd_result
cmd_backup_exec(struct request *r)
{
	static const struct timeval now = { 0, 0 };
	const char *path = json_string_value(json_object_get(r->req, "path"));
	char err[256];
	struct stat sb;
	int fd;

	if (path[0] != '/') {
		dispatch_error(r, PROTO_EBADMSG,
		               "the backup's path must be absolute: %s", path);
		return (CMD_DONE);
	}
	if (cmd_bk.r != NULL) {
		dispatch_error(r, PROTO_ESTATE, "a backup to %s is running",
		               cmd_bk.path);
		return (CMD_DONE);
	}
	if (lstat(path, &sb) == 0) {
		dispatch_error(r, PROTO_ESTATE,
		               "%s exists; jobd does not overwrite files",
		               path);
		return (CMD_DONE);
	}
	if (errno != ENOENT) {
		dispatch_error(r, PROTO_ESTATE, "cannot write %s: %s", path,
		               strerror(errno));
		return (CMD_DONE);
	}
	cmd_bk.tmp = xasprintf("%s.XXXXXX", path);
	if ((fd = mkostemp(cmd_bk.tmp, O_CLOEXEC)) == -1) {
		dispatch_error(r, PROTO_ESTATE, "cannot create %s: %s",
		               cmd_bk.tmp, strerror(errno));
		free(cmd_bk.tmp);
		cmd_bk.tmp = NULL;
		return (CMD_DONE);
	}
	close(fd);
	if (queue_backup_begin(cmd_bk.tmp, err, sizeof err) != 0) {
		dispatch_error(r, PROTO_ESTATE, "cannot write %s: %s",
		               cmd_bk.tmp, err);
		cmd_backup_end();
		return (CMD_DONE);
	}
	cmd_bk.r = r;
	cmd_bk.path = xstrdup(path);
	cmd_bk.ev = evtimer_new(server_base, cmd_backup_step_cb, NULL);
	evtimer_add(cmd_bk.ev, &now);
	log_info("backup to %s asked by uid %llu", path,
	         (unsigned long long)r->uid);
	return (CMD_PARK);
}

/* jobd stops: a backup still running is abandoned, and its request told. */
void
cmd_backup_fini(void)
{
	if (cmd_bk.r == NULL)
		return;
	dispatch_error(cmd_bk.r, PROTO_ESHUTDOWN,
	               "jobd is stopping; the backup to %s was abandoned",
	               cmd_bk.path);
	cmd_backup_end();
}
