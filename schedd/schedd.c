/*
 * schedd: the cloud scheduling platform of the handover (PROTOCOL F6).
 * Takes A1/A2/A3 from the TSPs of the topology over mutual TLS, gets CK1
 * and CK2 from the QKD layer through its ETSI GS QKD 014 key source,
 * forwards A2 to the target TSP and answers the initiator with M7.  Each
 * handover is a state machine with a timeout, persisted with an audit log
 * of IDs and times (never keys) in its SQLite store.
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "sched.h"
#include "tls.h"
#include "topo.h"

/* The configuration and its topology, which must name sched and qkd. */
static int
schedd_load(const char *path, struct schedd_conf *conf, struct topo *topo)
{
	const char	*file;

	if (schedd_conf_load(path, conf) == -1)
		return -1;
	file = conf->sc_common.cc_topology;
	if (topo_load(file, topo) == -1) {
		schedd_conf_free(conf);
		return -1;
	}
	if (topo->t_sched.ep_port != 0 && topo->t_qkd.ep_port != 0)
		return 0;
	fprintf(stderr, "%s: no %s endpoint\n", file,
	    topo->t_sched.ep_port == 0 ? "sched" : "qkd");
	topo_free(topo);
	schedd_conf_free(conf);
	return -1;
}

int
main(int argc, char **argv)
{
	struct daemon_opts	 opts;
	struct schedd_conf	 conf;
	struct topo		 topo;
	struct event_base	*base;
	struct daemon_signals	*sigs;
	struct sched		*s;
	SSL_CTX			*srv, *cli;

	daemon_getopt(argc, argv, "/etc/qroam/schedd.conf", &opts);
	log_init("schedd", opts.do_verbose);
	if (schedd_load(opts.do_config, &conf, &topo) == -1)
		return 1;
	if (opts.do_check) {
		printf("%s: configuration OK\n", opts.do_config);
		topo_free(&topo);
		schedd_conf_free(&conf);
		return 0;
	}
	if (opts.do_verbose == 0)
		log_setverbose(conf.sc_common.cc_verbose);
	daemon_tls(&conf.sc_common, &srv, &cli);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((s = sched_new(base, &conf, &topo, srv, cli)) == NULL)
		fatalx("cannot start");
	sigs = daemon_signals_new(base, daemon_stop_loop, NULL, NULL, base);
	log_info("started: handover_timeout=%llums ck2_lifetime=%llums",
	    (unsigned long long)conf.sc_handover_timeout_ms,
	    (unsigned long long)conf.sc_ck2_lifetime_ms);
	event_base_dispatch(base);
	sched_free(s);
	daemon_signals_free(sigs);
	event_base_free(base);
	SSL_CTX_free(srv);
	SSL_CTX_free(cli);
	topo_free(&topo);
	schedd_conf_free(&conf);
	return 0;
}
