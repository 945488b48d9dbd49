/*
 * The life of every qroam daemon: the command line (-f CONFIG, -n, -d, -v),
 * loading the configuration and its topology, start-up, SIGHUP reload,
 * SIGTERM stop, the admin endpoint and the service manager's
 * notifications (notify.h: READY, STATUS, RELOADING, STOPPING, WATCHDOG).
 * A daemon fills in a struct daemon_ops with its own parts and hands it to
 * daemon_main() with the struct ("env") its hooks work on.
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
	 * Size of the configuration struct, which begins with its struct
	 * cfg_common.
	 */
	size_t		 do_conf_size;
	/* Roles the topology must give an address (topo_need), in order. */
	const char	*do_need[DAEMON_MAXNEED];

	/*
	 * Parse the configuration file path into conf; errors on stderr as
	 * file:line: message.  0, or -1 with conf released (freed and
	 * zeroed: nothing left to free), as every loader does; after a 0,
	 * do_conf_free is called once conf is no longer wanted.
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
	/* Optional: gather what /metrics or /status shows (admin.h). */
	admin_prepare_cb do_prepare;
	/*
	 * Called once the admin endpoint listens, just before READY=1: what
	 * the daemon does last, and the STATUS= line into status.
	 */
	void	(*do_ready)(void *env, char *status, size_t len);
	/*
	 * SIGHUP with a sound new configuration and topology: log what of
	 * them only a restart changes, take over the rest into env, and end
	 * with one "reloaded: ..." line.  restart: how many common settings
	 * already got their "takes effect on restart" line (verbose is
	 * already taken over).  next and its topology are freed after the
	 * call.
	 */
	void	(*do_reload)(void *env, const void *next,
		    const struct topo *next_topo, int restart);
	/*
	 * Optional: SIGTERM and SIGINT, after STOPPING=1; it must end the
	 * event loop, now or later (default: end it now).
	 */
	void	(*do_stop)(void *env);
	/* Optional: SIGUSR1 (default: ignored). */
	void	(*do_usr1)(void *env);
	/* Once the event loop ended: free what do_start made. */
	void	(*do_free)(void *env);
};

/*
 * The whole of main(): parse argv, load into conf and topo (where env
 * keeps the running configuration and topology; env zeroed), then with -n
 * print "CONFIG: configuration OK" and return 0; else start, serve until
 * the event loop ends, free everything and return 0.  A configuration
 * with errors returns 1, a bad command line exits 1 after the usage.
 */
int	daemon_main(int argc, char **argv, const struct daemon_ops *,
	    void *env, void *conf, struct topo *topo);

/*
 * The mutual-TLS contexts of the common ca/cert/key directives: server side
 * into *srv and client side into *cli (either pointer may be NULL).  A
 * failure is fatal: it happens only at start-up.
 */
void	daemon_tls(const struct cfg_common *, SSL_CTX **srv, SSL_CTX **cli);

#endif
