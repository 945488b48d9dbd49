/*
 * schedd's long-lived channels to the TSPs (chan.h): one mutual TLS
 * channel to each TSP's provisioning listener, made on the first A2
 * forwarded to it and kept, with the TSP's CN and role tsp checked on
 * every connect.  Every forwarded A2 is a request on it.
 *
 * schedd dials the TSPs rather than answering on the connections they
 * opened to it: the direction of each exchange stays the one the
 * protocol and the listeners' role checks define (A2 arrives at TSPB's
 * provisioning listener from role sched), and forwarding does not depend
 * on TSPB having dialled schedd first or on which of its connections is
 * the current one.
 */
#include <sys/queue.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sched.h"

/* The channel to one TSP. */
struct sched_chan {
	const struct topo_tsp		*sc_tsp;
	struct chan			*sc_chan;
	TAILQ_ENTRY(sched_chan)		 sc_entry;
};

struct sched_chans {
	TAILQ_HEAD(, sched_chan)	 scs_list;
};

struct chan *
sched_chan_tsp(struct sched *s, const struct topo_tsp *tt)
{
	struct sched_chan	*sc;
	struct chan_opts	 o;

	if (tt->tt_provision.ep_port == 0)
		return NULL;
	if (s->s_chans == NULL) {
		if ((s->s_chans = calloc(1, sizeof(*s->s_chans))) == NULL)
			return NULL;
		TAILQ_INIT(&s->s_chans->scs_list);
	}
	TAILQ_FOREACH(sc, &s->s_chans->scs_list, sc_entry)
		if (sc->sc_tsp == tt)
			return sc->sc_chan;
	if ((sc = calloc(1, sizeof(*sc))) == NULL)
		return NULL;
	memset(&o, 0, sizeof(o));
	o.cho_name = tt->tt_id;
	o.cho_host = tt->tt_provision.ep_host;
	o.cho_port = tt->tt_provision.ep_port;
	o.cho_conn.co_tls = s->s_client_tls;
	o.cho_conn.co_max_frame = s->s_conf->sc_common.cc_max_frame;
	o.cho_conn.co_connect_ms = (int)s->s_conf->sc_handover_timeout_ms;
	o.cho_conn.co_peer_cn = tt->tt_id;
	o.cho_conn.co_peer_role = "tsp";
	if ((sc->sc_chan = chan_new(s->s_base, &o)) == NULL) {
		free(sc);
		return NULL;
	}
	sc->sc_tsp = tt;
	TAILQ_INSERT_TAIL(&s->s_chans->scs_list, sc, sc_entry);
	return sc->sc_chan;
}

void
sched_chans_free(struct sched *s)
{
	struct sched_chan	*sc;

	if (s->s_chans == NULL)
		return;
	while ((sc = TAILQ_FIRST(&s->s_chans->scs_list)) != NULL) {
		TAILQ_REMOVE(&s->s_chans->scs_list, sc, sc_entry);
		chan_free(sc->sc_chan);
		free(sc);
	}
	free(s->s_chans);
	s->s_chans = NULL;
}
