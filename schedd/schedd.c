/*
 * schedd: the cloud scheduling platform of the handover (PROTOCOL F6).
 * Takes A1/A2/A3 from the TSPs of the topology over mutual TLS, gets CK1
 * and CK2 from the QKD layer through its ETSI GS QKD 014 key source,
 * forwards A2 to the target TSP and answers the initiator with M7.  Each
 * handover is a state machine with a timeout, persisted with an audit log
 * of IDs and times (never keys) in its SQLite store.
 */
#include <stdio.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "sched.h"
#include "topo.h"

struct schedd {
	struct schedd_conf	 sd_conf;	/* the scheduler reads it */
	struct topo		 sd_topo;
	struct sched		*sd_sched;
	SSL_CTX			*sd_srv, *sd_cli;
};

static int
schedd_conf_read(const char *path, void *conf)
{
	return schedd_conf_load(path, conf);
}

static void
schedd_conf_release(void *conf)
{
	schedd_conf_free(conf);
}

/* The TSP listener, the store, the key source and the operations. */
static void *
schedd_start(void *env, struct event_base *base)
{
	struct schedd	*sd = env;

	daemon_tls(&sd->sd_conf.sc_common, &sd->sd_srv, &sd->sd_cli);
	sd->sd_sched = sched_new(base, &sd->sd_conf, &sd->sd_topo, sd->sd_srv,
	    sd->sd_cli);
	if (sd->sd_sched != NULL)
		sched_ops_init(sd->sd_sched);
	return sd->sd_sched;
}

static void
schedd_ready(void *env, char *status, size_t len)
{
	struct schedd	*sd = env;

	log_info("started: handover_timeout=%llums ck2_lifetime=%llums "
	    "key_reserve=%llu",
	    (unsigned long long)sd->sd_conf.sc_handover_timeout_ms,
	    (unsigned long long)sd->sd_conf.sc_ck2_lifetime_ms,
	    (unsigned long long)sd->sd_conf.sc_key_reserve);
	snprintf(status, len, "scheduling handovers on %s:%u",
	    sd->sd_topo.t_sched.ep_host, sd->sd_topo.t_sched.ep_port);
}

/*
 * SIGHUP: take over handover_timeout (for handovers from now on),
 * ck2_lifetime and key_reserve (the reserves grow or shrink at once).
 */
static void
schedd_reload(void *env, const void *next, const struct topo *nt,
    int restart)
{
	struct schedd			*sd = env;
	const struct schedd_conf	*conf = next;

	restart += topo_reload_restart_only(&sd->sd_topo, nt);
	if (conf->sc_kme_tls_min != sd->sd_conf.sc_kme_tls_min) {
		log_warnx("reload: kme_tls_min changed; it takes effect on "
		    "restart");
		restart++;
	}
	sd->sd_conf.sc_handover_timeout_ms = conf->sc_handover_timeout_ms;
	sd->sd_conf.sc_ck2_lifetime_ms = conf->sc_ck2_lifetime_ms;
	sd->sd_conf.sc_key_reserve = conf->sc_key_reserve;
	if (sd->sd_sched != NULL)
		sched_keys_resize(sd->sd_sched);
	log_info("reloaded: verbose %d, handover_timeout %llums, ck2_lifetime "
	    "%llums, key_reserve %llu%s", log_getverbose(),
	    (unsigned long long)conf->sc_handover_timeout_ms,
	    (unsigned long long)conf->sc_ck2_lifetime_ms,
	    (unsigned long long)conf->sc_key_reserve,
	    restart > 0 ? " (settings that need a restart are kept)" : "");
}

static void
schedd_free(void *env)
{
	struct schedd	*sd = env;

	sched_ops_free(sd->sd_sched);
	sched_free(sd->sd_sched);
	SSL_CTX_free(sd->sd_srv);
	SSL_CTX_free(sd->sd_cli);
}

static const struct daemon_ops schedd_ops = {
	.do_name = "schedd",
	.do_conf_size = sizeof(struct schedd_conf),
	.do_need = { "sched", "qkd" },
	.do_conf_load = schedd_conf_read,
	.do_conf_free = schedd_conf_release,
	.do_start = schedd_start,
	.do_status = sched_status,
	.do_ready = schedd_ready,
	.do_reload = schedd_reload,
	.do_free = schedd_free,
};

int
main(int argc, char **argv)
{
	static struct schedd	sd;

	return daemon_main(argc, argv, &schedd_ops, &sd, &sd.sd_conf,
	    &sd.sd_topo);
}
