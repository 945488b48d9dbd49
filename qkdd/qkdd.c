/*
 * qkdd: the QKD emulator (PROTOCOL section 7).  Serves ETSI GS QKD 014
 * v1.1.1 over mutual TLS on the topology's `qkd` endpoint, with a key pool
 * per SAE pair refilled by simulated BB84 links.
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "daemon.h"
#include "http.h"
#include "kme.h"
#include "links.h"
#include "log.h"
#include "pool.h"
#include "tls.h"
#include "topo.h"

/* The configuration and its topology, which must name the qkd endpoint. */
static int
qkdd_load(const char *path, struct qkdd_conf *conf, struct topo *topo)
{
	if (qkdd_conf_load(path, conf) == -1 ||
	    topo_load(conf->qc_common.cc_topology, topo) == -1)
		return -1;
	if (topo->t_qkd.ep_port == 0) {
		fprintf(stderr, "%s: no qkd endpoint\n",
		    conf->qc_common.cc_topology);
		topo_free(topo);
		return -1;
	}
	if (conf->qc_nlinks == 0)
		log_warnx("%s: no link configured: no key will be served",
		    path);
	return 0;
}

int
main(int argc, char **argv)
{
	struct daemon_opts	 opts;
	struct qkdd_conf	*conf;
	struct topo		 topo;
	struct event_base	*base;
	struct daemon_signals	*sigs;
	struct qkd_pool		*pool;
	struct qkd_http		*http;
	struct kme		 kme;
	SSL_CTX			*srv;
	int			 rc;

	daemon_getopt(argc, argv, "/etc/qroam/qkdd.conf", &opts);
	log_init("qkdd", opts.do_verbose);
	conf = xcalloc(1, sizeof(*conf));
	if ((rc = qkdd_load(opts.do_config, conf, &topo)) == -1 ||
	    opts.do_check) {
		if (rc == 0) {
			printf("%s: configuration OK\n", opts.do_config);
			topo_free(&topo);
		}
		qkdd_conf_free(conf);
		free(conf);
		return rc == 0 ? 0 : 1;
	}
	if (opts.do_verbose == 0)
		log_setverbose(conf->qc_common.cc_verbose);
	if ((srv = tls_server_ctx(conf->qc_common.cc_ca,
	    conf->qc_common.cc_cert, conf->qc_common.cc_key)) == NULL)
		fatalx("cannot set up TLS");
	if ((pool = qkd_pool_open(conf->qc_common.cc_store)) == NULL)
		fatalx("cannot open store %s", conf->qc_common.cc_store);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	kme.k_conf = conf;
	kme.k_pool = pool;
	if ((kme.k_links = qkd_links_new(base, conf, pool)) == NULL)
		fatalx("cannot start the QKD links");
	if ((http = qkd_http_new(base, srv, topo.t_qkd.ep_host,
	    topo.t_qkd.ep_port, &kme)) == NULL)
		fatalx("cannot start");
	sigs = daemon_signals_new(base, daemon_stop_loop, NULL, NULL, base);
	log_info("started on %s:%u: %zu links, key_size %u, "
	    "max_key_per_request %u", topo.t_qkd.ep_host, topo.t_qkd.ep_port,
	    conf->qc_nlinks, conf->qc_key_size, conf->qc_max_per_request);
	event_base_dispatch(base);
	qkd_http_free(http);
	qkd_links_free(kme.k_links);
	daemon_signals_free(sigs);
	event_base_free(base);
	qkd_pool_close(pool);
	SSL_CTX_free(srv);
	topo_free(&topo);
	qkdd_conf_free(conf);
	free(conf);
	return 0;
}
