/*
 * tspd: the regional cloud (TSP) of qroam.  Its part of the daemon's life
 * (daemon.h): what its configuration needs, start-up, reload and
 * shutdown; the protocol lives in provision.c, auth.c, session.c,
 * vehicle.c and, for the handover, handover*.c and region.c; what the
 * instances of a region tell each other, in cloud.c and cloudbus.c.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "daemon.h"
#include "ids.h"
#include "keysrc.h"
#include "log.h"
#include "store.h"
#include "tls.h"
#include "topo.h"

#include "tspd.h"

/* The configuration file, whose id must be a valid tsp_id. */
static int
tspd_conf_read(const char *path, void *conf)
{
	struct tspd_config	*tc = conf;

	if (tspd_config_load(path, tc) == -1)
		return -1;
	if (!id_valid_name(tc->tc_common.cc_id)) {
		fprintf(stderr, "%s: missing or bad \"id\" (the tsp_id)\n",
		    path);
		tspd_config_free(tc);
		return -1;
	}
	return 0;
}

static void
tspd_conf_release(void *conf)
{
	tspd_config_free(conf);
}

/* This TSP must be in the topology, with its two endpoints. */
static int
tspd_check(const char *path, const void *conf, const struct topo *topo)
{
	const struct tspd_config	*tc = conf;
	const struct topo_tsp		*self;

	if ((self = topo_tsp(topo, tc->tc_common.cc_id)) == NULL)
		fprintf(stderr, "%s: tsp %s is not in topology %s\n", path,
		    tc->tc_common.cc_id, tc->tc_common.cc_topology);
	else if (self->tt_vehicle.ep_port == 0 ||
	    self->tt_provision.ep_port == 0)
		fprintf(stderr, "%s: tsp %s has no vehicle and provision "
		    "endpoints\n", tc->tc_common.cc_topology,
		    tc->tc_common.cc_id);
	else
		return 0;
	return -1;
}

/* "tspd[tsp_id]" */
static void
tspd_logname(const void *conf, char *buf, size_t len)
{
	const struct tspd_config	*tc = conf;

	snprintf(buf, len, "tspd[%s]", tc->tc_common.cc_id);
}

/*
 * The handover needs the scheduler and a KME: with both in the topology,
 * make the client TLS context and the key source; else say once that
 * handovers are off.  Handovers an earlier run left unfinished fail.
 */
static void
tspd_start_handover(struct tspd *env)
{
	struct tspd_config	*conf = &env->t_conf;
	struct topo		*t = &env->t_topo;

	tspd_vehicle_init(env);
	tspd_handover_offer_init(env);
	tspd_handover_init(env);
	tspd_handover_in_init(env);
	if (t->t_sched.ep_port == 0 || t->t_qkd.ep_port == 0) {
		log_info("handover disabled: the topology names no %s",
		    t->t_sched.ep_port == 0 ? "scheduler (sched)" :
		    "key management entity (qkd)");
		return;
	}
	env->t_tls_client = tls_client_ctx(conf->tc_common.cc_ca,
	    conf->tc_common.cc_cert, conf->tc_common.cc_key);
	env->t_tls_kme = tls_client_ctx_min(conf->tc_common.cc_ca,
	    conf->tc_common.cc_cert, conf->tc_common.cc_key,
	    conf->tc_kme_tls_min);
	if (env->t_tls_client == NULL || env->t_tls_kme == NULL)
		fatalx("cannot load the TLS client credentials");
	env->t_keysrc = keysrc_new(KEYSRC_DEFAULT, env->t_base,
	    t->t_qkd.ep_host, t->t_qkd.ep_port, env->t_tls_kme,
	    (int)conf->tc_handover_timeout_ms);
	if (env->t_keysrc == NULL)
		fatalx("cannot start the key source");
	tspd_handover_chan_open(env);
	log_info("handover enabled: scheduler %s:%u, KME %s:%u, look_ahead "
	    "%llums", t->t_sched.ep_host, t->t_sched.ep_port, t->t_qkd.ep_host,
	    t->t_qkd.ep_port, (unsigned long long)conf->tc_look_ahead_ms);
}

/* The barrier's count of the store's commits. */
static uint64_t
tspd_written(void *arg)
{
	struct tspd	*env = arg;

	return tspdb_written(env->t_db);
}

/* The committer made the first n commits durable: release what waited. */
static void
tspd_durable(uint64_t n, void *arg)
{
	struct tspd	*env = arg;

	conn_barrier_release(env->t_barrier, n);
	tspd_batch_durable(env, n);
}

/* Open the store, the TLS contexts and both listeners. */
static void
tspd_open(struct tspd *env)
{
	struct tspd_config	*conf = &env->t_conf;
	struct conn_opts	 vo, po;
	const struct endpoint	*lv, *lp;
	int			 n;

	if ((env->t_db = tspdb_open(conf->tc_common.cc_store, env->t_base,
	    tspd_durable, env, conf->tc_instance, store_now_ms(), &n)) == NULL)
		fatalx("cannot open store %s",
		    tspdb_store_label(conf->tc_common.cc_store));
	log_info("store: %s", tspdb_backend_name(env->t_db));
	if (n > 0)
		log_info("%d handovers left unfinished by an earlier run "
		    "failed", n);
	env->t_barrier = conn_barrier_new(tspd_written, env);
	tspd_batch_init(env);
	tspd_prv_init(env, conf->tc_prv_cache);
	tspd_auth_init(env);
	tspd_authidle_init(env);
	env->t_tls = tls_server_ctx(conf->tc_common.cc_ca,
	    conf->tc_common.cc_cert, conf->tc_common.cc_key);
	if (env->t_tls == NULL)
		fatalx("cannot load the TLS credentials");
	tspd_start_handover(env);
	tspd_cloud_start(env);

	memset(&vo, 0, sizeof(vo));
	vo.co_max_frame = conf->tc_common.cc_max_frame;
	vo.co_idle_ms = (int)conf->tc_idle_timeout_ms;
	vo.co_barrier = env->t_barrier;
	vo.co_reuse_port = conf->tc_reuse_port;
	po = vo;
	po.co_tls = env->t_tls;
	lv = conf->tc_listen_vehicle.ep_port != 0 ? &conf->tc_listen_vehicle :
	    &env->t_self->tt_vehicle;
	lp = conf->tc_listen_provision.ep_port != 0 ?
	    &conf->tc_listen_provision : &env->t_self->tt_provision;
	env->t_vehicle = listener_new(env->t_base, lv->ep_host, lv->ep_port,
	    &vo, &tspd_vehicle_cb, env);
	if (env->t_vehicle == NULL)
		fatalx("cannot listen on the vehicle endpoint");
	env->t_provision = listener_new(env->t_base, lp->ep_host, lp->ep_port,
	    &po, &tspd_provision_cb, env);
	if (env->t_provision == NULL)
		fatalx("cannot listen on the provision endpoint");
	log_info("started: vehicle %s:%u, provision %s:%u (mTLS), store %s%s",
	    lv->ep_host, lv->ep_port, lp->ep_host, lp->ep_port,
	    tspdb_store_label(conf->tc_common.cc_store),
	    conf->tc_reuse_port ? ", ports shared (reuse_port)" : "");
}

/*
 * Log the tspd settings of next that a reload cannot take over: the
 * listeners' idle timeout and the contents of the topology (addresses,
 * regions, scheduler and KME).  Returns their number.
 */
static int
tspd_reload_restart_only(const struct tspd *env,
    const struct tspd_config *next, const struct topo *topo)
{
	int	 n = 0;

	if (next->tc_idle_timeout_ms != env->t_conf.tc_idle_timeout_ms) {
		log_warnx("reload: idle_timeout changed; it takes effect on "
		    "restart");
		n++;
	}
	n += topo_reload_restart_only(&env->t_topo, topo);
	n += tspd_config_restart_only(&env->t_conf, next);
	return n;
}

/*
 * Find this TSP in the topology, open everything and start the
 * operations; the admin endpoint's /status reads env.
 */
static void *
tspd_start(void *arg, struct event_base *base)
{
	struct tspd	*env = arg;

	env->t_base = base;
	env->t_id = env->t_conf.tc_common.cc_id;
	env->t_self = topo_tsp(&env->t_topo, env->t_id);
	tspd_open(env);
	tspd_ops_init(env);
	return env;
}

static void
tspd_ready(void *arg, char *status, size_t len)
{
	struct tspd	*env = arg;

	snprintf(status, len, "tsp %s: vehicles on %s:%u", env->t_id,
	    env->t_self->tt_vehicle.ep_host, env->t_self->tt_vehicle.ep_port);
}

/*
 * SIGHUP: log what only a restart changes and take over the rest
 * (auth_skew, auth_fail, look_ahead, handover_timeout, ck2_lifetime,
 * auth_idle).
 */
static void
tspd_reload(void *arg, const void *next, const struct topo *topo,
    int restart)
{
	struct tspd			*env = arg;
	const struct tspd_config	*conf = next;

	restart += tspd_reload_restart_only(env, conf, topo);
	env->t_conf.tc_auth_skew_ms = conf->tc_auth_skew_ms;
	env->t_conf.tc_auth_fail_reply = conf->tc_auth_fail_reply;
	env->t_conf.tc_look_ahead_ms = conf->tc_look_ahead_ms;
	env->t_conf.tc_handover_timeout_ms = conf->tc_handover_timeout_ms;
	env->t_conf.tc_ck2_lifetime_ms = conf->tc_ck2_lifetime_ms;
	env->t_conf.tc_commit_delay_ms = conf->tc_commit_delay_ms;
	env->t_conf.tc_auth_idle_ms = conf->tc_auth_idle_ms;
	log_info("reloaded: verbose %d, auth_skew %llums, auth_fail %s, "
	    "look_ahead %llums, handover_timeout %llums, ck2_lifetime %llums%s",
	    log_getverbose(), (unsigned long long)conf->tc_auth_skew_ms,
	    conf->tc_auth_fail_reply ? "reply" : "drop",
	    (unsigned long long)conf->tc_look_ahead_ms,
	    (unsigned long long)conf->tc_handover_timeout_ms,
	    (unsigned long long)conf->tc_ck2_lifetime_ms,
	    restart > 0 ? " (settings that need a restart are kept)" : "");
}

/*
 * Let the committer make what is written durable, so the answers waiting
 * for it leave before the connections close; two seconds at most.
 */
static void
tspd_drain_commits(struct tspd *env)
{
	uint64_t	 deadline = store_now_ms() + 2000;

	while (tspdb_durable(env->t_db) < tspdb_written(env->t_db) &&
	    store_now_ms() < deadline)
		event_base_loop(env->t_base, EVLOOP_ONCE);
	event_base_loop(env->t_base, EVLOOP_NONBLOCK);
}

/* Close every connection and free what start-up allocated. */
static void
tspd_shutdown(void *arg)
{
	struct tspd	*env = arg;

	tspd_auth_free(env);
	tspd_batch_flush(env);
	tspd_drain_commits(env);
	tspd_ops_free(env);
	listener_free(env->t_vehicle);
	listener_free(env->t_provision);
	tspd_handover_shutdown(env);
	tspd_handover_in_shutdown(env);
	tspd_handover_chan_free(env);
	tspd_cloud_free(env);
	/* Let connections closed earlier finish their deferred teardown. */
	event_base_loop(env->t_base, EVLOOP_NONBLOCK);
	/* What still waits for the store is answered while its owners live. */
	tspd_batch_flush(env);
	tspd_store_drain(env);
	tspd_authidle_free(env);
	if (env->t_keysrc != NULL)
		keysrc_free(env->t_keysrc);
	tspd_handover_free(env);
	tspd_handover_in_free(env);
	tspd_handover_offer_free(env);
	tspd_vehicle_free(env);
	tspd_batch_free(env);
	tspd_prv_free(env);
	tspdb_close(env->t_db);
	conn_barrier_free(env->t_barrier);
	SSL_CTX_free(env->t_tls);
	SSL_CTX_free(env->t_tls_client);
	SSL_CTX_free(env->t_tls_kme);
}

static const struct daemon_ops tspd_ops = {
	.do_name = "tspd",
	.do_conf_size = sizeof(struct tspd_config),
	.do_conf_load = tspd_conf_read,
	.do_conf_free = tspd_conf_release,
	.do_check = tspd_check,
	.do_logname = tspd_logname,
	.do_start = tspd_start,
	.do_status = tspd_status,
	.do_prepare = tspd_prepare,
	.do_ready = tspd_ready,
	.do_reload = tspd_reload,
	.do_free = tspd_shutdown,
};

int
main(int argc, char *argv[])
{
	static struct tspd	env;

	return daemon_main(argc, argv, &tspd_ops, &env, &env.t_conf,
	    &env.t_topo);
}
