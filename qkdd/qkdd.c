/*
 * qkdd: the QKD emulator (PROTOCOL section 7).  Serves ETSI GS QKD 014
 * v1.1.1 over mutual TLS on the topology's `qkd` endpoint, with a key pool
 * per SAE pair refilled by simulated BB84 links.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "http.h"
#include "kme.h"
#include "links.h"
#include "log.h"
#include "ops.h"
#include "pool.h"
#include "topo.h"

struct qkdd {
	struct qkdd_conf	 q_conf;
	struct topo		 q_topo;
	struct kme		 q_kme;
	struct qkd_http		*q_http;
	SSL_CTX			*q_srv;
};

static int
qkdd_conf_read(const char *path, void *conf)
{
	return qkdd_conf_load(path, conf);
}

static void
qkdd_conf_release(void *conf)
{
	qkdd_conf_free(conf);
}

/* A configuration without links is sound, but serves no key. */
static int
qkdd_check(const char *path, const void *conf, const struct topo *topo)
{
	const struct qkdd_conf	*qc = conf;

	(void)topo;
	if (qc->qc_nlinks == 0)
		fprintf(stderr, "%s: warning: no link configured: no key will be "
		    "served\n", path);
	return 0;
}

/* The key store's committer: held replies may go as far as durable. */
static void
qkdd_durable(uint64_t durable, void *arg)
{
	struct qkdd	*q = arg;

	if (q->q_http != NULL)
		qkd_http_durable(q->q_http, durable);
}

/* The key pools, the links that refill them and the KME listener. */
static void *
qkdd_start(void *env, struct event_base *base)
{
	struct qkdd	*q = env;
	struct qkd_pool	*pool;

	daemon_tls(&q->q_conf.qc_common, &q->q_srv, NULL);
	if ((pool = qkd_pool_open(q->q_conf.qc_common.cc_store, base,
	    qkdd_durable, q)) == NULL)
		fatalx("cannot open store %s", q->q_conf.qc_common.cc_store);
	q->q_kme.k_conf = &q->q_conf;
	q->q_kme.k_pool = pool;
	if ((q->q_kme.k_links = qkd_links_new(base, &q->q_conf,
	    pool)) == NULL)
		fatalx("cannot start the QKD links");
	if ((q->q_http = qkd_http_new(base, q->q_srv, q->q_topo.t_qkd.ep_host,
	    q->q_topo.t_qkd.ep_port, &q->q_kme)) == NULL)
		return NULL;
	return &q->q_kme;
}

static void
qkdd_ready(void *env, char *status, size_t len)
{
	struct qkdd	*q = env;

	log_info("started on %s:%u: %zu links, key_size %u, "
	    "max_key_per_request %u", q->q_topo.t_qkd.ep_host,
	    q->q_topo.t_qkd.ep_port, q->q_conf.qc_nlinks,
	    q->q_conf.qc_key_size, q->q_conf.qc_max_per_request);
	snprintf(status, len, "serving keys on %zu links", q->q_conf.qc_nlinks);
}

/*
 * SIGHUP: take over max_key_per_request and the settings of the running
 * links that the file changes (qkd_links_reconfigure), and log what only
 * a restart changes: key_size, the qkd endpoint, links added or removed.
 * Of the topology only the qkd endpoint matters.  Keys already in the
 * pools are never touched.
 */
static void
qkdd_reload(void *env, const void *next, const struct topo *nt,
    int restart)
{
	struct qkdd		*q = env;
	struct qkdd_conf	*rc = &q->q_conf;
	const struct qkdd_conf	*nc = next;
	size_t			 n;

	(void)restart;
	if (strcmp(nt->t_qkd.ep_host, q->q_topo.t_qkd.ep_host) != 0 ||
	    nt->t_qkd.ep_port != q->q_topo.t_qkd.ep_port)
		log_warnx("reload: the qkd endpoint in %s changed: that takes "
		    "a restart", rc->qc_common.cc_topology);
	if (nc->qc_key_size != rc->qc_key_size)
		log_warnx("reload: key_size %u (running %u) takes a restart",
		    nc->qc_key_size, rc->qc_key_size);
	n = qkd_links_reconfigure(q->q_kme.k_links, rc, nc);
	rc->qc_max_per_request = nc->qc_max_per_request;
	log_info("reloaded: %zu links changed, max_key_per_request %u, "
	    "verbose %d", n, rc->qc_max_per_request, rc->qc_common.cc_verbose);
}

static void
qkdd_free(void *env)
{
	struct qkdd	*q = env;

	qkd_http_free(q->q_http);
	q->q_http = NULL;
	qkd_links_free(q->q_kme.k_links);
	qkd_pool_close(q->q_kme.k_pool);
	SSL_CTX_free(q->q_srv);
}

static const struct daemon_ops qkdd_ops = {
	.do_name = "qkdd",
	.do_conf_size = sizeof(struct qkdd_conf),
	.do_need = { "qkd" },
	.do_conf_load = qkdd_conf_read,
	.do_conf_free = qkdd_conf_release,
	.do_check = qkdd_check,
	.do_start = qkdd_start,
	.do_status = qkd_ops_status,
	.do_ready = qkdd_ready,
	.do_reload = qkdd_reload,
	.do_free = qkdd_free,
};

int
main(int argc, char **argv)
{
	static struct qkdd	q;

	return daemon_main(argc, argv, &qkdd_ops, &q, &q.q_conf,
	    &q.q_topo);
}
