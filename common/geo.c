/*
 * Region geometry on lat/lon polygons.  Regions are small next to the
 * Earth, so containment works in the plane of (lon, lat); distances and
 * projections use the spherical Earth.
 */
#include <math.h>

#include "geo.h"

#define GEO_R	6371008.8	/* mean Earth radius, m */
#define GEO_EPS	1e-12

static double
rad(double deg)
{
	return deg * M_PI / 180.0;
}

static double
deg(double r)
{
	return r * 180.0 / M_PI;
}

/* 1 if p lies on the segment a-b (within rounding). */
static int
geo_on_segment(struct geo_point a, struct geo_point b, struct geo_point p)
{
	double	cross, dot, len2;

	cross = (b.gp_lon - a.gp_lon) * (p.gp_lat - a.gp_lat) -
	    (b.gp_lat - a.gp_lat) * (p.gp_lon - a.gp_lon);
	if (fabs(cross) > GEO_EPS)
		return 0;
	dot = (p.gp_lon - a.gp_lon) * (b.gp_lon - a.gp_lon) +
	    (p.gp_lat - a.gp_lat) * (b.gp_lat - a.gp_lat);
	len2 = (b.gp_lon - a.gp_lon) * (b.gp_lon - a.gp_lon) +
	    (b.gp_lat - a.gp_lat) * (b.gp_lat - a.gp_lat);
	return dot >= -GEO_EPS && dot <= len2 + GEO_EPS;
}

int
geo_contains(const struct geo_point *poly, size_t n, struct geo_point p)
{
	size_t	i, j;
	int	in = 0;

	if (n < 3)
		return 0;
	for (i = 0, j = n - 1; i < n; j = i++) {
		if (geo_on_segment(poly[j], poly[i], p))
			return 1;
		if ((poly[i].gp_lat > p.gp_lat) != (poly[j].gp_lat > p.gp_lat) &&
		    p.gp_lon < (poly[j].gp_lon - poly[i].gp_lon) *
		    (p.gp_lat - poly[i].gp_lat) /
		    (poly[j].gp_lat - poly[i].gp_lat) + poly[i].gp_lon)
			in = !in;
	}
	return in;
}

double
geo_distance_m(struct geo_point a, struct geo_point b)
{
	double	dlat = rad(b.gp_lat - a.gp_lat), dlon = rad(b.gp_lon - a.gp_lon);
	double	h;

	h = sin(dlat / 2) * sin(dlat / 2) + cos(rad(a.gp_lat)) *
	    cos(rad(b.gp_lat)) * sin(dlon / 2) * sin(dlon / 2);
	return 2 * GEO_R * asin(fmin(1.0, sqrt(h)));
}

double
geo_bearing(struct geo_point a, struct geo_point b)
{
	double	y, x, th;

	y = sin(rad(b.gp_lon - a.gp_lon)) * cos(rad(b.gp_lat));
	x = cos(rad(a.gp_lat)) * sin(rad(b.gp_lat)) -
	    sin(rad(a.gp_lat)) * cos(rad(b.gp_lat)) * cos(rad(b.gp_lon - a.gp_lon));
	th = fmod(deg(atan2(y, x)) + 360.0, 360.0);
	return th;
}

struct geo_point
geo_project(struct geo_point a, double bearing, double d)
{
	struct geo_point	r;
	double			 la = rad(a.gp_lat), lo = rad(a.gp_lon);
	double			 th = rad(bearing), dr = d / GEO_R;

	r.gp_lat = deg(asin(sin(la) * cos(dr) + cos(la) * sin(dr) * cos(th)));
	r.gp_lon = deg(lo + atan2(sin(th) * sin(dr) * cos(la),
	    cos(dr) - sin(la) * sin(rad(r.gp_lat))));
	return r;
}
