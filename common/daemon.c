/* Command line and signals shared by every daemon's main(). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "notify.h"
#include "tls.h"

extern char *__progname;

void
daemon_getopt(int argc, char **argv, const char *default_config,
    struct daemon_opts *o)
{
	int	ch;

	o->do_config = default_config;
	o->do_check = 0;
	o->do_verbose = 0;
	while ((ch = getopt(argc, argv, "df:nv")) != -1) {
		switch (ch) {
		case 'd':
		case 'v':
			o->do_verbose++;
			break;
		case 'f':
			o->do_config = optarg;
			break;
		case 'n':
			o->do_check = 1;
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

struct daemon_signals {
	struct event	*ds_ev[4];
	void		(*ds_stop)(void *);
	void		(*ds_reload)(void *);
	void		(*ds_usr1)(void *);
	void		*ds_arg;
};

static void
daemon_signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct daemon_signals	*ds = arg;

	(void)ev;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		notify_stopping();
		ds->ds_stop(ds->ds_arg);
		break;
	case SIGHUP:
		if (ds->ds_reload == NULL) {
			log_info("SIGHUP: nothing to reload");
			break;
		}
		notify_reloading();
		ds->ds_reload(ds->ds_arg);
		notify_ready(NULL);
		break;
	case SIGUSR1:
		if (ds->ds_usr1 != NULL)
			ds->ds_usr1(ds->ds_arg);
		break;
	}
}

struct daemon_signals *
daemon_signals_new(struct event_base *base, void (*on_stop)(void *),
    void (*on_reload)(void *), void (*on_usr1)(void *), void *arg)
{
	static const int	 sigs[4] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	struct daemon_signals	*ds;
	size_t			 i;

	signal(SIGPIPE, SIG_IGN);
	ds = xcalloc(1, sizeof(*ds));
	ds->ds_stop = on_stop;
	ds->ds_reload = on_reload;
	ds->ds_usr1 = on_usr1;
	ds->ds_arg = arg;
	for (i = 0; i < 4; i++) {
		ds->ds_ev[i] = evsignal_new(base, sigs[i], daemon_signal_cb, ds);
		if (ds->ds_ev[i] == NULL || evsignal_add(ds->ds_ev[i], NULL) == -1)
			fatalx("cannot install signal handler");
	}
	notify_init(base);
	return ds;
}

void
daemon_signals_free(struct daemon_signals *ds)
{
	size_t	i;

	if (ds == NULL)
		return;
	for (i = 0; i < 4; i++)
		event_free(ds->ds_ev[i]);
	free(ds);
	notify_free();
}

void
daemon_stop_loop(void *base)
{
	log_info("stopping");
	event_base_loopexit(base, NULL);
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

struct admin *
daemon_admin(struct event_base *base, const struct cfg_common *cc,
    const char *daemon, admin_status_cb cb, void *arg)
{
	struct admin	*a;

	a = admin_new(base, cc->cc_admin_host, cc->cc_admin_port, daemon,
	    cc->cc_id, cb, arg);
	if (a == NULL)
		fatalx("cannot start the admin endpoint");
	return a;
}

/* 1 if two optional strings differ. */
static int
daemon_differ(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

int
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
