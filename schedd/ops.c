/*
 * schedd's operations interface: its part of the admin endpoint's /status
 * (handovers in flight, done and failed, read from the store) and its
 * metrics (handovers in flight, results, and the latency from A1 to M7).
 * The store holds key_IDs, never keys, and neither do these views.
 */
#include <string.h>

#include "metrics.h"
#include "sched.h"
#include "store.h"

#define SCHED_STATUS_MAX	1000	/* entries of a /status list at most */

static struct metric	*m_inflight, *m_results, *m_seconds;

/* Scrape time: handovers in flight from the store. */
static void
sched_ops_collect(void *arg)
{
	struct sched		*s = arg;
	struct sched_db_counts	 c;

	if (s->s_db != NULL && sched_db_counts(s->s_db, &c) == 0)
		metric_set(m_inflight, NULL, (double)c.sc_inflight);
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

json_t *
sched_status(void *arg, const char *what, json_t *obj)
{
	struct sched		*s = arg;
	struct sched_db_counts	 c;

	if (what == NULL) {
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
