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

#define JOBD_BATCH_MAX      256  /* requests drained per receive callback */
#define JOBD_SPAWN_RETRY_MS 1000 /* back-off after fork fails */

struct jobd_config {
	char socket_url[PATH_MAX + 8];
	char state_dir[PATH_MAX];
	char supervisor[PATH_MAX];
	int parallel;
	int64_t retention_age_ms; /* purge ended jobs this old; 0: never */
	int64_t retention_count;  /* keep at most this many; 0: no limit */
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
	char *instance; /* the jobd that started it: boot id/start ms/pid */
	/* Scheduling (docs/scheduling.md). */
	char *queue;
	int held;
	int64_t run_at;       /* wall ms; 0: none */
	int64_t deps_pending; /* unmet dependencies, + 1 while array_wait */
	int array_wait;     /* 1: an array task waiting for a slot of its array;
	                       2: retried by hand, it runs outside the throttle */
	int64_t timeout_ms; /* 0: none */
	int64_t kill_after_ms;
	int64_t retries; /* automatic retries allowed */
	int64_t retry_delay_ms;
	int retry_on_lost;
	int64_t retry_base; /* the attempt before the current series */
	int64_t array_id, array_index, array_limit; /* 0: not an array task */
};

/* A dependency's type: which ends of the dependency let the job start. */
enum dep_type {
	DEP_OK,   /* succeeded */
	DEP_ANY,  /* any end */
	DEP_FAIL, /* any end but succeeded */
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

/* Job states as a mask for dispatch_jobs_check(). */
#define CMD_WAITING (1 << JOB_BLOCKED | 1 << JOB_SCHEDULED | 1 << JOB_QUEUED)
#define CMD_ANY     (~0)
#define CMD_ENDED                                                              \
	(1 << JOB_SUCCEEDED | 1 << JOB_FAILED | 1 << JOB_CANCELLED |           \
	 1 << JOB_LOST)

enum cmd_result {
	CMD_DONE, /* r->reply is set */
	CMD_PARK, /* the handler parked r with dispatch_park() */
};
typedef enum cmd_result (*cmd_exec_fn)(struct request *);

/* server.c */
extern const char *jobd_instance; /* boot id, start time, pid */
extern struct event_base *server_base;
extern int server_stopping;
enum server_drain_mode { SERVER_DRAIN = 1, SERVER_STOP_JOBS, SERVER_STOP_NOW };
extern int server_draining; /* 0 or enum server_drain_mode */
void server_init(void);
void server_stop(const char *);
const char *server_mode_name(int);
int server_shutdown(int);
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
json_t *dispatch_expand(struct request *, json_t *, int);
int dispatch_expand_ids(struct request *, int);
json_t *dispatch_jobs_detail(struct request *);
int dispatch_jobs_check(struct request *, int);
enum cmd_result dispatch_each_job(struct request *, int,
                                  int (*)(struct request *, int64_t));
json_t *dispatch_job_json(const struct job *);
json_t *dispatch_job_detail(const struct job *);

/* cmd-*.c */
enum cmd_result cmd_submit_exec(struct request *);
enum cmd_result cmd_status_exec(struct request *);
enum cmd_result cmd_list_exec(struct request *);
enum cmd_result cmd_logs_exec(struct request *);
enum cmd_result cmd_wait_exec(struct request *);
enum cmd_result cmd_cancel_exec(struct request *);
enum cmd_result cmd_set_exec(struct request *);
enum cmd_result cmd_hold_exec(struct request *);
enum cmd_result cmd_release_exec(struct request *);
enum cmd_result cmd_retry_exec(struct request *);
enum cmd_result cmd_queue_exec(struct request *);
int cmd_queue_room(struct request *, const char *);
enum cmd_result cmd_purge_exec(struct request *);
enum cmd_result cmd_shutdown_exec(struct request *);
enum cmd_result cmd_backup_exec(struct request *);
void cmd_backup_fini(void);
enum cmd_result cmd_ping_exec(struct request *);
enum cmd_result cmd_version_exec(struct request *);
void cmd_logs_job_ended(int64_t);
void cmd_logs_fini(void);

/* queue.c (the only sqlite user) */
struct job_filter {
	int state;         /* or -1 */
	int64_t uid;       /* or -1 */
	const char *queue; /* or NULL */
	const char *name;  /* a glob, or NULL */
	int64_t since;     /* submitted at or after (wall ms), or 0 */
	int limit;
};
extern int64_t (*queue_env_hash)(const void *, size_t); /* tests replace it */
int queue_open(const char *);
void queue_close(void);
int queue_begin(void);
int queue_commit(void);
void queue_rollback(void);
int queue_savepoint(void);
int queue_release(void);
int queue_rollback_to(void);
int queue_in_txn(void);
int queue_backup_begin(const char *, char *, size_t);
int queue_backup_step(int, char *, size_t);
void queue_backup_end(void);
void job_clear(struct job *);
int queue_job_insert(struct job *);
int queue_job_find_key(int64_t, const char *, int64_t *);
int queue_job_get(int64_t, struct job *);
int queue_job_list(const struct job_filter *, void (*)(struct job *, void *),
                   void *);
int queue_job_next(const char *, int64_t *, int64_t *);
int queue_job_claim(int64_t, struct job *);
int queue_job_unclaim(int64_t);
int queue_job_finish(const struct job *);
int queue_job_cancel(int64_t, int, int64_t, const char *);
int queue_job_running(void (*)(struct job *, void *), void *);
int queue_queue_list(const char *, void (*)(const char *, int64_t, int, void *),
                     void *);
int queue_queue_set(const char *, int64_t, int);
int queue_queue_room(const char *, int64_t);
int queue_dep_add(int64_t, int64_t, int, int);
int queue_deps(int64_t, void (*)(int64_t, int, void *), void *);
int queue_dependents(int64_t, int64_t *, int *, int);
int queue_dep_met(int64_t, int64_t, int64_t);
int queue_array_slot(int64_t, int64_t, int64_t *, int *);
int queue_array_tasks(int64_t, int, int64_t *, int);
int64_t queue_array_holders(int64_t);
int64_t queue_reserve_id(void);
int64_t queue_last_id(void);
int queue_attempt_add(const struct job *);
int queue_attempts(int64_t, void (*)(const struct job *, void *), void *);
int queue_job_requeue(int64_t, int, int64_t, const char *, int);
int queue_job_set_priority(int64_t, int64_t);
int queue_job_set_held(int64_t, int);
int queue_next_run_at(int64_t *);
int queue_jobs_due(int64_t, int64_t *, int);
int queue_shift_retries(int64_t);
int queue_purge(int64_t, int, int64_t, int64_t *, int);
int queue_finished_nth(int64_t, int64_t *);

/* sched.c */
void sched_init(void);
void sched_kick(void);
void sched_times_changed(void);
void sched_claim_next(void);
void sched_start_claimed(int);
int sched_dep_ok(int, int);
int sched_holds_slot(const struct job *);
int sched_job_done(int64_t, int, int64_t, int);
int sched_attempt_ended(struct job *);
int64_t sched_retry_delay(int64_t, int64_t, uint32_t);
void sched_purged_add(const int64_t *, int);
void sched_after_commit(int);
void sched_fini(void);

/* worker.c (the only fork/exec user) */
void worker_init(void);
void worker_recover(void);
int worker_files_pending(int64_t);
int worker_spawn(const struct job *);
int worker_count(void);
int worker_settled(void);
int worker_count_queue(const char *);
int worker_cancel(int64_t, int);
int worker_cancel_all(const char *);
void worker_reap(void);
void worker_after_commit(void);
void worker_commit_failed(void);
void worker_fini(void);

#endif
