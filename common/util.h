/*
 * Small helpers shared by jobd, jobd-supervisor and jobctl: allocation that
 * never returns NULL, number/duration/time parsing and formatting, default
 * paths, base64. Parsers return 0 or -1 and write their result only on
 * success.
 */
#ifndef JOBD_UTIL_H
#define JOBD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
char *xstrdup(const char *);
char *xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

int util_parse_int(const char *, long long, long long, long long *);
int util_parse_duration_ms(const char *, long long *);

/* A duration as util_parse_duration_ms reads it: "1h30m", "500ms", "0s". */
#define UTIL_DURATION_LEN 48
void util_duration_format(int64_t, char *, size_t);

int64_t util_now_ms(void);  /* wall clock, for display */
int64_t util_mono_ms(void); /* monotonic, for durations */

/*
 * A time given by a person, into ms since the epoch: RFC 3339
 * ("2026-11-28T09:00:00Z", "2026-11-28 09:00:00.5+01:00"; a fraction is cut
 * to ms; second 60 is the next second), or "HH:MM" / "HH:MM:SS" in local
 * time. util_parse_time takes the first such local time after now_ms (today
 * if it is still ahead, else tomorrow); util_parse_time_past the last one at
 * or before now_ms. A local time the clocks skip comes out as mktime moves
 * it (an hour on). Nothing may follow; fields out of range are refused.
 * Returns 0, or -1 (and *out_ms is left alone).
 */
int util_parse_time(const char *, int64_t, int64_t *);
int util_parse_time_past(const char *, int64_t, int64_t *);

/* RFC 3339 UTC with milliseconds: "2026-11-27T19:30:00.123Z" (25 bytes). */
#define UTIL_TIME_LEN 32
void util_time_format(int64_t, char *, size_t);

/*
 * Turn a --socket argument (an ipc:// URL or a plain path) into an nng URL.
 * Returns -1 for other schemes or a path too long for a Unix socket.
 */
int util_socket_url(const char *, char *, size_t);

/*
 * The default socket URL and state folder for this uid (DESIGN.md): as root
 * /run/jobd/jobd.sock and /var/lib/jobd; otherwise $XDG_RUNTIME_DIR/jobd/
 * (or, without XDG_RUNTIME_DIR, jobd.sock in the state folder) and
 * $XDG_STATE_HOME/jobd (or ~/.local/state/jobd).
 */
#define UTIL_SYSTEM_SOCKET "/run/jobd/jobd.sock"
int util_default_paths(char *, size_t, char *, size_t);

int util_mkdir_p(const char *, mode_t);

/* NUL-separated strings <-> NULL-terminated arrays of copies. */
char **util_strv_split(const char *, size_t);
void util_strv_free(char **);

/* base64 (RFC 4648). Encode returns a NUL-terminated string to free. */
char *util_base64_encode(const void *, size_t);
int util_base64_decode(const char *, void **, size_t *);

#endif
