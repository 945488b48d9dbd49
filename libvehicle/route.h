/*
 * The vehicle's trip: waypoints driven at a constant speed, on a simulated
 * clock that runs time_factor times faster than the real one.
 */
#ifndef LIBVEHICLE_ROUTE_H
#define LIBVEHICLE_ROUTE_H

#include <stddef.h>

#include "geo.h"
#include "topo.h"

struct route;

struct route_pos {
	struct geo_point	rp_point;
	double			rp_heading;	/* degrees clockwise from north */
	double			rp_speed;	/* m/s; 0 once the route ended */
	double			rp_odometer_m;	/* distance driven */
	int			rp_done;	/* the last waypoint is reached */
};

/* A route over a copy of pts (n >= 1); NULL on a bad argument. */
struct route *route_new(const struct geo_point *pts, size_t n, double speed,
	    double time_factor);
/* Another holder of r (the vehicles of a fleet share one route); r. */
struct route *route_ref(struct route *r);
/* Let go of r; the last holder frees it. */
void	route_free(struct route *);
/* Simulated seconds after real_ms real milliseconds of driving. */
double	route_sim_seconds(const struct route *, double real_ms);
/* Where the vehicle is after sim_s simulated seconds. */
void	route_at(const struct route *, double sim_s, struct route_pos *);
/* Total length in metres. */
double	route_length(const struct route *);

/* The centre (vertex mean) of a TSP's region, for vehicles without a route. */
int	route_region_centre(const struct topo_tsp *, struct geo_point *);
/*
 * The TSP serving p: the current one (by id, may be NULL) while its region
 * still contains p, since regions may overlap; else the preferred one (by
 * id, may be NULL: the TSP that holds the vehicle's context) if its region
 * contains p; else the first of t whose region contains p; NULL outside
 * every region.
 */
const struct topo_tsp *route_tsp_at(const struct topo *t, struct geo_point p,
	    const char *current, const char *preferred);

/* Distance along the route in metres after sim_s simulated seconds. */
double	route_distance(const struct route *, double sim_s);
/*
 * Look along the route from from_m to to_m metres (to_m < 0: the end) for
 * the first of the n regions of tsps that the route enters: two route
 * points in a row inside it (a region only touched at a boundary point
 * is passed by, unless the look ends there).  Where several are entered
 * at once, the one touched first, then the lowest index.  Returns its
 * index with the distance where it was first touched in *at_m (may be
 * NULL), or -1 when the route enters none.
 */
int	route_first_region(const struct route *, double from_m, double to_m,
	    const struct topo_tsp *tsps, size_t n, double *at_m);
/* 1 if some route point between from_m and to_m lies outside tt's region. */
int	route_leaves(const struct route *, double from_m, double to_m,
	    const struct topo_tsp *tt);
/*
 * How far p lies from tt's region in metres (0 inside or on its
 * boundary, -1 for a region without vertices), on a plane tangent at p:
 * good to a fraction of a per cent over the tens of kilometres a
 * handover looks at.
 */
double	route_region_distance(const struct topo_tsp *tt, struct geo_point p);
/*
 * The serving TSPs along the whole route in the order the vehicle meets
 * them (route_tsp_at's rules, stretches outside every region skipped and
 * a region met again right after itself listed once).  Writes at most max
 * pointers into t and returns how many regions the route passes.
 */
size_t	route_regions(const struct route *, const struct topo *t,
	    const struct topo_tsp **out, size_t max);

#endif
