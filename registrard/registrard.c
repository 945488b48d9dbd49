/*
 * registrard: the trusted authority (PROTOCOL F2).  Binds vehicles to chips,
 * holds their key pairs and syncs every registration to every TSP.
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
	struct registrard_conf	 conf;
	struct topo		 topo;
	struct event_base	*base;
	struct daemon_signals	*sigs;
	struct registrar	*r;
	SSL_CTX			*srv, *cli;

	daemon_getopt(argc, argv, "/etc/qroam/registrard.conf", &opts);
	log_init("registrard", opts.do_verbose);
	if (registrard_conf_load(opts.do_config, &conf) == -1 ||
	    topo_load(conf.rc_common.cc_topology, &topo) == -1)
		return 1;
	if (opts.do_check) {
		printf("%s: configuration OK\n", opts.do_config);
		return 0;
	}
	if (opts.do_verbose == 0)
		log_setverbose(conf.rc_common.cc_verbose);
	daemon_tls(&conf.rc_common, &srv, &cli);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((r = registrar_new(base, &conf, &topo, srv, cli)) == NULL)
		fatalx("cannot start");
	sigs = daemon_signals_new(base, daemon_stop_loop, NULL, NULL, base);
	log_info("started: rsa_bits=%d", conf.rc_rsa_bits);
	event_base_dispatch(base);
	registrar_free(r);
	daemon_signals_free(sigs);
	event_base_free(base);
	SSL_CTX_free(srv);
	SSL_CTX_free(cli);
	topo_free(&topo);
	registrard_conf_free(&conf);
	return 0;
}
