/*
 * jobd: the job-queue daemon. Parses the command line, takes the state
 * folder's lock (one jobd per folder), opens the store, settles the jobs an
 * earlier jobd left running, listens, says it is ready, and runs the loop.
 */
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd.h"

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: jobd [--socket URL] [--state-dir DIR] [--parallel N]\n"
	    "            [--retention-age DURATION] [--retention-count N]\n"
	    "            [--ready-fd FD] [--supervisor PATH] [-v]\n"
	    "            [-h | --help] [--version]\n"
	    "\n"
	    "  --socket URL       where to listen: an ipc:// URL or a path\n"
	    "                     (root: %s; a user:\n"
	    "                     $XDG_RUNTIME_DIR/jobd/jobd.sock)\n"
	    "  --state-dir DIR    the store and job output (root:\n"
	    "                     /var/lib/jobd; a user: $XDG_STATE_HOME/jobd\n"
	    "                     or ~/.local/state/jobd)\n"
	    "  --parallel N       most jobs running at once (default: the\n"
	    "                     number of CPUs)\n"
	    "  --retention-age DURATION\n"
	    "                     purge ended jobs and their output this long\n"
	    "                     after they ended (default 7d; 0: never)\n"
	    "  --retention-count N\n"
	    "                     keep at most N ended jobs, purging the\n"
	    "                     oldest (default 100000; 0: no limit)\n"
	    "  --ready-fd FD      write \"ready\\n\" to FD once listening\n"
	    "  --supervisor PATH  the jobd-supervisor program (default:\n"
	    "                     beside jobd, then %s)\n"
	    "  -v, --verbose      log debug messages\n"
	    "\n"
	    "jobd runs in the foreground and logs to stderr. SIGTERM or\n"
	    "SIGINT stop it; running jobs go on under their supervisors,\n"
	    "and the next jobd adopts them. To stop after the running jobs\n"
	    "end, or with them: jobctl shutdown --drain | --stop-jobs.\n",
	    UTIL_SYSTEM_SOCKET, JOBD_LIBEXECDIR "/jobd-supervisor");
}

static void
main_options(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "parallel", required_argument, NULL, 'j' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "retention-age", required_argument, NULL, 'A' },
		{ "retention-count", required_argument, NULL, 'C' },
		{ "supervisor", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char sock[sizeof jobd_conf.socket_url];
	long long n;
	int c;

	if (util_default_paths(sock, sizeof sock, jobd_conf.state_dir,
	                       sizeof jobd_conf.state_dir) != 0)
		fatalx("cannot work out the default paths (is HOME set?)");
	snprintf(jobd_conf.socket_url, sizeof jobd_conf.socket_url, "%s", sock);
	jobd_conf.parallel = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (jobd_conf.parallel < 1)
		jobd_conf.parallel = 1;
	jobd_conf.ready_fd = -1;
	jobd_conf.retention_age_ms = 7 * PROTO_DAY_MS;
	jobd_conf.retention_count = 100000;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (util_socket_url(optarg, jobd_conf.socket_url,
			                    sizeof jobd_conf.socket_url) != 0)
				goto bad;
			break;
		case 'd':
			if (*optarg == '\0' ||
			    strlen(optarg) >= sizeof jobd_conf.state_dir - 32)
				goto bad;
			snprintf(jobd_conf.state_dir,
			         sizeof jobd_conf.state_dir, "%s", optarg);
			break;
		case 'j':
			if (util_parse_int(optarg, 1, 100000, &n) != 0)
				goto bad;
			jobd_conf.parallel = (int)n;
			break;
		case 'r':
			if (util_parse_int(optarg, 0, INT32_MAX, &n) != 0)
				goto bad;
			jobd_conf.ready_fd = (int)n;
			break;
		case 'A':
			if (util_parse_duration_ms(optarg, &n) != 0)
				goto bad;
			jobd_conf.retention_age_ms = n;
			break;
		case 'C':
			if (util_parse_int(optarg, 0, INT64_MAX, &n) != 0)
				goto bad;
			jobd_conf.retention_count = n;
			break;
		case 'S':
			snprintf(jobd_conf.supervisor,
			         sizeof jobd_conf.supervisor, "%s", optarg);
			break;
		case 'v':
			jobd_conf.verbose = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("jobd %s\n", JOBD_VERSION);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "jobd: unexpected argument '%s'\n",
		        argv[optind]);
		exit(2);
	}
	if (jobd_conf.socket_url[0] == '\0' || jobd_conf.state_dir[0] == '\0')
		fatalx("cannot work out the default paths (is HOME set?); "
		       "give --socket and --state-dir");
	return;
bad:
	fprintf(stderr, "jobd: invalid value '%s' for --%s\n", optarg,
	        c == 's'   ? "socket (an ipc:// URL or a path)"
	        : c == 'j' ? "parallel (a number from 1 to 100000)"
	        : c == 'r' ? "ready-fd"
	        : c == 'A' ? "retention-age (a duration: 7d, 12h, 0)"
	        : c == 'C' ? "retention-count (a number, 0 for no limit)"
	                   : "state-dir");
	exit(2);
}

/* The supervisor program: --supervisor, else beside jobd, else libexec. */
static void
main_find_supervisor(void)
{
	char self[PATH_MAX];
	ssize_t n;

	if (jobd_conf.supervisor[0] != '\0')
		goto check;
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		snprintf(jobd_conf.supervisor, sizeof jobd_conf.supervisor,
		         "%s/jobd-supervisor", dirname(self));
		if (access(jobd_conf.supervisor, X_OK) == 0)
			return;
	}
	snprintf(jobd_conf.supervisor, sizeof jobd_conf.supervisor, "%s",
	         JOBD_LIBEXECDIR "/jobd-supervisor");
check:
	if (access(jobd_conf.supervisor, X_OK) != 0)
		fatal("cannot run the supervisor %s", jobd_conf.supervisor);
}

/* Make the state folder and take its lock: one jobd per state folder. */
static void
main_lock_state(void)
{
	char path[PATH_MAX + 32], pid[32];
	int fd;

	if (util_mkdir_p(jobd_conf.state_dir, 0700) != 0)
		fatal("cannot create the state folder %s", jobd_conf.state_dir);
	snprintf(path, sizeof path, "%s/jobd.lock", jobd_conf.state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		fatal("cannot open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK)
			fatal("cannot lock %s", path);
		memset(pid, 0, sizeof pid);
		if (read(fd, pid, sizeof pid - 1) > 0)
			pid[strcspn(pid, "\n")] = '\0';
		fatalx("another jobd (pid %s) is using the state folder %s",
		       pid[0] != '\0' ? pid : "unknown", jobd_conf.state_dir);
	}
	snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || write(fd, pid, strlen(pid)) < 0)
		fatal("cannot write %s", path);
	/* The descriptor stays open, and locked, until jobd exits. */
	snprintf(path, sizeof path, "%s/run", jobd_conf.state_dir);
	if (util_mkdir_p(path, 0700) != 0)
		fatal("cannot create %s", path);
	snprintf(path, sizeof path, "%s/out", jobd_conf.state_dir);
	if (util_mkdir_p(path, 0700) != 0)
		fatal("cannot create %s", path);
}

/* This daemon's instance: the boot id and the start time. */
static void
main_instance(void)
{
	char boot[64] = "unknown";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	if (f != NULL) {
		if (fgets(boot, sizeof boot, f) != NULL)
			boot[strcspn(boot, "\n")] = '\0';
		fclose(f);
	}
	jobd_instance = xasprintf("%s/%lld/%ld", boot, (long long)util_now_ms(),
	                          (long)getpid());
}

/*
 * Raise the soft limit on descriptors to the hard one: each adopted
 * supervisor costs a pidfd, each client a socket. Jobs get the usual soft
 * limit back from their supervisor.
 */
static void
main_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit RLIMIT_NOFILE");
	}
}

/* Tell systemd (Type=notify) something, if it is listening. */
static void
main_notify(const char *msg)
{
	static char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *p;
	size_t len;
	int fd;

	if (path[0] == '\0') {
		if ((p = getenv("NOTIFY_SOCKET")) == NULL || *p == '\0' ||
		    (*p != '/' && *p != '@') || strlen(p) >= sizeof path)
			return;
		snprintf(path, sizeof path, "%s", p);
		unsetenv("NOTIFY_SOCKET"); /* jobs must not inherit it */
	}
	len = strlen(path);
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) <
	    0)
		log_warn("sd_notify");
	close(fd);
}

/* Create the socket's folder; private unless jobd serves every user. */
static void
main_socket_dir(void)
{
	char *dir = xstrdup(jobd_conf.socket_url + strlen("ipc://"));

	if (util_mkdir_p(dirname(dir), geteuid() == 0 ? 0755 : 0700) != 0)
		fatal("cannot create the socket folder %s", dir);
	free(dir);
}

int
main(int argc, char **argv)
{
	char db[PATH_MAX + 16];

	log_init("jobd", 0);
	main_options(argc, argv);
	log_init("jobd", jobd_conf.verbose);
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit makes a write fail (EFBIG), not kill jobd. */
	signal(SIGXFSZ, SIG_IGN);
	main_nofile();
	main_find_supervisor();
	main_lock_state();
	main_instance();

	snprintf(db, sizeof db, "%s/jobd.db", jobd_conf.state_dir);
	if (queue_open(db) != 0)
		fatalx("cannot use the database %s (see above); it was left "
		       "as it is",
		       db);

	/* Blocks the signals before nng starts its threads. */
	server_init();
	worker_init();
	worker_recover();
	sched_init();

	main_socket_dir();
	if (ipc_listen(jobd_conf.socket_url, geteuid() == 0 ? 0666 : 0600) != 0)
		exit(1);
	log_info("jobd %s listening on %s, state in %s, %d parallel",
	         JOBD_VERSION, jobd_conf.socket_url, jobd_conf.state_dir,
	         jobd_conf.parallel);
	if (jobd_conf.ready_fd >= 0) {
		if (write(jobd_conf.ready_fd, "ready\n", 6) != 6)
			log_warn("ready-fd %d", jobd_conf.ready_fd);
		close(jobd_conf.ready_fd);
	}
	main_notify("READY=1");

	server_loop();

	main_notify("STOPPING=1");
	ipc_close();
	sched_fini();
	worker_fini();
	cmd_logs_fini();
	queue_close();
	event_base_free(server_base);
	log_info("stopped");
	return (0);
}
