/*
 * Regions of the handover trigger (F6 step 1): where a vehicle's
 * look-ahead leaves this TSP's region and which other TSPs serve there.
 * Pure geometry on the topology: no sockets, no store, unit-tested alone.
 */
#ifndef TSPD_REGION_H
#define TSPD_REGION_H

#include <stddef.h>

#include "geo.h"
#include "topo.h"

/* A point this close to a region's boundary touches that region. */
#define TSPD_REGION_TOUCH_M	1.0

struct tspd_candidates {
	struct geo_point	 c_projected;	/* end of the look-ahead */
	struct geo_point	 c_exit;	/* where it leaves the region */
	int			 c_has_exit;	/* 0: it starts outside */
	const struct topo_tsp	*c_tsp[TOPO_MAXTSP];
	size_t			 c_n;
};

/*
 * 1 if p lies inside tt's region, on its boundary or within
 * TSPD_REGION_TOUCH_M metres of the boundary, else 0.
 */
int	tspd_region_touches(const struct topo_tsp *tt, struct geo_point p);

/*
 * The first point where the segment a-b (straight in lat/lon) leaves the
 * polygon, a being inside it: 0 and *exit set, or -1 if it never leaves.
 */
int	tspd_region_exit(const struct geo_point *poly, size_t n,
	    struct geo_point a, struct geo_point b, struct geo_point *exit);

/*
 * Project pos along heading (degrees) for dist_m metres.  Returns 0 if
 * the projection stays in self's region; else 1 with c filled: the
 * projected point, the exit point when pos is inside the region, and
 * every other TSP whose region touches either point (possibly none).
 */
int	tspd_region_candidates(const struct topo *t,
	    const struct topo_tsp *self, struct geo_point pos, double heading,
	    double dist_m, struct tspd_candidates *c);

#endif
