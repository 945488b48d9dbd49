/*
 * qroamctl map, the view: /map.json assembled from the topology (the
 * regions) and the latest snapshot of every daemon (ctl_mappoll.c).  A
 * daemon that is down contributes nothing but its entry in "daemons" with
 * up false; a region whose TSPs are all down is shown with up false.
 * Nothing here asks a daemon anything: building the view is a walk over
 * memory, so a request for it is answered at once.
 */
#include <string.h>

#include "ctl_map.h"

/* The snapshot of view v of md, if md is up. */
static const json_t *
map_snap(const struct map_daemon *md, enum map_view v)
{
	return md->md_up ? md->md_views[v] : NULL;
}

/* Is md the (or an instance of the) TSP tsp? */
static int
map_is_tsp(const struct map_daemon *md, const char *tsp)
{
	return strcmp(md->md_kind, "tspd") == 0 &&
	    (strcmp(md->md_id, tsp) == 0 || strcmp(md->md_d->cd_name, tsp) == 0);
}

/* The integer member key of obj, 0 when absent. */
static json_int_t
map_int(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

/* One region: its polygon, its TSP, whether it is up and its load. */
static json_t *
map_region(const struct map *m, const struct topo_tsp *tt)
{
	const struct map_daemon	*md;
	const json_t		*st;
	json_t			*poly, *r;
	json_int_t		 sessions = 0, vehicles = 0, inflight = 0;
	size_t			 i;
	int			 up = 0, instances = 0;

	poly = json_array();
	for (i = 0; i < tt->tt_nregion; i++)
		json_array_append_new(poly, json_pack("[f, f]",
		    tt->tt_region[i].gp_lat, tt->tt_region[i].gp_lon));
	for (i = 0; i < m->m_ndaemons; i++) {
		md = &m->m_daemons[i];
		if (!map_is_tsp(md, tt->tt_id) && !(md->md_kind[0] == '\0' &&
		    strcmp(md->md_d->cd_name, tt->tt_id) == 0))
			continue;
		instances++;
		if ((st = map_snap(md, MV_STATUS)) == NULL)
			continue;
		up = 1;
		sessions += map_int(st, "sessions");
		vehicles += map_int(st, "vehicles");
		inflight += map_int(st, "handovers_in_flight");
	}
	r = json_pack("{s:s, s:o, s:b, s:i, s:I, s:I, s:I}", "tsp", tt->tt_id,
	    "polygon", poly, "up", up, "instances", instances,
	    "sessions", sessions, "vehicles", vehicles,
	    "handovers_in_flight", inflight);
	return r;
}

/* Every daemon: name, kind, id, up, and why not. */
static json_t *
map_daemons(const struct map *m, uint64_t now)
{
	const struct map_daemon	*md;
	json_t			*a = json_array();
	size_t			 i;

	for (i = 0; i < m->m_ndaemons; i++) {
		md = &m->m_daemons[i];
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:b, s:o,"
		    " s:o}", "name", md->md_d->cd_name, "daemon", md->md_kind,
		    "id", md->md_id, "up", md->md_up, "error", md->md_up ?
		    json_null() : json_string(md->md_err), "age_ms",
		    md->md_seen_ms != 0 ? json_integer((json_int_t)(now -
		    md->md_seen_ms)) : json_null()));
	}
	return a;
}

/* Every vehicle of every vehicled that is up, with the daemon's name. */
static json_t *
map_vehicles(const struct map *m)
{
	const json_t	*vs, *v;
	json_t		*a = json_array(), *c;
	size_t		 i, j;

	for (i = 0; i < m->m_ndaemons; i++) {
		if ((vs = map_snap(&m->m_daemons[i], MV_VEHICLES)) == NULL)
			continue;
		json_array_foreach(vs, j, v) {
			if ((c = json_deep_copy(v)) == NULL)
				continue;
			json_object_set_new(c, "daemon",
			    json_string(m->m_daemons[i].md_d->cd_name));
			json_array_append_new(a, c);
		}
	}
	return a;
}

/*
 * The handovers: those in flight as source of each TSP (from, to, state,
 * from its /status/handovers_out)
 * and those it ended lately (result and reason), from is the TSP.
 */
static json_t *
map_handovers(const struct map *m)
{
	const struct map_daemon	*md;
	const json_t		*hs, *h;
	json_t			*fly = json_array(), *ended = json_array(), *c;
	size_t			 i, j;

	for (i = 0; i < m->m_ndaemons; i++) {
		md = &m->m_daemons[i];
		if ((hs = map_snap(md, MV_HANDOVERS)) != NULL)
			json_array_foreach(hs, j, h) {
				c = json_deep_copy(h);
				json_object_set_new(c, "from",
				    json_string(md->md_id));
				json_object_set(c, "to",
				    json_object_get(h, "peer"));
				json_array_append_new(fly, c);
			}
		if ((hs = map_snap(md, MV_ENDED)) != NULL)
			json_array_foreach(hs, j, h) {
				c = json_deep_copy(h);
				json_object_set_new(c, "from",
				    json_string(md->md_id));
				json_object_set(c, "to",
				    json_object_get(h, "peer"));
				json_array_append_new(ended, c);
			}
	}
	return json_pack("{s:o, s:o}", "in_flight", fly, "ended", ended);
}

/*
 * The QKD links of every qkdd that is up, with their QBER, its bound and
 * state; red when aborting or when the bound (or, from a qkdd without
 * one, the estimate) is past the threshold.
 */
static json_t *
map_links(const struct map *m)
{
	const json_t	*ps, *p, *st;
	json_t		*a = json_array(), *c;
	double		 q, qmax;
	size_t		 i, j;

	for (i = 0; i < m->m_ndaemons; i++) {
		if ((ps = map_snap(&m->m_daemons[i], MV_POOLS)) == NULL)
			continue;
		json_array_foreach(ps, j, p) {
			c = json_deep_copy(p);
			q = json_number_value(json_object_get(p,
			    json_is_number(json_object_get(p, "qber_bound")) ?
			    "qber_bound" : "qber"));
			qmax = json_number_value(json_object_get(p,
			    "qber_max"));
			st = json_object_get(p, "state");
			json_object_set_new(c, "alarm", json_boolean(
			    json_is_true(json_object_get(p, "aborting")) ||
			    (json_is_string(st) &&
			    strcmp(json_string_value(st), "aborting") == 0) ||
			    (qmax > 0.0 && q > qmax)));
			json_array_append_new(a, c);
		}
	}
	return a;
}

/* Add every member of the object src (counts) into dst. */
static void
map_sum_into(json_t *dst, const json_t *src)
{
	const char	*k;
	json_t		*v;

	json_object_foreach((json_t *)src, k, v)
		json_object_set_new(dst, k, json_integer(json_integer_value(v) +
		    json_integer_value(json_object_get(dst, k))));
}

/* Counters: vehicles, sessions, handovers by result, refusals by reason. */
static json_t *
map_counters(const struct map *m, const json_t *vehicles)
{
	const struct map_daemon	*md;
	const json_t		*st, *mt;
	json_t			*refusals = json_object(), *ho = json_object();
	json_t			*out;
	json_int_t		 sessions = 0;
	size_t			 i;

	for (i = 0; i < m->m_ndaemons; i++) {
		md = &m->m_daemons[i];
		if ((mt = map_snap(md, MV_METRICS)) != NULL) {
			map_sum_into(refusals, json_object_get(mt, "refusals"));
			if (strcmp(md->md_kind, "tspd") == 0)
				map_sum_into(ho, json_object_get(mt,
				    "handovers"));
		}
		if (strcmp(md->md_kind, "tspd") == 0 &&
		    (st = map_snap(md, MV_STATUS)) != NULL)
			sessions += map_int(st, "sessions");
	}
	out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}",
	    "vehicles", (json_int_t)json_array_size(vehicles),
	    "sessions", sessions,
	    "handovers_ok", map_int(ho, "ok"),
	    "handovers_failed", map_int(ho, "failed"),
	    "handovers_declined", map_int(ho, "declined"),
	    "refusals", refusals);
	json_decref(ho);
	return out;
}

json_t *
map_view(const struct map *m)
{
	json_t		*regions = json_array(), *vehicles, *doc;
	uint64_t	 now = map_now_ms();
	size_t		 i;

	if (m->m_has_topo)
		for (i = 0; i < m->m_topo.t_ntsps; i++)
			json_array_append_new(regions,
			    map_region(m, &m->m_topo.t_tsps[i]));
	vehicles = map_vehicles(m);
	doc = json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o}",
	    "now_ms", (json_int_t)now, "rounds", (json_int_t)m->m_rounds,
	    "regions", regions, "daemons", map_daemons(m, now),
	    "handovers", map_handovers(m), "links", map_links(m),
	    "counters", map_counters(m, vehicles));
	json_object_set_new(doc, "vehicles", vehicles);
	return doc;
}
