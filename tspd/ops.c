/*
 * tspd's operations interface: its part of the admin endpoint's /status
 * (summary, sessions, vehicles, handovers in flight, all read from the
 * store) and its metrics (gauges counted in the store when scraped;
 * handover results and latency, telemetry stored).  The store is asked
 * when the request comes (tspd_prepare) and the endpoint answers once it
 * replied.  Nothing here reads or returns key material.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "store.h"

#include "tspd.h"

#define TSPD_STATUS_MAX	1000	/* entries of a /status list at most */

static struct metric	*m_sessions, *m_vehicles, *m_authenticated;
static struct metric	*m_inflight, *m_ck2;
static struct metric	*m_ho_source, *m_ho_target, *m_ho_seconds;
static struct metric	*m_telemetry;

/* What the store answered for the request being answered now. */
static struct {
	int			 v_counted;
	struct tspdb_counts	 v_counts;
	json_t			*v_view;
} view;

/* A request of the admin endpoint waiting for the store. */
struct ops_wait {
	struct tspdb_req	 ow_rq;
	struct admin_wait	*ow_wait;
	struct tspdb_counts	 ow_counts;
	json_t			*ow_view;
};

/* Scrape time: the gauges from the store's counts. */
static void
tspd_ops_collect(void *arg)
{
	const struct tspdb_counts *c = &view.v_counts;

	(void)arg;
	if (!view.v_counted)
		return;
	metric_set(m_vehicles, NULL, (double)c->c_vehicles);
	metric_set(m_authenticated, NULL, (double)c->c_authenticated);
	metric_set(m_sessions, NULL, (double)c->c_sessions);
	metric_set(m_inflight, NULL, (double)c->c_handovers);
	metric_set(m_ck2, NULL, (double)c->c_ck2_bindings);
}

/* Register the metrics once; the counting functions may come first. */
static void
tspd_ops_metrics(void)
{
	if (m_sessions != NULL)
		return;
	m_sessions = metric_gauge("qroam_sessions_open",
	    "Vehicle sessions open (store).", NULL);
	m_vehicles = metric_gauge("qroam_vehicles_registered",
	    "Vehicles registered with this TSP (M2).", NULL);
	m_authenticated = metric_gauge("qroam_vehicles_authenticated",
	    "Vehicles authenticated here, by F3 or by handover.", NULL);
	m_inflight = metric_gauge("qroam_handovers_in_flight",
	    "Handovers under way, as source or target.", NULL);
	m_ck2 = metric_gauge("qroam_ck2_bindings",
	    "CK2 bindings waiting for their M8.", NULL);
	m_ho_source = metric_counter("qroam_handovers_total",
	    "Handovers this TSP started as source, by result "
	    "(ok, failed, declined).", "result");
	m_ho_target = metric_counter("qroam_handovers_target_total",
	    "Handovers this TSP took part in as target, by result.",
	    "result");
	m_ho_seconds = metric_histogram("qroam_handover_seconds",
	    "Source side: from the vehicle's M6 to HandoverReady sent or "
	    "the failure.", metrics_latency_bounds, metrics_latency_nbounds);
	m_telemetry = metric_counter("qroam_telemetry_stored_total",
	    "Telemetry records received from vehicles and committed "
	    "(D1 of M3 and F5 messages).", NULL);
	/* Every result from the start, so that rate() sees the first one. */
	metric_add(m_ho_source, "ok", 0);
	metric_add(m_ho_source, "failed", 0);
	metric_add(m_ho_source, "declined", 0);
	metric_add(m_ho_target, "ok", 0);
	metric_add(m_ho_target, "failed", 0);
}

void
tspd_ops_init(struct tspd *env)
{
	tspd_ops_metrics();
	metrics_collector_add(tspd_ops_collect, env);
}

void
tspd_ops_free(struct tspd *env)
{
	metrics_collector_remove(tspd_ops_collect, env);
}

void
tspd_metric_handover(enum tspd_ho_role role, const char *result,
    uint64_t started_ms)
{
	uint64_t	 now;

	tspd_ops_metrics();
	if (role == TSPD_HO_TARGET) {
		metric_inc(m_ho_target, result);
		return;
	}
	metric_inc(m_ho_source, result);
	if (started_ms == 0)
		return;
	now = store_now_ms();
	metric_observe(m_ho_seconds, now > started_ms ?
	    (double)(now - started_ms) / 1000.0 : 0.0);
}

void
tspd_metric_telemetry(size_t n)
{
	tspd_ops_metrics();
	metric_add(m_telemetry, NULL, (double)n);
}

/* The summary fields of /status. */
static json_t *
tspd_status_summary(json_t *obj)
{
	const struct tspdb_counts *c = &view.v_counts;

	if (!view.v_counted) {
		log_warnx("status: the store could not be read");
		return obj;
	}
	json_object_set_new(obj, "vehicles", json_integer(c->c_vehicles));
	json_object_set_new(obj, "authenticated",
	    json_integer(c->c_authenticated));
	json_object_set_new(obj, "sessions", json_integer(c->c_sessions));
	json_object_set_new(obj, "handovers_in_flight",
	    json_integer(c->c_handovers));
	json_object_set_new(obj, "ck2_bindings",
	    json_integer(c->c_ck2_bindings));
	json_object_set_new(obj, "fills", json_integer(c->c_fills));
	return obj;
}

json_t *
tspd_status(void *arg, const char *what, json_t *obj)
{
	json_t	*v;

	if (what == NULL) {
		if (((struct tspd *)arg)->t_bus != NULL)
			json_object_set_new(obj, "cloud_bus",
			    tspd_cloud_json(arg));
		return tspd_status_summary(obj);
	}
	if (strcmp(what, "handovers_ended") == 0)
		return tspd_horing_json();
	if (strcmp(what, "handovers_out") == 0)
		return tspd_handover_out_json(arg, TSPD_STATUS_MAX);
	v = view.v_view;
	view.v_view = NULL;
	return v;
}

/* The store answered: let the endpoint answer with it. */
static void
tspd_prepared(struct tspdb_req *rq)
{
	struct ops_wait	*ow = rq->rq_arg;
	int		 ok = rq->rq_result == TSPDB_OK;

	view.v_counted = ok && ow->ow_view == NULL;
	view.v_counts = ow->ow_counts;
	view.v_view = ok ? ow->ow_view : NULL;
	if (!ok)
		json_decref(ow->ow_view);
	admin_prepared(ow->ow_wait);
	json_decref(view.v_view);
	view.v_view = NULL;
	view.v_counted = 0;
	free(ow);
}

void
tspd_prepare(void *arg, const char *what, struct admin_wait *w)
{
	struct tspd	*env = arg;
	struct ops_wait	*ow;
	uint64_t	 now = store_now_ms();

	if (what != NULL && (strcmp(what, "handovers_ended") == 0 ||
	    strcmp(what, "handovers_out") == 0)) {
		admin_prepared(w);	/* in memory: nothing to ask the store */
		return;
	}
	if (env->t_db == NULL || (what != NULL &&
	    strcmp(what, "metrics") != 0 && strcmp(what, "sessions") != 0 &&
	    strcmp(what, "vehicles") != 0 && strcmp(what, "handovers") != 0) ||
	    (ow = calloc(1, sizeof(*ow))) == NULL) {
		admin_prepared(w);	/* no such view (404), or no memory */
		return;
	}
	ow->ow_wait = w;
	tspdb_req_init(&ow->ow_rq, tspd_prepared, ow);
	if (what == NULL || strcmp(what, "metrics") == 0)
		tspdb_counts(env->t_db, now, &ow->ow_counts, &ow->ow_rq);
	else if (strcmp(what, "sessions") == 0)
		tspdb_status_sessions(env->t_db, TSPD_STATUS_MAX, &ow->ow_view,
		    &ow->ow_rq);
	else if (strcmp(what, "vehicles") == 0)
		tspdb_status_vehicles(env->t_db, TSPD_STATUS_MAX, &ow->ow_view,
		    &ow->ow_rq);
	else
		tspdb_status_handovers(env->t_db, now, TSPD_STATUS_MAX,
		    &ow->ow_view, &ow->ow_rq);
}
