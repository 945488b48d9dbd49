/*
 * qkdd: the QKD emulator (PROTOCOL section 7).  Serves ETSI GS QKD 014
 * v1.1.1 over mutual TLS on the topology's `qkd` endpoint, with a key pool
 * per SAE pair refilled by simulated BB84 links.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "config.h"
#include "daemon.h"
#include "http.h"
#include "kme.h"
#include "links.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "ops.h"
#include "pool.h"
#include "tls.h"
#include "topo.h"

struct qkdd {
	struct event_base	*q_base;
	const char		*q_path;
	int			 q_verbose;	/* -d / -v on the command line */
	struct qkdd_conf	*q_conf;
	struct topo		 q_topo;
	struct kme		 q_kme;
};

/*
 * The configuration and its topology, which must name the qkd endpoint;
 * errors go to stderr as file:line: message.  0, or -1 with nothing left
 * to free.
 */
static int
qkdd_load(const char *path, struct qkdd_conf *conf, struct topo *topo)
{
	if (qkdd_conf_load(path, conf) == -1) {
		qkdd_conf_free(conf);
		return -1;
	}
	if (topo_load(conf->qc_common.cc_topology, topo) == -1 ||
	    topo_need(topo, conf->qc_common.cc_topology, "qkd") == -1) {
		topo_free(topo);
		qkdd_conf_free(conf);
		return -1;
	}
	if (conf->qc_nlinks == 0)
		fprintf(stderr, "%s: warning: no link configured: no key will be "
		    "served\n", path);
	return 0;
}

/*
 * SIGHUP: read the configuration and topology again; with no error, take
 * over max_key_per_request, verbose and the settings of the running links
 * that the file changes (qkd_links_reconfigure), and log what only a
 * restart changes: the common settings, key_size, the qkd endpoint, links
 * added or removed.  Keys already in the pools are never touched.
 */
static void
qkdd_reload(void *arg)
{
	struct qkdd		*q = arg;
	struct qkdd_conf	*nc, *rc = q->q_conf;
	struct topo		 nt;
	size_t			 n;

	nc = xcalloc(1, sizeof(*nc));
	if (qkdd_load(q->q_path, nc, &nt) == -1) {
		log_warnx("reload: configuration has errors, keeping the old "
		    "one");
		free(nc);
		return;
	}
	daemon_reload_restart_only(&rc->qc_common, &nc->qc_common);
	if (strcmp(nt.t_qkd.ep_host, q->q_topo.t_qkd.ep_host) != 0 ||
	    nt.t_qkd.ep_port != q->q_topo.t_qkd.ep_port)
		log_warnx("reload: the qkd endpoint in %s changed: that takes "
		    "a restart", rc->qc_common.cc_topology);
	if (nc->qc_key_size != rc->qc_key_size)
		log_warnx("reload: key_size %u (running %u) takes a restart",
		    nc->qc_key_size, rc->qc_key_size);
	n = qkd_links_reconfigure(q->q_kme.k_links, rc, nc);
	rc->qc_max_per_request = nc->qc_max_per_request;
	rc->qc_common.cc_verbose = nc->qc_common.cc_verbose;
	if (q->q_verbose == 0)
		log_setverbose(nc->qc_common.cc_verbose);
	log_info("reloaded: %zu links changed, max_key_per_request %u, "
	    "verbose %d", n, rc->qc_max_per_request, rc->qc_common.cc_verbose);
	topo_free(&nt);
	qkdd_conf_free(nc);
	free(nc);
}

/* SIGTERM, SIGINT: leave the event loop. */
static void
qkdd_stop(void *arg)
{
	struct qkdd	*q = arg;

	daemon_stop_loop(q->q_base);
}

int
main(int argc, char **argv)
{
	struct daemon_opts	 opts;
	struct qkdd		 q;
	struct daemon_signals	*sigs;
	struct qkd_pool		*pool;
	struct qkd_http		*http;
	struct admin		*adm;
	SSL_CTX			*srv;

	daemon_getopt(argc, argv, "/etc/qroam/qkdd.conf", &opts);
	log_init("qkdd", opts.do_verbose);
	memset(&q, 0, sizeof(q));
	q.q_path = opts.do_config;
	q.q_verbose = opts.do_verbose;
	q.q_conf = xcalloc(1, sizeof(*q.q_conf));
	if (qkdd_load(q.q_path, q.q_conf, &q.q_topo) == -1) {
		free(q.q_conf);
		return 1;
	}
	if (opts.do_check) {
		printf("%s: configuration OK\n", opts.do_config);
		topo_free(&q.q_topo);
		qkdd_conf_free(q.q_conf);
		free(q.q_conf);
		return 0;
	}
	if (opts.do_verbose == 0)
		log_setverbose(q.q_conf->qc_common.cc_verbose);
	daemon_tls(&q.q_conf->qc_common, &srv, NULL);
	if ((pool = qkd_pool_open(q.q_conf->qc_common.cc_store)) == NULL)
		fatalx("cannot open store %s", q.q_conf->qc_common.cc_store);
	if ((q.q_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	q.q_kme.k_conf = q.q_conf;
	q.q_kme.k_pool = pool;
	if ((q.q_kme.k_links = qkd_links_new(q.q_base, q.q_conf,
	    pool)) == NULL)
		fatalx("cannot start the QKD links");
	qkd_ops_init(&q.q_kme);
	if ((http = qkd_http_new(q.q_base, srv, q.q_topo.t_qkd.ep_host,
	    q.q_topo.t_qkd.ep_port, &q.q_kme)) == NULL)
		fatalx("cannot start");
	sigs = daemon_signals_new(q.q_base, qkdd_stop, qkdd_reload, NULL, &q);
	adm = daemon_admin(q.q_base, &q.q_conf->qc_common, "qkdd",
	    qkd_ops_status, &q.q_kme);
	log_info("started on %s:%u: %zu links, key_size %u, "
	    "max_key_per_request %u", q.q_topo.t_qkd.ep_host,
	    q.q_topo.t_qkd.ep_port, q.q_conf->qc_nlinks,
	    q.q_conf->qc_key_size, q.q_conf->qc_max_per_request);
	notify_ready("serving keys on %zu links", q.q_conf->qc_nlinks);
	event_base_dispatch(q.q_base);
	admin_free(adm);
	qkd_http_free(http);
	qkd_ops_free(&q.q_kme);
	qkd_links_free(q.q_kme.k_links);
	daemon_signals_free(sigs);
	event_base_free(q.q_base);
	qkd_pool_close(pool);
	SSL_CTX_free(srv);
	topo_free(&q.q_topo);
	qkdd_conf_free(q.q_conf);
	free(q.q_conf);
	metrics_reset();
	return 0;
}
