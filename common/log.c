/* Logging to stderr; see log.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *log_prog = "jobd";
static int log_verbose;

void
log_init(const char *prog, int verbose)
{
	log_prog = prog;
	log_verbose = verbose;
}

static void
log_vwrite(const char *level, int with_errno, const char *fmt, va_list ap)
{
	char msg[1024];
	int saved = errno;

	vsnprintf(msg, sizeof msg, fmt, ap);
	if (with_errno)
		fprintf(stderr, "%s: %s%s: %s\n", log_prog, level, msg,
		        strerror(saved));
	else
		fprintf(stderr, "%s: %s%s\n", log_prog, level, msg);
	errno = saved;
}

#define LOG_BODY(level, with_errno)                                            \
	do {                                                                   \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		log_vwrite(level, with_errno, fmt, ap);                        \
		va_end(ap);                                                    \
	} while (0)

void
log_warn(const char *fmt, ...)
{
	LOG_BODY("warning: ", 1);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY("warning: ", 0);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY("", 0);
}

void
log_debug(const char *fmt, ...)
{
	if (log_verbose)
		LOG_BODY("debug: ", 0);
}

void
fatal(const char *fmt, ...)
{
	LOG_BODY("", 1);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY("", 0);
	exit(1);
}
