/*
 * OpenBSD-style logging: one line per call to stderr, prefixed with the
 * process name given to log_init().  Reads no configuration.
 * Secrets (keys, K1, Prv, CK) must never be passed to these functions.
 */
#ifndef QROAM_LOG_H
#define QROAM_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* name is copied ("tspd[tsp-a]"); verbose 0 = info, 1+ = debug. */
void	log_init(const char *name, int verbose);
void	log_setname(const char *name);
void	log_setverbose(int verbose);
int	log_getverbose(void);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Allocation helpers that end the process on failure (start-up/config only). */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);

#endif
