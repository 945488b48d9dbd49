/*
 * Unit tests of vehicled's chip stores (vehicled/vchip.c, vchipdb*.c):
 * the fleet store takes keys in sequence, destroyed on disk before the
 * answer comes; a fill, a registration and the journal of several
 * vehicles go to one file and come back when it is opened again; the
 * vehicles share one copy of M1's TSP list; a store file of one vehicle
 * answers the same calls on the next loop turn; and answers never come
 * inside the call that asked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"

#include "../../vehicled/vchip.h"

#include "testutil.h"

#define VIN_A	"LVTEST00000000001"
#define VIN_B	"LVTEST00000000002"

struct fixture {
	char			 f_dir[256];
	char			 f_path[300];
	struct event_base	*f_base;
	struct tu_fill		 f_fill;
	Qroam__M1		 f_m1;
	Qroam__TspInfo		 f_ti, *f_tip;
	Qroam__Point		 f_pt[4], *f_ptp[4];
	uint8_t			 f_pbv[3];
};

/* Answers collected by the callbacks. */
struct answers {
	int		a_n;
	int		a_rc;
	enum chip_draw	a_draw[8];
	uint32_t	a_index[8];
	uint8_t		a_key[8][CHIP_KEYLEN];
};

static void
key_cb(void *arg, enum chip_draw r, struct chip_key *ck)
{
	struct answers	*a = arg;

	a->a_draw[a->a_n] = r;
	if (ck != NULL) {
		a->a_index[a->a_n] = ck->ck_index;
		memcpy(a->a_key[a->a_n], ck->ck_key, CHIP_KEYLEN);
		chip_key_wipe(ck);
	}
	a->a_n++;
}

static void
done_cb(void *arg, int rc)
{
	struct answers	*a = arg;

	a->a_rc = rc;
	a->a_n++;
}

/* An M1 with one TSP and a three-byte Pbv. */
static void
fixture_m1(struct fixture *fx)
{
	int	i;

	for (i = 0; i < 4; i++) {
		qroam__point__init(&fx->f_pt[i]);
		fx->f_pt[i].lat = 30.0 + (i == 1 || i == 2) * 0.1;
		fx->f_pt[i].lon = 120.0 + (i >= 2) * 0.1;
		fx->f_ptp[i] = &fx->f_pt[i];
	}
	qroam__tsp_info__init(&fx->f_ti);
	fx->f_ti.tsp_id = "tsp-a";
	fx->f_ti.host = "127.0.0.1";
	fx->f_ti.port = 7101;
	fx->f_ti.n_region = 4;
	fx->f_ti.region = fx->f_ptp;
	fx->f_tip = &fx->f_ti;
	qroam__m1__init(&fx->f_m1);
	memcpy(fx->f_pbv, "\1\2\3", 3);
	fx->f_m1.pbv.data = fx->f_pbv;
	fx->f_m1.pbv.len = 3;
	fx->f_m1.n_tsps = 1;
	fx->f_m1.tsps = &fx->f_tip;
}

static int
setup(void **state)
{
	static struct fixture	fx;

	memset(&fx, 0, sizeof(fx));
	log_init("test_vchip", 0);
	assert_int_equal(tu_tmpdir_new(fx.f_dir, sizeof(fx.f_dir), "vchip"), 0);
	snprintf(fx.f_path, sizeof(fx.f_path), "%s/fleet.db", fx.f_dir);
	assert_non_null(fx.f_base = event_base_new());
	tu_fill_vector(&fx.f_fill);
	fixture_m1(&fx);
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	event_base_free(fx->f_base);
	return tu_tmpdir_free(fx->f_dir);
}

static struct answers	*wait_for;
static int		 wait_want;

static int
answered(void *arg)
{
	(void)arg;
	return wait_for->a_n >= wait_want;
}

/* Run the loop until a holds n answers. */
static void
await(struct fixture *fx, struct answers *a, int n)
{
	wait_for = a;
	wait_want = n;
	tu_wait(fx->f_base, answered, NULL, 10000);
}

/* Fill and register ch, checking that no answer comes inside a call. */
static void
enrol(struct fixture *fx, struct vchip *ch, const char *vid)
{
	struct answers	a;

	memset(&a, 0, sizeof(a));
	vchip_fill(ch, &fx->f_fill.tf_rec, done_cb, &a);
	assert_int_equal(a.a_n, 0);
	await(fx, &a, 1);
	assert_int_equal(a.a_rc, 0);
	vchip_reg_save(ch, vid, TU_VEC_CHIP_ID, &fx->f_m1, done_cb, &a);
	assert_int_equal(a.a_n, 1);
	await(fx, &a, 2);
	assert_int_equal(a.a_rc, 0);
}

static void
test_fleet_store_keys_in_sequence(void **state)
{
	struct fixture		*fx = *state;
	struct vchipdb		*db;
	struct vchip		*a, *b;
	struct answers		 ans;
	struct chip_info	 ci;
	uint8_t			 key[CHIP_KEYLEN];
	sqlite3			*raw;
	int			 i;

	assert_non_null(db = vchipdb_open(fx->f_base, fx->f_path));
	a = vchipdb_chip(db, VIN_A);
	b = vchipdb_chip(db, VIN_B);
	assert_ptr_equal(vchipdb_chip(db, VIN_A), a);
	assert_int_equal(vchipdb_raise_marks(db, 1000, 500), 0);
	assert_int_equal(vchip_counter(a, "record_id_mark"), 1500);
	assert_int_equal(vchipdb_start(db), 0);
	assert_int_equal(vchip_get(a, &ci), 0);
	enrol(fx, a, VIN_A);
	enrol(fx, b, VIN_B);
	assert_int_equal(vchip_get(a, &ci), 1);
	assert_string_equal(ci.ci_chip_id, TU_VEC_CHIP_ID);
	assert_int_equal(vchip_unused(a, CHIP_SEQUENTIAL), TU_VEC_M);
	/* Two takes queued at once: one group, keys 0 and 1 in order. */
	memset(&ans, 0, sizeof(ans));
	vchip_take_key(a, CHIP_SEQUENTIAL, key_cb, &ans);
	vchip_take_key(a, CHIP_SEQUENTIAL, key_cb, &ans);
	assert_int_equal(ans.a_n, 0);
	await(fx, &ans, 2);
	for (i = 0; i < 2; i++) {
		assert_int_equal(ans.a_draw[i], CHIP_DRAW_OK);
		assert_int_equal(ans.a_index[i], i);
		tu_vec_key(tu_vec_order[i], key);
		assert_memory_equal(ans.a_key[i], key, CHIP_KEYLEN);
	}
	assert_int_equal(vchip_unused(a, CHIP_SEQUENTIAL), TU_VEC_M - 2);
	assert_int_equal(vchip_unused(b, CHIP_SEQUENTIAL), TU_VEC_M);
	/* Both destructions are on disk, read by another connection. */
	assert_int_equal(sqlite3_open(fx->f_path, &raw), SQLITE_OK);
	assert_int_equal(tu_query_int(raw, "SELECT count(*) FROM chip_keys"
	    " WHERE vehicle_id = '" VIN_A "' AND destroyed = 1 AND"
	    " key IS NULL"), 2);
	assert_int_equal(tu_query_int(raw, "SELECT count(*) FROM chip_keys"
	    " WHERE vehicle_id = '" VIN_B "' AND destroyed = 0"), TU_VEC_M);
	sqlite3_close(raw);
	/* The chip runs out: NONE once every key is gone. */
	memset(&ans, 0, sizeof(ans));
	for (i = 0; i < TU_VEC_M - 1; i++)
		vchip_take_key(a, CHIP_SEQUENTIAL, key_cb, &ans);
	await(fx, &ans, TU_VEC_M - 1);
	assert_int_equal(ans.a_draw[TU_VEC_M - 3], CHIP_DRAW_OK);
	assert_int_equal(ans.a_draw[TU_VEC_M - 2], CHIP_DRAW_NONE);
	assert_int_equal(vchip_unused(a, CHIP_SEQUENTIAL), 0);
	vchipdb_free(db);
}

static void
test_fleet_store_reopens_as_left(void **state)
{
	struct fixture		*fx = *state;
	struct vchipdb		*db;
	struct vchip		*a, *b;
	struct answers		 ans;
	struct chip_reg		 cr;
	sqlite3			*raw;

	assert_non_null(db = vchipdb_open(fx->f_base, fx->f_path));
	a = vchipdb_chip(db, VIN_A);
	b = vchipdb_chip(db, VIN_B);
	assert_int_equal(vchipdb_start(db), 0);
	enrol(fx, a, VIN_A);
	enrol(fx, b, VIN_B);
	/* One TSP list for both vehicles. */
	assert_non_null(vchip_tsps(a));
	assert_ptr_equal(vchip_tsps(a), vchip_tsps(b));
	assert_string_equal(vchip_tsps(a)->t_tsps[0].tt_id, "tsp-a");
	memset(&ans, 0, sizeof(ans));
	vchip_take_key(b, CHIP_ARBITRARY, key_cb, &ans);
	assert_int_equal(vchip_raise(b, "record_id_mark", 777, done_cb, &ans), 1);
	await(fx, &ans, 2);
	assert_int_equal(ans.a_draw[0], CHIP_DRAW_OK);
	vchip_event(a, "power_on", "tsp-a", "at %d", 1);
	vchip_count(a, "sessions", 2);
	vchip_count(a, "sessions", 1);
	vchipdb_free(db);

	/* The journal and the counters are in the file. */
	assert_int_equal(sqlite3_open(fx->f_path, &raw), SQLITE_OK);
	assert_int_equal(tu_query_int(raw, "SELECT value FROM counters WHERE"
	    " vehicle_id = '" VIN_A "' AND name = 'sessions'"), 3);
	assert_int_equal(tu_query_int(raw, "SELECT count(*) FROM events WHERE"
	    " vehicle_id = '" VIN_A "' AND kind = 'power_on' AND"
	    " tsp_id = 'tsp-a' AND detail = 'at 1'"), 1);
	assert_int_equal(tu_query_int(raw, "SELECT count(*) FROM m1_lists"), 1);
	sqlite3_close(raw);

	/* Opened again: enrolled, one key of b gone, b's mark the floor. */
	assert_non_null(db = vchipdb_open(fx->f_base, fx->f_path));
	assert_int_equal(vchipdb_size(db), 2);
	assert_int_equal(vchipdb_registered(db), 2);
	b = vchipdb_chip(db, VIN_B);
	assert_int_equal(vchip_unused(b, CHIP_ARBITRARY), TU_VEC_M - 1);
	assert_int_equal(vchip_record_floor(b), 777);
	assert_int_equal(vchip_reg(b, &cr), 1);
	assert_string_equal(cr.cr_vid, VIN_B);
	assert_string_equal(cr.cr_chip_id, TU_VEC_CHIP_ID);
	assert_int_equal(cr.cr_pbvlen, 3);
	chip_reg_clear(&cr);
	assert_non_null(vchip_tsps(b));
	assert_int_equal(vchip_tsps(b)->t_tsps[0].tt_vehicle.ep_port, 7101);
	vchipdb_free(db);
}

static void
test_fleet_store_rejects_bad_steps(void **state)
{
	struct fixture		*fx = *state;
	struct vchipdb		*db;
	struct vchip		*a;
	struct answers		 ans;
	struct chip_info	 ci;

	assert_non_null(db = vchipdb_open(fx->f_base, fx->f_path));
	a = vchipdb_chip(db, VIN_A);
	assert_int_equal(vchipdb_start(db), 0);
	memset(&ans, 0, sizeof(ans));
	/* No fill yet: no key.  A fill that does not validate: refused. */
	vchip_take_key(a, CHIP_SEQUENTIAL, key_cb, &ans);
	await(fx, &ans, 1);
	assert_int_equal(ans.a_draw[0], CHIP_DRAW_NONE);
	fx->f_fill.tf_rec.chip_id[0] = 'x';
	tu_capture_begin();
	vchip_fill(a, &fx->f_fill.tf_rec, done_cb, &ans);
	await(fx, &ans, 2);
	assert_int_equal(ans.a_rc, -1);
	vchip_reg_save(a, "NOT A VIN", TU_VEC_CHIP_ID, &fx->f_m1, done_cb, &ans);
	await(fx, &ans, 3);
	tu_capture_end();
	assert_int_equal(ans.a_rc, -1);
	assert_int_equal(vchip_get(a, &ci), 0);
	vchipdb_free(db);
}

static void
test_file_chip_answers_on_the_next_turn(void **state)
{
	struct fixture	*fx = *state;
	struct vchip	*a, *b;
	struct answers	 ans;
	char		 path[320];

	snprintf(path, sizeof(path), "%s/a.db", fx->f_dir);
	assert_non_null(a = vchip_open_file(fx->f_base, path));
	snprintf(path, sizeof(path), "%s/b.db", fx->f_dir);
	assert_non_null(b = vchip_open_file(fx->f_base, path));
	enrol(fx, a, VIN_A);
	enrol(fx, b, VIN_B);
	assert_non_null(vchip_tsps(a));
	assert_ptr_equal(vchip_tsps(a), vchip_tsps(b));
	memset(&ans, 0, sizeof(ans));
	vchip_take_key(a, CHIP_SEQUENTIAL, key_cb, &ans);
	assert_int_equal(ans.a_n, 0);
	/* A store file of its own raises its mark at once. */
	assert_int_equal(vchip_raise(a, "record_id_mark", 42, done_cb, &ans), 0);
	await(fx, &ans, 1);
	assert_int_equal(ans.a_draw[0], CHIP_DRAW_OK);
	assert_int_equal(ans.a_index[0], 0);
	assert_int_equal(vchip_unused(a, CHIP_SEQUENTIAL), TU_VEC_M - 1);
	assert_int_equal(vchip_counter(a, "record_id_mark"), 42);
	assert_int_equal(vchip_async(a), 0);
	vchip_close(a);
	vchip_close(b);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_fleet_store_keys_in_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_fleet_store_reopens_as_left, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_fleet_store_rejects_bad_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_file_chip_answers_on_the_next_turn, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
