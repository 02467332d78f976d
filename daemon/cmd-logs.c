/*
 * logs: a chunk of a job's stdout or stderr file from an offset. With
 * follow, a request that finds nothing new on a job still going is parked
 * until the file grows (inotify), the job changes, or the park deadline.
 * Watches exist only for running jobs with a follower, and go when the job
 * ends.
 */
#include <sys/inotify.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd.h"

/* Recheck this soon if the output file does not exist yet. */
#define CMD_LOGS_RECHECK_MS 100

struct cmd_logs_watch {
	int wd;
	int64_t id;
	LIST_ENTRY(cmd_logs_watch) entry;
};
static LIST_HEAD(, cmd_logs_watch)
    cmd_logs_watches = LIST_HEAD_INITIALIZER(cmd_logs_watches);
static int cmd_logs_fd = -1;
static struct event *cmd_logs_ev;

static void
cmd_logs_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	struct cmd_logs_watch *w;
	ssize_t n;

	(void)what;
	(void)arg;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n; p += sizeof *ev + ev->len) {
			ev = (const struct inotify_event *)p;
			LIST_FOREACH(w, &cmd_logs_watches, entry)
			if (w->wd == ev->wd) {
				dispatch_job_changed(w->id, 1);
				break;
			}
		}
	}
	server_wake();
}

/* Watch a running job's output file. Returns -1 if it cannot (yet). */
static int
cmd_logs_watch(int64_t id, const char *path)
{
	struct cmd_logs_watch *w;
	int wd;

	if (cmd_logs_fd == -1) {
		cmd_logs_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (cmd_logs_fd == -1) {
			log_warn("inotify_init1");
			return (-1);
		}
		cmd_logs_ev =
		    event_new(server_base, cmd_logs_fd, EV_READ | EV_PERSIST,
		              cmd_logs_inotify_cb, NULL);
		event_add(cmd_logs_ev, NULL);
	}
	if ((wd = inotify_add_watch(cmd_logs_fd, path, IN_MODIFY)) == -1)
		return (-1);
	LIST_FOREACH(w, &cmd_logs_watches, entry)
	if (w->wd == wd)
		return (0);
	w = xcalloc(1, sizeof *w);
	w->wd = wd;
	w->id = id;
	LIST_INSERT_HEAD(&cmd_logs_watches, w, entry);
	return (0);
}

/* Job id has ended: drop its watches. */
void
cmd_logs_job_ended(int64_t id)
{
	struct cmd_logs_watch *w, *next;

	for (w = LIST_FIRST(&cmd_logs_watches); w != NULL; w = next) {
		next = LIST_NEXT(w, entry);
		if (w->id != id)
			continue;
		inotify_rm_watch(cmd_logs_fd, w->wd);
		LIST_REMOVE(w, entry);
		free(w);
	}
}

void
cmd_logs_fini(void)
{
	struct cmd_logs_watch *w;

	while ((w = LIST_FIRST(&cmd_logs_watches)) != NULL) {
		LIST_REMOVE(w, entry);
		free(w);
	}
	if (cmd_logs_ev != NULL)
		event_free(cmd_logs_ev);
	if (cmd_logs_fd != -1)
		close(cmd_logs_fd);
	cmd_logs_ev = NULL;
	cmd_logs_fd = -1;
}

/*
 * Read at most PROTO_LOG_CHUNK bytes of path from offset into buf. Returns
 * the count (0 if the file does not exist) and the file's size, or -1.
 */
static ssize_t
cmd_logs_read(const char *path, int64_t offset, char *buf, int64_t *sizep)
{
	struct stat sb;
	ssize_t n;
	int fd;

	*sizep = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return (errno == ENOENT ? 0 : -1);
	if (fstat(fd, &sb) == 0)
		*sizep = sb.st_size;
	n = pread(fd, buf, PROTO_LOG_CHUNK, offset);
	close(fd);
	return (n);
}

enum cmd_result
cmd_logs_exec(struct request *r)
{
	json_t *v;
	const char *stream = "stdout";
	char path[PATH_MAX], *buf = NULL, *b64;
	int64_t id, offset = 0, size;
	int follow = 0, ended, state, watched = 0;
	ssize_t n;
	struct job j;

	id = json_integer_value(json_object_get(r->req, "id"));
	if ((v = json_object_get(r->req, "stream")) != NULL)
		stream = json_string_value(v);
	if (strcmp(stream, "stdout") != 0 && strcmp(stream, "stderr") != 0) {
		dispatch_error(
		    r, PROTO_EBADMSG,
		    "field 'stream': expected \"stdout\" or \"stderr\"");
		return (CMD_DONE);
	}
	if ((v = json_object_get(r->req, "offset")) != NULL)
		offset = json_integer_value(v);
	follow = json_is_true(json_object_get(r->req, "follow"));
	if (dispatch_job_get(r, id, &j) != 0)
		return (CMD_DONE);
	state = j.state;
	ended = JOB_TERMINAL(state);
	outcome_path(path, sizeof path, jobd_conf.state_dir, id,
	             stream[3] == 'o' ? OUTCOME_STDOUT : OUTCOME_STDERR);
	/* Watch before reading, so no write falls between the two. */
	if (follow && state == JOB_RUNNING)
		watched = cmd_logs_watch(id, path) == 0;
	job_clear(&j);

	buf = xmalloc(PROTO_LOG_CHUNK);
	if ((n = cmd_logs_read(path, offset, buf, &size)) < 0) {
		dispatch_error(r, PROTO_EINTERNAL, "cannot read %s: %s", path,
		               strerror(errno));
		goto out;
	}
	if (n == 0 && follow && !ended && !r->expired) {
		free(buf);
		dispatch_park(r, id, util_mono_ms() + PROTO_MAX_PARK_MS);
		/* Started, but its file is not made yet: look again soon. */
		if (state == JOB_RUNNING && !watched &&
		    r->deadline > util_mono_ms() + CMD_LOGS_RECHECK_MS) {
			struct timeval tv = { 0, CMD_LOGS_RECHECK_MS * 1000 };
			evtimer_add(r->timer, &tv);
		}
		return (CMD_PARK);
	}
	b64 = util_base64_encode(buf, (size_t)n);
	dispatch_reply(r,
	               json_pack("{s:b, s:s, s:I, s:b, s:s}", "ok", 1, "data",
	                         b64, "offset", (json_int_t)(offset + n), "eof",
	                         ended && offset + n >= size, "state",
	                         proto_state_name(state)));
	free(b64);
out:
	free(buf);
	return (CMD_DONE);
}
