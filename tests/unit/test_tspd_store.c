/*
 * The TSP store's interface on each of its backends, the same cases on
 * SQLite (a file in a temporary directory) and on PostgreSQL (a database
 * of its own in the throw-away cluster that tests/run.py starts and names
 * in QROAM_TEST_PG), both driven through an event loop as tspd drives
 * them: fill records and registrations, authentication and its nonce,
 * M3s in a group commit racing for a key, telemetry, sessions read back
 * into memory, a handover's context from one store to another, the
 * counts and views; and two stores on one database racing for a key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "crypto.h"
#include "log.h"
#include "store.h"

#include "../../tspd/db.h"
#include "tspdb_sync.h"

#include "testutil.h"

#define VIN_A	"1HGCM82633A004352"
#define TSPA	"tsp-a"
#define TSPB	"tsp-b"
#define NKEYS	8
#define HID	"00112233445566778899aabbccddeeff"

enum backend { BE_SQLITE, BE_PG };

/* One store of the test: its file or its database. */
struct store {
	char		 st_spec[512];
	char		 st_dbname[64];	/* PostgreSQL */
	const char	*st_instance;
	struct tspdb	*st_db;
};

struct fixture {
	enum backend	 fx_be;
	struct event_base *fx_base;
	char		 fx_dir[64];
	struct store	 fx_a, fx_b;
	struct tu_fill	 fx_fill;
};

static enum backend be_sqlite = BE_SQLITE, be_pg = BE_PG;

/* Run sql on the cluster's maintenance database. */
static void
pg_admin(const char *sql)
{
	const char	*base = getenv("QROAM_TEST_PG");
	PGconn		*c;
	PGresult	*r;

	assert_non_null(base);
	c = PQconnectdb(base);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

/*
 * The URI of database name: QROAM_TEST_PG's ("postgresql://user@/postgres?
 * host=DIR"), with the database replaced.
 */
static void
store_uri(char *buf, size_t len, const char *name)
{
	const char	*base = getenv("QROAM_TEST_PG"), *q;
	const char	*db = strstr(base, "@/");

	assert_non_null(db);
	q = strchr(db, '?');
	snprintf(buf, len, "%.*s@/%s%s", (int)(db - base), base, name,
	    q != NULL ? q : "");
}

/* A new store named name: a file, or a database of its own. */
static void
store_new(struct fixture *fx, struct store *st, const char *name)
{
	static int	 n;

	st->st_instance = name;
	if (fx->fx_be == BE_SQLITE) {
		snprintf(st->st_spec, sizeof(st->st_spec), "%s/%s.db",
		    fx->fx_dir, name);
		return;
	}
	snprintf(st->st_dbname, sizeof(st->st_dbname), "qroam_%s_%d_%d",
	    name, (int)getpid(), n++);
	snprintf(st->st_spec, sizeof(st->st_spec), "CREATE DATABASE %s",
	    st->st_dbname);
	pg_admin(st->st_spec);
	store_uri(st->st_spec, sizeof(st->st_spec), st->st_dbname);
}

static struct tspdb *
st_open(struct fixture *fx, struct store *st)
{
	int	 n;

	st->st_db = tspdb_open(st->st_spec, fx->fx_base, NULL, NULL,
	    st->st_instance, store_now_ms(), &n);
	assert_non_null(st->st_db);
	return st->st_db;
}

static void
st_close(struct store *st)
{
	tspdb_close(st->st_db);
	st->st_db = NULL;
}

static void
store_drop(struct store *st)
{
	char	 sql[128];

	if (st->st_dbname[0] == '\0')
		return;
	snprintf(sql, sizeof(sql), "DROP DATABASE %s", st->st_dbname);
	pg_admin(sql);
}

static int
setup(void **state)
{
	struct fixture	*fx;
	size_t		 i;

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->fx_be = *(enum backend *)*state;
	if (fx->fx_be == BE_PG && getenv("QROAM_TEST_PG") == NULL)
		fail_msg("QROAM_TEST_PG names no PostgreSQL cluster: run "
		    "through tests/run.py");
	assert_non_null(fx->fx_base = event_base_new());
	assert_int_equal(tu_tmpdir_new(fx->fx_dir, sizeof(fx->fx_dir),
	    "test_tspd_store"), 0);
	store_new(fx, &fx->fx_a, "a");
	store_new(fx, &fx->fx_b, "b");
	st_open(fx, &fx->fx_a);
	st_open(fx, &fx->fx_b);
	tu_fill_init(&fx->fx_fill, NKEYS, 1000);
	memset(fx->fx_fill.tf_chip_id, 'c', 64);
	for (i = 0; i < NKEYS; i++) {
		memset(fx->fx_fill.tf_key[i], (int)i + 1, 32);
		snprintf(fx->fx_fill.tf_code[i], sizeof(fx->fx_fill.tf_code[i]),
		    "c%09zu", i);
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	int		 rc;

	if (fx->fx_a.st_db != NULL)
		st_close(&fx->fx_a);
	if (fx->fx_b.st_db != NULL)
		st_close(&fx->fx_b);
	store_drop(&fx->fx_a);
	store_drop(&fx->fx_b);
	rc = tu_tmpdir_free(fx->fx_dir);
	event_base_free(fx->fx_base);
	free(fx);
	return rc;
}

/* Fill, register (epoch 1) and authenticate VIN_A at db. */
static void
vehicle_ready(struct fixture *fx, struct tspdb *db, uint8_t noncebyte)
{
	uint8_t		 prv[8] = "prv-der", nonce[16];
	uint64_t	 old;

	memset(nonce, noncebyte, sizeof(nonce));
	assert_true(S_fill_apply(db, &fx->fx_fill.tf_rec) <= TSPDB_SAME);
	assert_true(S_m2_apply(db, VIN_A, fx->fx_fill.tf_chip_id, prv,
	    sizeof(prv), 1, &old) <= TSPDB_SAME);
	assert_int_equal(S_auth_commit(db, VIN_A, fx->fx_fill.tf_chip_id,
	    nonce, sizeof(nonce), 1000, 61000, "f3"), TSPDB_OK);
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

static void
session_of(struct fixture *fx, struct tspdb_session *s, uint32_t idx)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->s_vid, VIN_A, sizeof(VIN_A));
	memcpy(s->s_chip_id, fx->fx_fill.tf_chip_id, sizeof(s->s_chip_id));
	memset(s->s_k1, 0x5a, sizeof(s->s_k1));
	s->s_key_index = idx;
}

/* An M3 of a batch and whether the store answered it. */
struct m3_wait {
	struct tspdb_req	 mw_rq;
	int			 mw_answered;
};

static void
m3_answered(struct tspdb_req *rq)
{
	((struct m3_wait *)rq->rq_arg)->mw_answered = 1;
}

static void
batch_m3(struct tspdb *db, const struct tspdb_session *s,
    const Qroam__Telemetry *t, struct m3_wait *mw)
{
	mw->mw_answered = 0;
	tspdb_req_init(&mw->mw_rq, m3_answered, mw);
	tspdb_batch_session_open(db, s, 1, t, TSPA, 3000, &mw->mw_rq);
}

/* Run the loop until every request of db was answered. */
static void
settle(struct fixture *fx, struct tspdb *db)
{
	while (tspdb_pending(db) > 0)
		event_base_loop(fx->fx_base, EVLOOP_ONCE);
}

static void
test_fill_and_registration(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb		*db = fx->fx_a.st_db;
	struct tspdb_fill	 f;
	struct tspdb_reg	 r;
	uint8_t			 prv[8] = "prv-der", prv2[8] = "prv-two";
	uint64_t		 old;

	assert_int_equal(S_fill_apply(db, &fx->fx_fill.tf_rec), TSPDB_OK);
	assert_int_equal(S_fill_apply(db, &fx->fx_fill.tf_rec), TSPDB_SAME);
	fx->fx_fill.tf_key[3][0] ^= 1;
	assert_int_equal(S_fill_apply(db, &fx->fx_fill.tf_rec),
	    TSPDB_CONFLICT);
	assert_int_equal(S_fill_get(db, fx->fx_fill.tf_chip_id, &f), 1);
	assert_int_equal(f.f_m, NKEYS);
	assert_int_equal(f.f_k, 10);
	assert_int_equal(S_keypos(db, fx->fx_fill.tf_chip_id), 0);
	assert_int_equal(S_fill_get(db, "nochip", &f), 0);

	assert_int_equal(S_m2_apply(db, VIN_A, fx->fx_fill.tf_chip_id, prv,
	    sizeof(prv), 2, &old), TSPDB_OK);
	assert_int_equal(old, 0);
	assert_int_equal(S_m2_apply(db, VIN_A, fx->fx_fill.tf_chip_id, prv,
	    sizeof(prv), 2, &old), TSPDB_SAME);
	assert_int_equal(S_m2_apply(db, VIN_A, fx->fx_fill.tf_chip_id, prv2,
	    sizeof(prv2), 1, &old), TSPDB_STALE);
	assert_int_equal(old, 2);
	assert_int_equal(S_m2_apply(db, VIN_A, fx->fx_fill.tf_chip_id, prv2,
	    sizeof(prv2), 3, &old), TSPDB_OK);
	assert_int_equal(old, 2);
	assert_int_equal(S_reg_get(db, VIN_A, &r), 1);
	assert_int_equal(r.r_epoch, 3);
	assert_int_equal(r.r_prvlen, sizeof(prv2));
	assert_memory_equal(r.r_prv, prv2, sizeof(prv2));
	assert_string_equal(r.r_chip_id, fx->fx_fill.tf_chip_id);
	tspdb_reg_clear(&r);
	assert_int_equal(S_reg_get(db, "WVWZZZ1JZXW000001", &r), 0);
}

static void
test_auth_nonce_once(void **state)
{
	struct fixture	*fx = *state;
	struct tspdb	*db = fx->fx_a.st_db;
	uint8_t		 nonce[16];
	char		 chip[CHIP_ID_LEN + 1];

	vehicle_ready(fx, db, 0x11);
	assert_int_equal(S_auth_get(db, VIN_A, chip), 1);
	assert_string_equal(chip, fx->fx_fill.tf_chip_id);
	memset(nonce, 0x11, sizeof(nonce));
	assert_int_equal(S_auth_commit(db, VIN_A, fx->fx_fill.tf_chip_id,
	    nonce, sizeof(nonce), 2000, 62000, "f3"), TSPDB_REPLAY);
	nonce[0] = 0x12;
	assert_int_equal(S_auth_commit(db, VIN_A, fx->fx_fill.tf_chip_id,
	    nonce, sizeof(nonce), 2000, 62000, "f3"), TSPDB_OK);
}

/*
 * F8 auth_idle: an authentication last used (M4 at 1000, the session's
 * opening at 3000, its telemetry at 6000) before the limit is refused and
 * swept; one used since is kept.
 */
static void
test_auth_idle(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb		*db = fx->fx_a.st_db;
	struct tspdb_session	 s;
	struct m3_wait		 mw;
	Qroam__Telemetry	 t;
	char			 chip[CHIP_ID_LEN + 1];
	int			 now;

	vehicle_ready(fx, db, 0x31);
	assert_int_equal(S_auth_get_since(db, VIN_A, 1000, chip), 1);
	assert_int_equal(S_auth_get_since(db, VIN_A, 1001, chip), 0);
	assert_int_equal(S_auth_expire(db, 1000), 0);

	telemetry(&t, 2500);
	session_of(fx, &s, 2);
	batch_m3(db, &s, &t, &mw);		/* opened at 3000 */
	assert_int_equal(S_batch_commit(db), TSPDB_OK);
	settle(fx, db);
	assert_int_equal(mw.mw_rq.rq_result, TSPDB_OK);
	assert_int_equal(S_auth_get_since(db, VIN_A, 3000, chip), 1);
	assert_string_equal(chip, fx->fx_fill.tf_chip_id);
	assert_int_equal(S_auth_get_since(db, VIN_A, 3001, chip), 0);

	telemetry(&t, 5000);
	assert_int_equal(tspdb_batch_telemetry(db, VIN_A, 1, 2, &t, TSPA,
	    6000, &now), TSPDB_OK);
	assert_int_equal(S_batch_commit(db), TSPDB_OK);
	assert_int_equal(S_auth_get_since(db, VIN_A, 6000, chip), 1);
	assert_int_equal(S_auth_expire(db, 6000), 0);
	assert_int_equal(S_auth_get_since(db, VIN_A, 6001, chip), 0);
	assert_int_equal(S_auth_expire(db, 6001), 1);
	assert_int_equal(S_auth_get(db, VIN_A, chip), 0);
	assert_int_equal(S_auth_expire(db, 6001), 0);
}

static void
test_m3_group_and_telemetry(void **state)
{
	struct fixture			*fx = *state;
	struct tspdb			*db = fx->fx_a.st_db;
	const struct tspdb_session	*live;
	struct tspdb_session		 s;
	struct tspdb_key		 key;
	struct m3_wait			 mw[2];
	Qroam__Telemetry		 t;
	uint64_t			 seq;
	int				 now;

	vehicle_ready(fx, db, 0x21);
	telemetry(&t, 5000);
	assert_int_equal(S_key_select(db, fx->fx_fill.tf_chip_id, 2, NULL,
	    &key), TSPDB_OK);
	assert_int_equal(key.k_index, 2);
	assert_memory_equal(key.k_key, fx->fx_fill.tf_key[2], 32);
	assert_int_equal(S_key_select(db, fx->fx_fill.tf_chip_id, 0,
	    fx->fx_fill.tf_code[5], &key), TSPDB_OK);
	assert_int_equal(key.k_index, 5);
	assert_int_equal(S_key_select(db, fx->fx_fill.tf_chip_id, 0,
	    "nosuchcode", &key), TSPDB_UNKNOWN);

	/* Two M3s for one key in one group: one session. */
	session_of(fx, &s, 2);
	batch_m3(db, &s, &t, &mw[0]);
	batch_m3(db, &s, &t, &mw[1]);
	assert_int_equal(S_batch_commit(db), TSPDB_OK);
	settle(fx, db);
	assert_true(mw[0].mw_answered && mw[1].mw_answered);
	assert_int_equal(mw[0].mw_rq.rq_result, TSPDB_OK);
	assert_int_equal(mw[1].mw_rq.rq_result, TSPDB_REUSED);
	/* The keys it skipped are burned, the position moved past it. */
	assert_int_equal(S_keypos(db, fx->fx_fill.tf_chip_id), 3);
	assert_int_equal(S_key_select(db, fx->fx_fill.tf_chip_id, 1, NULL,
	    &key), TSPDB_REUSED);
	assert_int_equal(S_session_find(db, VIN_A, &live), 1);
	assert_int_equal(live->s_key_index, 2);
	assert_true(live->s_authed);

	/* Telemetry in groups; the row gets the numbers with the commit. */
	for (seq = 1; seq <= 5; seq++) {
		telemetry(&t, 5000 + seq);
		assert_int_equal(tspdb_batch_telemetry(db, VIN_A, seq, seq + 1,
		    &t, TSPA, 6000, &now), TSPDB_OK);
	}
	assert_int_equal(tspdb_batch_telemetry(db, VIN_A, 3, 9, &t, TSPA,
	    6000, &now), TSPDB_REPLAY);
	assert_int_equal(S_batch_commit(db), TSPDB_OK);
	assert_int_equal(S_telemetry_count(db, VIN_A), 6);
	assert_int_equal(S_session_get(db, VIN_A, &s), 1);
	assert_int_equal(s.s_rx_seq, 5);

	/* After a restart the session is read into memory again. */
	st_close(&fx->fx_a);
	db = st_open(fx, &fx->fx_a);
	assert_int_equal(tspdb_session_find(db, VIN_A, &live), 0);
	assert_int_equal(S_session_load(db, VIN_A), 1);
	assert_int_equal(tspdb_session_find(db, VIN_A, &live), 1);
	assert_int_equal(live->s_rx_seq, 5);
	/* Above the ceiling of every seq used before. */
	assert_true(live->s_tx_seq >= TSPDB_TX_AHEAD);
	assert_int_equal(S_session_end(db, VIN_A, 1), TSPDB_OK);
	assert_int_equal(tspdb_session_find(db, VIN_A, &live), 0);
	assert_int_equal(S_session_load(db, "WVWZZZ1JZXW000001"), 0);
}

static void
test_handover_context(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb		*a = fx->fx_a.st_db, *b = fx->fx_b.st_db;
	struct tspdb_session	 s;
	struct tspdb_ready	 rr;
	struct tspdb_rd1	 rd;
	struct tspdb_origin	 origin[TSPDB_RD1_HISTORY];
	struct m3_wait		 mw;
	Qroam__Telemetry	 t;
	uint8_t			 ck2[CRYPTO_KEYLEN], got[CRYPTO_KEYLEN];
	uint64_t		 expires, old;
	uint8_t			 prv[8] = "prv-der";
	char			 chip[CHIP_ID_LEN + 1];
	size_t			 i;
	int			 now;

	vehicle_ready(fx, a, 0x31);
	assert_int_equal(S_fill_apply(b, &fx->fx_fill.tf_rec), TSPDB_OK);
	assert_int_equal(S_m2_apply(b, VIN_A, fx->fx_fill.tf_chip_id, prv,
	    sizeof(prv), 1, &old), TSPDB_OK);
	telemetry(&t, 7000);
	session_of(fx, &s, 1);
	batch_m3(a, &s, &t, &mw);
	assert_int_equal(S_batch_commit(a), TSPDB_OK);
	settle(fx, a);
	assert_int_equal(mw.mw_rq.rq_result, TSPDB_OK);
	telemetry(&t, 7001);
	assert_int_equal(tspdb_batch_telemetry(a, VIN_A, 1, 2, &t, TSPA, 7100,
	    &now), TSPDB_OK);
	assert_int_equal(S_batch_commit(a), TSPDB_OK);

	/* TSPA: the context. */
	assert_int_equal(S_ho_record(a, HID, VIN_A, "out", TSPB, "started",
	    NULL, 7200), 0);
	assert_int_equal(S_rd1_load(a, VIN_A, &rd), 1);
	assert_int_equal(rd.rd_msg.next_index, 2);
	assert_true(rd.rd_msg.sequential);
	assert_int_equal(rd.rd_msg.n_history, 2);
	assert_int_equal(rd.rd_msg.history[1]->unix_ms, 7001);

	/* TSPB: CK2 bound once, M8 applied once. */
	memset(ck2, 0xc2, sizeof(ck2));
	assert_int_equal(S_ho_known(b, HID), TSPDB_UNKNOWN);
	assert_int_equal(S_ho_record(b, HID, NULL, "in", TSPA, "a3", NULL,
	    7250), 0);
	assert_int_equal(S_ho_known(b, HID), TSPDB_OK);
	assert_int_equal(S_ck2_bind(b, TSPA, HID, ck2, 99000, 7300), TSPDB_OK);
	assert_int_equal(S_ck2_bind(b, TSPA, HID, ck2, 99000, 7300),
	    TSPDB_REPLAY);
	assert_int_equal(S_ho_known(b, HID), TSPDB_SAME);
	assert_int_equal(S_ck2_get(b, TSPA, HID, got, &expires), 1);
	assert_memory_equal(got, ck2, sizeof(ck2));
	assert_int_equal(expires, 99000);
	for (i = 0; i < rd.rd_msg.n_history; i++)
		origin[i] = rd.rd_origin[i];
	assert_int_equal(S_m8_apply(b, TSPA, HID, &rd.rd_msg, origin, 7400),
	    TSPDB_OK);
	assert_int_equal(S_m8_apply(b, TSPA, HID, &rd.rd_msg, origin, 7400),
	    TSPDB_UNKNOWN);
	tspdb_rd1_free(&rd);
	assert_int_equal(S_ho_known(b, HID), TSPDB_STALE);
	assert_int_equal(S_auth_get(b, VIN_A, chip), 1);
	assert_int_equal(S_keypos(b, fx->fx_fill.tf_chip_id), 2);
	assert_int_equal(S_telemetry_count(b, VIN_A), 2);
	assert_int_equal(S_ck2_get(b, TSPA, HID, got, &expires), 0);

	/* TSPA: done; the session stays, its authentication goes. */
	assert_int_equal(S_ho_out_done(a, HID, VIN_A, 7500, &rr), TSPDB_OK);
	assert_true(rr.rr_session);
	assert_true(rr.rr_tx_seq > TSPDB_TX_AHEAD);
	crypto_wipe(&rr, sizeof(rr));
	assert_int_equal(S_auth_get(a, VIN_A, chip), 0);
	assert_int_equal(S_rd1_load(a, VIN_A, &rd), 0);
}

static void
test_counts_and_views(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb		*db = fx->fx_a.st_db;
	struct tspdb_counts	 c;
	struct tspdb_session	 s;
	struct m3_wait		 mw;
	Qroam__Telemetry	 t;
	json_t			*v;

	vehicle_ready(fx, db, 0x41);
	telemetry(&t, 8000);
	session_of(fx, &s, 0);
	batch_m3(db, &s, &t, &mw);
	assert_int_equal(S_batch_commit(db), TSPDB_OK);
	settle(fx, db);
	assert_int_equal(S_counts(db, 9000, &c), 0);
	assert_int_equal(c.c_vehicles, 1);
	assert_int_equal(c.c_authenticated, 1);
	assert_int_equal(c.c_sessions, 1);
	assert_int_equal(c.c_fills, 1);
	assert_non_null(v = S_status_sessions(db, 10));
	assert_int_equal(json_array_size(v), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(v, 0), "vehicle_id")), VIN_A);
	assert_null(json_object_get(json_array_get(v, 0), "k1"));
	json_decref(v);
	assert_non_null(v = S_status_vehicles(db, 10));
	assert_true(json_is_true(json_object_get(json_array_get(v, 0),
	    "session")));
	json_decref(v);
	assert_non_null(v = S_status_handovers(db, 9000, 10));
	assert_int_equal(json_array_size(v), 0);
	json_decref(v);
}

/*
 * Two instances of a region on one database: the same key in a group
 * commit of each, at once; the database lets exactly one have it.
 */
static void
test_two_instances_one_key(void **state)
{
	struct fixture		*fx = *state;
	struct store		 second;
	struct tspdb		*db = fx->fx_a.st_db, *db2;
	struct tspdb_session	 s;
	struct tspdb_req	 c1, c2;
	struct m3_wait		 mw[2];
	Qroam__Telemetry	 t;
	int			 done1 = 0, done2 = 0;

	vehicle_ready(fx, db, 0x51);
	second = fx->fx_a;
	second.st_dbname[0] = '\0';	/* the same database: dropped once */
	second.st_instance = "a2";
	db2 = st_open(fx, &second);
	telemetry(&t, 9000);
	session_of(fx, &s, 4);
	batch_m3(db, &s, &t, &mw[0]);
	batch_m3(db2, &s, &t, &mw[1]);
	tspdb_req_init(&c1, sync_done, &done1);
	tspdb_req_init(&c2, sync_done, &done2);
	tspdb_batch_commit(db, &c1);
	tspdb_batch_commit(db2, &c2);
	while (!done1 || !done2)
		event_base_loop(fx->fx_base, EVLOOP_ONCE);
	assert_true(mw[0].mw_answered && mw[1].mw_answered);
	assert_true((mw[0].mw_rq.rq_result == TSPDB_OK) !=
	    (mw[1].mw_rq.rq_result == TSPDB_OK));
	assert_true(mw[0].mw_rq.rq_result == TSPDB_REUSED ||
	    mw[1].mw_rq.rq_result == TSPDB_REUSED);
	st_close(&second);
}

/* A case on each backend, named after it. */
#define ON(t, be)	{ #t "_" #be, t, setup, teardown, &be_##be }
#define BOTH(t)		ON(t, sqlite), ON(t, pg)

/*
 * Each instance fails, when it starts again, only the handovers it left
 * unfinished: the others' go on.
 */
static void
test_recovery_per_instance(void **state)
{
	struct fixture		*fx = *state;
	struct store		 second;
	struct tspdb		*db2;
	json_t			*v;
	int			 n;

	second = fx->fx_a;
	second.st_dbname[0] = '\0';
	second.st_instance = "a2";
	db2 = st_open(fx, &second);
	assert_int_equal(S_ho_record(fx->fx_a.st_db, HID, VIN_A, "out", TSPB,
	    "started", NULL, store_now_ms()), 0);
	assert_int_equal(S_ho_record(db2, "ffeeddccbbaa99887766554433221100",
	    VIN_A, "out", TSPB, "started", NULL, store_now_ms()), 0);
	st_close(&fx->fx_a);
	fx->fx_a.st_db = tspdb_open(fx->fx_a.st_spec, fx->fx_base, NULL, NULL,
	    "a", store_now_ms(), &n);
	assert_non_null(fx->fx_a.st_db);
	assert_int_equal(n, 1);
	assert_non_null(v = S_status_handovers(db2, store_now_ms(), 10));
	assert_int_equal(json_array_size(v), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(v, 0), "state")), "started");
	json_decref(v);
	st_close(&second);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_fill_and_registration),
		BOTH(test_auth_nonce_once),
		BOTH(test_auth_idle),
		BOTH(test_m3_group_and_telemetry),
		BOTH(test_handover_context),
		BOTH(test_counts_and_views),
		ON(test_two_instances_one_key, pg),
		ON(test_recovery_per_instance, pg),
	};

	log_init("test_tspd_store", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
