/*
 * fillerd: the quantum key filling machine (PROTOCOL F1).  Fills security
 * chips for factories and syncs every fill record to every TSP.
 */
#include <stdio.h>

#include "daemon.h"
#include "log.h"
#include "server.h"
#include "topo.h"

struct fillerd {
	struct fillerd_conf	 fd_conf;
	struct topo		 fd_topo;
	struct outboxd		*fd_svc;
};

static int
fillerd_conf_read(const char *path, void *conf)
{
	return fillerd_conf_load(path, conf);
}

static void
fillerd_conf_release(void *conf)
{
	fillerd_conf_free(conf);
}

/* The factory listener, the fill store and the outbox to the TSPs. */
static void *
fillerd_start(void *env, struct event_base *base)
{
	struct fillerd	*fd = env;

	fd->fd_svc = outboxd_new(base, &filler_proto, &fd->fd_conf,
	    &fd->fd_topo, &fd->fd_topo.t_filler);
	return fd->fd_svc;
}

static void
fillerd_ready(void *env, char *status, size_t len)
{
	struct fillerd	*fd = env;

	log_info("started: m=%u k=%u n=%u", fd->fd_conf.fc_m, fd->fd_conf.fc_k,
	    fd->fd_conf.fc_n);
	snprintf(status, len, "filling chips for %zu TSPs",
	    fd->fd_topo.t_ntsps);
}

/* SIGHUP: take over the fill parameters (m, k, n). */
static void
fillerd_reload(void *env, const void *next, const struct topo *nt,
    int restart)
{
	struct fillerd			*fd = env;
	const struct fillerd_conf	*nc = next;

	(void)restart;
	topo_reload_restart_only(&fd->fd_topo, nt);
	fd->fd_conf.fc_m = nc->fc_m;
	fd->fd_conf.fc_k = nc->fc_k;
	fd->fd_conf.fc_n = nc->fc_n;
	log_info("reloaded: m=%u k=%u n=%u verbose=%d", nc->fc_m, nc->fc_k,
	    nc->fc_n, nc->fc_common.cc_verbose);
}

static void
fillerd_free(void *env)
{
	struct fillerd	*fd = env;

	outboxd_free(fd->fd_svc);
}

static const struct daemon_ops fillerd_ops = {
	.do_name = "fillerd",
	.do_conf_size = sizeof(struct fillerd_conf),
	.do_need = { "filler" },
	.do_conf_load = fillerd_conf_read,
	.do_conf_free = fillerd_conf_release,
	.do_start = fillerd_start,
	.do_status = outboxd_status,
	.do_ready = fillerd_ready,
	.do_reload = fillerd_reload,
	.do_free = fillerd_free,
};

int
main(int argc, char **argv)
{
	static struct fillerd	fd;

	return daemon_main(argc, argv, &fillerd_ops, &fd, &fd.fd_conf,
	    &fd.fd_topo);
}
