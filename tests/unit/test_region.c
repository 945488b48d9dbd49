/*
 * Unit tests of the handover trigger geometry (tspd/region.c): a
 * look-ahead inside the region, one leaving it towards a neighbour, one
 * whose exit point is a boundary point touching two neighbours, one
 * leaving towards no TSP at all, and the exit point itself.
 *
 *   lat 30.10 +-----------+-----------+
 *             |           |     B     |
 *   lat 30.05 |     A     +-----------+   D touches A on its west edge.
 *             |           |     C     |   E touches A only at its north-
 *   lat 30.00 +-----------+-----------+   east corner (30.10, 120.10).
 *          120.00      120.10      120.20
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../tspd/region.h"

static struct geo_point reg_a[] = {
	{ 30.00, 120.00 }, { 30.00, 120.10 }, { 30.10, 120.10 },
	{ 30.10, 120.00 },
};
static struct geo_point reg_b[] = {
	{ 30.05, 120.10 }, { 30.05, 120.20 }, { 30.10, 120.20 },
	{ 30.10, 120.10 },
};
static struct geo_point reg_c[] = {
	{ 30.00, 120.10 }, { 30.00, 120.20 }, { 30.05, 120.20 },
	{ 30.05, 120.10 },
};
static struct geo_point reg_d[] = {
	{ 30.00, 119.90 }, { 30.00, 120.00 }, { 30.10, 120.00 },
	{ 30.10, 119.90 },
};
static struct geo_point reg_e[] = {
	{ 30.10, 120.10 }, { 30.10, 120.20 }, { 30.20, 120.20 },
	{ 30.20, 120.10 },
};

/* The topology of the picture above. */
static void
topology(struct topo *t)
{
	static const struct {
		const char		*id;
		struct geo_point	*reg;
	} tsps[] = {
		{ "tsp-a", reg_a }, { "tsp-b", reg_b }, { "tsp-c", reg_c },
		{ "tsp-d", reg_d }, { "tsp-e", reg_e },
	};
	size_t	 i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < sizeof(tsps) / sizeof(tsps[0]); i++) {
		strcpy(t->t_tsps[i].tt_id, tsps[i].id);
		strcpy(t->t_tsps[i].tt_vehicle.ep_host, "127.0.0.1");
		t->t_tsps[i].tt_vehicle.ep_port = (uint16_t)(7100 + i);
		t->t_tsps[i].tt_region = tsps[i].reg;
		t->t_tsps[i].tt_nregion = 4;
	}
	t->t_ntsps = i;
}

/* 1 if c lists the TSP named id. */
static int
has(const struct tspd_candidates *c, const char *id)
{
	size_t	 i;

	for (i = 0; i < c->c_n; i++)
		if (strcmp(c->c_tsp[i]->tt_id, id) == 0)
			return 1;
	return 0;
}

static struct geo_point
pt(double lat, double lon)
{
	struct geo_point	p = { lat, lon };

	return p;
}

static void
test_inside_no_trigger(void **state)
{
	struct topo		 t;
	struct tspd_candidates	 c;

	(void)state;
	topology(&t);
	assert_int_equal(tspd_region_candidates(&t, &t.t_tsps[0],
	    pt(30.05, 120.05), 90.0, 300.0, &c), 0);
	/* Standing still next to the boundary stays inside too. */
	assert_int_equal(tspd_region_candidates(&t, &t.t_tsps[0],
	    pt(30.08, 120.0999), 90.0, 0.0, &c), 0);
}

static void
test_leaving_east_upper(void **state)
{
	struct topo		 t;
	struct tspd_candidates	 c;

	(void)state;
	topology(&t);
	assert_int_equal(tspd_region_candidates(&t, &t.t_tsps[0],
	    pt(30.08, 120.099), 90.0, 300.0, &c), 1);
	assert_true(c.c_has_exit);
	assert_true(c.c_exit.gp_lon > 120.0999 && c.c_exit.gp_lon < 120.1001);
	assert_true(c.c_exit.gp_lat > 30.0799 && c.c_exit.gp_lat < 30.0801);
	assert_true(c.c_projected.gp_lon > 120.1);
	assert_int_equal(c.c_n, 1);
	assert_true(has(&c, "tsp-b"));
}

static void
test_boundary_point_two_neighbours(void **state)
{
	struct topo		 t;
	struct tspd_candidates	 c;

	(void)state;
	topology(&t);
	/* Due east along lat 30.05: the exit is the corner of B and C. */
	assert_int_equal(tspd_region_candidates(&t, &t.t_tsps[0],
	    pt(30.05, 120.095), 90.0, 1000.0, &c), 1);
	assert_true(c.c_has_exit);
	assert_int_equal(c.c_n, 2);
	assert_true(has(&c, "tsp-b"));
	assert_true(has(&c, "tsp-c"));
	assert_false(has(&c, "tsp-a"));
	assert_false(has(&c, "tsp-d"));

	/* North-east past A's corner: the exit is B's, the projection E's. */
	assert_int_equal(tspd_region_candidates(&t, &t.t_tsps[0],
	    pt(30.099, 120.099), 45.0, 1000.0, &c), 1);
	assert_true(has(&c, "tsp-e"));
	assert_true(has(&c, "tsp-b"));
	assert_false(has(&c, "tsp-c"));

	/* West: only D. */
	assert_int_equal(tspd_region_candidates(&t, &t.t_tsps[0],
	    pt(30.02, 120.001), 270.0, 500.0, &c), 1);
	assert_int_equal(c.c_n, 1);
	assert_true(has(&c, "tsp-d"));
}

static void
test_no_candidate(void **state)
{
	struct topo		 t;
	struct tspd_candidates	 c;

	(void)state;
	topology(&t);
	/* North out of A's west half: nobody serves there. */
	assert_int_equal(tspd_region_candidates(&t, &t.t_tsps[0],
	    pt(30.095, 120.05), 0.0, 1000.0, &c), 1);
	assert_true(c.c_has_exit);
	assert_int_equal(c.c_n, 0);
	assert_true(c.c_exit.gp_lat > 30.0999 && c.c_exit.gp_lat < 30.1001);
}

static void
test_starting_outside(void **state)
{
	struct topo		 t;
	struct tspd_candidates	 c;

	(void)state;
	topology(&t);
	/* Already in C, still served by A: C is the candidate, no exit. */
	assert_int_equal(tspd_region_candidates(&t, &t.t_tsps[0],
	    pt(30.02, 120.15), 90.0, 100.0, &c), 1);
	assert_false(c.c_has_exit);
	assert_int_equal(c.c_n, 1);
	assert_true(has(&c, "tsp-c"));
}

static void
test_exit_point(void **state)
{
	struct geo_point	 e;

	(void)state;
	assert_int_equal(tspd_region_exit(reg_a, 4, pt(30.05, 120.05),
	    pt(30.05, 120.15), &e), 0);
	assert_true(e.gp_lat > 30.0499999 && e.gp_lat < 30.0500001);
	assert_true(e.gp_lon > 120.0999999 && e.gp_lon < 120.1000001);
	/* South-west towards the corner (30.00, 120.00). */
	assert_int_equal(tspd_region_exit(reg_a, 4, pt(30.01, 120.01),
	    pt(29.99, 119.99), &e), 0);
	assert_true(e.gp_lat > 29.9999999 && e.gp_lat < 30.0000001);
	assert_true(e.gp_lon > 119.9999999 && e.gp_lon < 120.0000001);
	/* A segment that stays inside never leaves. */
	assert_int_equal(tspd_region_exit(reg_a, 4, pt(30.01, 120.01),
	    pt(30.02, 120.02), &e), -1);
	/* Touching within a metre counts; ten metres off does not. */
	assert_true(tspd_region_touches(&(struct topo_tsp){ .tt_region = reg_b,
	    .tt_nregion = 4 }, pt(30.05, 120.09999)));
	assert_false(tspd_region_touches(&(struct topo_tsp){ .tt_region = reg_b,
	    .tt_nregion = 4 }, pt(30.05, 120.0999)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inside_no_trigger),
		cmocka_unit_test(test_leaving_east_upper),
		cmocka_unit_test(test_boundary_point_two_neighbours),
		cmocka_unit_test(test_no_candidate),
		cmocka_unit_test(test_starting_outside),
		cmocka_unit_test(test_exit_point),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
