/*
 * kmpd: the key management platform of PROTOCOL 11.1 (seed 001).  The
 * vehicle's security unit and the cloud encryptor each apply for the key
 * of one application session, sealed under their initial keys; kmpd takes
 * one quantum key per session from its key source (the QKD layer over
 * ETSI GS QKD 014, or its random source) and answers each party with it
 * sealed under that party's initial key, once.  Its SQLite store holds the
 * identities, the sessions and an audit log without keys.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "kmp.h"
#include "log.h"
#include "topo.h"

struct kmpd {
	struct kmpd_conf	 kd_conf;	/* the platform reads it */
	struct topo		 kd_topo;
	struct kmp		*kd_kmp;
	SSL_CTX			*kd_srv, *kd_cli;
};

static int
kmpd_conf_read(const char *path, void *conf)
{
	return kmpd_conf_load(path, conf);
}

static void
kmpd_conf_release(void *conf)
{
	kmpd_conf_free(conf);
}

/* The ETSI 014 key source needs the topology's qkd line. */
static int
kmpd_check(const char *path, const void *conf, const struct topo *t)
{
	const struct kmpd_conf	*kc = conf;

	if (strcmp(kc->kc_key_source, "etsi014") == 0)
		return topo_need(t, path, "qkd");
	return 0;
}

static void *
kmpd_start(void *env, struct event_base *base)
{
	struct kmpd	*kd = env;

	daemon_tls(&kd->kd_conf.kc_common, &kd->kd_srv, &kd->kd_cli);
	kd->kd_kmp = kmp_new(base, &kd->kd_conf, &kd->kd_topo, kd->kd_srv,
	    kd->kd_cli);
	if (kd->kd_kmp != NULL)
		kmp_ops_init(kd->kd_kmp);
	return kd->kd_kmp;
}

static void
kmpd_ready(void *env, char *status, size_t len)
{
	struct kmpd	*kd = env;

	log_info("started: key_source=%s max_skew=%llums key_timeout=%llums",
	    kd->kd_conf.kc_key_source,
	    (unsigned long long)kd->kd_conf.kc_max_skew_ms,
	    (unsigned long long)kd->kd_conf.kc_key_timeout_ms);
	snprintf(status, len, "serving applications on %s:%u and %s:%u",
	    kd->kd_topo.t_kmp.ep_host, kd->kd_topo.t_kmp.ep_port,
	    kd->kd_topo.t_kmp_tls.ep_host, kd->kd_topo.t_kmp_tls.ep_port);
}

/*
 * SIGHUP: take over max_skew (for applications from now on); the key
 * source and its timeout need a restart.
 */
static void
kmpd_reload(void *env, const void *next, const struct topo *nt, int restart)
{
	struct kmpd		*kd = env;
	const struct kmpd_conf	*conf = next;

	restart += topo_reload_restart_only(&kd->kd_topo, nt);
	if (strcmp(conf->kc_key_source, kd->kd_conf.kc_key_source) != 0 ||
	    strcmp(conf->kc_key_peer, kd->kd_conf.kc_key_peer) != 0 ||
	    conf->kc_key_timeout_ms != kd->kd_conf.kc_key_timeout_ms) {
		log_warnx("key_source and key_timeout take effect on restart");
		restart++;
	}
	kd->kd_conf.kc_max_skew_ms = conf->kc_max_skew_ms;
	log_info("reloaded: verbose %d, max_skew %llums%s", log_getverbose(),
	    (unsigned long long)conf->kc_max_skew_ms,
	    restart > 0 ? " (settings that need a restart are kept)" : "");
}

static void
kmpd_free(void *env)
{
	struct kmpd	*kd = env;

	if (kd->kd_kmp != NULL)
		kmp_ops_free(kd->kd_kmp);
	kmp_free(kd->kd_kmp);
	SSL_CTX_free(kd->kd_srv);
	SSL_CTX_free(kd->kd_cli);
}

static const struct daemon_ops kmpd_ops = {
	.do_name = "kmpd",
	.do_conf_size = sizeof(struct kmpd_conf),
	.do_need = { "kmp", "kmp_tls" },
	.do_conf_load = kmpd_conf_read,
	.do_conf_free = kmpd_conf_release,
	.do_check = kmpd_check,
	.do_start = kmpd_start,
	.do_status = kmp_status,
	.do_ready = kmpd_ready,
	.do_reload = kmpd_reload,
	.do_free = kmpd_free,
};

int
main(int argc, char **argv)
{
	static struct kmpd	kd;

	return daemon_main(argc, argv, &kmpd_ops, &kd, &kd.kd_conf,
	    &kd.kd_topo);
}
