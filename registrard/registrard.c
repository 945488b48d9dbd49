/*
 * registrard: the trusted authority (PROTOCOL F2).  Binds vehicles to chips,
 * holds their key pairs and syncs every registration to every TSP.
 */
#include <stdio.h>

#include "daemon.h"
#include "log.h"
#include "server.h"
#include "topo.h"

struct registrard {
	struct registrard_conf	 rd_conf;
	struct topo		 rd_topo;
	struct outboxd		*rd_svc;
};

static int
registrard_conf_read(const char *path, void *conf)
{
	return registrard_conf_load(path, conf);
}

static void
registrard_conf_release(void *conf)
{
	registrard_conf_free(conf);
}

/* The registration listener, the store and the outbox to the TSPs. */
static void *
registrard_start(void *env, struct event_base *base)
{
	struct registrard	*rd = env;

	rd->rd_svc = outboxd_new(base, &registrar_proto, &rd->rd_conf,
	    &rd->rd_topo, &rd->rd_topo.t_registrar);
	if (rd->rd_svc == NULL)
		return NULL;
	if (registrar_start(outboxd_state(rd->rd_svc), base) == -1) {
		outboxd_free(rd->rd_svc);
		rd->rd_svc = NULL;
	}
	return rd->rd_svc;
}

static void
registrard_ready(void *env, char *status, size_t len)
{
	struct registrard	*rd = env;

	log_info("started: rsa_bits=%d key_pool=%zu", rd->rd_conf.rc_rsa_bits,
	    rd->rd_conf.rc_key_pool);
	snprintf(status, len, "registering vehicles for %zu TSPs",
	    rd->rd_topo.t_ntsps);
}

/* SIGHUP: take over rsa_bits and key_pool; workers takes a restart. */
static void
registrard_reload(void *env, const void *next, const struct topo *nt,
    int restart)
{
	struct registrard		*rd = env;
	const struct registrard_conf	*nc = next;

	(void)restart;
	topo_reload_restart_only(&rd->rd_topo, nt);
	if (nc->rc_workers != rd->rd_conf.rc_workers)
		log_warnx("reload: workers changed; it takes effect on restart");
	rd->rd_conf.rc_rsa_bits = nc->rc_rsa_bits;
	rd->rd_conf.rc_key_pool = nc->rc_key_pool;
	registrar_reload(outboxd_state(rd->rd_svc));
	log_info("reloaded: rsa_bits=%d key_pool=%zu verbose=%d",
	    nc->rc_rsa_bits, nc->rc_key_pool, nc->rc_common.cc_verbose);
}

static void
registrard_free(void *env)
{
	struct registrard	*rd = env;

	if (rd->rd_svc != NULL)
		registrar_stop(outboxd_state(rd->rd_svc));
	outboxd_free(rd->rd_svc);
}

static const struct daemon_ops registrard_ops = {
	.do_name = "registrard",
	.do_conf_size = sizeof(struct registrard_conf),
	.do_need = { "registrar" },
	.do_conf_load = registrard_conf_read,
	.do_conf_free = registrard_conf_release,
	.do_start = registrard_start,
	.do_status = outboxd_status,
	.do_ready = registrard_ready,
	.do_reload = registrard_reload,
	.do_free = registrard_free,
};

int
main(int argc, char **argv)
{
	static struct registrard	rd;

	return daemon_main(argc, argv, &registrard_ops, &rd, &rd.rd_conf,
	    &rd.rd_topo);
}
