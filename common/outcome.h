/*
 * A job's outcome file and the paths of a job's files in the state folder.
 * The supervisor writes the outcome atomically (temporary file, fsync,
 * rename, fsync of the folder) when the job ends; jobd reads it when the
 * supervisor exits, or at start-up for jobs an older jobd started.
 *
 *   STATE/run/ID.run     the supervisor's run file: holds its pid, locked
 *                        (flock) while the supervisor lives
 *   STATE/run/ID.status  the outcome
 *   STATE/out/ID.out     the job's stdout
 *   STATE/out/ID.err     the job's stderr
 */
#ifndef JOBD_OUTCOME_H
#define JOBD_OUTCOME_H

#include <stddef.h>
#include <stdint.h>

enum outcome_file {
	OUTCOME_RUN,
	OUTCOME_STATUS,
	OUTCOME_STDOUT,
	OUTCOME_STDERR,
};

struct outcome {
	int exit_code;       /* -1 if the job did not exit normally */
	int signal;          /* the signal that killed the job, or 0 */
	int64_t started_at;  /* wall clock, ms since the epoch */
	int64_t finished_at; /* wall clock, ms since the epoch */
	char reason[256];    /* why it failed when the code does not say */
};

/*
 * Writes STATE/<folder>/ID.<ext> into buf. Returns 0, or -1 if it does not
 * fit (ENAMETOOLONG) or id is negative (EINVAL).
 */
int outcome_path(char *, size_t, const char *, int64_t, enum outcome_file);

/*
 * Write the outcome of job id atomically: ID.status.tmp, fsync, rename to
 * ID.status, fsync of the run folder. Newlines in the reason become spaces.
 * Returns 0 or -1 (errno set; EINVAL for an outcome outcome_read would
 * refuse); on failure no temporary file is left behind.
 */
int outcome_write(const char *, int64_t, const struct outcome *);

/*
 * Read the outcome of job id. Returns 0, or -1 if there is none (ENOENT),
 * it does not parse or is over 64 KiB (EINVAL), or it cannot be read (the
 * errno of open or read); *o is written only on success. Valid means: the
 * keys signal, started_at and finished_at present, and an exit code >= 0,
 * a signal > 0 or a reason (not both a code and a signal).
 */
int outcome_read(const char *, int64_t, struct outcome *);

#endif
