/*
 * Region geometry of the handover trigger.  Like geo.c, containment and
 * segment crossings work in the plane of (lon, lat), which is exact enough
 * for regions of a few tens of kilometres; distances to a boundary use a
 * local equirectangular approximation in metres.
 */
#include <math.h>
#include <string.h>

#include "region.h"

#define REGION_M_PER_DEG	111194.93	/* metres per degree of arc */

/* Distance in metres from p to the segment a-b, in p's local plane. */
static double
region_segment_distance(struct geo_point a, struct geo_point b,
    struct geo_point p)
{
	double	kx, ax, ay, bx, by, dx, dy, len2, t;

	kx = cos(p.gp_lat * M_PI / 180.0) * REGION_M_PER_DEG;
	ax = (a.gp_lon - p.gp_lon) * kx;
	ay = (a.gp_lat - p.gp_lat) * REGION_M_PER_DEG;
	bx = (b.gp_lon - p.gp_lon) * kx;
	by = (b.gp_lat - p.gp_lat) * REGION_M_PER_DEG;
	dx = bx - ax;
	dy = by - ay;
	len2 = dx * dx + dy * dy;
	t = len2 > 0 ? -(ax * dx + ay * dy) / len2 : 0;
	t = t < 0 ? 0 : t > 1 ? 1 : t;
	return hypot(ax + t * dx, ay + t * dy);
}

int
tspd_region_touches(const struct topo_tsp *tt, struct geo_point p)
{
	size_t	 i, j;

	if (tt->tt_nregion < 3)
		return 0;
	if (geo_contains(tt->tt_region, tt->tt_nregion, p))
		return 1;
	for (i = 0, j = tt->tt_nregion - 1; i < tt->tt_nregion; j = i++)
		if (region_segment_distance(tt->tt_region[j], tt->tt_region[i],
		    p) <= TSPD_REGION_TOUCH_M)
			return 1;
	return 0;
}

/*
 * Parameter t in [0, 1] at which segment a-b crosses segment c-d, or -1
 * if they do not meet (parallel segments count as not meeting).
 */
static double
region_crossing(struct geo_point a, struct geo_point b, struct geo_point c,
    struct geo_point d)
{
	double	rx = b.gp_lon - a.gp_lon, ry = b.gp_lat - a.gp_lat;
	double	sx = d.gp_lon - c.gp_lon, sy = d.gp_lat - c.gp_lat;
	double	den, t, u;

	den = rx * sy - ry * sx;
	if (fabs(den) < 1e-18)
		return -1;
	t = ((c.gp_lon - a.gp_lon) * sy - (c.gp_lat - a.gp_lat) * sx) / den;
	u = ((c.gp_lon - a.gp_lon) * ry - (c.gp_lat - a.gp_lat) * rx) / den;
	if (t < 0 || t > 1 || u < -1e-12 || u > 1 + 1e-12)
		return -1;
	return t;
}

/* The point at parameter t of segment a-b. */
static struct geo_point
region_lerp(struct geo_point a, struct geo_point b, double t)
{
	struct geo_point	p;

	p.gp_lat = a.gp_lat + t * (b.gp_lat - a.gp_lat);
	p.gp_lon = a.gp_lon + t * (b.gp_lon - a.gp_lon);
	return p;
}

/* The smallest crossing of segment a-b with poly's edges above t, or 1. */
static double
region_next_crossing(const struct geo_point *poly, size_t n,
    struct geo_point a, struct geo_point b, double t)
{
	double	 next = 1, u;
	size_t	 i, j;

	for (i = 0, j = n - 1; i < n; j = i++)
		if ((u = region_crossing(a, b, poly[j], poly[i])) > t &&
		    u < next)
			next = u;
	return next;
}

int
tspd_region_exit(const struct geo_point *poly, size_t n, struct geo_point a,
    struct geo_point b, struct geo_point *exit)
{
	double	 best = 2, t, mid;
	size_t	 i, j;

	if (n < 3)
		return -1;
	/* The first crossing after which the segment runs outside. */
	for (i = 0, j = n - 1; i < n; j = i++) {
		if ((t = region_crossing(a, b, poly[j], poly[i])) < 0 ||
		    t >= best)
			continue;
		mid = (t + region_next_crossing(poly, n, a, b, t)) / 2;
		if (!geo_contains(poly, n, region_lerp(a, b, mid)))
			best = t;
	}
	if (best > 1)
		return -1;
	*exit = region_lerp(a, b, best);
	return 0;
}

int
tspd_region_candidates(const struct topo *t, const struct topo_tsp *self,
    struct geo_point pos, double heading, double dist_m,
    struct tspd_candidates *c)
{
	const struct topo_tsp	*tt;
	size_t			 i;

	memset(c, 0, sizeof(*c));
	c->c_projected = geo_project(pos, heading, dist_m);
	if (geo_contains(self->tt_region, self->tt_nregion, c->c_projected))
		return 0;
	if (geo_contains(self->tt_region, self->tt_nregion, pos) &&
	    tspd_region_exit(self->tt_region, self->tt_nregion, pos,
	    c->c_projected, &c->c_exit) == 0)
		c->c_has_exit = 1;
	for (i = 0; i < t->t_ntsps; i++) {
		tt = &t->t_tsps[i];
		if (tt == self || strcmp(tt->tt_id, self->tt_id) == 0)
			continue;
		if (tspd_region_touches(tt, c->c_projected) ||
		    (c->c_has_exit && tspd_region_touches(tt, c->c_exit)))
			c->c_tsp[c->c_n++] = tt;
	}
	return 1;
}
