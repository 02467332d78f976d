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
	int fd;            /* tmp, to start its writeback as it grows */
	struct event *ev;  /* the next step */
} cmd_bk = { .fd = -1 };

static void
cmd_backup_end(void)
{
	queue_backup_end();
	if (cmd_bk.tmp != NULL)
		unlink(cmd_bk.tmp);
	free(cmd_bk.tmp);
	free(cmd_bk.path);
	if (cmd_bk.fd != -1)
		close(cmd_bk.fd);
	if (cmd_bk.ev != NULL)
		event_free(cmd_bk.ev);
	memset(&cmd_bk, 0, sizeof cmd_bk);
	cmd_bk.fd = -1;
}

/*
 * Give tmp the name path, unless path exists by now. RENAME_NOREPLACE is
 * not on every file system; link + unlink refuses to replace as well.
 */
static int
cmd_backup_rename(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return (0);
	if (errno != EINVAL || link(tmp, path) == -1)
		return (-1);
	unlink(tmp);
	return (0);
}

/* fsync folder dir, so that a new name in it lasts; returns 0 or -1. */
static int
cmd_backup_sync_dir(const char *dir)
{
	int fd, rv;

	if ((fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	rv = fsync(fd);
	close(fd);
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
	if (fsync(cmd_bk.fd) == -1 ||
	    cmd_backup_rename(cmd_bk.tmp, cmd_bk.path) == -1 ||
	    stat(cmd_bk.path, &sb) == -1)
		dispatch_error(r, PROTO_ESTATE, "cannot write %s: %s",
		               cmd_bk.path, strerror(errno));
	else {
		free(cmd_bk.tmp);
		cmd_bk.tmp = NULL; /* it has its name now */
		if (cmd_backup_sync_dir(dirname(dir)) == -1)
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
		/* Write back as it goes, so that the last fsync is short. */
		sync_file_range(cmd_bk.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
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
	if ((cmd_bk.fd = mkostemp(cmd_bk.tmp, O_CLOEXEC)) == -1) {
		dispatch_error(r, PROTO_ESTATE, "cannot create %s: %s",
		               cmd_bk.tmp, strerror(errno));
		free(cmd_bk.tmp);
		cmd_bk.tmp = NULL;
		return (CMD_DONE);
	}
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
