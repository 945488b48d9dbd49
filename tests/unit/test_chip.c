/*
 * Unit tests of the emulated chip store (libvehicle/chip.c): writing a fill,
 * draw order in both modes, durable destruction across a reopen, counting
 * unused keys, the registration of M1, events and counters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"
#include "store.h"

#include "chip.h"

#include "testutil.h"

#define NKEYS	TU_VEC_M

struct fixture {
	char		 f_dir[64];
	char		 f_path[96];
	sqlite3		*f_db;
	struct tu_fill	 f_fill;	/* the test vector, by sequence index */
};

/* Code of the key at sequence position i of the test vector. */
static const char *
seq_code(int i)
{
	return tu_vec_codes[tu_vec_order[i]];
}

static int
setup(void **state)
{
	struct fixture	*fx;

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	assert_int_equal(tu_tmpdir_new(fx->f_dir, sizeof(fx->f_dir),
	    "test_chip"), 0);
	snprintf(fx->f_path, sizeof(fx->f_path), "%s/chip.db", fx->f_dir);
	fx->f_db = chip_open(fx->f_path);
	assert_non_null(fx->f_db);
	tu_fill_vector(&fx->f_fill);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	chip_close(fx->f_db);
	if (tu_tmpdir_free(fx->f_dir) == -1)
		fprintf(stderr, "cannot remove %s\n", fx->f_dir);
	free(fx);
	return 0;
}

static void
test_fill_writes_chip(void **state)
{
	struct fixture		*fx = *state;
	struct chip_info	 ci;
	struct chip_key		 ck;
	int			 i;

	assert_int_equal(chip_get(fx->f_db, &ci), 0);
	assert_int_equal(chip_fill(fx->f_db, &fx->f_fill.tf_rec), 0);
	assert_int_equal(chip_get(fx->f_db, &ci), 1);
	assert_string_equal(ci.ci_chip_id, TU_VEC_CHIP_ID);
	assert_int_equal(ci.ci_m, NKEYS);
	assert_int_equal(ci.ci_k, 10);
	assert_int_equal(ci.ci_n, 6);
	for (i = 0; i < NKEYS; i++) {
		assert_int_equal(chip_draw_index(fx->f_db, i, &ck), CHIP_DRAW_OK);
		assert_string_equal(ck.ck_code, seq_code(i));
		assert_memory_equal(ck.ck_key, fx->f_fill.tf_key[i], 32);
		assert_int_equal(chip_draw_code(fx->f_db, seq_code(i), &ck),
		    CHIP_DRAW_OK);
		assert_int_equal(ck.ck_index, i);
	}
	assert_int_equal(chip_draw_index(fx->f_db, NKEYS, &ck), CHIP_DRAW_NONE);
	assert_int_equal(chip_draw_code(fx->f_db, "0000000000", &ck),
	    CHIP_DRAW_NONE);
	assert_int_equal(chip_unused(fx->f_db, CHIP_SEQUENTIAL), NKEYS);
	assert_int_equal(chip_unused(fx->f_db, CHIP_ARBITRARY), NKEYS);
}

static void
test_fill_rejects_bad_record(void **state)
{
	struct fixture		*fx = *state;
	struct chip_info	 ci;
	char			 bad[65];

	snprintf(bad, sizeof(bad), "%s", TU_VEC_CHIP_ID);
	bad[0] = bad[0] == 'c' ? 'd' : 'c';
	fx->f_fill.tf_rec.chip_id = bad;
	assert_int_equal(chip_fill(fx->f_db, &fx->f_fill.tf_rec), -1);
	assert_int_equal(chip_get(fx->f_db, &ci), 0);
	fx->f_fill.tf_rec.chip_id = fx->f_fill.tf_chip_id;
	/* Codes must ascend. */
	fx->f_fill.tf_ck[1].code = fx->f_fill.tf_code[0];
	assert_int_equal(chip_fill(fx->f_db, &fx->f_fill.tf_rec), -1);
	assert_int_equal(tu_query_int(fx->f_db,
	    "SELECT COUNT(*) FROM chip_keys"), 0);
}

static void
test_draw_sequential(void **state)
{
	struct fixture	*fx = *state;
	struct chip_key	 ck;
	int		 i;

	assert_int_equal(chip_fill(fx->f_db, &fx->f_fill.tf_rec), 0);
	for (i = 0; i < NKEYS; i++) {
		assert_int_equal(chip_draw(fx->f_db, CHIP_SEQUENTIAL, &ck),
		    CHIP_DRAW_OK);
		assert_int_equal(ck.ck_index, i);
		assert_string_equal(ck.ck_code, seq_code(i));
		assert_memory_equal(ck.ck_key, fx->f_fill.tf_key[i], 32);
		/* Drawing alone does not use the key up. */
		assert_int_equal(chip_unused(fx->f_db, CHIP_SEQUENTIAL), NKEYS - i);
		assert_int_equal(chip_destroy_key(fx->f_db, ck.ck_index), 0);
		assert_int_equal(chip_unused(fx->f_db, CHIP_SEQUENTIAL),
		    NKEYS - i - 1);
		chip_key_wipe(&ck);
	}
	assert_int_equal(chip_draw(fx->f_db, CHIP_SEQUENTIAL, &ck), CHIP_DRAW_NONE);
	assert_int_equal(chip_draw(fx->f_db, CHIP_ARBITRARY, &ck), CHIP_DRAW_NONE);
	assert_int_equal(chip_unused(fx->f_db, CHIP_ARBITRARY), 0);
	assert_int_equal(chip_draw_index(fx->f_db, 0, &ck), CHIP_DRAW_DESTROYED);
	assert_int_equal(ck.ck_index, 0);
	assert_string_equal(ck.ck_code, seq_code(0));
	/* A destroyed key cannot be destroyed (used) again. */
	assert_int_equal(chip_destroy_key(fx->f_db, 0), -1);
}

static void
test_sequential_continues_after_last_destroyed(void **state)
{
	struct fixture	*fx = *state;
	struct chip_key	 ck;

	assert_int_equal(chip_fill(fx->f_db, &fx->f_fill.tf_rec), 0);
	assert_int_equal(chip_destroy_key(fx->f_db, 2), 0);
	/* The keys before it are skipped: a TSP burns them. */
	assert_int_equal(chip_draw(fx->f_db, CHIP_SEQUENTIAL, &ck), CHIP_DRAW_OK);
	assert_int_equal(ck.ck_index, 3);
	assert_int_equal(chip_unused(fx->f_db, CHIP_SEQUENTIAL), 2);
	assert_int_equal(chip_unused(fx->f_db, CHIP_ARBITRARY), 4);
	/* They stay intact and can still be named explicitly. */
	assert_int_equal(chip_draw_index(fx->f_db, 1, &ck), CHIP_DRAW_OK);
	assert_memory_equal(ck.ck_key, fx->f_fill.tf_key[1], 32);
	assert_int_equal(chip_destroy_key(fx->f_db, 4), 0);
	assert_int_equal(chip_draw(fx->f_db, CHIP_SEQUENTIAL, &ck), CHIP_DRAW_NONE);
	assert_int_equal(chip_unused(fx->f_db, CHIP_SEQUENTIAL), 0);
	assert_int_equal(chip_unused(fx->f_db, CHIP_ARBITRARY), 3);
}

static void
test_draw_arbitrary(void **state)
{
	struct fixture	*fx = *state;
	struct chip_key	 ck;
	int		 seen[NKEYS] = { 0 }, i;

	assert_int_equal(chip_fill(fx->f_db, &fx->f_fill.tf_rec), 0);
	for (i = 0; i < NKEYS; i++) {
		assert_int_equal(chip_draw(fx->f_db, CHIP_ARBITRARY, &ck),
		    CHIP_DRAW_OK);
		assert_true(ck.ck_index < NKEYS);
		assert_int_equal(seen[ck.ck_index], 0);
		seen[ck.ck_index] = 1;
		assert_string_equal(ck.ck_code, seq_code(ck.ck_index));
		assert_memory_equal(ck.ck_key, fx->f_fill.tf_key[ck.ck_index],
		    32);
		assert_int_equal(chip_destroy_key(fx->f_db, ck.ck_index), 0);
		assert_int_equal(chip_unused(fx->f_db, CHIP_ARBITRARY),
		    NKEYS - i - 1);
	}
	assert_int_equal(chip_draw(fx->f_db, CHIP_ARBITRARY, &ck), CHIP_DRAW_NONE);
}

static void
test_destroy_is_durable(void **state)
{
	struct fixture	*fx = *state;
	struct chip_key	 ck;

	assert_int_equal(chip_fill(fx->f_db, &fx->f_fill.tf_rec), 0);
	assert_int_equal(chip_destroy_key(fx->f_db, 1), 0);
	chip_close(fx->f_db);
	fx->f_db = chip_open(fx->f_path);
	assert_non_null(fx->f_db);
	assert_int_equal(tu_query_int(fx->f_db, "PRAGMA synchronous"), 2);
	assert_int_equal(tu_query_int(fx->f_db,
	    "SELECT destroyed FROM chip_keys WHERE idx = 1"), 1);
	assert_int_equal(tu_query_int(fx->f_db,
	    "SELECT COUNT(*) FROM chip_keys WHERE idx = 1 AND key IS NULL"), 1);
	assert_int_equal(tu_query_int(fx->f_db,
	    "SELECT COUNT(*) FROM chip_keys WHERE destroyed_ms > 0"), 1);
	assert_int_equal(tu_query_int(fx->f_db,
	    "SELECT COUNT(*) FROM chip_keys WHERE key IS NOT NULL"), NKEYS - 1);
	assert_int_equal(chip_draw_index(fx->f_db, 1, &ck), CHIP_DRAW_DESTROYED);
	assert_int_equal(chip_draw(fx->f_db, CHIP_SEQUENTIAL, &ck), CHIP_DRAW_OK);
	assert_int_equal(ck.ck_index, 2);
	assert_int_equal(chip_destroy_key(fx->f_db, 1), -1);
}

static void
test_refill_replaces_chip(void **state)
{
	struct fixture		*fx = *state;
	struct chip_info	 ci;

	assert_int_equal(chip_fill(fx->f_db, &fx->f_fill.tf_rec), 0);
	assert_int_equal(chip_destroy_key(fx->f_db, 0), 0);
	assert_int_equal(chip_fill(fx->f_db, &fx->f_fill.tf_rec), 0);
	assert_int_equal(chip_get(fx->f_db, &ci), 1);
	assert_int_equal(tu_query_int(fx->f_db,
	    "SELECT COUNT(*) FROM chip_keys"), NKEYS);
	assert_int_equal(chip_unused(fx->f_db, CHIP_SEQUENTIAL), NKEYS);
}

static void
test_registration(void **state)
{
	struct fixture		*fx = *state;
	Qroam__M1		 m1 = QROAM__M1__INIT;
	Qroam__TspInfo		 ti = QROAM__TSP_INFO__INIT, *tip = &ti;
	Qroam__Point		 pt[4], *ptp[4];
	struct chip_reg		 cr;
	struct topo		 t;
	uint8_t			 pbv[3] = { 1, 2, 3 };
	int			 i;

	for (i = 0; i < 4; i++) {
		qroam__point__init(&pt[i]);
		pt[i].lat = 30.0 + (i == 1 || i == 2) * 0.1;
		pt[i].lon = 120.0 + (i >= 2) * 0.1;
		ptp[i] = &pt[i];
	}
	ti.tsp_id = "tsp-a";
	ti.host = "127.0.0.1";
	ti.port = 7101;
	ti.n_region = 4;
	ti.region = ptp;
	m1.pbv.data = pbv;
	m1.pbv.len = sizeof(pbv);
	m1.n_tsps = 1;
	m1.tsps = &tip;
	assert_int_equal(chip_reg_load(fx->f_db, &cr), 0);
	assert_int_equal(chip_reg_save(fx->f_db, "NOT A VIN", TU_VEC_CHIP_ID,
	    &m1), -1);
	assert_int_equal(chip_reg_save(fx->f_db, "LVTEST00000000001",
	    TU_VEC_CHIP_ID, &m1), 0);
	assert_int_equal(chip_reg_load(fx->f_db, &cr), 1);
	assert_string_equal(cr.cr_vid, "LVTEST00000000001");
	assert_string_equal(cr.cr_chip_id, TU_VEC_CHIP_ID);
	assert_int_equal(cr.cr_pbvlen, sizeof(pbv));
	assert_memory_equal(cr.cr_pbv, pbv, sizeof(pbv));
	chip_reg_clear(&cr);
	assert_int_equal(chip_reg_tsps(fx->f_db, &t), 1);
	assert_string_equal(t.t_tsps[0].tt_id, "tsp-a");
	assert_int_equal(t.t_tsps[0].tt_vehicle.ep_port, 7101);
	assert_int_equal(t.t_tsps[0].tt_nregion, 4);
	assert_true(t.t_tsps[0].tt_region[2].gp_lat > 30.09);
	chip_reg_tsps_free(&t);
	ti.port = 0;
	assert_int_equal(chip_reg_save(fx->f_db, "LVTEST00000000001",
	    TU_VEC_CHIP_ID, &m1), -1);
}

static void
test_events_and_counters(void **state)
{
	struct fixture	*fx = *state;

	chip_event(fx->f_db, "power_on", NULL, "at %d,%d", 1, 2);
	chip_event(fx->f_db, "auth_ok", "tsp-a", "after %d ms", 5);
	assert_int_equal(tu_query_int(fx->f_db,
	    "SELECT COUNT(*) FROM events"), 2);
	assert_int_equal(tu_query_int(fx->f_db, "SELECT COUNT(*) FROM events"
	    " WHERE kind = 'auth_ok' AND tsp_id = 'tsp-a'"), 1);
	assert_int_equal(chip_counter(fx->f_db, "telemetry_sent"), 0);
	chip_count(fx->f_db, "telemetry_sent", 1);
	chip_count(fx->f_db, "telemetry_sent", 2);
	assert_int_equal(chip_counter(fx->f_db, "telemetry_sent"), 3);
	/* A high-water mark only rises (the record id mark). */
	assert_int_equal(chip_counter_raise(fx->f_db, "record_id_mark",
	    1700000000000000LL), 0);
	assert_int_equal(chip_counter_raise(fx->f_db, "record_id_mark", 5), 0);
	assert_true(chip_counter(fx->f_db, "record_id_mark") ==
	    1700000000000000LL);
	assert_int_equal(chip_counter_raise(fx->f_db, "record_id_mark",
	    1700000000000001LL), 0);
	assert_true(chip_counter(fx->f_db, "record_id_mark") ==
	    1700000000000001LL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fill_writes_chip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fill_rejects_bad_record,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_draw_sequential, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_sequential_continues_after_last_destroyed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_draw_arbitrary, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_destroy_is_durable, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refill_replaces_chip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_registration, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_events_and_counters, setup,
		    teardown),
	};

	log_init("test_chip", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
