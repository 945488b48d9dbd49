/*
 * Unit tests of the vehicle's route (libvehicle/route.c): the position along
 * a route of several waypoints on the simulated clock, the order of the
 * regions a route passes (overlapping and touching regions included), the
 * serving TSP where regions overlap, the choice of the next candidate
 * region for M6, and the distance from a point to a region (prepared
 * entry's turning away).
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "geo.h"
#include "log.h"
#include "topo.h"

#include "route.h"

#define DEG_EPS	1e-3	/* about 100 m */

/* Square regions of 0.1 degree: A, B, C east of each other at lat 30. */
static struct geo_point sq_a[] = {
	{ 30.0, 120.0 }, { 30.0, 120.1 }, { 30.1, 120.1 }, { 30.1, 120.0 } };
static struct geo_point sq_b[] = {
	{ 30.0, 120.1 }, { 30.0, 120.2 }, { 30.1, 120.2 }, { 30.1, 120.1 } };
static struct geo_point sq_c[] = {
	{ 30.0, 120.2 }, { 30.0, 120.3 }, { 30.1, 120.3 }, { 30.1, 120.2 } };
/* A widened east so that it overlaps B up to lon 120.12. */
static struct geo_point wide_a[] = {
	{ 30.0, 120.0 }, { 30.0, 120.12 }, { 30.1, 120.12 }, { 30.1, 120.0 } };
/* North of B: touches A only at the corner 30.1,120.1. */
static struct geo_point north_b[] = {
	{ 30.1, 120.1 }, { 30.1, 120.2 }, { 30.2, 120.2 }, { 30.2, 120.1 } };

/* A topology of up to three TSPs with the given regions (4 vertices). */
static void
mktopo(struct topo *t, struct geo_point *ra, struct geo_point *rb,
    struct geo_point *rc)
{
	struct geo_point	*r[3] = { ra, rb, rc };
	const char		*ids[3] = { "tsp-a", "tsp-b", "tsp-c" };
	size_t			 i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < 3 && r[i] != NULL; i++) {
		snprintf(t->t_tsps[i].tt_id, sizeof(t->t_tsps[i].tt_id), "%s",
		    ids[i]);
		t->t_tsps[i].tt_region = r[i];
		t->t_tsps[i].tt_nregion = 4;
		t->t_ntsps++;
	}
}

/* A route over n "lat,lon" pairs at 100 m/s, time factor 10. */
static struct route *
mkroute(const double *latlon, size_t n)
{
	struct geo_point	pts[8];
	struct route		*r;
	size_t			 i;

	assert_true(n <= 8);
	for (i = 0; i < n; i++) {
		pts[i].gp_lat = latlon[2 * i];
		pts[i].gp_lon = latlon[2 * i + 1];
	}
	r = route_new(pts, n, 100, 10);
	assert_non_null(r);
	return r;
}

/* The region ids a route passes, joined by spaces. */
static void
order(const struct route *r, const struct topo *t, char *buf, size_t len)
{
	const struct topo_tsp	*out[8];
	size_t			 n, i, off = 0;

	n = route_regions(r, t, out, 8);
	assert_true(n <= 8);
	buf[0] = '\0';
	for (i = 0; i < n; i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? " " : "",
		    out[i]->tt_id);
}

static void
test_position_along_waypoints(void **state)
{
	const double		 ll[] = { 30.0, 120.0, 30.0, 120.1, 30.1, 120.1 };
	struct geo_point	 p0 = { 30.0, 120.0 }, p1 = { 30.0, 120.1 };
	struct geo_point	 p2 = { 30.1, 120.1 };
	struct route		*r = mkroute(ll, 3);
	struct route_pos	 rp;
	double			 d1, d2;

	(void)state;
	d1 = geo_distance_m(p0, p1);
	d2 = geo_distance_m(p1, p2);
	assert_true(route_length(r) > d1 + d2 - 1 &&
	    route_length(r) < d1 + d2 + 1);
	/* One real second is ten simulated seconds. */
	assert_true(route_sim_seconds(r, 1000) > 9.999 &&
	    route_sim_seconds(r, 1000) < 10.001);

	route_at(r, 0, &rp);
	assert_true(geo_distance_m(rp.rp_point, p0) < 0.01);
	assert_false(rp.rp_done);
	assert_true(rp.rp_odometer_m == 0);

	/* Half way along the first leg, heading east. */
	route_at(r, d1 / 2 / 100, &rp);
	assert_true(rp.rp_point.gp_lat > 30.0 - DEG_EPS &&
	    rp.rp_point.gp_lat < 30.0 + DEG_EPS);
	assert_true(rp.rp_point.gp_lon > 120.05 - DEG_EPS &&
	    rp.rp_point.gp_lon < 120.05 + DEG_EPS);
	assert_true(rp.rp_heading > 89 && rp.rp_heading < 91);
	assert_true(rp.rp_speed == 100);
	assert_true(rp.rp_odometer_m > d1 / 2 - 1 && rp.rp_odometer_m < d1 / 2 + 1);

	/* Half way along the second leg, heading north. */
	route_at(r, (d1 + d2 / 2) / 100, &rp);
	assert_true(rp.rp_point.gp_lat > 30.05 - DEG_EPS &&
	    rp.rp_point.gp_lat < 30.05 + DEG_EPS);
	assert_true(rp.rp_point.gp_lon > 120.1 - DEG_EPS &&
	    rp.rp_point.gp_lon < 120.1 + DEG_EPS);
	assert_true(rp.rp_heading < 1 || rp.rp_heading > 359);
	assert_false(rp.rp_done);

	/* Past the end: standing at the last waypoint. */
	route_at(r, (d1 + d2) / 100 + 60, &rp);
	assert_true(rp.rp_point.gp_lat == 30.1 && rp.rp_point.gp_lon == 120.1);
	assert_true(rp.rp_done);
	assert_true(rp.rp_speed == 0);
	assert_true(route_distance(r, 1e9) == route_length(r));
	assert_true(route_distance(r, -5) == 0);
	assert_true(route_distance(r, 10) > 999 && route_distance(r, 10) < 1001);
	route_free(r);
}

static void
test_standing_vehicle(void **state)
{
	const double		 ll[] = { 30.05, 120.05 };
	struct route		*r = mkroute(ll, 1);
	struct route_pos	 rp;

	(void)state;
	route_at(r, 1000, &rp);
	assert_true(rp.rp_point.gp_lat == 30.05 && rp.rp_point.gp_lon == 120.05);
	assert_true(rp.rp_done);
	assert_true(rp.rp_speed == 0);
	assert_true(route_length(r) == 0);
	assert_null(route_new(NULL, 0, 1, 1));
	route_free(r);
}

static void
test_region_order(void **state)
{
	const double	 abc[] = { 30.05, 120.05, 30.05, 120.25 };
	const double	 aba[] = { 30.05, 120.05, 30.05, 120.15, 30.05, 120.05 };
	const double	 gap[] = { 30.05, 120.05, 29.95, 120.05, 30.05, 120.15 };
	struct topo	 t;
	struct route	*r;
	char		 buf[64];

	(void)state;
	mktopo(&t, sq_a, sq_b, sq_c);
	r = mkroute(abc, 2);
	order(r, &t, buf, sizeof(buf));
	assert_string_equal(buf, "tsp-a tsp-b tsp-c");
	route_free(r);

	r = mkroute(aba, 3);
	order(r, &t, buf, sizeof(buf));
	assert_string_equal(buf, "tsp-a tsp-b tsp-a");
	route_free(r);

	/* Out of every region and back into A: A counts once, then B. */
	r = mkroute(gap, 3);
	order(r, &t, buf, sizeof(buf));
	assert_string_equal(buf, "tsp-a tsp-b");
	route_free(r);
}

static void
test_overlap_keeps_the_current_tsp(void **state)
{
	const double		 ab[] = { 30.05, 120.05, 30.05, 120.15 };
	struct geo_point	 both = { 30.05, 120.11 }, bonly = { 30.05, 120.13 };
	struct topo		 t;
	struct route		*r;
	char			 buf[64];

	(void)state;
	mktopo(&t, wide_a, sq_b, NULL);
	assert_string_equal(route_tsp_at(&t, both, "tsp-a", NULL)->tt_id,
	    "tsp-a");
	assert_string_equal(route_tsp_at(&t, both, "tsp-a", "tsp-b")->tt_id,
	    "tsp-a");
	assert_string_equal(route_tsp_at(&t, both, "", "tsp-b")->tt_id,
	    "tsp-b");
	assert_string_equal(route_tsp_at(&t, both, NULL, NULL)->tt_id,
	    "tsp-a");
	assert_string_equal(route_tsp_at(&t, bonly, "tsp-a", NULL)->tt_id,
	    "tsp-b");
	assert_null(route_tsp_at(&t, (struct geo_point){ 31, 121 }, "tsp-a",
	    "tsp-b"));
	r = mkroute(ab, 2);
	order(r, &t, buf, sizeof(buf));
	assert_string_equal(buf, "tsp-a tsp-b");
	route_free(r);
}

static void
test_next_candidate(void **state)
{
	const double	 abc[] = { 30.05, 120.05, 30.05, 120.25 };
	struct topo	 t, cands;
	struct route	*r;
	double		 at = -1, into;
	int		 i;

	(void)state;
	mktopo(&t, sq_a, sq_b, sq_c);
	/* Candidates listed C first: the route enters B first. */
	mktopo(&cands, sq_c, sq_b, NULL);
	r = mkroute(abc, 2);
	i = route_first_region(r, 0, -1, cands.t_tsps, 2, &at);
	assert_int_equal(i, 1);
	into = geo_distance_m((struct geo_point){ 30.05, 120.05 },
	    (struct geo_point){ 30.05, 120.1 });
	assert_true(at > into - 15 && at < into + 15);
	/* From inside B on, C is next. */
	i = route_first_region(r, into + 100, -1, cands.t_tsps, 1, &at);
	assert_int_equal(i, 0);
	/* A look that ends before the boundary finds nothing. */
	assert_int_equal(route_first_region(r, 0, into - 500, cands.t_tsps, 2,
	    NULL), -1);
	assert_int_equal(route_first_region(r, 0, -1, cands.t_tsps, 0, NULL),
	    -1);
	/* The route leaves A, and a look inside A does not. */
	assert_int_equal(route_leaves(r, 0, -1, &t.t_tsps[0]), 1);
	assert_int_equal(route_leaves(r, 0, into - 500, &t.t_tsps[0]), 0);
	assert_int_equal(route_leaves(r, into + 100, into + 2000,
	    &t.t_tsps[1]), 0);
	route_free(r);
}

static void
test_touching_point(void **state)
{
	const double	 corner[] = { 30.05, 120.05, 30.1, 120.1, 30.15, 120.15 };
	const double	 edge[] = { 30.05, 120.05, 30.05, 120.1 };
	struct geo_point start = { 30.05, 120.05 }, mid = { 30.1, 120.1 };
	struct topo	 t, cands;
	struct route	*r;
	double		 at = -1, into = geo_distance_m(start, mid);
	char		 buf[64];

	(void)state;
	/* B east of A and C north of B: both touch A's corner. */
	mktopo(&t, sq_a, sq_b, north_b);
	mktopo(&cands, sq_b, north_b, NULL);
	r = mkroute(corner, 3);
	/* Through the corner into C: B is only touched there. */
	assert_int_equal(route_first_region(r, 0, -1, cands.t_tsps, 2, &at), 1);
	assert_true(at > into - 1 && at < into + 1);
	assert_int_equal(route_first_region(r, 0, -1, cands.t_tsps, 1, NULL),
	    -1);
	order(r, &t, buf, sizeof(buf));
	assert_string_equal(buf, "tsp-a tsp-c");
	route_free(r);

	/* A route ending on B's boundary counts as entering it. */
	r = mkroute(edge, 2);
	assert_int_equal(route_first_region(r, 0, -1, cands.t_tsps, 2, NULL), 0);
	assert_int_equal(route_leaves(r, 0, -1, &t.t_tsps[0]), 0);
	route_free(r);
}

static void
test_region_distance(void **state)
{
	struct topo		t;
	struct topo_tsp		empty;
	struct geo_point	p;
	double			m_per_deg = 6371000.0 * 3.14159265358979 / 180;

	(void)state;
	mktopo(&t, sq_a, sq_b, NULL);
	/* Inside and on the boundary: 0. */
	p.gp_lat = 30.05;
	p.gp_lon = 120.15;
	assert_true(route_region_distance(&t.t_tsps[1], p) == 0);
	p.gp_lon = 120.1;
	assert_true(route_region_distance(&t.t_tsps[1], p) == 0);
	/* West of B, level with it: the distance to its west edge. */
	p.gp_lon = 120.09;
	assert_true(fabs(route_region_distance(&t.t_tsps[1], p) - 0.01 *
	    m_per_deg * cos(30.05 * 3.14159265358979 / 180)) < 2);
	/* South of B: the distance to its south edge. */
	p.gp_lat = 29.99;
	p.gp_lon = 120.15;
	assert_true(fabs(route_region_distance(&t.t_tsps[1], p) - 0.01 *
	    m_per_deg) < 2);
	/* Off a corner: to the corner itself. */
	p.gp_lat = 29.99;
	p.gp_lon = 120.09;
	assert_true(route_region_distance(&t.t_tsps[1], p) >
	    0.01 * m_per_deg);
	assert_true(route_region_distance(&t.t_tsps[1], p) <
	    0.0142 * m_per_deg);
	/* Farther away is farther. */
	p.gp_lat = 30.05;
	p.gp_lon = 120.02;
	assert_true(route_region_distance(&t.t_tsps[1], p) >
	    route_region_distance(&t.t_tsps[0], p) + 7000);
	memset(&empty, 0, sizeof(empty));
	assert_true(route_region_distance(&empty, p) < 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_position_along_waypoints),
		cmocka_unit_test(test_standing_vehicle),
		cmocka_unit_test(test_region_order),
		cmocka_unit_test(test_overlap_keeps_the_current_tsp),
		cmocka_unit_test(test_next_candidate),
		cmocka_unit_test(test_touching_point),
		cmocka_unit_test(test_region_distance),
	};

	log_init("test_route", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
