/*
 * fillerd: the quantum key filling machine (PROTOCOL F1).  Fills security
 * chips for factories and syncs every fill record to every TSP.
 */
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
#include "log.h"
#include "server.h"
#include "tls.h"
#include "topo.h"

int
main(int argc, char **argv)
{
	struct daemon_opts	 opts;
	struct fillerd_conf	 conf;
	struct topo		 topo;
	struct event_base	*base;
	struct daemon_signals	*sigs;
	struct filler		*f;
	SSL_CTX			*srv, *cli;

	daemon_getopt(argc, argv, "/etc/qroam/fillerd.conf", &opts);
	log_init("fillerd", opts.do_verbose);
	if (fillerd_conf_load(opts.do_config, &conf) == -1 ||
	    topo_load(conf.fc_common.cc_topology, &topo) == -1)
		return 1;
	if (opts.do_check) {
		printf("%s: configuration OK\n", opts.do_config);
		return 0;
	}
	if (opts.do_verbose == 0)
		log_setverbose(conf.fc_common.cc_verbose);
	daemon_tls(&conf.fc_common, &srv, &cli);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((f = filler_new(base, &conf, &topo, srv, cli)) == NULL)
		fatalx("cannot start");
	sigs = daemon_signals_new(base, daemon_stop_loop, NULL, NULL, base);
	log_info("started: m=%u k=%u n=%u", conf.fc_m, conf.fc_k, conf.fc_n);
	event_base_dispatch(base);
	filler_free(f);
	daemon_signals_free(sigs);
	event_base_free(base);
	SSL_CTX_free(srv);
	SSL_CTX_free(cli);
	topo_free(&topo);
	fillerd_conf_free(&conf);
	return 0;
}
