/*
 * schedd's key reserves (PROTOCOL section 7): for every TSP of the
 * topology, key_reserve keys shared with it, fetched from the KME in
 * batches ahead of need, so that A1 and A3 find CK1 and CK2 in memory.
 * Each key is handed to one handover and wiped here; keys held an hour
 * unused are wiped too.  They are never written to the store.
 */
#include <string.h>

#include "log.h"
#include "sched.h"

int
sched_keys_init(struct sched *s)
{
	const struct topo	*t = s->s_topo;
	size_t			 i;

	for (i = 0; i < t->t_ntsps; i++) {
		s->s_reserves[i] = keysrc_reserve_new(s->s_keys, s->s_base,
		    t->t_tsps[i].tt_id, (size_t)s->s_conf->sc_key_reserve,
		    SCHEDD_KEY_RESERVE_LIFETIME_MS);
		if (s->s_reserves[i] == NULL) {
			log_warnx("cannot set up the key reserve for %s",
			    t->t_tsps[i].tt_id);
			return -1;
		}
	}
	return 0;
}

void
sched_keys_free(struct sched *s)
{
	size_t	i;

	for (i = 0; i < TOPO_MAXTSP; i++) {
		keysrc_reserve_free(s->s_reserves[i]);
		s->s_reserves[i] = NULL;
	}
}

void
sched_keys_resize(struct sched *s)
{
	size_t	i;

	for (i = 0; i < s->s_topo->t_ntsps; i++)
		if (s->s_reserves[i] != NULL)
			(void)keysrc_reserve_resize(s->s_reserves[i],
			    (size_t)s->s_conf->sc_key_reserve);
}

struct keysrc_reserve *
sched_keys_reserve(struct sched *s, const char *tsp_id)
{
	const struct topo_tsp	*tt = topo_tsp(s->s_topo, tsp_id);

	if (tt == NULL)
		return NULL;
	return s->s_reserves[tt - s->s_topo->t_tsps];
}
