/*
 * vehicled's operations interface: its part of the admin endpoint's
 * /status (the vehicle, or with `fleet` the totals and one entry per
 * vehicle), the chip keys left among its metrics (the protocol's own are
 * counted in vmetrics.c), and what a SIGHUP reload cannot change.
 * Chip keys and K1 never appear here: only how many keys are left.
 */
#include <string.h>

#include "client.h"
#include "fleet.h"
#include "handover.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "vmetrics.h"

#define VOPS_STATUS_MAX	1000	/* entries of a /status list at most */
#define VOPS_TRACE	24	/* points of a vehicle's route trace */
#define VOPS_WALK	256	/* steps of the walk that finds the crossings */
#define VOPS_CROSSMAX	32	/* crossings shown at most */

/* Unused keys on c's chip, or -1 when unknown (no chip, store error). */
static int64_t
vops_keys_left(const struct vclient *c)
{
	if (c->vc_chip_id[0] == '\0')
		return -1;
	return vchip_unused(c->vc_chip, c->vc_conf->vc_draw);
}

/* Scrape time: the keys left on every chip. */
static void
vops_collect(void *arg)
{
	const struct vfleet	*f = arg;
	size_t			 i, held = 0;
	int64_t			 n, sum = 0;

	for (i = 0; i < vfleet_size(f); i++) {
		if ((n = vops_keys_left(vfleet_client(f, i))) > 0)
			sum += n;
		held += vrecq_len(&vfleet_client(f, i)->vc_recs);
	}
	vmetrics_keys_left((double)sum);
	vmetrics_unstored((double)held);
}

void
vops_init(struct vfleet *f)
{
	vmetrics_init();
	metrics_collector_add(vops_collect, f);
}

void
vops_free(struct vfleet *f)
{
	metrics_collector_remove(vops_collect, f);
}

/* A string, or JSON null when it is empty. */
static json_t *
vops_opt_string(const char *s)
{
	return s[0] != '\0' ? json_string(s) : json_null();
}

/*
 * What a map shows of the vehicle's state: the client's, told apart where
 * a person watching cares (a first F3 or one after a crossing, a session
 * with a TSP that already holds our context for the next region).
 */
static const char *
vops_map_state(const struct vclient *c)
{
	const struct vho	*ho = c->vc_ho_arg;

	switch (c->vc_state) {
	case VC_AUTH:
		return client_stats(c)->vs_crossings > 0 ? "reauthenticating" :
		    "authenticating";
	case VC_SESSION:
		return ho != NULL && vho_prepared(ho) ? "handover_prepared" :
		    "session";
	default:
		return client_state_name(c->vc_state);
	}
}

/*
 * The crossings of the route driven so far between from and now (sim
 * seconds), found by walking it in VOPS_WALK steps with the TSP choice of
 * route_tsp_at(), each with the service gap vehicled measured for it (the
 * n-th crossing, the n-th gap; null while none was measured).
 */
static json_t *
vops_crossings(const struct vclient *c, double from, double now)
{
	const struct vho	*ho = c->vc_ho_arg;
	const struct topo_tsp	*cur = NULL, *t;
	struct route_pos	 rp;
	json_t			*a;
	size_t			 n = 0;
	int			 i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < VOPS_WALK && n < VOPS_CROSSMAX; i++) {
		route_at(c->vc_route, from + (now - from) * i / (VOPS_WALK - 1),
		    &rp);
		t = route_tsp_at(c->vc_topo, rp.rp_point,
		    cur != NULL ? cur->tt_id : NULL, NULL);
		if (t == NULL || t == cur)
			continue;
		if (cur != NULL) {
			json_array_append_new(a, json_pack("{s:f, s:f, s:s, s:s,"
			    " s:o}", "lat", rp.rp_point.gp_lat, "lon",
			    rp.rp_point.gp_lon, "from", cur->tt_id, "to",
			    t->tt_id, "gap_ms", ho != NULL && n < ho->ho_ngaps ?
			    json_real(ho->ho_gaps[n]) : json_null()));
			n++;
		}
		cur = t;
	}
	return a;
}

/*
 * The position (lat, lon, heading) and the route trace: VOPS_TRACE points
 * evenly spaced in time from where the vehicle started to where it is now,
 * computed from the route and the trip clock, so nothing is kept.
 */
static void
vops_position(const struct vclient *c, json_t *obj)
{
	struct route_pos	 rp, tp;
	json_t			*trace;
	double			 from, now;
	int			 i;

	json_object_set_new(obj, "state", json_string(vops_map_state(c)));
	if (c->vc_route == NULL)
		return;
	client_position(c, &rp);
	json_object_set_new(obj, "lat", json_real(rp.rp_point.gp_lat));
	json_object_set_new(obj, "lon", json_real(rp.rp_point.gp_lon));
	json_object_set_new(obj, "heading", json_real(rp.rp_heading));
	if ((trace = json_array()) == NULL)
		return;
	from = (double)c->vc_offset_ms / 1000.0;
	now = route_sim_seconds(c->vc_route,
	    (double)(client_now_ms() - c->vc_start_ms)) + from;
	for (i = 0; i < VOPS_TRACE; i++) {
		route_at(c->vc_route, from + (now - from) * i /
		    (VOPS_TRACE - 1), &tp);
		json_array_append_new(trace, json_pack("[f, f]",
		    tp.rp_point.gp_lat, tp.rp_point.gp_lon));
	}
	json_object_set_new(obj, "trace", trace);
	json_object_set_new(obj, "crossings", vops_crossings(c, from, now));
}

/* The status fields of one vehicle, added to obj. */
static json_t *
vops_vehicle(const struct vclient *c, json_t *obj)
{
	const struct vstats	*vs = client_stats(c);
	int64_t			 keys = vops_keys_left(c);

	if (obj == NULL)
		return NULL;
	json_object_set_new(obj, "vehicle_id",
	    json_string(c->vc_conf->vc_vid));
	json_object_set_new(obj, "chip_id", vops_opt_string(c->vc_chip_id));
	json_object_set_new(obj, "region", vops_opt_string(c->vc_tsp));
	json_object_set_new(obj, "session",
	    json_boolean(c->vc_state == VC_SESSION));
	json_object_set_new(obj, "keys_left", keys >= 0 ?
	    json_integer(keys) : json_null());
	json_object_set_new(obj, "telemetry_sent",
	    json_integer((json_int_t)vs->vs_telemetry_sent));
	json_object_set_new(obj, "telemetry_acked",
	    json_integer((json_int_t)vs->vs_telemetry_acked));
	json_object_set_new(obj, "handovers",
	    json_integer((json_int_t)vs->vs_handovers));
	json_object_set_new(obj, "telemetry_resent",
	    json_integer((json_int_t)vs->vs_resent));
	json_object_set_new(obj, "telemetry_stored",
	    json_integer((json_int_t)vs->vs_stored));
	json_object_set_new(obj, "telemetry_dropped",
	    json_integer((json_int_t)vs->vs_dropped));
	json_object_set_new(obj, "unstored",
	    json_integer((json_int_t)vrecq_len(&c->vc_recs)));
	json_object_set_new(obj, "crossed",
	    json_integer((json_int_t)vs->vs_crossings));
	vops_position(c, obj);
	return obj;
}

/* A fleet's summary: totals over its vehicles. */
static json_t *
vops_fleet(const struct vfleet *f, json_t *obj)
{
	const struct vclient	*c;
	const struct vstats	*vs;
	json_int_t		 sent = 0, acked = 0, ho = 0, keys = 0;
	json_int_t		 resent = 0, stored = 0, dropped = 0, held = 0;
	json_int_t		 cross = 0, reauth = 0, insess = 0;
	int64_t			 n;
	int			 session = 0;
	size_t			 i;

	for (i = 0; i < vfleet_size(f); i++) {
		c = vfleet_client(f, i);
		vs = client_stats(c);
		cross += (json_int_t)vs->vs_crossings;
		reauth += (json_int_t)vs->vs_reauth;
		insess += c->vc_state == VC_SESSION;
		sent += (json_int_t)vs->vs_telemetry_sent;
		acked += (json_int_t)vs->vs_telemetry_acked;
		ho += (json_int_t)vs->vs_handovers;
		resent += (json_int_t)vs->vs_resent;
		stored += (json_int_t)vs->vs_stored;
		dropped += (json_int_t)vs->vs_dropped;
		held += (json_int_t)vrecq_len(&c->vc_recs);
		if ((n = vops_keys_left(c)) > 0)
			keys += n;
		session |= c->vc_state == VC_SESSION;
	}
	json_object_set_new(obj, "vehicle_id",
	    json_string(vfleet_conf(f)->vc_vid));
	json_object_set_new(obj, "vehicles",
	    json_integer((json_int_t)vfleet_size(f)));
	json_object_set_new(obj, "chip_id", json_null());
	json_object_set_new(obj, "region", json_null());
	json_object_set_new(obj, "session", json_boolean(session));
	json_object_set_new(obj, "keys_left", json_integer(keys));
	json_object_set_new(obj, "telemetry_sent", json_integer(sent));
	json_object_set_new(obj, "telemetry_acked", json_integer(acked));
	json_object_set_new(obj, "handovers", json_integer(ho));
	json_object_set_new(obj, "telemetry_resent", json_integer(resent));
	json_object_set_new(obj, "telemetry_stored", json_integer(stored));
	json_object_set_new(obj, "telemetry_dropped", json_integer(dropped));
	json_object_set_new(obj, "unstored", json_integer(held));
	json_object_set_new(obj, "crossings", json_integer(cross));
	json_object_set_new(obj, "reauth_after_handover", json_integer(reauth));
	json_object_set_new(obj, "in_session", json_integer(insess));
	json_object_set_new(obj, "enrolled",
	    json_integer((json_int_t)vfleet_enrolled(f)));
	return obj;
}

/* /status/vehicles: one entry per vehicle, in VIN order. */
static json_t *
vops_vehicles(const struct vfleet *f)
{
	json_t	*a;
	size_t	 i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < vfleet_size(f) && i < VOPS_STATUS_MAX; i++)
		if (json_array_append_new(a, vops_vehicle(vfleet_client(f, i),
		    json_object())) == -1) {
			json_decref(a);
			return NULL;
		}
	return a;
}

json_t *
vops_status(void *arg, const char *what, json_t *obj)
{
	const struct vfleet	*f = arg;

	if (what == NULL)
		return vfleet_conf(f)->vc_fleet > 0 ? vops_fleet(f, obj) :
		    vops_vehicle(vfleet_client(f, 0), obj);
	if (strcmp(what, "vehicles") == 0)
		return vops_vehicles(f);
	return NULL;
}

/* Two optional strings differ. */
static int
vops_differ(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/* Two routes differ. */
static int
vops_route_differs(const struct vconf *a, const struct vconf *b)
{
	size_t	 i;

	if (a->vc_nroute != b->vc_nroute)
		return 1;
	for (i = 0; i < a->vc_nroute; i++)
		if (a->vc_route[i].gp_lat != b->vc_route[i].gp_lat ||
		    a->vc_route[i].gp_lon != b->vc_route[i].gp_lon)
			return 1;
	return 0;
}

int
vops_restart_only(const struct vconf *run, const struct vconf *next)
{
	const char	*what[16];
	size_t		 n = 0, i;

	if (strcmp(run->vc_vid, next->vc_vid) != 0)
		what[n++] = "vehicle_id";
	if (run->vc_fleet != next->vc_fleet ||
	    run->vc_fleet_spacing_ms != next->vc_fleet_spacing_ms)
		what[n++] = "fleet";
	if (run->vc_fleet_store != next->vc_fleet_store ||
	    run->vc_fleet_offset_ms != next->vc_fleet_offset_ms ||
	    run->vc_fleet_rate != next->vc_fleet_rate ||
	    run->vc_enroll_only != next->vc_enroll_only)
		what[n++] = "fleet_store/fleet_offset/fleet_rate/enroll_only";
	if (run->vc_draw != next->vc_draw)
		what[n++] = "draw";
	if (run->vc_fill_m != next->vc_fill_m)
		what[n++] = "fill_m";
	if (vops_route_differs(run, next))
		what[n++] = "route";
	if (run->vc_speed != next->vc_speed)
		what[n++] = "speed";
	if (run->vc_time_factor != next->vc_time_factor)
		what[n++] = "time_factor";
	if (run->vc_trip_ms != next->vc_trip_ms)
		what[n++] = "trip_time";
	if (run->vc_power_cycle_ms != next->vc_power_cycle_ms)
		what[n++] = "power_cycle_at";
	if (run->vc_unstored_max != next->vc_unstored_max)
		what[n++] = "unstored_max";
	if (vops_differ(run->vc_operator_cert, next->vc_operator_cert) ||
	    vops_differ(run->vc_operator_key, next->vc_operator_key))
		what[n++] = "operator_cert/operator_key";
	for (i = 0; i < n; i++)
		log_warnx("reload: %s changed; it takes effect on restart",
		    what[i]);
	return (int)n;
}
