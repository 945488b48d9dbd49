/*
 * What every qroam daemon's main() shares: the command line
 * (-f CONFIG, -n, -d, -v) and signal handling on the event loop.
 */
#ifndef QROAM_DAEMON_H
#define QROAM_DAEMON_H

#include <event2/event.h>

struct daemon_opts {
	const char	*do_config;
	int		 do_check;	/* -n: check the configuration and exit */
	int		 do_verbose;	/* -d / -v */
};

/* Parse argv; prints usage and exits 1 on a bad command line. */
void	daemon_getopt(int argc, char **argv, const char *default_config,
	    struct daemon_opts *);

struct daemon_signals;

/*
 * SIGTERM and SIGINT call on_stop, SIGHUP on_reload (may be NULL: ignored),
 * SIGUSR1 on_usr1 (may be NULL: ignored); SIGPIPE is ignored.
 */
struct daemon_signals *daemon_signals_new(struct event_base *,
	    void (*on_stop)(void *), void (*on_reload)(void *),
	    void (*on_usr1)(void *), void *arg);
void	daemon_signals_free(struct daemon_signals *);

#endif
