/*
 * The skeleton every daemon's main() runs (daemon.h): command line, load,
 * start, reload, stop, the admin endpoint and sd_notify.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "tls.h"

#define DAEMON_NSIG	4

extern char *__progname;

struct daemon {
	const struct daemon_ops	*d_ops;
	void			*d_env;
	const char		*d_path;	/* -f */
	int			 d_check;	/* -n */
	int			 d_cmd_verbose;	/* -d, -v: fixed */
	char			 d_default[128];
	char			 d_logname[64];	/* its log prefix */
	void			*d_conf;	/* running configuration */
	struct topo		*d_topo;	/* running topology */
	struct event_base	*d_base;
	struct event		*d_sig[DAEMON_NSIG];
	struct admin		*d_admin;
};

/* The common directives that begin a daemon's configuration. */
static struct cfg_common *
daemon_common(void *conf)
{
	return conf;
}

/* Parse argv; prints usage and exits 1 on a bad command line. */
static void
daemon_getopt(struct daemon *d, int argc, char **argv)
{
	int	ch;

	snprintf(d->d_default, sizeof(d->d_default), "/etc/qroam/%s.conf",
	    d->d_ops->do_name);
	d->d_path = d->d_default;
	while ((ch = getopt(argc, argv, "df:nv")) != -1) {
		switch (ch) {
		case 'd':
		case 'v':
			d->d_cmd_verbose++;
			break;
		case 'f':
			d->d_path = optarg;
			break;
		case 'n':
			d->d_check = 1;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	return;
 usage:
	fprintf(stderr, "usage: %s [-dnv] [-f config]\n", __progname);
	exit(1);
}

/* Free a configuration and its topology made by daemon_load. */
static void
daemon_unload(const struct daemon *d, void *conf, struct topo *topo)
{
	topo_free(topo);
	d->d_ops->do_conf_free(conf);
}

/*
 * The configuration file and the topology it names, with the roles and
 * checks the daemon requires; errors go to stderr as file:line: message.
 * 0, or -1 with nothing left to free.
 */
static int
daemon_load(const struct daemon *d, void *conf, struct topo *topo)
{
	const struct daemon_ops	*ops = d->d_ops;
	const char		*file;
	size_t			 i;

	memset(topo, 0, sizeof(*topo));
	if (ops->do_conf_load(d->d_path, conf) == -1)
		return -1;		/* the loader released conf */
	file = daemon_common(conf)->cc_topology;
	if (topo_load(file, topo) == -1)
		goto fail;
	for (i = 0; i < DAEMON_MAXNEED && ops->do_need[i] != NULL; i++)
		if (topo_need(topo, file, ops->do_need[i]) == -1)
			goto fail;
	if (ops->do_check != NULL && ops->do_check(d->d_path, conf, topo) == -1)
		goto fail;
	return 0;
 fail:
	daemon_unload(d, conf, topo);
	return -1;
}

/* 1 if two optional strings differ. */
static int
daemon_differ(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/*
 * Log what a reload cannot change: for each common setting that differs
 * between the running and the new configuration (store, topology,
 * credentials, admin, max_frame), one line saying it takes a restart.
 * Returns the number of such settings.
 */
static int
daemon_reload_restart_only(const struct cfg_common *run,
    const struct cfg_common *next)
{
	const struct {
		const char	*name;
		const char	*run, *next;
	} s[] = {
		{ "id", run->cc_id, next->cc_id },
		{ "topology", run->cc_topology, next->cc_topology },
		{ "store", run->cc_store, next->cc_store },
		{ "ca", run->cc_ca, next->cc_ca },
		{ "cert", run->cc_cert, next->cc_cert },
		{ "key", run->cc_key, next->cc_key },
		{ "admin", run->cc_admin_host, next->cc_admin_host },
	};
	size_t	i;
	int	n = 0;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		if (!daemon_differ(s[i].run, s[i].next))
			continue;
		log_warnx("reload: %s changed; it takes effect on restart",
		    s[i].name);
		n++;
	}
	if (run->cc_admin_port != next->cc_admin_port &&
	    !daemon_differ(run->cc_admin_host, next->cc_admin_host)) {
		log_warnx("reload: admin changed; it takes effect on restart");
		n++;
	}
	if (run->cc_max_frame != next->cc_max_frame) {
		log_warnx("reload: max_frame changed; it takes effect on "
		    "restart");
		n++;
	}
	return n;
}

/*
 * SIGHUP: parse the whole configuration and topology again into new
 * structs; with errors nothing changes.  Else log the common settings only
 * a restart changes, take over verbose (unless -d/-v fixed it) and let the
 * daemon take over its own settings.
 */
static void
daemon_reload(struct daemon *d)
{
	const struct daemon_ops	*ops = d->d_ops;
	struct cfg_common	*run, *nc;
	struct topo		 nt;
	void			*next;
	int			 n;

	log_setname(d->d_logname);
	next = xcalloc(1, ops->do_conf_size);
	if (daemon_load(d, next, &nt) == -1) {
		log_warnx("reload: configuration has errors, keeping the old "
		    "one");
		free(next);
		return;
	}
	run = daemon_common(d->d_conf);
	nc = daemon_common(next);
	n = daemon_reload_restart_only(run, nc);
	run->cc_verbose = nc->cc_verbose;
	if (d->d_cmd_verbose == 0)
		log_setverbose(nc->cc_verbose);
	ops->do_reload(d->d_env, next, &nt, n);
	daemon_unload(d, next, &nt);
	free(next);
}

/*
 * SIGTERM, SIGINT: STOPPING=1, then the daemon's stop or the end of the
 * loop; SIGHUP: RELOADING=1, reload, READY=1; SIGUSR1: the daemon's.
 */
static void
daemon_signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct daemon		*d = arg;
	const struct daemon_ops	*ops = d->d_ops;

	(void)ev;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		notify_stopping();
		if (ops->do_stop != NULL)
			ops->do_stop(d->d_env);
		else {
			log_info("stopping");
			event_base_loopexit(d->d_base, NULL);
		}
		break;
	case SIGHUP:
		notify_reloading();
		daemon_reload(d);
		notify_ready(NULL);
		break;
	case SIGUSR1:
		if (ops->do_usr1 != NULL)
			ops->do_usr1(d->d_env);
		break;
	}
}

/* Handle the signals on the loop, ignore SIGPIPE, start the watchdog. */
static void
daemon_signals_new(struct daemon *d)
{
	static const int	sigs[DAEMON_NSIG] = {
		SIGTERM, SIGINT, SIGHUP, SIGUSR1
	};
	size_t			i;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < DAEMON_NSIG; i++) {
		d->d_sig[i] = evsignal_new(d->d_base, sigs[i], daemon_signal_cb,
		    d);
		if (d->d_sig[i] == NULL ||
		    evsignal_add(d->d_sig[i], NULL) == -1)
			fatalx("cannot install signal handler");
	}
	notify_init(d->d_base);
}

static void
daemon_signals_free(struct daemon *d)
{
	size_t	i;

	for (i = 0; i < DAEMON_NSIG; i++)
		event_free(d->d_sig[i]);
	notify_free();
}

/*
 * Start the daemon and its admin endpoint (none without the admin
 * directive; failing to listen is fatal), then tell the service manager
 * it serves.
 */
static void
daemon_start(struct daemon *d)
{
	const struct daemon_ops	*ops = d->d_ops;
	const struct cfg_common	*cc = daemon_common(d->d_conf);
	char			 status[256];
	void			*arg;

	if ((d->d_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	daemon_signals_new(d);
	if ((arg = ops->do_start(d->d_env, d->d_base)) == NULL)
		fatalx("cannot start");
	log_setname(d->d_logname);
	d->d_admin = admin_new(d->d_base, cc->cc_admin_host, cc->cc_admin_port,
	    ops->do_name, cc->cc_id, ops->do_status, arg);
	if (d->d_admin == NULL)
		fatalx("cannot start the admin endpoint");
	if (ops->do_prepare != NULL)
		admin_set_prepare(d->d_admin, ops->do_prepare, arg);
	status[0] = '\0';
	ops->do_ready(d->d_env, status, sizeof(status));
	log_setname(d->d_logname);
	notify_ready("%s", status);
}

int
daemon_main(int argc, char **argv, const struct daemon_ops *ops, void *env,
    void *conf, struct topo *topo)
{
	struct daemon	 d;

	memset(&d, 0, sizeof(d));
	d.d_ops = ops;
	d.d_env = env;
	d.d_conf = conf;
	d.d_topo = topo;
	daemon_getopt(&d, argc, argv);
	log_init(ops->do_name, d.d_cmd_verbose);
	if (daemon_load(&d, conf, topo) == -1)
		return 1;
	if (d.d_check) {
		printf("%s: configuration OK\n", d.d_path);
		daemon_unload(&d, conf, topo);
		return 0;
	}
	if (ops->do_logname != NULL)
		ops->do_logname(conf, d.d_logname, sizeof(d.d_logname));
	else
		snprintf(d.d_logname, sizeof(d.d_logname), "%s", ops->do_name);
	log_setname(d.d_logname);
	if (d.d_cmd_verbose == 0)
		log_setverbose(daemon_common(conf)->cc_verbose);

	daemon_start(&d);
	event_base_dispatch(d.d_base);

	admin_free(d.d_admin);
	log_setname(d.d_logname);
	ops->do_free(env);
	daemon_signals_free(&d);
	event_base_free(d.d_base);
	daemon_unload(&d, conf, topo);
	metrics_reset();
	return 0;
}

void
daemon_tls(const struct cfg_common *cc, SSL_CTX **srv, SSL_CTX **cli)
{
	if (srv != NULL && (*srv = tls_server_ctx(cc->cc_ca, cc->cc_cert,
	    cc->cc_key)) == NULL)
		fatalx("cannot set up the TLS server context");
	if (cli != NULL && (*cli = tls_client_ctx(cc->cc_ca, cc->cc_cert,
	    cc->cc_key)) == NULL)
		fatalx("cannot set up the TLS client context");
}
