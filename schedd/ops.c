/*
 * schedd's operations interface: its part of the admin endpoint's /status
 * (handovers in flight, done and failed, read from the store; the key
 * reserve of each TSP) and its metrics (handovers in flight, results, the
 * latency from A1 to M7, and the key reserves by TSP).  The store holds
 * key_IDs, never keys, and neither do these views.
 */
#include <string.h>

#include "metrics.h"
#include "sched.h"
#include "store.h"

#define SCHED_STATUS_MAX	1000	/* entries of a /status list at most */

static struct metric	*m_inflight, *m_results, *m_seconds;
static struct metric	*m_rkeys, *m_rwaiting, *m_rrefills, *m_rfetched;
static struct metric	*m_rfailures, *m_rmisses, *m_rexpired;

/* Scrape time: handovers in flight from the store, the key reserves. */
static void
sched_ops_collect(void *arg)
{
	struct sched			*s = arg;
	struct sched_db_counts		 c;
	struct keysrc_reserve_stats	 st;
	const char			*tsp;
	size_t				 i;

	if (s->s_db != NULL && sched_db_counts(s->s_db, &c) == 0)
		metric_set(m_inflight, NULL, (double)c.sc_inflight);
	for (i = 0; i < s->s_topo->t_ntsps; i++) {
		if (s->s_reserves[i] == NULL)
			continue;
		keysrc_reserve_stats(s->s_reserves[i], &st);
		tsp = s->s_topo->t_tsps[i].tt_id;
		metric_set(m_rkeys, tsp, (double)st.rs_keys);
		metric_set(m_rwaiting, tsp, (double)st.rs_waiting);
		metric_set(m_rrefills, tsp, (double)st.rs_refills);
		metric_set(m_rfetched, tsp, (double)st.rs_fetched);
		metric_set(m_rfailures, tsp, (double)st.rs_failures);
		metric_set(m_rmisses, tsp, (double)st.rs_misses);
		metric_set(m_rexpired, tsp, (double)st.rs_expired);
	}
}

/* Register the metrics once; the counting function may come first. */
static void
sched_ops_metrics(void)
{
	if (m_inflight != NULL)
		return;
	m_inflight = metric_gauge("qroam_handovers_in_flight",
	    "Handovers neither done nor failed.", NULL);
	m_results = metric_counter("qroam_handovers_total",
	    "Handovers ended, by result (ok: M7 sent; failed).", "result");
	m_seconds = metric_histogram("qroam_handover_seconds",
	    "From A1 received to M7 sent.", metrics_latency_bounds,
	    metrics_latency_nbounds);
	m_rkeys = metric_gauge("qroam_key_reserve_keys",
	    "Quantum keys held ahead for a TSP.", "tsp");
	m_rwaiting = metric_gauge("qroam_key_reserve_waiting",
	    "Handovers waiting for a key of a TSP's reserve.", "tsp");
	m_rrefills = metric_counter("qroam_key_reserve_refills_total",
	    "enc_keys calls for a TSP's reserve answered with keys.", "tsp");
	m_rfetched = metric_counter("qroam_key_reserve_fetched_total",
	    "Keys fetched from the KME for a TSP's reserve.", "tsp");
	m_rfailures = metric_counter("qroam_key_reserve_kme_failures_total",
	    "enc_keys calls for a TSP's reserve that brought no key.", "tsp");
	m_rmisses = metric_counter("qroam_key_reserve_misses_total",
	    "Keys asked of a TSP's reserve while it held none.", "tsp");
	m_rexpired = metric_counter("qroam_key_reserve_expired_total",
	    "Keys of a TSP's reserve wiped unused.", "tsp");
	/* Both results from the start, so that rate() sees the first one. */
	metric_add(m_results, "ok", 0);
	metric_add(m_results, "failed", 0);
}

void
sched_ops_init(struct sched *s)
{
	sched_ops_metrics();
	metrics_collector_add(sched_ops_collect, s);
}

void
sched_ops_free(struct sched *s)
{
	metrics_collector_remove(sched_ops_collect, s);
}

void
sched_metric_handover(const char *result, uint64_t created_ms)
{
	uint64_t	now;

	sched_ops_metrics();
	metric_inc(m_results, result);
	if (created_ms == 0)
		return;
	now = store_now_ms();
	metric_observe(m_seconds, now > created_ms ?
	    (double)(now - created_ms) / 1000.0 : 0.0);
}

/* One TSP's reserve for /status. */
static json_t *
sched_reserve_json(const struct keysrc_reserve *r)
{
	struct keysrc_reserve_stats	st;

	keysrc_reserve_stats(r, &st);
	return json_pack("{s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:s?}",
	    "keys", (json_int_t)st.rs_keys,
	    "waiting", (json_int_t)st.rs_waiting,
	    "asked", (json_int_t)st.rs_asked,
	    "backoff", st.rs_backoff,
	    "refills", (json_int_t)st.rs_refills,
	    "fetched", (json_int_t)st.rs_fetched,
	    "kme_failures", (json_int_t)st.rs_failures,
	    "served", (json_int_t)st.rs_served,
	    "misses", (json_int_t)st.rs_misses,
	    "expired", (json_int_t)st.rs_expired,
	    "last_error", st.rs_last_error[0] != '\0' ? st.rs_last_error :
	    NULL);
}

/* "key_reserve" and "key_reserves" {tsp: reserve} of /status. */
static void
sched_status_reserves(struct sched *s, json_t *obj)
{
	json_t	*per;
	size_t	 i;

	json_object_set_new(obj, "key_reserve",
	    json_integer((json_int_t)s->s_conf->sc_key_reserve));
	if ((per = json_object()) == NULL)
		return;
	for (i = 0; i < s->s_topo->t_ntsps; i++)
		if (s->s_reserves[i] != NULL)
			json_object_set_new(per, s->s_topo->t_tsps[i].tt_id,
			    sched_reserve_json(s->s_reserves[i]));
	json_object_set_new(obj, "key_reserves", per);
}

json_t *
sched_status(void *arg, const char *what, json_t *obj)
{
	struct sched		*s = arg;
	struct sched_db_counts	 c;

	if (what == NULL) {
		sched_status_reserves(s, obj);
		if (sched_db_counts(s->s_db, &c) == -1)
			return obj;
		json_object_set_new(obj, "handovers_in_flight",
		    json_integer(c.sc_inflight));
		json_object_set_new(obj, "handovers_done",
		    json_integer(c.sc_done));
		json_object_set_new(obj, "handovers_failed",
		    json_integer(c.sc_failed));
		return obj;
	}
	if (strcmp(what, "handovers") == 0)
		return sched_db_inflight(s->s_db, SCHED_STATUS_MAX);
	return NULL;
}
