/*
 * Logging in the OpenBSD shape: one line per call on stderr, with a
 * timestamp and the process name, so journald or a terminal takes it as is.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static char	log_name[64] = "qroam";
static int	log_verbose;

void
log_init(const char *name, int verbose)
{
	log_setname(name);
	log_verbose = verbose;
}

void
log_setname(const char *name)
{
	snprintf(log_name, sizeof(log_name), "%s", name);
}

void
log_setverbose(int verbose)
{
	log_verbose = verbose;
}

int
log_getverbose(void)
{
	return log_verbose;
}

/* Write one line: "HH:MM:SS.mmm name: [level] message[: error]". */
static void
log_vline(const char *level, int err, const char *fmt, va_list ap)
{
	char		 msg[1024], ts[32];
	struct timespec	 now;
	struct tm	 tm;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	if (err)
		fprintf(stderr, "%s.%03ld %s: %s%s: %s\n", ts, now.tv_nsec / 1000000,
		    log_name, level, msg, strerror(err));
	else
		fprintf(stderr, "%s.%03ld %s: %s%s\n", ts, now.tv_nsec / 1000000,
		    log_name, level, msg);
	fflush(stderr);
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	log_vline("warning: ", saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vline("warning: ", 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vline("", 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	log_vline("debug: ", 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	log_vline("fatal: ", saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vline("fatal: ", 0, fmt, ap);
	va_end(ap);
	exit(1);
}

void *
xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n ? n : 1)) == NULL)
		fatal("malloc %zu", n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n ? n : 1, size ? size : 1)) == NULL)
		fatal("calloc %zu*%zu", n, size);
	return p;
}

void *
xreallocarray(void *ptr, size_t n, size_t size)
{
	void	*p;

	if ((p = reallocarray(ptr, n ? n : 1, size ? size : 1)) == NULL)
		fatal("reallocarray %zu*%zu", n, size);
	return p;
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}
