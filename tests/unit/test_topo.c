/*
 * Unit tests of the topology file and the region geometry: parsing and
 * its errors, region lookup, containment on boundaries and concave
 * polygons, distance, bearing and projection.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "geo.h"
#include "topo.h"

#include "testutil.h"

static char	tmpdir[64];

/* Two neighbouring regions sharing the edge lon = 120.10. */
static const char topo_ok[] =
	"# deployment\n"
	"filler    127.0.0.1:7001\n"
	"registrar 127.0.0.1:7002\n"
	"sched     [::1]:7003\n"
	"qkd       localhost:7004\n"
	"\n"
	"tsp tsp-a vehicle 127.0.0.1:7101 provision 127.0.0.1:7201\n"
	"tsp tsp-b provision 127.0.0.1:7202 vehicle 127.0.0.1:7102\n"
	"region tsp-a 30.00,120.00 30.00,120.10 30.10,120.10 30.10,120.00\n"
	"region tsp-b 30.00,120.10 30.00,120.20 30.10,120.20 30.10,120.10\n";

/* Write text as the test's topology file; returns its path. */
static const char *
write_topo(const char *text)
{
	return tu_write_file(tmpdir, "topology", text);
}

static int
setup(void **state)
{
	(void)state;
	return tu_tmpdir_new(tmpdir, sizeof(tmpdir), "test_topo");
}

static int
teardown(void **state)
{
	(void)state;
	return tu_tmpdir_free(tmpdir);
}

static struct geo_point
pt(double lat, double lon)
{
	struct geo_point	p;

	p.gp_lat = lat;
	p.gp_lon = lon;
	return p;
}

static void
test_load(void **state)
{
	struct topo		 t;
	const struct topo_tsp	*a, *b;

	(void)state;
	assert_int_equal(topo_load(write_topo(topo_ok), &t), 0);
	assert_string_equal(t.t_filler.ep_host, "127.0.0.1");
	assert_int_equal(t.t_filler.ep_port, 7001);
	assert_int_equal(t.t_registrar.ep_port, 7002);
	assert_string_equal(t.t_sched.ep_host, "::1");
	assert_int_equal(t.t_sched.ep_port, 7003);
	assert_string_equal(t.t_qkd.ep_host, "localhost");
	assert_int_equal(t.t_ntsps, 2);
	a = topo_tsp(&t, "tsp-a");
	b = topo_tsp(&t, "tsp-b");
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_equal(a, &t.t_tsps[0]);
	assert_null(topo_tsp(&t, "tsp-c"));
	assert_int_equal(a->tt_vehicle.ep_port, 7101);
	assert_int_equal(a->tt_provision.ep_port, 7201);
	/* Endpoint order on the tsp line does not matter. */
	assert_int_equal(b->tt_vehicle.ep_port, 7102);
	assert_int_equal(b->tt_provision.ep_port, 7202);
	assert_int_equal(a->tt_nregion, 4);
	assert_true(a->tt_region[2].gp_lat == 30.10);
	assert_true(a->tt_region[2].gp_lon == 120.10);
	topo_free(&t);
	assert_int_equal(t.t_ntsps, 0);
}

/* topo_need: a role's address is there, or one line names what is missing. */
static void
test_need(void **state)
{
	struct topo	 t;
	const char	*err;

	(void)state;
	assert_int_equal(topo_load(write_topo(
	    "filler 127.0.0.1:1\n"
	    "qkd 127.0.0.1:2\n"), &t), 0);
	assert_int_equal(topo_need(&t, "topo", "filler"), 0);
	assert_int_equal(topo_need(&t, "topo", "qkd"), 0);
	tu_capture_begin();
	assert_int_equal(topo_need(&t, "topo", "registrar"), -1);
	assert_int_equal(topo_need(&t, "topo", "sched"), -1);
	assert_int_equal(topo_need(&t, "topo", "tsp"), -1);
	err = tu_capture_end();
	assert_string_equal(err, "topo: no registrar endpoint\n"
	    "topo: no sched endpoint\n"
	    "topo: no tsp endpoint\n");
	topo_free(&t);
}

static void
test_unset_endpoints(void **state)
{
	struct topo	t;

	(void)state;
	assert_int_equal(topo_load(write_topo(
	    "tsp x vehicle 127.0.0.1:1 provision 127.0.0.1:2\n"
	    "region x 0,0 0,1 1,1\n"), &t), 0);
	assert_int_equal(t.t_filler.ep_port, 0);
	assert_int_equal(t.t_sched.ep_port, 0);
	assert_int_equal(t.t_ntsps, 1);
	topo_free(&t);
}

/* Copy tmpl into out with every '@' replaced by the topology path. */
static void
expand(const char *tmpl, const char *p, char *out, size_t len)
{
	size_t	n = 0, pl = strlen(p);

	for (; *tmpl != '\0'; tmpl++) {
		if (*tmpl == '@') {
			assert_true(n + pl < len);
			memcpy(out + n, p, pl);
			n += pl;
		} else {
			assert_true(n + 1 < len);
			out[n++] = *tmpl;
		}
	}
	out[n] = '\0';
}

/* Load text, expect failure, and check the exact stderr output. */
static void
expect_error(const char *text, const char *tmpl)
{
	struct topo	 t;
	const char	*err, *p;
	char		 want[2048];

	p = write_topo(text);
	tu_capture_begin();
	assert_int_equal(topo_load(p, &t), -1);
	err = tu_capture_end();
	expand(tmpl, p, want, sizeof(want));
	assert_string_equal(err, want);
	/* Nothing is left allocated or half-filled. */
	assert_int_equal(t.t_ntsps, 0);
}

static void
test_unknown_tsp_in_region(void **state)
{
	(void)state;
	expect_error(
	    "tsp tsp-a vehicle 127.0.0.1:1 provision 127.0.0.1:2\n"
	    "region tsp-a 0,0 0,1 1,1\n"
	    "region tsp-z 0,0 0,1 1,1\n",
	    "@:3: region for unknown tsp \"tsp-z\"\n");
}

static void
test_duplicate_tsp(void **state)
{
	(void)state;
	expect_error(
	    "tsp tsp-a vehicle 127.0.0.1:1 provision 127.0.0.1:2\n"
	    "tsp tsp-a vehicle 127.0.0.1:3 provision 127.0.0.1:4\n"
	    "region tsp-a 0,0 0,1 1,1\n",
	    "@:2: duplicate tsp \"tsp-a\"\n");
}

static void
test_duplicate_region(void **state)
{
	(void)state;
	expect_error(
	    "tsp tsp-a vehicle 127.0.0.1:1 provision 127.0.0.1:2\n"
	    "region tsp-a 0,0 0,1 1,1\n"
	    "region tsp-a 0,0 0,2 2,2\n",
	    "@:3: duplicate region for tsp \"tsp-a\"\n");
}

static void
test_bad_points(void **state)
{
	(void)state;
	expect_error(
	    "tsp a vehicle 127.0.0.1:1 provision 127.0.0.1:2\n"
	    "tsp b vehicle 127.0.0.1:3 provision 127.0.0.1:4\n"
	    "tsp c vehicle 127.0.0.1:5 provision 127.0.0.1:6\n"
	    "tsp d vehicle 127.0.0.1:7 provision 127.0.0.1:8\n"
	    "tsp e vehicle 127.0.0.1:9 provision 127.0.0.1:10\n"
	    "region a 0,0 0;1 1,1\n"
	    "region b 0,0 91,1 1,1\n"
	    "region c 0,0 0,180.5 1,1\n"
	    "region d 0,0 x,1 1,1\n"
	    "region e 0,0 1,1\n",
	    "@:6: bad point \"0;1\" (want LAT,LON in degrees)\n"
	    "@:7: bad point \"91,1\" (want LAT,LON in degrees)\n"
	    "@:8: bad point \"0,180.5\" (want LAT,LON in degrees)\n"
	    "@:9: bad point \"x,1\" (want LAT,LON in degrees)\n"
	    "@:10: region needs a tsp id and at least 3 LAT,LON points\n"
	    "@: tsp a has no region\n"
	    "@: tsp b has no region\n"
	    "@: tsp c has no region\n"
	    "@: tsp d has no region\n"
	    "@: tsp e has no region\n");
}

static void
test_missing_region(void **state)
{
	(void)state;
	expect_error(
	    "tsp tsp-a vehicle 127.0.0.1:1 provision 127.0.0.1:2\n"
	    "tsp tsp-b vehicle 127.0.0.1:3 provision 127.0.0.1:4\n"
	    "region tsp-a 0,0 0,1 1,1\n",
	    "@: tsp tsp-b has no region\n");
}

static void
test_bad_tsp_lines(void **state)
{
	(void)state;
	expect_error(
	    "tsp\n"
	    "tsp TSP-A vehicle 127.0.0.1:1 provision 127.0.0.1:2\n"
	    "tsp a vehicle 127.0.0.1:1\n"
	    "tsp b vehicle 127.0.0.1:1 provision\n"
	    "tsp c vehicle 127.0.0.1 provision 127.0.0.1:2\n"
	    "tsp d vehicle 127.0.0.1:1 telemetry 127.0.0.1:2\n"
	    "filler 127.0.0.1\n"
	    "registrar 127.0.0.1:1 127.0.0.1:2\n"
	    "bogus 1\n",
	    "@:1: tsp needs a valid id ([a-z0-9._-]{1,32})\n"
	    "@:2: tsp needs a valid id ([a-z0-9._-]{1,32})\n"
	    "@:3: tsp a needs both vehicle and provision addresses\n"
	    "@:4: tsp: expected \"vehicle HOST:PORT provision HOST:PORT\"\n"
	    "@:5: bad address \"127.0.0.1\" (want HOST:PORT)\n"
	    "@:6: tsp: unknown endpoint \"telemetry\"\n"
	    "@:7: bad address \"127.0.0.1\" (want HOST:PORT)\n"
	    "@:8: registrar takes one HOST:PORT\n"
	    "@:9: unknown directive \"bogus\"\n");
}

/*
 * A rejected tsp line is the one error for its tsp: its region line is not
 * reported as one for an unknown tsp; other regions still are checked.
 */
static void
test_bad_tsp_region(void **state)
{
	(void)state;
	expect_error(
	    "tsp tsp-a vehicle 127.0.0.1:1 provision 127.0.0.1:2\n"
	    "tsp tsp-b vehicle 127.0.0.1:99999 provision 127.0.0.1:2\n"
	    "tsp tsp-c vehicle 127.0.0.1:3\n"
	    "region tsp-a 0,0 0,1 1,1\n"
	    "region tsp-b 0,0 0,1 1,1\n"
	    "region tsp-c 0,0 0,1 1,1\n"
	    "region tsp-d 0,0 0,1 1,1\n",
	    "@:2: bad address \"127.0.0.1:99999\" (want HOST:PORT)\n"
	    "@:3: tsp tsp-c needs both vehicle and provision addresses\n"
	    "@:7: region for unknown tsp \"tsp-d\"\n");
}

static void
test_too_many_tsps(void **state)
{
	char	*text;
	char	 line[160], want[256];
	int	 i;

	(void)state;
	text = calloc(1, (TOPO_MAXTSP + 1) * sizeof(line));
	assert_non_null(text);
	for (i = 0; i <= TOPO_MAXTSP; i++) {
		snprintf(line, sizeof(line),
		    "tsp t%d vehicle 127.0.0.1:1 provision 127.0.0.1:2\n"
		    "region t%d 0,0 0,1 1,1\n", i, i);
		strcat(text, line);
	}
	/* One error: the region of the tsp too many is not reported again. */
	snprintf(want, sizeof(want), "@:%d: too many tsps (max %d)\n",
	    2 * TOPO_MAXTSP + 1, TOPO_MAXTSP);
	expect_error(text, want);
	free(text);
}

static void
test_tsp_at(void **state)
{
	struct topo		 t;
	const struct topo_tsp	*a, *b;

	(void)state;
	assert_int_equal(topo_load(write_topo(topo_ok), &t), 0);
	a = topo_tsp(&t, "tsp-a");
	b = topo_tsp(&t, "tsp-b");
	assert_ptr_equal(topo_tsp_at(&t, pt(30.05, 120.05)), a);
	assert_ptr_equal(topo_tsp_at(&t, pt(30.05, 120.15)), b);
	assert_ptr_equal(topo_tsp_at(&t, pt(30.00, 120.00)), a);
	assert_ptr_equal(topo_tsp_at(&t, pt(30.10, 120.20)), b);
	/* On the shared edge both contain it; the first listed wins. */
	assert_true(geo_contains(a->tt_region, a->tt_nregion, pt(30.05, 120.10)));
	assert_true(geo_contains(b->tt_region, b->tt_nregion, pt(30.05, 120.10)));
	assert_ptr_equal(topo_tsp_at(&t, pt(30.05, 120.10)), a);
	assert_null(topo_tsp_at(&t, pt(30.05, 120.21)));
	assert_null(topo_tsp_at(&t, pt(29.99, 120.05)));
	assert_null(topo_tsp_at(&t, pt(-30.05, -120.05)));
	topo_free(&t);
}

static void
test_contains_square(void **state)
{
	const struct geo_point sq[] = {
		{ 30.00, 120.00 }, { 30.00, 120.10 },
		{ 30.10, 120.10 }, { 30.10, 120.00 },
	};
	size_t	i;

	(void)state;
	assert_true(geo_contains(sq, 4, pt(30.05, 120.05)));
	/* Every vertex and every edge midpoint is inside. */
	for (i = 0; i < 4; i++) {
		assert_true(geo_contains(sq, 4, sq[i]));
		assert_true(geo_contains(sq, 4, pt(
		    (sq[i].gp_lat + sq[(i + 1) % 4].gp_lat) / 2,
		    (sq[i].gp_lon + sq[(i + 1) % 4].gp_lon) / 2)));
	}
	/* Just outside each side, and on the lines extending the edges. */
	assert_false(geo_contains(sq, 4, pt(29.999, 120.05)));
	assert_false(geo_contains(sq, 4, pt(30.101, 120.05)));
	assert_false(geo_contains(sq, 4, pt(30.05, 119.999)));
	assert_false(geo_contains(sq, 4, pt(30.05, 120.101)));
	assert_false(geo_contains(sq, 4, pt(30.00, 120.20)));
	assert_false(geo_contains(sq, 4, pt(30.20, 120.10)));
	assert_false(geo_contains(sq, 4, pt(29.90, 119.90)));
	/* Fewer than three vertices hold nothing. */
	assert_false(geo_contains(sq, 2, pt(30.00, 120.05)));
	assert_false(geo_contains(sq, 0, pt(30.05, 120.05)));
}

static void
test_contains_triangle_diagonal(void **state)
{
	const struct geo_point tri[] = {
		{ 30.00, 120.00 }, { 30.10, 120.10 }, { 30.00, 120.10 },
	};

	(void)state;
	assert_true(geo_contains(tri, 3, pt(30.03, 120.07)));
	/* On the slanted edge, and just either side of it. */
	assert_true(geo_contains(tri, 3, pt(30.05, 120.05)));
	assert_true(geo_contains(tri, 3, pt(30.049, 120.05)));
	assert_false(geo_contains(tri, 3, pt(30.051, 120.05)));
	/* Clockwise or counter-clockwise vertex order: same answer. */
	{
		const struct geo_point rev[] = {
			{ 30.00, 120.10 }, { 30.10, 120.10 }, { 30.00, 120.00 },
		};

		assert_true(geo_contains(rev, 3, pt(30.03, 120.07)));
		assert_true(geo_contains(rev, 3, pt(30.05, 120.05)));
		assert_false(geo_contains(rev, 3, pt(30.07, 120.03)));
	}
}

static void
test_contains_concave(void **state)
{
	/* A "U": the notch 30.02..30.08 x 120.04..120.10 is outside. */
	const struct geo_point u[] = {
		{ 30.00, 120.00 }, { 30.10, 120.00 }, { 30.10, 120.10 },
		{ 30.08, 120.10 }, { 30.08, 120.04 }, { 30.02, 120.04 },
		{ 30.02, 120.10 }, { 30.00, 120.10 },
	};
	size_t	n = sizeof(u) / sizeof(u[0]), i;

	(void)state;
	assert_true(geo_contains(u, n, pt(30.05, 120.02)));	/* base */
	assert_true(geo_contains(u, n, pt(30.09, 120.08)));	/* upper arm */
	assert_true(geo_contains(u, n, pt(30.01, 120.08)));	/* lower arm */
	assert_false(geo_contains(u, n, pt(30.05, 120.07)));	/* notch */
	assert_false(geo_contains(u, n, pt(30.05, 120.099)));	/* notch mouth */
	/* A ray through the notch crosses the polygon four times. */
	assert_false(geo_contains(u, n, pt(30.05, 120.11)));
	assert_true(geo_contains(u, n, pt(30.05, 120.04)));	/* notch floor */
	assert_true(geo_contains(u, n, pt(30.08, 120.07)));	/* notch side */
	for (i = 0; i < n; i++)
		assert_true(geo_contains(u, n, u[i]));
	/* Level with horizontal edges: the ray passes through vertices. */
	assert_true(geo_contains(u, n, pt(30.02, 120.01)));
	assert_true(geo_contains(u, n, pt(30.08, 120.01)));
	assert_false(geo_contains(u, n, pt(30.02, 119.99)));
	assert_false(geo_contains(u, n, pt(30.08, 120.11)));
}

static void
test_distance(void **state)
{
	double	one_deg = 6371008.8 * M_PI / 180.0;

	(void)state;
	assert_true(geo_distance_m(pt(30, 120), pt(30, 120)) == 0.0);
	assert_true(fabs(geo_distance_m(pt(0, 0), pt(1, 0)) - one_deg) < 0.01);
	assert_true(fabs(geo_distance_m(pt(0, 0), pt(0, 1)) - one_deg) < 0.01);
	assert_true(fabs(geo_distance_m(pt(30, 120), pt(31, 120)) - one_deg) < 0.01);
	/* A degree of longitude shrinks with cos(latitude). */
	assert_true(fabs(geo_distance_m(pt(60, 10), pt(60, 11)) -
	    one_deg * cos(60 * M_PI / 180)) < 1.0);
	/* Symmetric; antipodes are half the circumference. */
	assert_true(fabs(geo_distance_m(pt(30, 120), pt(30.1, 120.2)) -
	    geo_distance_m(pt(30.1, 120.2), pt(30, 120))) < 1e-6);
	assert_true(fabs(geo_distance_m(pt(0, 0), pt(0, 180)) -
	    180 * one_deg) < 1.0);
	assert_true(fabs(geo_distance_m(pt(90, 0), pt(-90, 0)) -
	    180 * one_deg) < 1.0);
}

static void
test_bearing(void **state)
{
	double	b;

	(void)state;
	assert_true(fabs(geo_bearing(pt(0, 0), pt(1, 0)) - 0) < 1e-9);
	assert_true(fabs(geo_bearing(pt(0, 0), pt(0, 1)) - 90) < 1e-9);
	assert_true(fabs(geo_bearing(pt(0, 0), pt(-1, 0)) - 180) < 1e-9);
	assert_true(fabs(geo_bearing(pt(0, 0), pt(0, -1)) - 270) < 1e-9);
	b = geo_bearing(pt(30, 120), pt(30.1, 120.1));
	assert_true(b > 0 && b < 90);
	b = geo_bearing(pt(30, 120), pt(29.9, 119.99));
	assert_true(b > 180 && b < 270);
	/* Always in [0, 360). */
	b = geo_bearing(pt(0, 0), pt(1, -1e-12));
	assert_true(b >= 0 && b < 360);
}

static void
test_project(void **state)
{
	const double	 bearings[] = { 0, 45, 90, 135, 180, 225, 270, 315, 359.9 };
	const double	 dists[] = { 0, 1, 25, 1000, 12345.6, 100000 };
	struct geo_point a = pt(30.05, 120.05), b;
	size_t		 i, j;
	double		 d, db;

	(void)state;
	for (i = 0; i < sizeof(bearings) / sizeof(bearings[0]); i++) {
		for (j = 0; j < sizeof(dists) / sizeof(dists[0]); j++) {
			b = geo_project(a, bearings[i], dists[j]);
			d = geo_distance_m(a, b);
			assert_true(fabs(d - dists[j]) < 1e-6 * dists[j] + 1e-3);
			if (dists[j] < 1)
				continue;
			db = fabs(geo_bearing(a, b) - bearings[i]);
			if (db > 180)
				db = 360 - db;
			assert_true(db < 1e-6);
		}
	}
	/* Due north 1 degree of arc, due east along the equator. */
	b = geo_project(pt(0, 0), 0, 6371008.8 * M_PI / 180.0);
	assert_true(fabs(b.gp_lat - 1) < 1e-9 && fabs(b.gp_lon) < 1e-9);
	b = geo_project(pt(0, 0), 90, 6371008.8 * M_PI / 180.0);
	assert_true(fabs(b.gp_lat) < 1e-9 && fabs(b.gp_lon - 1) < 1e-9);
}

/* Load text as topology into t (it must parse). */
static void
load_topo(const char *text, struct topo *t)
{
	assert_int_equal(topo_load(write_topo(text), t), 0);
}

/* Replace the first occurrence of from in topo_ok by to, into out. */
static const char *
topo_ok_with(const char *from, const char *to, char *out, size_t len)
{
	const char	*at = strstr(topo_ok, from);

	assert_non_null(at);
	snprintf(out, len, "%.*s%s%s", (int)(at - topo_ok), topo_ok, to,
	    at + strlen(from));
	return out;
}

/* topo_differs names the first part that changed, NULL when none did. */
static void
test_differs(void **state)
{
	const struct {
		const char	*from, *to, *what;
	} c[] = {
		{ "filler    127.0.0.1:7001", "filler 127.0.0.1:7009",
		    "the filler address" },
		{ "registrar 127.0.0.1:7002", "registrar 127.0.0.2:7002",
		    "the registrar address" },
		{ "sched     [::1]:7003", "", "the sched address" },
		{ "qkd       localhost:7004", "qkd localhost:7005",
		    "the qkd address" },
		{ "vehicle 127.0.0.1:7101", "vehicle 127.0.0.1:7111",
		    "the vehicle address of tsp tsp-a" },
		{ "provision 127.0.0.1:7202", "provision 127.0.0.1:7212",
		    "the provision address of tsp tsp-b" },
		{ "30.10,120.20 30.10,120.10\n", "30.10,120.21 30.10,120.10\n",
		    "the region of tsp tsp-b" },
		{ "30.10,120.10 30.10,120.00\n",
		    "30.10,120.10 30.15,120.05 30.10,120.00\n",
		    "the region of tsp tsp-a" },
	};
	struct topo	 a, b;
	char		 text[1024], buf[64];
	size_t		 i;

	(void)state;
	load_topo(topo_ok, &a);
	load_topo(topo_ok, &b);
	assert_null(topo_differs(&a, &b, buf, sizeof(buf)));
	assert_int_equal(topo_reload_restart_only(&a, &b), 0);
	topo_free(&b);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		load_topo(topo_ok_with(c[i].from, c[i].to, text, sizeof(text)),
		    &b);
		assert_ptr_equal(topo_differs(&a, &b, buf, sizeof(buf)), buf);
		assert_string_equal(buf, c[i].what);
		assert_string_equal(topo_differs(&b, &a, buf, sizeof(buf)),
		    c[i].what);
		assert_int_equal(topo_reload_restart_only(&a, &b), 1);
		topo_free(&b);
	}
	/* A TSP more, or the same TSPs in another order. */
	load_topo(topo_ok_with("tsp tsp-a", "tsp tsp-c vehicle 1.2.3.4:1 "
	    "provision 1.2.3.4:2\nregion tsp-c 1,1 1,2 2,2\ntsp tsp-a", text,
	    sizeof(text)), &b);
	assert_string_equal(topo_differs(&a, &b, buf, sizeof(buf)),
	    "the tsp list");
	topo_free(&b);
	load_topo("filler    127.0.0.1:7001\n"
	    "registrar 127.0.0.1:7002\n"
	    "sched     [::1]:7003\n"
	    "qkd       localhost:7004\n"
	    "tsp tsp-b provision 127.0.0.1:7202 vehicle 127.0.0.1:7102\n"
	    "tsp tsp-a vehicle 127.0.0.1:7101 provision 127.0.0.1:7201\n"
	    "region tsp-a 30.00,120.00 30.00,120.10 30.10,120.10 30.10,120.00\n"
	    "region tsp-b 30.00,120.10 30.00,120.20 30.10,120.20 30.10,120.10\n",
	    &b);
	assert_string_equal(topo_differs(&a, &b, buf, sizeof(buf)),
	    "the tsp list");
	topo_free(&b);
	topo_free(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_unset_endpoints),
		cmocka_unit_test(test_need),
		cmocka_unit_test(test_unknown_tsp_in_region),
		cmocka_unit_test(test_duplicate_tsp),
		cmocka_unit_test(test_duplicate_region),
		cmocka_unit_test(test_bad_points),
		cmocka_unit_test(test_missing_region),
		cmocka_unit_test(test_bad_tsp_lines),
		cmocka_unit_test(test_bad_tsp_region),
		cmocka_unit_test(test_too_many_tsps),
		cmocka_unit_test(test_tsp_at),
		cmocka_unit_test(test_differs),
		cmocka_unit_test(test_contains_square),
		cmocka_unit_test(test_contains_triangle_diagonal),
		cmocka_unit_test(test_contains_concave),
		cmocka_unit_test(test_distance),
		cmocka_unit_test(test_bearing),
		cmocka_unit_test(test_project),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
