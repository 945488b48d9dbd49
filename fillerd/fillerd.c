/*
 * fillerd: the quantum key filling machine (PROTOCOL F1).  Fills security
 * chips for factories and syncs every fill record to every TSP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "server.h"
#include "tls.h"
#include "topo.h"

struct fillerd {
	struct event_base	*fd_base;
	const char		*fd_path;
	int			 fd_verbose;	/* -d / -v on the command line */
	struct fillerd_conf	 fd_conf;
	struct topo		 fd_topo;
};

/*
 * The configuration and its topology, which must give the filler's
 * address; errors go to stderr as file:line: message.  0, or -1 with
 * nothing left to free.
 */
static int
fillerd_load(const char *path, struct fillerd_conf *conf, struct topo *topo)
{
	if (fillerd_conf_load(path, conf) == -1) {
		fillerd_conf_free(conf);
		return -1;
	}
	if (topo_load(conf->fc_common.cc_topology, topo) == -1 ||
	    topo_need(topo, conf->fc_common.cc_topology, "filler") == -1) {
		topo_free(topo);
		fillerd_conf_free(conf);
		return -1;
	}
	return 0;
}

/*
 * SIGHUP: read the configuration and topology again; with no error, take
 * over the fill parameters (m, k, n) and verbose, and log what only a
 * restart changes.
 */
static void
fillerd_reload(void *arg)
{
	struct fillerd		*fd = arg;
	struct fillerd_conf	 nc;
	struct topo		 nt;

	if (fillerd_load(fd->fd_path, &nc, &nt) == -1) {
		log_warnx("reload: configuration has errors, keeping the old "
		    "one");
		return;
	}
	daemon_reload_restart_only(&fd->fd_conf.fc_common, &nc.fc_common);
	topo_reload_restart_only(&fd->fd_topo, &nt);
	fd->fd_conf.fc_m = nc.fc_m;
	fd->fd_conf.fc_k = nc.fc_k;
	fd->fd_conf.fc_n = nc.fc_n;
	fd->fd_conf.fc_common.cc_verbose = nc.fc_common.cc_verbose;
	if (fd->fd_verbose == 0)
		log_setverbose(nc.fc_common.cc_verbose);
	log_info("reloaded: m=%u k=%u n=%u verbose=%d", nc.fc_m, nc.fc_k,
	    nc.fc_n, nc.fc_common.cc_verbose);
	topo_free(&nt);
	fillerd_conf_free(&nc);
}

/* SIGTERM, SIGINT: leave the event loop. */
static void
fillerd_stop(void *arg)
{
	struct fillerd	*fd = arg;

	daemon_stop_loop(fd->fd_base);
}

int
main(int argc, char **argv)
{
	struct daemon_opts	 opts;
	struct fillerd		 fd;
	struct event_base	*base;
	struct daemon_signals	*sigs;
	struct filler		*f;
	struct admin		*adm;
	SSL_CTX			*srv, *cli;

	daemon_getopt(argc, argv, "/etc/qroam/fillerd.conf", &opts);
	log_init("fillerd", opts.do_verbose);
	memset(&fd, 0, sizeof(fd));
	fd.fd_path = opts.do_config;
	fd.fd_verbose = opts.do_verbose;
	if (fillerd_load(fd.fd_path, &fd.fd_conf, &fd.fd_topo) == -1)
		return 1;
	if (opts.do_check) {
		printf("%s: configuration OK\n", opts.do_config);
		topo_free(&fd.fd_topo);
		fillerd_conf_free(&fd.fd_conf);
		return 0;
	}
	if (opts.do_verbose == 0)
		log_setverbose(fd.fd_conf.fc_common.cc_verbose);
	daemon_tls(&fd.fd_conf.fc_common, &srv, &cli);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	fd.fd_base = base;
	if ((f = filler_new(base, &fd.fd_conf, &fd.fd_topo, srv, cli)) == NULL)
		fatalx("cannot start");
	sigs = daemon_signals_new(base, fillerd_stop, fillerd_reload, NULL,
	    &fd);
	adm = daemon_admin(base, &fd.fd_conf.fc_common, "fillerd",
	    filler_status, f);
	log_info("started: m=%u k=%u n=%u", fd.fd_conf.fc_m, fd.fd_conf.fc_k,
	    fd.fd_conf.fc_n);
	notify_ready("filling chips for %zu TSPs", fd.fd_topo.t_ntsps);
	event_base_dispatch(base);
	admin_free(adm);
	filler_free(f);
	daemon_signals_free(sigs);
	event_base_free(base);
	SSL_CTX_free(srv);
	SSL_CTX_free(cli);
	topo_free(&fd.fd_topo);
	fillerd_conf_free(&fd.fd_conf);
	metrics_reset();
	return 0;
}
