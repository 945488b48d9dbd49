/*
 * The life of every qroam daemon: the command line (-f CONFIG, -n, -d, -v),
 * loading the configuration and its topology, start-up, SIGHUP reload,
 * SIGTERM stop, the admin endpoint and the service manager's
 * notifications (notify.h: READY, STATUS, RELOADING, STOPPING, WATCHDOG).
 * A daemon fills in a struct daemon_ops with its own parts and hands it to
 * daemon_main() with the struct ("env") that holds its running
 * configuration and topology.
 */
#ifndef QROAM_DAEMON_H
#define QROAM_DAEMON_H

#include <stddef.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "admin.h"
#include "conf.h"
#include "topo.h"

#define DAEMON_MAXNEED	3

struct daemon_ops {
	/* Program name: log prefix, admin "daemon", /etc/qroam/<name>.conf. */
	const char	*do_name;
	/*
	 * The configuration struct: its size, where env keeps the running
	 * one, and where it keeps its common directives (offsetof).
	 */
	size_t		 do_conf_size;
	size_t		 do_conf_at;
	size_t		 do_common_at;
	/* Where env keeps the running topology (offsetof). */
	size_t		 do_topo_at;
	/* Roles the topology must give an address (topo_need), in order. */
	const char	*do_need[DAEMON_MAXNEED];

	/*
	 * Parse the configuration file path into conf; errors on stderr as
	 * file:line: message.  0 or -1; do_conf_free is called either way
	 * once conf is no longer wanted.
	 */
	int	(*do_conf_load)(const char *path, void *conf);
	void	(*do_conf_free)(void *conf);
	/*
	 * Optional: what conf requires of its topology beyond do_need,
	 * reported on stderr like do_conf_load; 0 or -1.
	 */
	int	(*do_check)(const char *path, const void *conf,
		    const struct topo *);
	/* Optional: the log prefix once configured (default do_name). */
	void	(*do_logname)(const void *conf, char *buf, size_t len);

	/*
	 * Start serving from the running configuration and topology in env.
	 * Returns the argument of do_status, or NULL: fatal.
	 */
	void	*(*do_start)(void *env, struct event_base *);
	/* The admin endpoint's /status (admin.h). */
	admin_status_cb	 do_status;
	/*
	 * Called once the admin endpoint listens, just before READY=1: what
	 * the daemon does last, and the STATUS= line into status.
	 */
	void	(*do_ready)(void *env, char *status, size_t len);
	/*
	 * SIGHUP with a sound new configuration and topology: log what of
	 * them only a restart changes, take over the rest into env, and end
	 * with one "reloaded: ..." line.  restart: the settings common to
	 * every daemon that already took a "takes effect on restart" line
	 * (verbose is already taken over).  next and its topology are freed
	 * after the call.
	 */
	void	(*do_reload)(void *env, const void *next,
		    const struct topo *next_topo, int restart);
	/* Optional: SIGTERM and SIGINT (default: leave the event loop). */
	void	(*do_stop)(void *env);
	/* Optional: SIGUSR1 (default: ignored). */
	void	(*do_usr1)(void *env);
	/* Once the event loop ended: free what do_start made. */
	void	(*do_free)(void *env);
};

/*
 * The whole of main(): parse argv, load, then with -n print "CONFIG:
 * configuration OK" and return 0; else start, serve until the event loop
 * ends, free everything and return 0.  A configuration with errors
 * returns 1, a bad command line exits 1 after the usage.  env must be
 * zeroed.
 */
int	daemon_main(int argc, char **argv, const struct daemon_ops *, void *env);

/*
 * The mutual-TLS contexts of the common ca/cert/key directives: server side
 * into *srv and client side into *cli (either pointer may be NULL).  A
 * failure is fatal: it happens only at start-up.
 */
void	daemon_tls(const struct cfg_common *, SSL_CTX **srv, SSL_CTX **cli);

/* The pieces of main() the daemons not yet on daemon_main() still call. */
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
