/*
 * Unit tests of vehicled's fleet mode and handover settings: the VINs of
 * a fleet's vehicles (vehicled/fleet.c), the gap median and maximum of
 * the FLEET line, and the configuration directives fleet, fleet_spacing,
 * fleet_store, fleet_offset, fleet_rate, enroll_only, power_cycle_at,
 * decline_at_end, reauth_on_entry, entry, unstored_max and resend_burst
 * (vehicled/config.c), with what a reload takes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ids.h"
#include "log.h"

#include "../../vehicled/config.h"
#include "../../vehicled/fleet.h"

#include "testutil.h"

#define BASE_VIN	"LVTEST00000000937"

static void
test_fleet_vins(void **state)
{
	char		vin[18];
	uint32_t	i;

	(void)state;
	/* Up to ten vehicles: the last character is the number. */
	assert_int_equal(vfleet_vin(BASE_VIN, 0, 3, vin), 0);
	assert_string_equal(vin, "LVTEST00000000930");
	assert_int_equal(vfleet_vin(BASE_VIN, 2, 3, vin), 0);
	assert_string_equal(vin, "LVTEST00000000932");
	assert_int_equal(vfleet_vin(BASE_VIN, 0, 1, vin), 0);
	assert_string_equal(vin, "LVTEST00000000930");
	/* 11 to 100 vehicles: two digits, zero-padded. */
	assert_int_equal(vfleet_vin(BASE_VIN, 7, 11, vin), 0);
	assert_string_equal(vin, "LVTEST00000000907");
	assert_int_equal(vfleet_vin(BASE_VIN, 99, 100, vin), 0);
	assert_string_equal(vin, "LVTEST00000000999");
	/* Letters at the end are replaced by digits: still a valid VIN. */
	assert_int_equal(vfleet_vin("LVTESTABCDEFGHJKL", 123, 1000, vin), 0);
	assert_string_equal(vin, "LVTESTABCDEFGH123");
	for (i = 0; i < 1000; i += 37) {
		assert_int_equal(vfleet_vin(BASE_VIN, i, 1000, vin), 0);
		assert_true(id_valid_vin(vin));
	}
	/* Out of range or a base that is no VIN. */
	assert_int_equal(vfleet_vin(BASE_VIN, 3, 3, vin), -1);
	assert_int_equal(vfleet_vin("SHORT", 0, 2, vin), -1);
}

static void
test_gap_stats(void **state)
{
	double	odd[] = { 30.5, 1.5, 2.0 }, even[] = { 4, 1, 3, 2 };
	double	p50 = -1, max = -1;

	(void)state;
	assert_int_equal(vfleet_gap_stats(odd, 0, &p50, &max), -1);
	assert_int_equal(vfleet_gap_stats(odd, 3, &p50, &max), 0);
	assert_true(p50 == 2.0 && max == 30.5);
	assert_int_equal(vfleet_gap_stats(even, 4, &p50, &max), 0);
	assert_true(p50 == 2.5 && max == 4);
}

/* Load a configuration with the required lines plus extra; 0 or -1. */
static int
load(const char *dir, const char *extra, struct vconf *vc)
{
	char	text[1024];

	snprintf(text, sizeof(text), "vehicle_id %s\nstore %s/v.db\n"
	    "topology %s/topology\n%s", BASE_VIN, dir, dir, extra);
	return vconf_load(tu_write_file(dir, "vehicled.conf", text), vc);
}

static void
test_config_directives(void **state)
{
	struct vconf	 vc;
	char		 dir[64];
	const char	*err;

	(void)state;
	assert_int_equal(tu_tmpdir_new(dir, sizeof(dir), "test_fleet"), 0);
	assert_int_equal(load(dir, "", &vc), 0);
	assert_int_equal(vc.vc_fleet, 0);
	assert_int_equal(vc.vc_fleet_spacing_ms, 2000);
	assert_int_equal(vc.vc_power_cycle_ms, 0);
	assert_int_equal(vc.vc_decline_at_end, 0);
	assert_int_equal(vc.vc_reauth_on_entry, 0);
	assert_int_equal(vc.vc_entry, VCONF_ENTRY_PREPARED);
	assert_int_equal(vc.vc_unstored_max, 4096);
	assert_int_equal(vc.vc_resend_burst, 8);
	vconf_free(&vc);

	assert_int_equal(load(dir, "fleet 5\nfleet_spacing 500ms\n"
	    "power_cycle_at 2m\ndecline_at_end yes\nreauth_on_entry yes\n",
	    &vc), 0);
	assert_int_equal(vc.vc_reauth_on_entry, 1);
	assert_int_equal(vc.vc_fleet, 5);
	assert_int_equal(vc.vc_fleet_spacing_ms, 500);
	assert_int_equal(vc.vc_power_cycle_ms, 120000);
	assert_int_equal(vc.vc_decline_at_end, 1);
	vconf_free(&vc);

	assert_int_equal(load(dir, "entry on_crossing\nunstored_max 1\n"
	    "resend_burst 0\n", &vc), 0);
	assert_int_equal(vc.vc_entry, VCONF_ENTRY_ON_CROSSING);
	assert_int_equal(vc.vc_unstored_max, 1);
	assert_int_equal(vc.vc_resend_burst, 0);
	vconf_free(&vc);

	tu_capture_begin();
	assert_int_equal(load(dir, "fleet 0\ndecline_at_end maybe\n"
	    "power_cycle_at soon\n", &vc), -1);
	err = tu_capture_end();
	assert_non_null(strstr(err, "vehicled.conf:4: fleet must be"));
	assert_non_null(strstr(err, "vehicled.conf:5: decline_at_end must be"));
	assert_non_null(strstr(err, "vehicled.conf:6: power_cycle_at: bad"));

	tu_capture_begin();
	assert_int_equal(load(dir, "entry early\nunstored_max 0\n"
	    "resend_burst 1001\n", &vc), -1);
	err = tu_capture_end();
	assert_non_null(strstr(err, "vehicled.conf:4: entry must be prepared"
	    " or on_crossing"));
	assert_non_null(strstr(err, "vehicled.conf:5: unstored_max must be"));
	assert_non_null(strstr(err, "vehicled.conf:6: resend_burst must be"));
	assert_int_equal(tu_tmpdir_free(dir), 0);
}

/* The fleet store's directives, and the size limits with and without it. */
static void
test_config_fleet_store(void **state)
{
	struct vconf	 vc;
	char		 dir[64];
	const char	*err;

	(void)state;
	assert_int_equal(tu_tmpdir_new(dir, sizeof(dir), "test_fleet"), 0);
	assert_int_equal(load(dir, "", &vc), 0);
	assert_int_equal(vc.vc_fleet_store, 0);
	assert_int_equal(vc.vc_fleet_offset_ms, 0);
	assert_int_equal(vc.vc_fleet_rate, 0);
	assert_int_equal(vc.vc_enroll_only, 0);
	vconf_free(&vc);

	assert_int_equal(load(dir, "fleet 100000\nfleet_store yes\n"
	    "fleet_offset 1h\nfleet_rate 400\nenroll_only yes\n", &vc), 0);
	assert_int_equal(vc.vc_fleet, 100000);
	assert_int_equal(vc.vc_fleet_store, 1);
	assert_int_equal(vc.vc_fleet_offset_ms, 3600000);
	assert_int_equal(vc.vc_fleet_rate, 400);
	assert_int_equal(vc.vc_enroll_only, 1);
	vconf_free(&vc);

	/* Store files of their own stop at 1000; the fleet store needs fleet. */
	tu_capture_begin();
	assert_int_equal(load(dir, "fleet 1001\n", &vc), -1);
	err = tu_capture_end();
	assert_non_null(strstr(err, "more than 1000 vehicles needs"
	    " \"fleet_store\""));
	tu_capture_begin();
	assert_int_equal(load(dir, "fleet_store yes\n", &vc), -1);
	err = tu_capture_end();
	assert_non_null(strstr(err, "\"fleet_store\" needs \"fleet\""));
	tu_capture_begin();
	assert_int_equal(load(dir, "fleet 200001\nfleet_store maybe\n"
	    "fleet_rate -1\nenroll_only 2\n", &vc), -1);
	err = tu_capture_end();
	assert_non_null(strstr(err, "vehicled.conf:4: fleet must be"
	    " 1..200000"));
	assert_non_null(strstr(err, "vehicled.conf:5: fleet_store must be"));
	assert_non_null(strstr(err, "vehicled.conf:6: fleet_rate must be"));
	assert_non_null(strstr(err, "vehicled.conf:7: enroll_only must be"));
	assert_int_equal(tu_tmpdir_free(dir), 0);
}

/* A reload takes entry and resend_burst; unstored_max waits a restart. */
static void
test_config_reload(void **state)
{
	struct vconf	run, next;
	char		dir[64];

	(void)state;
	assert_int_equal(tu_tmpdir_new(dir, sizeof(dir), "test_fleet"), 0);
	assert_int_equal(load(dir, "", &run), 0);
	assert_int_equal(load(dir, "entry on_crossing\nresend_burst 2\n"
	    "unstored_max 10\n", &next), 0);
	vconf_take_runtime(&run, &next);
	assert_int_equal(run.vc_entry, VCONF_ENTRY_ON_CROSSING);
	assert_int_equal(run.vc_resend_burst, 2);
	assert_int_equal(run.vc_unstored_max, 4096);
	vconf_free(&run);
	vconf_free(&next);
	assert_int_equal(tu_tmpdir_free(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fleet_vins),
		cmocka_unit_test(test_gap_stats),
		cmocka_unit_test(test_config_directives),
		cmocka_unit_test(test_config_fleet_store),
		cmocka_unit_test(test_config_reload),
	};

	log_init("test_fleet", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
