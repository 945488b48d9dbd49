/*
 * Unit tests of the handover's store and codecs in tspd: RD1 built from
 * TSPA's store in both draw modes, CK2 bindings with their expiry, M8
 * applied at TSPB in one transaction (key position, burned and used keys,
 * history with its origin, no duplicates, no replay), TSPA's final
 * transaction, and M7/M8/M8Ack sealed and opened with tampering refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "crypto.h"
#include "log.h"
#include "msg.h"

#include "../../tspd/db.h"
#include "store.h"
#include "tspdb_sync.h"
#include "../../tspd/handover.h"

#include "testutil.h"

#define VIN	"1HGCM82633A004352"
#define TSPA	"tsp-a"
#define TSPB	"tsp-b"
#define HID1	"0123456789abcdef0123456789abcdef"
#define HID2	"fedcba9876543210fedcba9876543210"
#define NKEYS	8

struct fixture {
	char		 dir[64];
	char		 path_a[96];
	char		 path_b[96];
	struct tspdb	*a;
	struct tspdb	*b;
	struct tu_fill	 fill;
	uint8_t		 ck2[CRYPTO_KEYLEN];
};

/* Fill record, registration and (at A only) authentication of VIN. */
static void
provision(struct fixture *fx, struct tspdb *db, int auth)
{
	uint8_t		 prv[8] = "prv-der", nonce[16];
	uint64_t	 old;

	assert_int_equal(S_fill_apply(db, &fx->fill.tf_rec), TSPDB_OK);
	assert_int_equal(S_m2_apply(db, VIN, fx->fill.tf_chip_id, prv,
	    sizeof(prv), 1, &old), TSPDB_OK);
	memset(nonce, 7, sizeof(nonce));
	if (auth)
		assert_int_equal(S_auth_commit(db, VIN,
		    fx->fill.tf_chip_id, nonce, sizeof(nonce), 1000, 61000,
		    "f3"), TSPDB_OK);
}

static int
setup(void **state)
{
	struct fixture	*fx;
	size_t		 i;

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	assert_int_equal(tu_tmpdir_new(fx->dir, sizeof(fx->dir),
	    "test_tspd_handover"), 0);
	snprintf(fx->path_a, sizeof(fx->path_a), "%s/a.db", fx->dir);
	snprintf(fx->path_b, sizeof(fx->path_b), "%s/b.db", fx->dir);
	assert_non_null(fx->a = S_open(fx->path_a));
	assert_non_null(fx->b = S_open(fx->path_b));
	tu_fill_init(&fx->fill, NKEYS, 1000);
	memset(fx->fill.tf_chip_id, 'c', 64);
	for (i = 0; i < NKEYS; i++) {
		memset(fx->fill.tf_key[i], (int)i + 1, 32);
		snprintf(fx->fill.tf_code[i], sizeof(fx->fill.tf_code[i]),
		    "c%09zu", i);
	}
	provision(fx, fx->a, 1);
	provision(fx, fx->b, 0);
	memset(fx->ck2, 0xc2, sizeof(fx->ck2));
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	int		 rc;

	tspdb_close(fx->a);
	tspdb_close(fx->b);
	rc = tu_tmpdir_free(fx->dir);
	free(fx);
	return rc;
}

/* One integer from a query on a store file, read by a second handle. */
static int64_t
query_int(const char *path, const char *sql)
{
	sqlite3		*h;
	int64_t		 v;

	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	v = tu_query_int(h, sql);
	sqlite3_close(h);
	return v;
}

static void
telemetry(Qroam__Telemetry *t, uint64_t ms)
{
	qroam__telemetry__init(t);
	t->unix_ms = ms;
	t->lat = 30.05;
	t->lon = 120.05;
	t->speed = 13.9;
	t->heading = 90.0;
}

/* Open a session at A with key idx (or code) and send n telemetry rows. */
static void
session_at_a(struct fixture *fx, uint32_t idx, const char *code, int n)
{
	struct tspdb_session	 s;
	struct tspdb_key	 key;
	Qroam__Telemetry	 t;
	int			 i;

	assert_int_equal(S_key_select(fx->a, fx->fill.tf_chip_id, idx,
	    code, &key), TSPDB_OK);
	memset(&s, 0, sizeof(s));
	snprintf(s.s_vid, sizeof(s.s_vid), "%s", VIN);
	memcpy(s.s_chip_id, fx->fill.tf_chip_id, sizeof(s.s_chip_id));
	memset(s.s_k1, 0x5a, sizeof(s.s_k1));
	s.s_key_index = key.k_index;
	telemetry(&t, 5000);
	assert_int_equal(S_session_open(fx->a, &s, code == NULL, &t, TSPA,
	    2000), TSPDB_OK);
	for (i = 1; i <= n; i++) {
		telemetry(&t, 5000 + (uint64_t)i * 1000);
		assert_int_equal(S_session_telemetry(fx->a, VIN,
		    (uint64_t)i, (uint64_t)i + 1, &t, TSPA, 3000), TSPDB_OK);
	}
}

static void
test_rd1_sequential(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb_rd1	 rd;
	size_t			 i;

	assert_int_equal(S_rd1_load(fx->b, VIN, &rd), 0);
	session_at_a(fx, 2, NULL, 3);
	assert_int_equal(S_rd1_load(fx->a, VIN, &rd), 1);
	assert_string_equal(rd.rd_msg.vehicle_id, VIN);
	assert_string_equal(rd.rd_msg.chip_id, fx->fill.tf_chip_id);
	assert_int_equal(rd.rd_msg.authed_ms, 1000);
	assert_true(rd.rd_msg.sequential);
	assert_int_equal(rd.rd_msg.next_index, 3);
	assert_int_equal(rd.rd_msg.n_used, 0);
	assert_int_equal(rd.rd_msg.n_history, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(rd.rd_msg.history[i]->unix_ms,
		    5000 + i * 1000);
		assert_string_equal(rd.rd_origin[i].o_tsp, TSPA);
		assert_int_equal(rd.rd_origin[i].o_seq, i);
		assert_false(rd.rd_msg.history[i]->has_fuel);
	}
	tspdb_rd1_free(&rd);
}

static void
test_rd1_arbitrary_history_cap(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb_rd1	 rd;

	session_at_a(fx, 0, "c000000005", TSPDB_RD1_HISTORY + 10);
	assert_int_equal(S_rd1_load(fx->a, VIN, &rd), 1);
	assert_false(rd.rd_msg.sequential);
	assert_int_equal(rd.rd_msg.next_index, 0);
	assert_int_equal(rd.rd_msg.n_used, 1);
	assert_int_equal(rd.rd_msg.used[0], 5);
	assert_int_equal(rd.rd_msg.n_history, TSPDB_RD1_HISTORY);
	/* The most recent rows, oldest first. */
	assert_int_equal(rd.rd_origin[TSPDB_RD1_HISTORY - 1].o_seq,
	    TSPDB_RD1_HISTORY + 10);
	assert_int_equal(rd.rd_origin[0].o_seq, 11);
	tspdb_rd1_free(&rd);
}

static void
test_ck2_binding(void **state)
{
	struct fixture	*fx = *state;
	uint8_t		 ck2[CRYPTO_KEYLEN];
	uint64_t	 exp;

	assert_int_equal(S_ck2_get(fx->b, TSPA, HID1, ck2, &exp), 0);
	assert_int_equal(S_ck2_bind(fx->b, TSPA, HID1, fx->ck2, 31000,
	    1000), TSPDB_OK);
	assert_int_equal(S_ck2_bind(fx->b, TSPA, HID1, fx->ck2, 31000,
	    1000), TSPDB_REPLAY);
	assert_int_equal(S_ck2_get(fx->b, TSPA, HID1, ck2, &exp), 1);
	assert_memory_equal(ck2, fx->ck2, sizeof(ck2));
	assert_int_equal(exp, 31000);
	/* Bound to its initiator only. */
	assert_int_equal(S_ck2_get(fx->b, "tsp-c", HID1, ck2, &exp), 0);
	assert_int_equal(S_ho_known(fx->b, HID1), TSPDB_SAME);
	assert_int_equal(query_int(fx->path_b, "SELECT count(*) FROM handovers"
	    " WHERE role = 'in' AND state = 'bound' AND peer = 'tsp-a'"), 1);

	/* Expired bindings go, and their handovers fail. */
	assert_int_equal(S_ck2_purge(fx->b, 31001), 0);
	assert_int_equal(S_ck2_get(fx->b, TSPA, HID1, ck2, &exp), 0);
	assert_int_equal(query_int(fx->path_b, "SELECT count(*) FROM handovers"
	    " WHERE state = 'failed' AND reason = 'ck2 expired'"), 1);
}

static void
test_m8_apply(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb_rd1	 rd;
	uint32_t		 used[2] = { 4, 6 };

	session_at_a(fx, 2, NULL, 3);
	assert_int_equal(S_rd1_load(fx->a, VIN, &rd), 1);
	rd.rd_msg.used = used;
	rd.rd_msg.n_used = 2;

	/* No binding, nothing stored. */
	assert_int_equal(S_m8_apply(fx->b, TSPA, HID1, &rd.rd_msg,
	    rd.rd_origin, 2000), TSPDB_UNKNOWN);
	assert_int_equal(query_int(fx->path_b, "SELECT count(*) FROM auth"), 0);

	assert_int_equal(S_ck2_bind(fx->b, TSPA, HID1, fx->ck2, 31000,
	    1000), TSPDB_OK);
	assert_int_equal(S_m8_apply(fx->b, TSPA, HID1, &rd.rd_msg,
	    rd.rd_origin, 2000), TSPDB_OK);
	assert_int_equal(query_int(fx->path_b, "SELECT count(*) FROM auth"
	    " WHERE vehicle_id = '" VIN "' AND via = 'handover'"
	    " AND authed_ms = 1000"), 1);
	assert_int_equal(S_keypos(fx->b, fx->fill.tf_chip_id), 3);
	assert_int_equal(query_int(fx->path_b, "SELECT count(*) FROM used_keys"
	    " WHERE how = 'burned' AND idx < 3"), 3);
	assert_int_equal(query_int(fx->path_b, "SELECT count(*) FROM used_keys"
	    " WHERE how = 'm3' AND idx IN (4, 6)"), 2);
	assert_int_equal(query_int(fx->path_b, "SELECT count(*) FROM telemetry"
	    " WHERE tsp_id = 'tsp-a' AND vehicle_id = '" VIN "'"), 4);
	assert_int_equal(query_int(fx->path_b, "SELECT count(*) FROM"
	    " ck2_bindings"), 0);
	assert_int_equal(query_int(fx->path_b, "SELECT count(*) FROM handovers"
	    " WHERE handover_id = '" HID1 "' AND state = 'done'"
	    " AND vehicle_id = '" VIN "'"), 1);

	/* A replay finds no binding and changes nothing. */
	assert_int_equal(S_m8_apply(fx->b, TSPA, HID1, &rd.rd_msg,
	    rd.rd_origin, 2500), TSPDB_UNKNOWN);
	assert_int_equal(S_telemetry_count(fx->b, VIN), 4);

	/* The same context again under a new handover: no duplicate rows. */
	rd.rd_msg.next_index = 1;
	used[0] = 3;
	used[1] = 4;
	assert_int_equal(S_ck2_bind(fx->b, TSPA, HID2, fx->ck2, 31000,
	    1000), TSPDB_OK);
	assert_int_equal(S_m8_apply(fx->b, TSPA, HID2, &rd.rd_msg,
	    rd.rd_origin, 3000), TSPDB_OK);
	assert_int_equal(S_telemetry_count(fx->b, VIN), 4);
	/* The position never moves back, and skips the used keys after it. */
	assert_int_equal(S_keypos(fx->b, fx->fill.tf_chip_id), 5);
	tspdb_rd1_free(&rd);
}

static void
test_out_done(void **state)
{
	struct fixture		*fx = *state;
	const struct tspdb_session *live;
	struct tspdb_ready	 rr;
	int			 recovered;
	struct tspdb_session	 s;
	char			 chip[CHIP_ID_LEN + 1];

	session_at_a(fx, 0, NULL, 2);
	assert_int_equal(S_session_find(fx->a, VIN, &live), 1);
	assert_int_equal(S_session_seq(fx->a, VIN, 3), TSPDB_OK);
	assert_int_equal(S_session_seq(fx->a, VIN, 3), TSPDB_REPLAY);
	/* The session in memory follows the rows these steps change. */
	assert_int_equal(S_session_find(fx->a, VIN, &live), 1);
	assert_int_equal(live->s_rx_seq, 3);
	assert_int_equal(S_ho_record(fx->a, HID1, VIN, "out", TSPB,
	    "started", NULL, 4000), 0);
	assert_int_equal(S_ho_out_done(fx->a, HID1, VIN, 5000, &rr),
	    TSPDB_OK);
	assert_true(rr.rr_session);
	/* Above the ceiling of every seq the session may have used. */
	assert_int_equal(rr.rr_tx_seq, TSPDB_TX_AHEAD + 1);
	assert_int_equal(S_session_find(fx->a, VIN, &live), 1);
	assert_int_equal(live->s_tx_seq, TSPDB_TX_AHEAD + 1);
	assert_true(tu_all_zero(rr.rr_k1, sizeof(rr.rr_k1)) == 0);
	crypto_wipe(&rr, sizeof(rr));
	assert_int_equal(S_auth_get(fx->a, VIN, chip), 0);
	assert_int_equal(S_session_get(fx->a, VIN, &s), 1);
	assert_int_equal(s.s_rx_seq, 3);
	assert_int_equal(s.s_tx_seq, TSPDB_TX_AHEAD + 1);
	crypto_wipe(&s, sizeof(s));
	assert_int_equal(query_int(fx->path_a, "SELECT count(*) FROM handovers"
	    " WHERE state = 'done' AND role = 'out' AND peer = 'tsp-b'"), 1);
	/* Without auth there is no RD1 to send any more. */
	assert_int_equal(S_rd1_load(fx->a, VIN, &(struct tspdb_rd1){ 0 }),
	    0);

	/* An unfinished handover fails at the next start. */
	assert_int_equal(S_ho_record(fx->a, HID2, VIN, "out", TSPB,
	    "started", NULL, 6000), 0);
	tspdb_close(fx->a);
	fx->a = tspdb_open(fx->path_a, NULL, NULL, NULL, "test", 7000,
	    &recovered);
	assert_non_null(fx->a);
	assert_int_equal(recovered, 1);
	assert_int_equal(query_int(fx->path_a, "SELECT count(*) FROM handovers"
	    " WHERE handover_id = '" HID2 "' AND state = 'failed'"
	    " AND reason = 'tspd restarted'"), 1);
}

static void
test_m8_codec(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb_rd1	 rd;
	Qroam__M8		 m8 = QROAM__M8__INIT;
	Qroam__M8Ack		 ack = QROAM__M8_ACK__INIT;
	Qroam__RD1		*out;

	session_at_a(fx, 1, NULL, 2);
	assert_int_equal(S_rd1_load(fx->a, VIN, &rd), 1);
	m8.initiator = TSPA;
	m8.target = TSPB;
	m8.handover_id = HID1;
	assert_int_equal(tspd_m8_seal(fx->ck2, &rd.rd_msg, &m8), 0);
	assert_non_null(out = tspd_m8_open(fx->ck2, &m8));
	assert_string_equal(out->vehicle_id, VIN);
	assert_int_equal(out->next_index, 2);
	assert_int_equal(out->n_history, 3);
	qroam__rd1__free_unpacked(out, NULL);

	/* The AAD binds both TSPs and the handover. */
	m8.target = "tsp-c";
	assert_null(tspd_m8_open(fx->ck2, &m8));
	m8.target = TSPB;
	m8.handover_id = HID2;
	assert_null(tspd_m8_open(fx->ck2, &m8));
	m8.handover_id = HID1;
	m8.ct.data[3] ^= 1;
	assert_null(tspd_m8_open(fx->ck2, &m8));
	m8.ct.data[3] ^= 1;
	fx->ck2[0] ^= 1;
	assert_null(tspd_m8_open(fx->ck2, &m8));
	fx->ck2[0] ^= 1;

	assert_int_equal(tspd_m8ack_seal(fx->ck2, TSPA, TSPB, HID1, &ack), 0);
	assert_int_equal(tspd_m8ack_check(fx->ck2, TSPA, TSPB, HID1, &ack), 0);
	assert_int_equal(tspd_m8ack_check(fx->ck2, TSPB, TSPA, HID1, &ack), -1);
	assert_int_equal(tspd_m8ack_check(fx->ck2, TSPA, TSPB, HID2, &ack), -1);
	ack.ct.data[0] ^= 1;
	assert_int_equal(tspd_m8ack_check(fx->ck2, TSPA, TSPB, HID1, &ack), -1);
	free(ack.nonce.data);
	free(ack.ct.data);
	free(m8.nonce.data);
	free(m8.ct.data);
	tspdb_rd1_free(&rd);
}

static void
test_m7_open(void **state)
{
	struct fixture		*fx = *state;
	Qroam__M7Inner		 in = QROAM__M7_INNER__INIT, *got;
	Qroam__M7		 m7 = QROAM__M7__INIT;
	uint8_t			 ck1[CRYPTO_KEYLEN], nonce[CRYPTO_NONCELEN];
	uint8_t			 pt[256], ct[256 + CRYPTO_TAGLEN];
	char			 aad[MSG_AAD_MAX];
	size_t			 len;

	memset(ck1, 0xc1, sizeof(ck1));
	memset(nonce, 3, sizeof(nonce));
	in.ck2.data = fx->ck2;
	in.ck2.len = sizeof(fx->ck2);
	in.tsp_id = TSPB;
	in.host = "127.0.0.1";
	in.port = 7201;
	in.expiry_ms = 99999;
	len = qroam__m7_inner__pack(&in, pt);
	assert_int_equal(msg_aad(aad, sizeof(aad), "M7", TSPA, HID1,
	    (char *)NULL), 0);
	assert_int_equal(crypto_aead_seal(ck1, nonce, aad, pt, len, ct), 0);
	m7.handover_id = HID1;
	m7.nonce.data = nonce;
	m7.nonce.len = sizeof(nonce);
	m7.ct.data = ct;
	m7.ct.len = len + CRYPTO_TAGLEN;
	assert_non_null(got = tspd_m7_open(ck1, TSPA, &m7));
	assert_memory_equal(got->ck2.data, fx->ck2, sizeof(fx->ck2));
	assert_string_equal(got->tsp_id, TSPB);
	assert_int_equal(got->port, 7201);
	tspd_m7_inner_free(got);
	/* For another TSPA, another handover or tampered: refused. */
	assert_null(tspd_m7_open(ck1, TSPB, &m7));
	m7.handover_id = HID2;
	assert_null(tspd_m7_open(ck1, TSPA, &m7));
	m7.handover_id = HID1;
	ct[len] ^= 1;
	assert_null(tspd_m7_open(ck1, TSPA, &m7));
}

static void
test_origins(void **state)
{
	struct tspdb_origin	 o[3] = {
		{ "tsp-a", 0 }, { "tsp.b-2", 17 }, { "x", UINT64_C(1) << 40 },
	}, back[3];
	char			*s;

	(void)state;
	assert_non_null(s = tspd_origins_encode(o, 3));
	assert_string_equal(s, "origin/1 tsp-a:0 tsp.b-2:17 x:1099511627776");
	assert_int_equal(tspd_origins_decode(s, 3, back), 0);
	assert_string_equal(back[1].o_tsp, "tsp.b-2");
	assert_int_equal(back[2].o_seq, UINT64_C(1) << 40);
	assert_int_equal(tspd_origins_decode(s, 2, back), -1);
	free(s);
	assert_non_null(s = tspd_origins_encode(o, 0));
	assert_int_equal(tspd_origins_decode(s, 0, back), 0);
	free(s);
	assert_int_equal(tspd_origins_decode("origin/1 A:1", 1, back), -1);
	assert_int_equal(tspd_origins_decode("origin/1 a:", 1, back), -1);
	assert_int_equal(tspd_origins_decode("origin/1 a:1x", 1, back), -1);
	assert_int_equal(tspd_origins_decode("origin/1  a:1", 1, back), -1);
	assert_int_equal(tspd_origins_decode("origin/2 a:1", 1, back), -1);
	assert_int_equal(tspd_origins_decode(
	    "origin/1 a:99999999999999999999", 1, back), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rd1_sequential, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rd1_arbitrary_history_cap,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ck2_binding, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_m8_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_m8_codec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_m7_open, setup, teardown),
		cmocka_unit_test(test_origins),
	};

	log_init("test_tspd_handover", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
