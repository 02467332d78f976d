/*
 * The jobd wire protocol, shared by jobd and jobctl: the operations table,
 * the checks every request passes before a handler runs, error codes, job
 * states and signal names. Messages are JSON objects (docs/protocol.md).
 * Bump PROTO_VERSION on any incompatible change.
 */
#ifndef JOBD_PROTO_H
#define JOBD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define PROTO_VERSION        1
#define PROTO_MAX_MSG        (1024 * 1024) /* largest request jobd accepts */
#define PROTO_MAX_IDS        1000          /* ids in one status/wait/cancel */
#define PROTO_MAX_ARGS       4096          /* argv or env entries */
#define PROTO_MAX_LIST       10000         /* largest list --limit */
#define PROTO_LOG_CHUNK      (256 * 1024)  /* most output bytes in one reply */
#define PROTO_MAX_PARK_MS    30000 /* a parked request is answered by then */
#define PROTO_PRIO_MIN       -1000000
#define PROTO_PRIO_MAX       1000000
#define PROTO_QUEUE_NAME_MAX 64
#define PROTO_MAX_QUEUES     1000 /* queues one jobd keeps */
#define PROTO_QUEUE_NAME_RULE                                                  \
	"a queue name is 1 to 64 letters, digits, '.', '_' or '-', starting "  \
	"with a letter or a digit"
#define PROTO_DEFAULT_QUEUE   "default"
#define PROTO_MAX_ARRAY       1000    /* tasks in one array */
#define PROTO_MAX_EXPANDED    10000   /* jobs one request's ids stand for */
#define PROTO_MAX_BATCH       10000   /* commands in one submit's shells */
#define PROTO_MAX_DEP_ROWS    10000   /* dependencies x tasks of one submit */
#define PROTO_ARRAY_INDEX_MAX 1000000 /* largest array index */
#define PROTO_MAX_RETRIES     1000
#define PROTO_MAX_PARALLEL    100000
#define PROTO_DAY_MS          86400000LL
#define PROTO_DURATION_MAX    (1LL << 53)       /* ms; exact in a double */
#define PROTO_TIME_MAX        253402300799999LL /* 9999-12-31, in ms */
#define PROTO_KILL_AFTER_MS   10000 /* SIGTERM to SIGKILL, by default */
#define PROTO_RETRY_DELAY_MS  1000  /* first retry's delay, by default */
#define PROTO_PURGE_BATCH     1000  /* jobs purged per request */

/* Operation flags. */
#define OPF_READ  0x1
#define OPF_WRITE 0x2 /* changes the store: its reply waits for the commit */
#define OPF_ADMIN 0x4 /* root or the daemon's own uid only */
#define OPF_PARK  0x8 /* may be answered later */

enum proto_op {
#define X(ident, name, flags, usage, summary) PROTO_OP_##ident,
#include "proto-ops.def"
#undef X
	PROTO_OP_MAX
};

enum proto_type {
	PROTO_T_INT,
	PROTO_T_BOOL,
	PROTO_T_STRING,
	PROTO_T_INTS,    /* array of integers */
	PROTO_T_STRINGS, /* array of strings */
};

/*
 * One field of a request. For integers min/max bound the value; for strings
 * the length in bytes; for arrays the number of elements.
 */
struct proto_field {
	const char *name;
	enum proto_type type;
	int required;
	long long min, max;
};

struct proto_op_info {
	const char *name;
	int flags;
	const char *usage;
	const char *summary;
	const struct proto_field *fields; /* ends with a NULL name */
};

extern const struct proto_op_info proto_ops[PROTO_OP_MAX];

/* Error codes carried in replies; names are stable (docs/protocol.md). */
enum proto_status {
	PROTO_OK,
	PROTO_EBADMSG,   /* bad_request: not JSON, wrong shape or types */
	PROTO_EVERSION,  /* bad_version */
	PROTO_EUNKNOWN,  /* unknown_op */
	PROTO_ENOTFOUND, /* not_found */
	PROTO_EDENIED,   /* denied */
	PROTO_ESTATE,    /* invalid_state: e.g. cancel of a finished job */
	PROTO_ESTORAGE,  /* storage: the store could not commit */
	PROTO_ESHUTDOWN, /* shutting_down */
	PROTO_EINTERNAL, /* internal */
	PROTO_STATUS_MAX
};

const char *proto_status_name(int);

/* Job states, in the order the store keeps them (terminal ones last). */
enum job_state {
	JOB_BLOCKED,
	JOB_SCHEDULED,
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_SUCCEEDED,
	JOB_FAILED,
	JOB_CANCELLED,
	JOB_LOST,
	JOB_STATE_MAX
};
#define JOB_TERMINAL(s) ((s) >= JOB_SUCCEEDED)

const char *proto_state_name(int);
int proto_state_parse(const char *);

int proto_op_lookup(const char *);
int proto_queue_name_ok(const char *);
const char *proto_signal_name(int);
int proto_signal_parse(const char *);

/*
 * Decode and check one request: valid JSON object, "v" equal to
 * PROTO_VERSION, a known "op", and every field as the table says (no unknown
 * fields). On success returns PROTO_OK and sets *reqp (the caller owns it) and
 * *opp. On failure returns the status and writes a message into err.
 */
int proto_request_decode(const void *, size_t, json_t **, int *, char *,
                         size_t);

/* A new request object for op, with "v" and "op" set. */
json_t *proto_request_new(int);

/*
 * A JSON string of text that may not be valid UTF-8 (a file's bytes, a
 * client's bytes cut short): bytes outside ASCII become '?' if need be.
 * NULL gives JSON null.
 */
json_t *proto_text(const char *);

/* Replies: {"ok":true} and {"ok":false,"error":CODE,"message":TEXT}. */
json_t *proto_reply_ok(void);
json_t *proto_reply_error(int, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Check a reply from jobd. Returns PROTO_OK if it says ok, the error status
 * it carries (its message in msg), or PROTO_EBADMSG if it is malformed.
 */
int proto_reply_status(json_t *, char *, size_t);

/*
 * The framing under the JSON: nng's SP protocol over ipc://, which jobd's
 * REP socket speaks through nng and jobctl by hand (docs/protocol.md, "On
 * the wire"). Each side first sends a greeting of PROTO_SP_HELLO bytes
 * naming its protocol; a request is then PROTO_SP_HEAD bytes (type 1, the
 * 64-bit big-endian length of what follows, a 32-bit request id with its
 * top bit set), then the JSON. A reply starts with the same request id.
 */
#define PROTO_SP_HELLO 8
#define PROTO_SP_FRAME 9                    /* type 1, 64-bit length */
#define PROTO_SP_HEAD  (PROTO_SP_FRAME + 4) /* and the request id */
#define PROTO_SP_REQ   0x0030               /* nng's REQ v0 */
#define PROTO_SP_REP   0x0031               /* nng's REP v0 */
void proto_sp_hello(unsigned char *, unsigned);
int proto_sp_hello_ok(const unsigned char *, unsigned);
void proto_sp_head(unsigned char *, size_t, uint32_t);

#endif
