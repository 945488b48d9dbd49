/*
 * What every qroam daemon's main() shares: the command line
 * (-f CONFIG, -n, -d, -v) and signal handling on the event loop.
 */
#ifndef QROAM_DAEMON_H
#define QROAM_DAEMON_H

#include <event2/event.h>
#include <openssl/ssl.h>

#include "admin.h"
#include "conf.h"

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
 * SIGUSR1 on_usr1 (may be NULL: ignored); SIGPIPE is ignored.  The service
 * manager hears of it (notify.h): STOPPING=1 before on_stop, RELOADING=1
 * and READY=1 around on_reload; the watchdog runs from here on.
 */
struct daemon_signals *daemon_signals_new(struct event_base *,
	    void (*on_stop)(void *), void (*on_reload)(void *),
	    void (*on_usr1)(void *), void *arg);
void	daemon_signals_free(struct daemon_signals *);

/* on_stop for daemon_signals_new: log and leave the loop of the base arg. */
void	daemon_stop_loop(void *base);

/*
 * The mutual-TLS contexts of the common ca/cert/key directives: server side
 * into *srv and client side into *cli (either pointer may be NULL).  A
 * failure is fatal: it happens only at start-up.
 */
void	daemon_tls(const struct cfg_common *, SSL_CTX **srv, SSL_CTX **cli);

/*
 * The admin endpoint of the common admin directive (none if absent);
 * failing to listen is fatal: it happens only at start-up.
 */
struct admin *daemon_admin(struct event_base *, const struct cfg_common *,
	    const char *daemon, admin_status_cb, void *arg);

/*
 * Log what a reload cannot change: for each common setting that differs
 * between the running and the new configuration (store, topology,
 * credentials, admin, max_frame), one line saying it takes a restart.
 * Returns the number of such settings.
 */
int	daemon_reload_restart_only(const struct cfg_common *running,
	    const struct cfg_common *next);

#endif
