/*
 * The vehicle's trip: waypoints driven at a constant speed, on a simulated
 * clock that runs time_factor times faster than the real one.
 */
#ifndef VEHICLED_ROUTE_H
#define VEHICLED_ROUTE_H

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
 * still contains p, since regions may overlap; else the first of t whose
 * region contains p; NULL outside every region.
 */
const struct topo_tsp *route_tsp_at(const struct topo *t, struct geo_point p,
	    const char *current);

#endif
