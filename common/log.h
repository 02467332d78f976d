/*
 * Logging to stderr (the journal, under systemd), OpenBSD style: log_warn
 * adds strerror(errno), log_warnx does not; fatal/fatalx log and exit(1).
 * Every function preserves errno.
 */
#ifndef JOBD_LOG_H
#define JOBD_LOG_H

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(const char *, int);
void log_warn(const char *, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *, ...) LOG_PRINTF(1, 2);
void log_info(const char *, ...) LOG_PRINTF(1, 2);
void log_debug(const char *, ...) LOG_PRINTF(1, 2);
__attribute__((noreturn)) void fatal(const char *, ...) LOG_PRINTF(1, 2);
__attribute__((noreturn)) void fatalx(const char *, ...) LOG_PRINTF(1, 2);

#endif
