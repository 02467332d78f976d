/*
 * bench-stamp FIFO: the job of the submit-to-start benchmark. First thing in
 * main it reads CLOCK_MONOTONIC, then writes that time in nanoseconds and a
 * newline to FIFO, where bench-cli --stamp waits for it. It is dynamically
 * linked like any real job, so the loader's work before main counts as part
 * of the start, as it would for any program.
 *
 * The FIFO is opened without blocking: bench-cli holds it open for reading
 * for as long as it runs, and a job whose reader has gone should fail, not
 * hang in a queue.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct timespec ts;
	char line[32];
	int fd, n;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (argc != 2) {
		fprintf(stderr, "usage: bench-stamp FIFO\n");
		return (2);
	}
	n = snprintf(line, sizeof line, "%lld\n",
	             (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	if ((fd = open(argv[1], O_WRONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		perror(argv[1]);
		return (1);
	}
	/* One write of fewer than PIPE_BUF bytes: never split. */
	if (write(fd, line, (size_t)n) != n) {
		perror(argv[1]);
		return (1);
	}
	close(fd);
	return (0);
}
