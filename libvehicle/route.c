/*
 * Route geometry: the vehicle drives from waypoint to waypoint along great
 * circles at a constant speed and stops at the last one.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

#define ROUTE_STEP_M	10.0		/* resolution of looking ahead */
#define ROUTE_EARTH_M	6371000.0	/* mean radius, as geo.c */
#define ROUTE_MAXSTEPS	200000.0	/* points per look at most */

struct route {
	struct geo_point	*r_pts;
	double			*r_cum;		/* distance at each waypoint, m */
	size_t			 r_npts;
	double			 r_speed;
	double			 r_factor;
	unsigned		 r_refs;
};

struct route *
route_new(const struct geo_point *pts, size_t n, double speed,
    double time_factor)
{
	struct route	*r;
	size_t		 i;

	if (n == 0 || speed < 0 || !(time_factor > 0))
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->r_refs = 1;
	r->r_pts = calloc(n, sizeof(*r->r_pts));
	r->r_cum = calloc(n, sizeof(*r->r_cum));
	if (r->r_pts == NULL || r->r_cum == NULL) {
		route_free(r);
		return NULL;
	}
	memcpy(r->r_pts, pts, n * sizeof(*pts));
	for (i = 1; i < n; i++)
		r->r_cum[i] = r->r_cum[i - 1] +
		    geo_distance_m(pts[i - 1], pts[i]);
	r->r_npts = n;
	r->r_speed = speed;
	r->r_factor = time_factor;
	return r;
}

struct route *
route_ref(struct route *r)
{
	r->r_refs++;
	return r;
}

void
route_free(struct route *r)
{
	if (r == NULL || --r->r_refs > 0)
		return;
	free(r->r_pts);
	free(r->r_cum);
	free(r);
}

double
route_sim_seconds(const struct route *r, double real_ms)
{
	return real_ms * r->r_factor / 1000.0;
}

double
route_length(const struct route *r)
{
	return r->r_cum[r->r_npts - 1];
}

/* Heading of the last segment of non-zero length ending at or before i. */
static double
route_heading_before(const struct route *r, size_t i)
{
	while (i > 0) {
		if (r->r_cum[i] > r->r_cum[i - 1])
			return geo_bearing(r->r_pts[i - 1], r->r_pts[i]);
		i--;
	}
	return 0;
}

double
route_distance(const struct route *r, double sim_s)
{
	double	d;

	if (r->r_npts == 1 || r->r_speed == 0 || !(sim_s > 0))
		return 0;
	d = sim_s * r->r_speed;
	return d < route_length(r) ? d : route_length(r);
}

/* The point d metres along the route (0 <= d <= length); heading in *hd. */
static struct geo_point
route_point(const struct route *r, double d, double *hd)
{
	struct geo_point	p;
	double			h;
	size_t			i;

	if (r->r_npts == 1 || d >= route_length(r)) {
		*hd = route_heading_before(r, r->r_npts - 1);
		return r->r_pts[r->r_npts - 1];
	}
	if (d < 0)
		d = 0;
	for (i = 0; i + 1 < r->r_npts && r->r_cum[i + 1] <= d; i++)
		;
	h = geo_bearing(r->r_pts[i], r->r_pts[i + 1]);
	p = geo_project(r->r_pts[i], h, d - r->r_cum[i]);
	/* The heading along a great circle changes: report it from here on. */
	if (r->r_cum[i + 1] - d > 1.0)
		h = geo_bearing(p, r->r_pts[i + 1]);
	*hd = h;
	return p;
}

void
route_at(const struct route *r, double sim_s, struct route_pos *rp)
{
	double	d;
	size_t	i;

	memset(rp, 0, sizeof(*rp));
	d = sim_s > 0 ? sim_s * r->r_speed : 0;
	if (r->r_npts == 1 || d >= route_length(r) || r->r_speed == 0) {
		i = r->r_speed == 0 || d <= 0 ? 0 : r->r_npts - 1;
		rp->rp_point = r->r_pts[i];
		rp->rp_heading = route_heading_before(r, r->r_npts - 1);
		rp->rp_odometer_m = r->r_cum[i];
		rp->rp_done = r->r_npts == 1 || i == r->r_npts - 1;
		return;
	}
	rp->rp_point = route_point(r, d, &rp->rp_heading);
	rp->rp_speed = r->r_speed;
	rp->rp_odometer_m = d;
}

/*
 * Visit route points from from_m to to_m (to_m < 0: the end) in order:
 * every waypoint, the two ends, and points at most ROUTE_STEP_M apart (or
 * further on very long routes, so that a walk stays bounded).  Stops at
 * the first point where fn returns non-zero and returns that value.
 */
static int
route_walk(const struct route *r, double from_m, double to_m,
    int (*fn)(struct geo_point, double, void *), void *arg)
{
	double	len = route_length(r), step, a, b, d, hd;
	size_t	i, k, nk;
	int	v;

	if (to_m < 0 || to_m > len)
		to_m = len;
	if (from_m < 0)
		from_m = 0;
	if (from_m > to_m)
		from_m = to_m;
	step = (to_m - from_m) / ROUTE_MAXSTEPS;
	if (step < ROUTE_STEP_M)
		step = ROUTE_STEP_M;
	if ((v = fn(route_point(r, from_m, &hd), from_m, arg)) != 0)
		return v;
	for (i = 0; i + 1 < r->r_npts; i++) {
		a = r->r_cum[i] > from_m ? r->r_cum[i] : from_m;
		b = r->r_cum[i + 1] < to_m ? r->r_cum[i + 1] : to_m;
		if (b <= a)
			continue;
		nk = (size_t)ceil((b - a) / step);
		for (k = 1; k <= nk; k++) {
			d = k == nk ? b : a + (double)k * step;
			if ((v = fn(route_point(r, d, &hd), d, arg)) != 0)
				return v;
		}
	}
	return 0;
}

int
route_region_centre(const struct topo_tsp *tt, struct geo_point *p)
{
	double	lat = 0, lon = 0;
	size_t	i;

	if (tt->tt_nregion == 0)
		return -1;
	for (i = 0; i < tt->tt_nregion; i++) {
		lat += tt->tt_region[i].gp_lat;
		lon += tt->tt_region[i].gp_lon;
	}
	p->gp_lat = lat / tt->tt_nregion;
	p->gp_lon = lon / tt->tt_nregion;
	return 0;
}

const struct topo_tsp *
route_tsp_at(const struct topo *t, struct geo_point p, const char *current,
    const char *preferred)
{
	const struct topo_tsp	*tt;

	if (current != NULL && current[0] != '\0' &&
	    (tt = topo_tsp(t, current)) != NULL &&
	    geo_contains(tt->tt_region, tt->tt_nregion, p))
		return tt;
	if (preferred != NULL && preferred[0] != '\0' &&
	    (tt = topo_tsp(t, preferred)) != NULL &&
	    geo_contains(tt->tt_region, tt->tt_nregion, p))
		return tt;
	return topo_tsp_at(t, p);
}

struct route_find {
	const struct topo_tsp	*rf_tsps;
	size_t			 rf_n;
	double			 rf_touch[TOPO_MAXTSP];	/* -1: not touched */
	int			 rf_found;
	double			 rf_at;
};

/* The earliest touched region (lowest index on a tie); -1 if none. */
static int
route_find_first(const struct route_find *rf)
{
	size_t	i;
	int	best = -1;

	for (i = 0; i < rf->rf_n; i++)
		if (rf->rf_touch[i] >= 0 && (best == -1 ||
		    rf->rf_touch[i] < rf->rf_touch[best]))
			best = (int)i;
	return best;
}

/*
 * route_walk visitor: a region is entered when two points in a row lie
 * in it; a route that only touches it at a boundary point passes by.
 */
static int
route_find_visit(struct geo_point p, double d, void *arg)
{
	struct route_find	*rf = arg;
	const struct topo_tsp	*tt;
	size_t			 i;
	int			 entered = 0;

	for (i = 0; i < rf->rf_n; i++) {
		tt = &rf->rf_tsps[i];
		if (!geo_contains(tt->tt_region, tt->tt_nregion, p))
			rf->rf_touch[i] = -1;
		else if (rf->rf_touch[i] >= 0)
			entered = 1;
		else
			rf->rf_touch[i] = d;
	}
	if (!entered)
		return 0;
	/* Of the regions holding p, the one touched first was entered. */
	rf->rf_found = route_find_first(rf);
	rf->rf_at = rf->rf_touch[rf->rf_found];
	return 1;
}

int
route_first_region(const struct route *r, double from_m, double to_m,
    const struct topo_tsp *tsps, size_t n, double *at_m)
{
	struct route_find	rf;
	size_t			i;

	memset(&rf, 0, sizeof(rf));
	rf.rf_tsps = tsps;
	rf.rf_n = n < TOPO_MAXTSP ? n : TOPO_MAXTSP;
	for (i = 0; i < rf.rf_n; i++)
		rf.rf_touch[i] = -1;
	rf.rf_found = -1;
	if (rf.rf_n == 0)
		return -1;
	if (route_walk(r, from_m, to_m, route_find_visit, &rf) == 0) {
		/* The look ends on a boundary: that counts as entering. */
		if ((rf.rf_found = route_find_first(&rf)) == -1)
			return -1;
		rf.rf_at = rf.rf_touch[rf.rf_found];
	}
	if (at_m != NULL)
		*at_m = rf.rf_at;
	return rf.rf_found;
}

/* route_walk visitor: is p outside the region? */
static int
route_out_visit(struct geo_point p, double d, void *arg)
{
	const struct topo_tsp	*tt = arg;

	(void)d;
	return !geo_contains(tt->tt_region, tt->tt_nregion, p);
}

int
route_leaves(const struct route *r, double from_m, double to_m,
    const struct topo_tsp *tt)
{
	return route_walk(r, from_m, to_m, route_out_visit, (void *)tt);
}

struct route_order {
	const struct topo	 *ro_topo;
	const struct topo_tsp	 *ro_cur;
	const struct topo_tsp	 *ro_last;
	const struct topo_tsp	**ro_out;
	size_t			  ro_max;
	size_t			  ro_n;
};

/* route_walk visitor: note each region change. */
static int
route_order_visit(struct geo_point p, double d, void *arg)
{
	struct route_order	*ro = arg;
	const struct topo_tsp	*tt;

	(void)d;
	tt = route_tsp_at(ro->ro_topo, p, ro->ro_cur ? ro->ro_cur->tt_id :
	    NULL, NULL);
	ro->ro_cur = tt;
	if (tt == NULL || tt == ro->ro_last)
		return 0;
	if (ro->ro_n < ro->ro_max)
		ro->ro_out[ro->ro_n] = tt;
	ro->ro_n++;
	ro->ro_last = tt;
	return 0;
}

size_t
route_regions(const struct route *r, const struct topo *t,
    const struct topo_tsp **out, size_t max)
{
	struct route_order	ro;

	memset(&ro, 0, sizeof(ro));
	ro.ro_topo = t;
	ro.ro_out = out;
	ro.ro_max = max;
	route_walk(r, 0, -1, route_order_visit, &ro);
	return ro.ro_n;
}

/*
 * Distance in metres from the origin to the segment a-b, all in a local
 * plane (x east, y north, metres).
 */
static double
route_segment_distance(double ax, double ay, double bx, double by)
{
	double	dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy, t = 0;

	if (len2 > 0) {
		t = -(ax * dx + ay * dy) / len2;
		if (t < 0)
			t = 0;
		else if (t > 1)
			t = 1;
	}
	return hypot(ax + t * dx, ay + t * dy);
}

double
route_region_distance(const struct topo_tsp *tt, struct geo_point p)
{
	const struct geo_point	*v = tt->tt_region;
	double			 k = ROUTE_EARTH_M * M_PI / 180.0, kx, best = -1;
	double			 d, ax, ay, bx, by;
	size_t			 i, j;

	if (tt->tt_nregion == 0)
		return -1;
	if (geo_contains(v, tt->tt_nregion, p))
		return 0;
	kx = k * cos(p.gp_lat * M_PI / 180.0);
	for (i = 0; i < tt->tt_nregion; i++) {
		j = (i + 1) % tt->tt_nregion;
		ax = (v[i].gp_lon - p.gp_lon) * kx;
		ay = (v[i].gp_lat - p.gp_lat) * k;
		bx = (v[j].gp_lon - p.gp_lon) * kx;
		by = (v[j].gp_lat - p.gp_lat) * k;
		d = route_segment_distance(ax, ay, bx, by);
		if (best < 0 || d < best)
			best = d;
	}
	return best;
}
