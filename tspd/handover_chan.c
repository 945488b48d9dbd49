/*
 * The cloud channels of tspd's handovers (chan.h): one long-lived mutual
 * TLS channel to schedd, opened at start, carrying A1 and A2 (as TSPA)
 * and A3 (as TSPB), and one to each TSP this TSP hands vehicles over to,
 * opened on the first M8 to it and kept, carrying M8.  Handovers share
 * them by request id and never open a connection of their own; each
 * channel checks the peer's role (and a TSP's CN) on every connect.
 */
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "ids.h"
#include "log.h"

#include "tspd.h"

/* A channel to one TSP at one provisioning address. */
struct tspd_peerchan {
	char				 pc_id[NAME_MAXLEN + 1];
	struct chan			*pc_chan;
	TAILQ_ENTRY(tspd_peerchan)	 pc_entry;
};

struct tspd_chans {
	struct chan			*tc_sched;
	TAILQ_HEAD(, tspd_peerchan)	 tc_peers;
};

/* Options of a cloud channel to a peer of role with certificate cn. */
static void
hchan_opts(struct tspd *env, struct chan_opts *o, const char *name,
    const char *host, uint16_t port, const char *cn, const char *role)
{
	memset(o, 0, sizeof(*o));
	o->cho_name = name;
	o->cho_host = host;
	o->cho_port = port;
	o->cho_conn.co_tls = env->t_tls_client;
	o->cho_conn.co_max_frame = env->t_conf.tc_common.cc_max_frame;
	o->cho_conn.co_connect_ms = (int)env->t_conf.tc_handover_timeout_ms;
	o->cho_conn.co_peer_cn = cn;
	o->cho_conn.co_peer_role = role;
	o->cho_conn.co_barrier = env->t_barrier;
}

void
tspd_handover_chan_open(struct tspd *env)
{
	struct chan_opts	o;

	env->t_chans = xcalloc(1, sizeof(*env->t_chans));
	TAILQ_INIT(&env->t_chans->tc_peers);
	hchan_opts(env, &o, "sched", env->t_topo.t_sched.ep_host,
	    env->t_topo.t_sched.ep_port, NULL, "sched");
	if ((env->t_chans->tc_sched = chan_new(env->t_base, &o)) == NULL)
		fatalx("cannot make the scheduler channel");
}

void
tspd_handover_chan_free(struct tspd *env)
{
	struct tspd_peerchan	*pc;

	if (env->t_chans == NULL)
		return;
	while ((pc = TAILQ_FIRST(&env->t_chans->tc_peers)) != NULL) {
		TAILQ_REMOVE(&env->t_chans->tc_peers, pc, pc_entry);
		chan_free(pc->pc_chan);
		free(pc);
	}
	chan_free(env->t_chans->tc_sched);
	free(env->t_chans);
	env->t_chans = NULL;
}

struct chan *
tspd_handover_chan_sched(struct tspd *env)
{
	return env->t_chans != NULL ? env->t_chans->tc_sched : NULL;
}

struct chan *
tspd_handover_chan_peer(struct tspd *env, const char *tsp_id,
    const char *host, uint16_t port)
{
	struct tspd_peerchan	*pc;
	struct chan_opts	 o;

	if (env->t_chans == NULL)
		return NULL;
	TAILQ_FOREACH(pc, &env->t_chans->tc_peers, pc_entry)
		if (strcmp(pc->pc_id, tsp_id) == 0 &&
		    chan_is_to(pc->pc_chan, host, port))
			return pc->pc_chan;
	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		return NULL;
	snprintf(pc->pc_id, sizeof(pc->pc_id), "%s", tsp_id);
	hchan_opts(env, &o, tsp_id, host, port, tsp_id, "tsp");
	if ((pc->pc_chan = chan_new(env->t_base, &o)) == NULL) {
		free(pc);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&env->t_chans->tc_peers, pc, pc_entry);
	log_debug("channel %s: made for handovers to %s:%u", tsp_id, host,
	    port);
	return pc->pc_chan;
}
