/*
 * registrard: the trusted authority (PROTOCOL F2).  Binds vehicles to chips,
 * holds their key pairs and syncs every registration to every TSP.
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

struct registrard {
	struct event_base	*rd_base;
	const char		*rd_path;
	int			 rd_verbose;	/* -d / -v on the command line */
	struct registrard_conf	 rd_conf;
	struct topo		 rd_topo;
};

/*
 * The configuration and its topology, which must give the registrar's
 * address; errors go to stderr as file:line: message.  0, or -1 with
 * nothing left to free.
 */
static int
registrard_load(const char *path, struct registrard_conf *conf,
    struct topo *topo)
{
	if (registrard_conf_load(path, conf) == -1) {
		registrard_conf_free(conf);
		return -1;
	}
	if (topo_load(conf->rc_common.cc_topology, topo) == -1 ||
	    topo_need(topo, conf->rc_common.cc_topology, "registrar") == -1) {
		topo_free(topo);
		registrard_conf_free(conf);
		return -1;
	}
	return 0;
}

/*
 * SIGHUP: read the configuration and topology again; with no error, take
 * over rsa_bits and verbose, and log what only a restart changes.
 */
static void
registrard_reload(void *arg)
{
	struct registrard	*rd = arg;
	struct registrard_conf	 nc;
	struct topo		 nt;

	if (registrard_load(rd->rd_path, &nc, &nt) == -1) {
		log_warnx("reload: configuration has errors, keeping the old "
		    "one");
		return;
	}
	daemon_reload_restart_only(&rd->rd_conf.rc_common, &nc.rc_common);
	topo_reload_restart_only(&rd->rd_topo, &nt);
	rd->rd_conf.rc_rsa_bits = nc.rc_rsa_bits;
	rd->rd_conf.rc_common.cc_verbose = nc.rc_common.cc_verbose;
	if (rd->rd_verbose == 0)
		log_setverbose(nc.rc_common.cc_verbose);
	log_info("reloaded: rsa_bits=%d verbose=%d", nc.rc_rsa_bits,
	    nc.rc_common.cc_verbose);
	topo_free(&nt);
	registrard_conf_free(&nc);
}

/* SIGTERM, SIGINT: leave the event loop. */
static void
registrard_stop(void *arg)
{
	struct registrard	*rd = arg;

	daemon_stop_loop(rd->rd_base);
}

int
main(int argc, char **argv)
{
	struct daemon_opts	 opts;
	struct registrard	 rd;
	struct event_base	*base;
	struct daemon_signals	*sigs;
	struct registrar	*r;
	struct admin		*adm;
	SSL_CTX			*srv, *cli;

	daemon_getopt(argc, argv, "/etc/qroam/registrard.conf", &opts);
	log_init("registrard", opts.do_verbose);
	memset(&rd, 0, sizeof(rd));
	rd.rd_path = opts.do_config;
	rd.rd_verbose = opts.do_verbose;
	if (registrard_load(rd.rd_path, &rd.rd_conf, &rd.rd_topo) == -1)
		return 1;
	if (opts.do_check) {
		printf("%s: configuration OK\n", opts.do_config);
		topo_free(&rd.rd_topo);
		registrard_conf_free(&rd.rd_conf);
		return 0;
	}
	if (opts.do_verbose == 0)
		log_setverbose(rd.rd_conf.rc_common.cc_verbose);
	daemon_tls(&rd.rd_conf.rc_common, &srv, &cli);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	rd.rd_base = base;
	if ((r = registrar_new(base, &rd.rd_conf, &rd.rd_topo, srv,
	    cli)) == NULL)
		fatalx("cannot start");
	sigs = daemon_signals_new(base, registrard_stop, registrard_reload,
	    NULL, &rd);
	adm = daemon_admin(base, &rd.rd_conf.rc_common, "registrard",
	    registrar_status, r);
	log_info("started: rsa_bits=%d", rd.rd_conf.rc_rsa_bits);
	notify_ready("registering vehicles for %zu TSPs", rd.rd_topo.t_ntsps);
	event_base_dispatch(base);
	admin_free(adm);
	registrar_free(r);
	daemon_signals_free(sigs);
	event_base_free(base);
	SSL_CTX_free(srv);
	SSL_CTX_free(cli);
	topo_free(&rd.rd_topo);
	registrard_conf_free(&rd.rd_conf);
	metrics_reset();
	return 0;
}
