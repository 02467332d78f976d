/*
 * jobctl's internal header, one section per file. jobctl turns its command
 * line into one request (sometimes a short series: logs, wait), sends it to
 * jobd over the connection in ctl-conn.c, prints the reply and exits with one
 * of the codes below, which `jobctl --help` lists.
 */
#ifndef JOBD_CTL_H
#define JOBD_CTL_H

#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include <jansson.h>

#include "proto.h"

/* Exit codes. */
#define CTL_EXIT_OK          0
#define CTL_EXIT_ERROR       1   /* jobd refused, or a local failure */
#define CTL_EXIT_USAGE       2   /* a bad command line */
#define CTL_EXIT_UNAVAILABLE 69  /* jobd unreachable, or no reply */
#define CTL_EXIT_PROTOCOL    70  /* a reply that makes no sense */
#define CTL_EXIT_TIMEOUT     124 /* wait --timeout passed first */

/*
 * How long to wait for a reply: a plain one, one jobd may park, and a
 * backup's (jobd answers once the copy is written).
 */
#define CTL_RECV_MS        30000
#define CTL_RECV_PARK_MS   (PROTO_MAX_PARK_MS + 10000)
#define CTL_RECV_BACKUP_MS (10 * 60 * 1000)

/*
 * wait and logs --follow try to reach jobd again for this long when it goes
 * away (JOBCTL_RECONNECT_S, in seconds, changes it; at most CTL_RECONNECT_MAX
 * seconds), pausing between tries from the first to the last backoff.
 */
#define CTL_RECONNECT_S      60
#define CTL_RECONNECT_MAX    86400
#define CTL_BACKOFF_FIRST_MS 50
#define CTL_BACKOFF_LAST_MS  1000

/* The longest --key with --stdin, whose requests after the first add ".N". */
#define CTL_BATCH_KEY_MAX 240

/* Not an exit code: try again (ctl_conn_request with CTL_CONN_RESUME). */
#define CTL_AGAIN (-1)

/* Room for an nng URL: "ipc://" and a path. */
#define CTL_URL_MAX (PATH_MAX + 8)

struct ctl_conn;

/* One run of jobctl. */
struct ctl_ctx {
	const char *socket;    /* --socket, or NULL */
	int json;              /* --json */
	int op;                /* the command, an index into proto_ops */
	struct ctl_conn *conn; /* made by the first request */
	/* For requests that reconnect (ctl_call_resume): */
	int64_t reconnect_ms; /* how long to try, from the first failure */
	int64_t outage_end;   /* while jobd is away: when to stop; else 0 */
	int backoff_ms;       /* the next pause */
	int last_try;         /* the next try is the last, reported */
};

/* jobctl.c */
void ctl_usage_command(FILE *, int, int);
int ctl_usage_error(int, const char *, ...)
    __attribute__((format(printf, 2, 3)));
int ctl_socket_url(const char *, char *, size_t);

/* ctl-conn.c */
#define CTL_CONN_RESUME                                                        \
	0x1 /* ctl_conn_request: return CTL_AGAIN on a restart */
struct ctl_conn *ctl_conn_new(const char *);
int ctl_conn_request(struct ctl_conn *, const char *, size_t, int, int,
                     json_t **);
void ctl_conn_close(struct ctl_conn *);

/* ctl-cmds.c */

/* A command line after option parsing. */
struct ctl_args {
	const char *opts[UCHAR_MAX + 1]; /* each option's value; "" if a flag */
	int count[UCHAR_MAX + 1];        /* how many times each was given */
	int help;                        /* --help */
	int dashdash;                    /* "--" ended the options */
	int argc;                        /* the arguments left */
	char **argv;
};

/*
 * One command. optstring is getopt's (NULL for none; a leading "+" stops
 * at the first argument). Each long option maps to a character, its index
 * in opts, that need not be in optstring. Every command also takes --help
 * and --json.
 */
struct ctl_cmd {
	const char *optstring;
	const struct option *longopts; /* ends with a NULL name; or NULL */
	int minargs;                   /* positional arguments */
	int maxargs;                   /* -1: no limit */
	int (*exec)(struct ctl_ctx *, struct ctl_args *);
	const char *options; /* --help: one line per option, or NULL */
	const char *notes;   /* --help: what it prints, exit codes; or NULL */
};

extern const struct ctl_cmd *const ctl_cmds[PROTO_OP_MAX];

int ctl_cmd_run(struct ctl_ctx *, int, char **);

/* output.c */
void output_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void output_json(json_t *);
void output_json_line(json_t *);
char *output_command(json_t *);
void output_job(json_t *);
void output_jobs(json_t *);
void output_queues(json_t *);
char *output_utf8(const void *, size_t, int, size_t *, size_t *);

#endif
