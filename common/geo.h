/* Geography of PROTOCOL section 9: regions as lat/lon polygons. */
#ifndef QROAM_GEO_H
#define QROAM_GEO_H

#include <stddef.h>

struct geo_point {
	double	gp_lat;
	double	gp_lon;
};

/* 1 if p is inside poly or on its boundary, else 0. */
int	geo_contains(const struct geo_point *poly, size_t n, struct geo_point p);
/* Great-circle distance in metres. */
double	geo_distance_m(struct geo_point a, struct geo_point b);
/* Initial bearing from a to b, degrees clockwise from north [0, 360). */
double	geo_bearing(struct geo_point a, struct geo_point b);
/* The point d metres from a along bearing deg. */
struct geo_point geo_project(struct geo_point a, double deg, double d);

#endif
