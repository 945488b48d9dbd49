/*
 * Route geometry: the vehicle drives from waypoint to waypoint along great
 * circles at a constant speed and stops at the last one.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

struct route {
	struct geo_point	*r_pts;
	double			*r_cum;		/* distance at each waypoint, m */
	size_t			 r_npts;
	double			 r_speed;
	double			 r_factor;
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

void
route_free(struct route *r)
{
	if (r == NULL)
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

void
route_at(const struct route *r, double sim_s, struct route_pos *rp)
{
	double	d, into;
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
	for (i = 0; i + 1 < r->r_npts && r->r_cum[i + 1] <= d; i++)
		;
	into = d - r->r_cum[i];
	rp->rp_heading = geo_bearing(r->r_pts[i], r->r_pts[i + 1]);
	rp->rp_point = geo_project(r->r_pts[i], rp->rp_heading, into);
	/* The heading along a great circle changes: report it from here on. */
	if (r->r_cum[i + 1] - d > 1.0)
		rp->rp_heading = geo_bearing(rp->rp_point, r->r_pts[i + 1]);
	rp->rp_speed = r->r_speed;
	rp->rp_odometer_m = d;
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
route_tsp_at(const struct topo *t, struct geo_point p, const char *current)
{
	const struct topo_tsp	*tt;

	if (current != NULL && current[0] != '\0' &&
	    (tt = topo_tsp(t, current)) != NULL &&
	    geo_contains(tt->tt_region, tt->tt_nregion, p))
		return tt;
	return topo_tsp_at(t, p);
}
