/*
 * jobctl's main: the global options, the command looked up by name in the
 * operations table, the usage text generated from that table, and where
 * jobd's socket is. Nothing here talks to jobd; ctl-cmds.c runs the command.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "util.h"

static const char jobctl_synopsis[] =
    "usage: jobctl [--socket URL] [--json] [--help] [--version] COMMAND "
    "[ARGS]\n";

static const char jobctl_options[] =
    "options:\n"
    "  --socket URL  jobd's socket: an ipc:// URL or a path (default:\n"
    "                $JOBD_SOCKET, else the socket of this user's jobd,\n"
    "                else " UTIL_SYSTEM_SOCKET ")\n"
    "  --json        print replies as JSON\n"
    "  --help        print this help (COMMAND --help: the command's)\n"
    "  --version     print jobctl's version\n";

static const char jobctl_exits[] =
    "exit codes:\n"
    "  0    success\n"
    "  1    jobd refused the request (it says why), or jobctl failed\n"
    "  2    usage error\n"
    "  69   jobd is unreachable, or did not answer in time\n"
    "  70   jobd's reply made no sense (protocol error)\n"
    "  wait: the job's exit code; 128+N if signal N killed it; 1 if it\n"
    "  ended cancelled, failed or lost without either; 124 if --timeout\n"
    "  passed first (jobctl wait --help)\n";

static const char jobctl_env[] =
    "environment:\n"
    "  JOBD_SOCKET         jobd's socket, if --socket is not given\n"
    "  JOBCTL_RECONNECT_S  how long wait and logs --follow try to reach\n"
    "                      jobd again when it restarts, in seconds\n"
    "                      (default 60; 0: not at all)\n";

static void
jobctl_usage_short(FILE *f)
{
	fprintf(f, "%srun 'jobctl --help' for the commands\n", jobctl_synopsis);
}

static void
jobctl_usage(FILE *f)
{
	fputs(jobctl_synopsis, f);
	fputs("\ncommands:\n", f);
	for (int op = 0; op < PROTO_OP_MAX; op++) {
		fprintf(f, "  %s", proto_ops[op].name);
		if (*proto_ops[op].usage != '\0')
			fprintf(f, " %s", proto_ops[op].usage);
		fprintf(f, "\n      %s\n", proto_ops[op].summary);
	}
	fprintf(f, "\n%s\n%s\n%s", jobctl_options, jobctl_env, jobctl_exits);
}

/*
 * Print the usage of command op; with full set, also its summary and its
 * options, for COMMAND --help.
 */
void
ctl_usage_command(FILE *f, int op, int full)
{
	const struct proto_op_info *info = &proto_ops[op];
	const struct ctl_cmd *cmd = ctl_cmds[op];

	fprintf(f, "usage: jobctl %s%s%s\n", info->name,
	        *info->usage != '\0' ? " " : "", info->usage);
	if (!full)
		return;
	fprintf(f, "%s\n\noptions:\n", info->summary);
	if (cmd->options != NULL)
		fputs(cmd->options, f);
	fputs("  --json              print the reply as JSON\n"
	      "  --help              print this help\n",
	      f);
	if (cmd->notes != NULL)
		fprintf(f, "\n%s", cmd->notes);
}

/*
 * Report a bad command line (op is the command, or -1 before there is one)
 * with the usage to stderr. Returns CTL_EXIT_USAGE.
 */
int
ctl_usage_error(int op, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("jobctl: ", stderr);
	if (op >= 0)
		fprintf(stderr, "%s: ", proto_ops[op].name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (op >= 0)
		ctl_usage_command(stderr, op, 0);
	else
		jobctl_usage_short(stderr);
	return (CTL_EXIT_USAGE);
}

/*
 * The URL of jobd's socket into url: arg (--socket), else $JOBD_SOCKET, else
 * this user's default. A user without a socket of their own falls back to
 * the system jobd's. Returns 0, or says why and returns an exit code.
 */
int
ctl_socket_url(const char *arg, char *url, size_t len)
{
	const char *what = "--socket", *path;
	char state[PATH_MAX];

	if (arg == NULL && (arg = getenv("JOBD_SOCKET")) != NULL) {
		what = "JOBD_SOCKET";
		if (*arg == '\0')
			arg = NULL;
	}
	if (arg != NULL) {
		if (util_socket_url(arg, url, len) == 0)
			return (CTL_EXIT_OK);
		return (ctl_usage_error(
		    -1, "%s: '%s' is not an ipc:// URL or a socket path", what,
		    arg));
	}
	if (util_default_paths(url, len, state, sizeof state) != 0) {
		output_error(
		    "cannot tell where jobd's socket is; use --socket");
		return (CTL_EXIT_UNAVAILABLE);
	}
	path = url + strlen("ipc://");
	if (geteuid() != 0 && access(path, F_OK) != 0 &&
	    access(UTIL_SYSTEM_SOCKET, F_OK) == 0)
		snprintf(url, len, "ipc://%s", UTIL_SYSTEM_SOCKET);
	return (CTL_EXIT_OK);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_ctx ctx;
	int ch, rv;

	log_init("jobctl", 0);
	/*
	 * jansson seeds its hash function from /dev/urandom on first use,
	 * against crafted keys flooding a hash table: a guard for a server.
	 * jobctl parses one reply from jobd and exits; it skips the read.
	 */
	json_object_seed(1);
	memset(&ctx, 0, sizeof ctx);
	/* getopt's own messages then read "jobctl: ...". */
	argv[0] = (char *)"jobctl";
	/* "+": the first word that is not an option is the command. */
	while ((ch = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			ctx.socket = optarg;
			break;
		case 'j':
			ctx.json = 1;
			break;
		case 'h':
			jobctl_usage(stdout);
			return (CTL_EXIT_OK);
		case 'V':
			printf("jobctl %s\n", JOBD_VERSION);
			return (CTL_EXIT_OK);
		default:
			jobctl_usage_short(stderr);
			return (CTL_EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return (ctl_usage_error(-1, "missing command"));
	if ((ctx.op = proto_op_lookup(argv[0])) < 0)
		return (ctl_usage_error(-1, "unknown command '%s'", argv[0]));

	rv = ctl_cmd_run(&ctx, argc, argv);
	if (ctx.conn != NULL)
		ctl_conn_close(ctx.conn);
	if ((fflush(stdout) != 0 || ferror(stdout)) && rv == CTL_EXIT_OK) {
		output_error("cannot write to stdout: %s", strerror(errno));
		rv = CTL_EXIT_ERROR;
	}
	return (rv);
}
