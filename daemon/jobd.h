/*
 * jobd's internal header: the structures shared by the daemon's modules,
 * then one prototype section per file (tmux style).
 *
 * Threading: every function here runs on the libevent loop thread. nng runs
 * its own I/O threads inside ipc.c; none of our code runs on them.
 */
#ifndef JOBD_H
#define JOBD_H

#include <sys/queue.h>
#include <sys/types.h>
#include <limits.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "log.h"
#include "outcome.h"
#include "proto.h"
#include "util.h"

#define JOBD_BATCH_MAX      256   /* requests drained per receive callback */
#define JOBD_KILL_AFTER_MS  10000 /* SIGKILL this long after a cancel signal */
#define JOBD_SPAWN_RETRY_MS 1000  /* back-off after fork fails */

struct jobd_config {
	char socket_url[PATH_MAX + 8];
	char state_dir[PATH_MAX];
	char supervisor[PATH_MAX];
	int parallel;
	int ready_fd;
	int verbose;
};
extern struct jobd_config jobd_conf;

/* A job as read from, or written to, the store. Strings are owned. */
struct job {
	int64_t id;
	int state;
	char *name;
	char **argv; /* NULL-terminated; NULL for a shell job */
	char *shell; /* NULL for an argv job */
	char *cwd;
	char **env; /* NULL-terminated */
	char *key;
	int64_t uid, gid, pid;
	int64_t priority;
	int64_t attempt;
	int has_exit;
	int exit_code;
	int signal;
	char *reason;
	int64_t submitted_at, started_at, finished_at; /* 0: not yet */
	int64_t sup_pid;
	int cancel_requested;
};

/*
 * One request from a client. It lives from receipt until its reply is sent:
 * in the batch waiting for the commit, or parked on a job.
 */
struct request {
	void *msg; /* the nng message; its header routes the reply */
	int op;
	json_t *req;
	json_t *reply; /* set when answered; sent after the commit */
	uint64_t uid, gid, pid;
	int64_t park_job;    /* job it is parked on, or 0 */
	int64_t deadline;    /* monotonic ms: answer by then */
	int expired;         /* the park deadline passed */
	struct event *timer; /* fires at the deadline while parked */
	TAILQ_ENTRY(request) entry;
};
TAILQ_HEAD(request_list, request);

enum cmd_result {
	CMD_DONE, /* r->reply is set */
	CMD_PARK, /* the handler parked r with dispatch_park() */
};
typedef enum cmd_result (*cmd_exec_fn)(struct request *);

/* server.c */
extern const char *jobd_instance; /* boot id, start time, pid */
extern struct event_base *server_base;
extern int server_stopping;
void server_init(void);
void server_loop(void);
void server_wake(void);

/* ipc.c (the only nng user) */
int ipc_listen(const char *, int);
void ipc_close(void);
void ipc_send(struct request *);
void ipc_request_body(struct request *, const void **, size_t *);
void ipc_request_free(struct request *);

/* dispatch.c */
void dispatch_request(struct request *);
void dispatch_reply(struct request *, json_t *);
void dispatch_error(struct request *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));
void dispatch_park(struct request *, int64_t, int64_t);
void dispatch_job_changed(int64_t, int);
void dispatch_flush(int);
void dispatch_shutdown(void);
int dispatch_job_get(struct request *, int64_t, struct job *);
json_t *dispatch_job_json(const struct job *);

/* cmd-*.c */
enum cmd_result cmd_submit_exec(struct request *);
enum cmd_result cmd_status_exec(struct request *);
enum cmd_result cmd_list_exec(struct request *);
enum cmd_result cmd_logs_exec(struct request *);
enum cmd_result cmd_wait_exec(struct request *);
enum cmd_result cmd_cancel_exec(struct request *);
enum cmd_result cmd_ping_exec(struct request *);
enum cmd_result cmd_version_exec(struct request *);
void cmd_logs_job_ended(int64_t);
void cmd_logs_fini(void);

/* queue.c (the only sqlite user) */
int queue_open(const char *);
void queue_close(void);
int queue_begin(void);
int queue_commit(void);
void queue_rollback(void);
int queue_in_txn(void);
void job_clear(struct job *);
int queue_job_insert(struct job *);
int queue_job_find_key(int64_t, const char *, int64_t *);
int queue_job_get(int64_t, struct job *);
int queue_job_list(int, int64_t, int, void (*)(struct job *, void *), void *);
int queue_job_next(int64_t *, int);
int queue_job_claim(int64_t, struct job *);
int queue_job_unclaim(int64_t);
int queue_job_started(int64_t, int64_t, const char *);
int queue_job_finish(const struct job *);
int queue_job_cancel(int64_t, int, int64_t);
int queue_job_running(void (*)(struct job *, void *), void *);

/* sched.c */
void sched_init(void);
void sched_kick(void);
void sched_run(void);
void sched_fini(void);

/* worker.c (the only fork/exec user) */
void worker_init(void);
void worker_recover(void);
int worker_spawn(const struct job *);
int worker_count(void);
int worker_cancel(int64_t, int);
void worker_reap(void);
void worker_after_commit(void);
void worker_commit_failed(void);
void worker_fini(void);

#endif
