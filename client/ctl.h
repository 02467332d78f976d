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

/* How long to wait for a reply: a plain one, and one jobd may park. */
#define CTL_RECV_MS      30000
#define CTL_RECV_PARK_MS (PROTO_MAX_PARK_MS + 10000)

/* Room for an nng URL: "ipc://" and a path. */
#define CTL_URL_MAX (PATH_MAX + 8)

struct ctl_conn;

/* One run of jobctl. */
struct ctl_ctx {
	const char *socket;    /* --socket, or NULL */
	int json;              /* --json */
	int op;                /* the command, an index into proto_ops */
	struct ctl_conn *conn; /* dialled by the first request */
};

/* jobctl.c */
void ctl_usage_command(FILE *, int, int);
int ctl_usage_error(int, const char *, ...)
    __attribute__((format(printf, 2, 3)));
int ctl_socket_url(const char *, char *, size_t);

/* ctl-conn.c */
int ctl_conn_open(const char *, struct ctl_conn **);
int ctl_conn_request(struct ctl_conn *, const char *, size_t, int, json_t **);
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
