/*
 * Unit tests of the TSP store (tspd/db.c) on a temporary SQLite file: fill
 * records applied idempotently, M2 epoch rules, authentication nonces, the
 * key draw rules of both modes, the session sequence numbers, the
 * sessions held in memory, the group commit of telemetry and the
 * operators' views (counts and lists without
 * key material).
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
#include <sqlite3.h>

#include "log.h"

#include "../../tspd/db.h"
#include "store.h"
#include "tspdb_sync.h"

#include "testutil.h"

#define VIN_A	"1HGCM82633A004352"
#define VIN_B	"WVWZZZ1JZXW000001"
#define TSP	"tsp-a"
#define NKEYS	8

struct fixture {
	char		 dir[64];
	char		 path[96];
	struct tspdb	*db;
	struct tu_fill	 fill;
};

/* A fill record of NKEYS keys for chip id "<c><c>...": content only. */
static void
fill_record(struct fixture *fx, char c)
{
	size_t	 i;

	tu_fill_init(&fx->fill, NKEYS, 1000);
	memset(fx->fill.tf_chip_id, c, 64);
	for (i = 0; i < NKEYS; i++) {
		memset(fx->fill.tf_key[i], (int)(i + 1) * 16 + c, 32);
		snprintf(fx->fill.tf_code[i], sizeof(fx->fill.tf_code[i]),
		    "%c%09zu", c, i);
	}
}

static int
setup(void **state)
{
	struct fixture	*fx;

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	assert_int_equal(tu_tmpdir_new(fx->dir, sizeof(fx->dir),
	    "test_tspd_db"), 0);
	snprintf(fx->path, sizeof(fx->path), "%s/tspd.db", fx->dir);
	fx->db = S_open(fx->path);
	assert_non_null(fx->db);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	int		 rc;

	tspdb_close(fx->db);
	rc = tu_tmpdir_free(fx->dir);
	free(fx);
	return rc;
}

/* One integer from a query on the store file, read by a second handle. */
static int64_t
query_int(struct fixture *fx, const char *sql)
{
	sqlite3		*h;
	int64_t		 v;

	assert_int_equal(sqlite3_open(fx->path, &h), SQLITE_OK);
	v = tu_query_int(h, sql);
	sqlite3_close(h);
	return v;
}

/* Register vid on the fixture's chip (epoch 1) and authenticate it. */
static void
vehicle_ready(struct fixture *fx, const char *vid, uint8_t noncebyte)
{
	uint8_t			 prv[8] = "prv-der";
	uint8_t			 nonce[16];
	uint64_t		 old;
	enum tspdb_result	 r;

	memset(nonce, noncebyte, sizeof(nonce));
	r = S_m2_apply(fx->db, vid, fx->fill.tf_chip_id, prv, sizeof(prv),
	    1, &old);
	assert_true(r == TSPDB_OK || r == TSPDB_SAME);
	assert_int_equal(S_auth_commit(fx->db, vid, fx->fill.tf_chip_id,
	    nonce, sizeof(nonce), 1000, 61000, "f3"), TSPDB_OK);
}

static void
telemetry(Qroam__Telemetry *t)
{
	qroam__telemetry__init(t);
	t->unix_ms = 5000;
	t->lat = 30.05;
	t->lon = 120.05;
	t->speed = 13.9;
	t->heading = 90.0;
}

/* Select and consume key idx (or code) the way an M3 does. */
static enum tspdb_result
draw(struct fixture *fx, const char *vid, uint32_t idx, const char *code)
{
	struct tspdb_session	 s;
	struct tspdb_key	 key;
	Qroam__Telemetry	 t;
	enum tspdb_result	 r;

	if ((r = S_key_select(fx->db, fx->fill.tf_chip_id, idx, code,
	    &key)) != TSPDB_OK)
		return r;
	assert_memory_equal(key.k_key, fx->fill.tf_key[key.k_index], 32);
	memset(&s, 0, sizeof(s));
	snprintf(s.s_vid, sizeof(s.s_vid), "%s", vid);
	memcpy(s.s_chip_id, fx->fill.tf_chip_id, sizeof(s.s_chip_id));
	memset(s.s_k1, 0x5a, sizeof(s.s_k1));
	s.s_key_index = key.k_index;
	telemetry(&t);
	return S_session_open(fx->db, &s, code == NULL, &t, TSP, 2000);
}

static void
test_fill_idempotent(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb_fill	 f;

	fill_record(fx, 'a');
	assert_int_equal(S_fill_get(fx->db, fx->fill.tf_chip_id, &f), 0);
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec), TSPDB_OK);
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec),
	    TSPDB_SAME);
	assert_int_equal(S_fill_get(fx->db, fx->fill.tf_chip_id, &f), 1);
	assert_int_equal(f.f_m, NKEYS);
	assert_int_equal(f.f_k, 10);
	assert_int_equal(f.f_n, 6);
	assert_int_equal(S_keypos(fx->db, fx->fill.tf_chip_id), 0);

	/* A different record under the same chip id never replaces it. */
	fx->fill.tf_code[3][9] = 'f';
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec),
	    TSPDB_CONFLICT);
	fx->fill.tf_code[3][9] = '3';
	fx->fill.tf_key[7][0] ^= 1;
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec),
	    TSPDB_CONFLICT);
	fx->fill.tf_key[7][0] ^= 1;
	fx->fill.tf_rec.n_keys = NKEYS - 1;
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec),
	    TSPDB_CONFLICT);
	fx->fill.tf_rec.n_keys = NKEYS;
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM fill_keys WHERE code = 'a00000000f'"), 0);
	assert_int_equal(query_int(fx, "SELECT count(*) FROM fill_keys"),
	    NKEYS);
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec),
	    TSPDB_SAME);
}

static void
test_m2_epochs(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb_reg	 r;
	uint8_t			 prv1[4] = { 1, 2, 3, 4 }, prv2[3] = { 9, 9, 9 };
	uint8_t			 nonce[16];
	uint64_t		 old;

	fill_record(fx, 'b');
	assert_int_equal(S_reg_get(fx->db, VIN_A, &r), 0);
	assert_int_equal(S_m2_apply(fx->db, VIN_A, fx->fill.tf_chip_id,
	    prv1, sizeof(prv1), 2, &old), TSPDB_OK);
	assert_int_equal(old, 0);
	assert_int_equal(S_m2_apply(fx->db, VIN_A, "c", prv2,
	    sizeof(prv2), 2, &old), TSPDB_SAME);
	assert_int_equal(S_m2_apply(fx->db, VIN_A, "c", prv2,
	    sizeof(prv2), 1, &old), TSPDB_STALE);
	assert_int_equal(old, 2);
	assert_int_equal(S_reg_get(fx->db, VIN_A, &r), 1);
	assert_string_equal(r.r_chip_id, fx->fill.tf_chip_id);
	assert_int_equal(r.r_prvlen, sizeof(prv1));
	assert_memory_equal(r.r_prv, prv1, sizeof(prv1));
	assert_int_equal(r.r_epoch, 2);
	tspdb_reg_clear(&r);
	assert_null(r.r_prv);

	/* A newer binding replaces the old one and ends its auth/session. */
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec), TSPDB_OK);
	memset(nonce, 0x11, sizeof(nonce));
	assert_int_equal(S_auth_commit(fx->db, VIN_A, fx->fill.tf_chip_id,
	    nonce, sizeof(nonce), 1000, 61000, "f3"), TSPDB_OK);
	assert_int_equal(draw(fx, VIN_A, 0, NULL), TSPDB_OK);
	assert_int_equal(S_m2_apply(fx->db, VIN_A, "d", prv2,
	    sizeof(prv2), 3, &old), TSPDB_OK);
	assert_int_equal(old, 2);
	assert_int_equal(S_reg_get(fx->db, VIN_A, &r), 1);
	assert_string_equal(r.r_chip_id, "d");
	assert_int_equal(r.r_epoch, 3);
	tspdb_reg_clear(&r);
	assert_int_equal(query_int(fx, "SELECT count(*) FROM auth"), 0);
	assert_int_equal(query_int(fx, "SELECT count(*) FROM sessions"), 0);
}

static void
test_auth_nonces(void **state)
{
	struct fixture	*fx = *state;
	char		 chip[65];
	uint8_t		 n1[16], n2[16];

	memset(n1, 1, sizeof(n1));
	memset(n2, 2, sizeof(n2));
	assert_int_equal(S_auth_get(fx->db, VIN_A, chip), 0);
	assert_int_equal(S_auth_commit(fx->db, VIN_A, "c1", n1,
	    sizeof(n1), 1000, 61000, "f3"), TSPDB_OK);
	assert_int_equal(S_auth_get(fx->db, VIN_A, chip), 1);
	assert_string_equal(chip, "c1");

	/* The same nonce inside its window is a replay and changes nothing. */
	assert_int_equal(S_auth_commit(fx->db, VIN_A, "c2", n1,
	    sizeof(n1), 2000, 62000, "f3"), TSPDB_REPLAY);
	assert_int_equal(S_auth_get(fx->db, VIN_A, chip), 1);
	assert_string_equal(chip, "c1");

	/* Expired nonces are purged by a later authentication. */
	assert_int_equal(S_auth_commit(fx->db, VIN_B, "c3", n2,
	    sizeof(n2), 70000, 130000, "f3"), TSPDB_OK);
	assert_int_equal(query_int(fx, "SELECT count(*) FROM auth_nonces"), 1);
	assert_int_equal(query_int(fx,
	    "SELECT authed_ms FROM auth WHERE vehicle_id = '" VIN_B "'"),
	    70000);
}

static void
test_draw_sequential(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb_key	 key;

	fill_record(fx, 'c');
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec), TSPDB_OK);
	vehicle_ready(fx, VIN_A, 0x21);

	assert_int_equal(draw(fx, VIN_A, 0, NULL), TSPDB_OK);
	assert_int_equal(S_keypos(fx->db, fx->fill.tf_chip_id), 1);
	assert_int_equal(draw(fx, VIN_A, 0, NULL), TSPDB_REUSED);

	/* Skipping ahead burns the skipped keys. */
	assert_int_equal(draw(fx, VIN_A, 3, NULL), TSPDB_OK);
	assert_int_equal(S_keypos(fx->db, fx->fill.tf_chip_id), 4);
	assert_int_equal(draw(fx, VIN_A, 1, NULL), TSPDB_REUSED);
	assert_int_equal(draw(fx, VIN_A, 2, NULL), TSPDB_REUSED);
	assert_int_equal(draw(fx, VIN_A, 3, NULL), TSPDB_REUSED);
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM used_keys WHERE how = 'burned'"), 2);
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM used_keys WHERE how = 'm3'"), 2);

	/* Out of range; selection alone changes nothing. */
	assert_int_equal(S_key_select(fx->db, fx->fill.tf_chip_id, NKEYS,
	    NULL, &key), TSPDB_UNKNOWN);
	assert_int_equal(S_key_select(fx->db, fx->fill.tf_chip_id, 5, NULL,
	    &key), TSPDB_OK);
	assert_int_equal(key.k_index, 5);
	assert_int_equal(S_keypos(fx->db, fx->fill.tf_chip_id), 4);
	assert_int_equal(draw(fx, VIN_A, NKEYS - 1, NULL), TSPDB_OK);
	assert_int_equal(S_keypos(fx->db, fx->fill.tf_chip_id), NKEYS);
	assert_int_equal(draw(fx, VIN_A, 5, NULL), TSPDB_REUSED);
	assert_int_equal(query_int(fx, "SELECT count(*) FROM used_keys"),
	    NKEYS);
}

static void
test_draw_arbitrary(void **state)
{
	struct fixture	*fx = *state;

	fill_record(fx, 'd');
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec), TSPDB_OK);
	vehicle_ready(fx, VIN_A, 0x31);

	assert_int_equal(draw(fx, VIN_A, 0, "d000000002"), TSPDB_OK);
	assert_int_equal(S_keypos(fx->db, fx->fill.tf_chip_id), 0);
	assert_int_equal(draw(fx, VIN_A, 0, "d000000002"), TSPDB_REUSED);
	assert_int_equal(draw(fx, VIN_A, 0, "d00000000f"), TSPDB_UNKNOWN);

	/* Using the key at the position moves it past the run of used keys. */
	assert_int_equal(draw(fx, VIN_A, 0, "d000000001"), TSPDB_OK);
	assert_int_equal(S_keypos(fx->db, fx->fill.tf_chip_id), 0);
	assert_int_equal(draw(fx, VIN_A, 0, "d000000000"), TSPDB_OK);
	assert_int_equal(S_keypos(fx->db, fx->fill.tf_chip_id), 3);
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM used_keys WHERE how = 'burned'"), 0);

	/* Modes mix: a sequential draw after arbitrary ones. */
	assert_int_equal(draw(fx, VIN_A, 2, NULL), TSPDB_REUSED);
	assert_int_equal(draw(fx, VIN_A, 4, NULL), TSPDB_OK);
	assert_int_equal(draw(fx, VIN_A, 0, "d000000003"), TSPDB_REUSED);
	assert_int_equal(S_keypos(fx->db, fx->fill.tf_chip_id), 5);
}

/* Flush function of test_batch: counts its calls, commits the batch. */
static int batch_flushes;

static void
batch_flush(void *arg)
{
	batch_flushes++;
	assert_int_equal(S_batch_commit(arg), TSPDB_OK);
}

static void
test_batch(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb_session	 s;
	Qroam__Telemetry	 t;
	int			 now;

	fill_record(fx, 'f');
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec), TSPDB_OK);
	vehicle_ready(fx, VIN_A, 0x41);
	telemetry(&t);
	assert_int_equal(draw(fx, VIN_A, 2, NULL), TSPDB_OK);

	/* Two messages of one vehicle and a replay in one batch. */
	assert_int_equal(tspdb_batch_open(fx->db), 0);
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 1, 2, &t, TSP,
	    3000, &now), TSPDB_OK);
	assert_int_equal(tspdb_batch_open(fx->db), 1);
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 2, 3, &t, TSP,
	    3000, &now), TSPDB_OK);
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 2, 4, &t, TSP,
	    3000, &now), TSPDB_REPLAY);
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_B, 1, 2, &t, TSP,
	    3000, &now), TSPDB_UNKNOWN);
	assert_int_equal(S_session_get(fx->db, VIN_A, &s), 1);
	assert_int_equal(s.s_rx_seq, 2);
	assert_int_equal(s.s_tx_seq, 3);
	/* Another reader sees none of it before the commit. */
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM telemetry WHERE seq > 0"), 0);
	assert_int_equal(S_batch_commit(fx->db), TSPDB_OK);
	assert_int_equal(tspdb_batch_open(fx->db), 0);
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM telemetry WHERE seq > 0"), 2);
	assert_int_equal(query_int(fx, "SELECT rx_seq FROM sessions"), 2);

	/* Any other transaction has the open batch committed first. */
	batch_flushes = 0;
	tspdb_batch_set_flush(fx->db, batch_flush, fx->db);
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 3, 4, &t, TSP,
	    3000, &now), TSPDB_OK);
	assert_int_equal(draw(fx, VIN_A, 3, NULL), TSPDB_OK);
	assert_int_equal(batch_flushes, 1);
	assert_int_equal(tspdb_batch_open(fx->db), 0);
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM telemetry WHERE seq > 0"), 3);

	/* Without a flush function the store commits the batch itself. */
	tspdb_batch_set_flush(fx->db, NULL, NULL);
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 1, 2, &t, TSP,
	    3000, &now), TSPDB_OK);
	assert_int_equal(S_session_end(fx->db, VIN_A, 0), TSPDB_OK);
	assert_int_equal(tspdb_batch_open(fx->db), 0);
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM telemetry WHERE seq > 0"), 4);
	assert_int_equal(query_int(fx, "SELECT count(*) FROM sessions"), 0);
}

static void	exec_sql(struct fixture *, const char *);

/* A session of vid on key idx, K1 filled with fillbyte. */
static void
session_of(struct fixture *fx, struct tspdb_session *s, const char *vid,
    uint32_t idx, int fillbyte)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->s_vid, sizeof(s->s_vid), "%s", vid);
	memcpy(s->s_chip_id, fx->fill.tf_chip_id, sizeof(s->s_chip_id));
	memset(s->s_k1, fillbyte, sizeof(s->s_k1));
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
batch_m3(struct fixture *fx, const struct tspdb_session *s,
    const Qroam__Telemetry *t, struct m3_wait *mw)
{
	mw->mw_answered = 0;
	tspdb_req_init(&mw->mw_rq, m3_answered, mw);
	tspdb_batch_session_open(fx->db, s, 1, t, TSP, 3000, &mw->mw_rq);
}

/* The M3 was answered, with res. */
static void
m3_result(const struct m3_wait *mw, enum tspdb_result res)
{
	assert_true(mw->mw_answered);
	assert_int_equal(mw->mw_rq.rq_result, res);
}

static void
test_batch_m3(void **state)
{
	struct fixture			*fx = *state;
	const struct tspdb_session	*live;
	struct tspdb_session		 s;
	struct m3_wait			 mw[3];
	Qroam__Telemetry		 t;
	int				 now;

	fill_record(fx, 'h');
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec), TSPDB_OK);
	vehicle_ready(fx, VIN_A, 0x71);
	vehicle_ready(fx, VIN_B, 0x72);
	telemetry(&t);

	/* Two M3s in one group: the key each names is decided in it. */
	session_of(fx, &s, VIN_A, 2, 0x11);
	batch_m3(fx, &s, &t, &mw[0]);
	assert_int_equal(tspdb_batch_open(fx->db), 1);
	/* The same key again, even for another vehicle: used. */
	session_of(fx, &s, VIN_B, 2, 0x22);
	batch_m3(fx, &s, &t, &mw[1]);
	session_of(fx, &s, VIN_B, 3, 0x22);
	batch_m3(fx, &s, &t, &mw[2]);
	/* Nothing in memory, nothing visible to others, before the commit. */
	assert_false(mw[0].mw_answered);
	assert_false(mw[2].mw_answered);
	assert_int_equal(tspdb_session_live(fx->db), 0);
	assert_int_equal(query_int(fx, "SELECT count(*) FROM sessions"), 0);
	assert_int_equal(S_batch_commit(fx->db), TSPDB_OK);
	m3_result(&mw[0], TSPDB_OK);
	m3_result(&mw[1], TSPDB_REUSED);
	m3_result(&mw[2], TSPDB_OK);
	assert_int_equal(tspdb_session_live(fx->db), 2);
	assert_int_equal(query_int(fx, "SELECT count(*) FROM sessions"), 2);
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM used_keys WHERE how = 'm3'"), 2);
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM telemetry WHERE seq = 0"), 2);
	assert_int_equal(S_session_find(fx->db, VIN_B, &live), 1);
	assert_int_equal(live->s_key_index, 3);
	assert_int_equal(live->s_k1[0], 0x22);
	assert_int_equal(live->s_tx_seq, 1);
	assert_non_null(live->s_aead);

	/* Telemetry and a new M3 of the same vehicle share a group. */
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 1, 2, &t, TSP,
	    3000, &now), TSPDB_OK);
	session_of(fx, &s, VIN_A, 4, 0x33);
	batch_m3(fx, &s, &t, &mw[0]);
	assert_int_equal(S_batch_commit(fx->db), TSPDB_OK);
	m3_result(&mw[0], TSPDB_OK);
	assert_int_equal(S_session_find(fx->db, VIN_A, &live), 1);
	assert_int_equal(live->s_key_index, 4);
	assert_int_equal(live->s_rx_seq, 0);

	/*
	 * A group that fails (here: a session row gone behind the store's
	 * back) leaves neither the session nor the key used.
	 */
	exec_sql(fx, "DELETE FROM sessions WHERE vehicle_id = '" VIN_A "'");
	session_of(fx, &s, VIN_B, 5, 0x44);
	batch_m3(fx, &s, &t, &mw[0]);
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 1, 2, &t, TSP,
	    3000, &now), TSPDB_OK);
	assert_int_equal(S_batch_commit(fx->db), TSPDB_ERROR);
	m3_result(&mw[0], TSPDB_ERROR);
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM used_keys WHERE idx = 5"), 0);
	assert_int_equal(S_session_find(fx->db, VIN_B, &live), 1);
	assert_int_equal(live->s_key_index, 3);
}

static void
test_session_contexts(void **state)
{
	struct fixture			*fx = *state;
	const struct tspdb_session	*a, *b;
	struct tspdb_session		 s;
	Qroam__Telemetry		 t;
	uint8_t				 ct[64], pt[8];
	uint8_t				 nonce[CRYPTO_NONCELEN];

	fill_record(fx, 'i');
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec), TSPDB_OK);
	vehicle_ready(fx, VIN_A, 0x81);
	vehicle_ready(fx, VIN_B, 0x82);
	telemetry(&t);
	session_of(fx, &s, VIN_A, 2, 0x11);
	assert_int_equal(S_session_open(fx->db, &s, 1, &t, TSP, 3000),
	    TSPDB_OK);
	session_of(fx, &s, VIN_B, 3, 0x22);
	assert_int_equal(S_session_open(fx->db, &s, 1, &t, TSP, 3000),
	    TSPDB_OK);
	/* One context for two sessions: it moves to the one in use. */
	tspdb_session_contexts(fx->db, 1);
	memset(nonce, 7, sizeof(nonce));
	memset(pt, 9, sizeof(pt));
	assert_int_equal(S_session_find(fx->db, VIN_A, &a), 1);
	assert_non_null(a->s_aead);
	assert_int_equal(crypto_aead_seal_with(a->s_aead, nonce, "x", 1, pt,
	    sizeof(pt), ct), 0);
	assert_int_equal(S_session_find(fx->db, VIN_B, &b), 1);
	assert_non_null(b->s_aead);
	assert_null(a->s_aead);
	/* B's context is keyed with B's K1: A's message does not open. */
	assert_int_equal(crypto_aead_open_with(b->s_aead, nonce, "x", 1, ct,
	    sizeof(pt) + CRYPTO_TAGLEN, pt), -1);
	/* A in use again takes the context back, under its own key. */
	assert_int_equal(S_session_find(fx->db, VIN_A, &a), 1);
	assert_null(b->s_aead);
	assert_int_equal(crypto_aead_open_with(a->s_aead, nonce, "x", 1, ct,
	    sizeof(pt) + CRYPTO_TAGLEN, pt), 0);
	assert_int_equal(pt[0], 9);
	assert_int_equal(tspdb_session_live(fx->db), 2);
}

static void
test_session_sequence(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb_session	 s;
	Qroam__Telemetry	 t;

	fill_record(fx, 'e');
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec), TSPDB_OK);
	vehicle_ready(fx, VIN_A, 0x41);
	telemetry(&t);
	assert_int_equal(S_session_get(fx->db, VIN_A, &s), 0);
	assert_int_equal(S_session_telemetry(fx->db, VIN_A, 1, 2, &t, TSP,
	    3000), TSPDB_UNKNOWN);

	assert_int_equal(draw(fx, VIN_A, 2, NULL), TSPDB_OK);
	assert_int_equal(S_session_get(fx->db, VIN_A, &s), 1);
	assert_string_equal(s.s_vid, VIN_A);
	assert_string_equal(s.s_chip_id, fx->fill.tf_chip_id);
	assert_int_equal(s.s_key_index, 2);
	assert_int_equal(s.s_rx_seq, 0);
	assert_int_equal(s.s_tx_seq, 1);
	assert_int_equal(s.s_k1[0], 0x5a);
	assert_int_equal(S_telemetry_count(fx->db, VIN_A), 1);

	assert_int_equal(S_session_telemetry(fx->db, VIN_A, 1, 2, &t, TSP,
	    3000), TSPDB_OK);
	assert_int_equal(S_session_telemetry(fx->db, VIN_A, 1, 3, &t, TSP,
	    3000), TSPDB_REPLAY);
	assert_int_equal(S_session_telemetry(fx->db, VIN_A, 5, 3, &t, TSP,
	    3000), TSPDB_OK);
	assert_int_equal(S_session_telemetry(fx->db, VIN_A, 4, 4, &t, TSP,
	    3000), TSPDB_REPLAY);
	assert_int_equal(S_session_get(fx->db, VIN_A, &s), 1);
	assert_int_equal(s.s_rx_seq, 5);
	assert_int_equal(s.s_tx_seq, 3);
	assert_int_equal(S_telemetry_count(fx->db, VIN_A), 3);
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM telemetry WHERE seq = 0 AND fuel IS NULL"),
	    1);

	/* A refused M3 leaves the session alone; a new one replaces it. */
	assert_int_equal(draw(fx, VIN_A, 1, NULL), TSPDB_REUSED);
	assert_int_equal(S_session_get(fx->db, VIN_A, &s), 1);
	assert_int_equal(s.s_key_index, 2);
	assert_int_equal(draw(fx, VIN_A, 6, NULL), TSPDB_OK);
	assert_int_equal(S_session_get(fx->db, VIN_A, &s), 1);
	assert_int_equal(s.s_key_index, 6);
	assert_int_equal(s.s_rx_seq, 0);

	/* A new authentication ends the session. */
	vehicle_ready(fx, VIN_A, 0x42);
	assert_int_equal(S_session_get(fx->db, VIN_A, &s), 0);
	assert_int_equal(draw(fx, VIN_A, 7, NULL), TSPDB_OK);
	assert_int_equal(S_session_end(fx->db, VIN_A, 0), TSPDB_OK);
	assert_int_equal(S_session_end(fx->db, VIN_A, 0), TSPDB_UNKNOWN);
	assert_int_equal(S_session_get(fx->db, VIN_A, &s), 0);
}

/* Run sql on the store file through a second handle. */
static void
exec_sql(struct fixture *fx, const char *sql)
{
	sqlite3		*h;

	assert_int_equal(sqlite3_open(fx->path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

/*
 * Sessions in memory: an M3 enters its session with a cipher context,
 * messages are checked against memory and not the row, the batch writes
 * the row once at its commit, a rollback puts the stored numbers back,
 * and a released, re-authenticated or reopened store reads the row again.
 */
static void
test_session_in_memory(void **state)
{
	struct fixture			*fx = *state;
	const struct tspdb_session	*live;
	struct tspdb_session		 s;
	Qroam__Telemetry		 t;
	int				 now;

	fill_record(fx, 'g');
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec), TSPDB_OK);
	vehicle_ready(fx, VIN_A, 0x61);
	telemetry(&t);
	assert_int_equal(S_session_find(fx->db, VIN_A, &live), 0);
	assert_null(live);
	assert_int_equal(tspdb_session_live(fx->db), 0);
	assert_int_equal(draw(fx, VIN_A, 2, NULL), TSPDB_OK);
	assert_int_equal(tspdb_session_live(fx->db), 1);
	assert_int_equal(S_session_find(fx->db, VIN_A, &live), 1);
	assert_non_null(live->s_aead);
	assert_string_equal(live->s_vid, VIN_A);
	assert_int_equal(live->s_k1[0], 0x5a);
	assert_int_equal(live->s_key_index, 2);
	assert_int_equal(live->s_rx_seq, 0);
	assert_int_equal(live->s_tx_seq, 1);

	/* Memory, not the row, answers: a change behind its back is unseen. */
	exec_sql(fx, "UPDATE sessions SET rx_seq = 100");
	assert_int_equal(S_session_find(fx->db, VIN_A, &live), 1);
	assert_int_equal(live->s_rx_seq, 0);

	/* The batch advances memory at once and the row at its commit. */
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 1, 2, &t, TSP,
	    3000, &now), TSPDB_OK);
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 2, 3, &t, TSP,
	    3000, &now), TSPDB_OK);
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 2, 4, &t, TSP,
	    3000, &now), TSPDB_REPLAY);
	assert_int_equal(live->s_rx_seq, 2);
	assert_int_equal(live->s_tx_seq, 3);
	assert_int_equal(query_int(fx, "SELECT rx_seq FROM sessions"), 100);
	assert_int_equal(S_batch_commit(fx->db), TSPDB_OK);
	assert_int_equal(query_int(fx, "SELECT rx_seq FROM sessions"), 2);
	/* The row holds the ceiling above every seq used. */
	assert_int_equal(query_int(fx, "SELECT tx_seq FROM sessions"),
	    TSPDB_TX_AHEAD);

	/*
	 * A batch whose commit fails leaves memory ahead of the store: the
	 * answers under its numbers may have left.
	 */
	exec_sql(fx, "DELETE FROM sessions");
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 3, 4, &t, TSP,
	    3000, &now), TSPDB_OK);
	assert_int_equal(live->s_rx_seq, 3);
	assert_int_equal(S_batch_commit(fx->db), TSPDB_ERROR);
	assert_int_equal(live->s_rx_seq, 3);
	assert_int_equal(live->s_tx_seq, 4);
	assert_int_equal(query_int(fx,
	    "SELECT count(*) FROM telemetry WHERE seq > 0"), 2);
	/* Once released, the session is read from the store again: gone. */
	tspdb_session_release(fx->db, VIN_A);
	assert_int_equal(tspdb_session_live(fx->db), 0);
	assert_int_equal(S_session_find(fx->db, VIN_A, &live), 0);

	/* A session released while its numbers are in the batch stays... */
	assert_int_equal(draw(fx, VIN_A, 3, NULL), TSPDB_OK);
	assert_int_equal(tspdb_batch_telemetry(fx->db, VIN_A, 1, 2, &t, TSP,
	    3000, &now), TSPDB_OK);
	tspdb_session_release(fx->db, VIN_A);
	assert_int_equal(tspdb_session_live(fx->db), 1);
	assert_int_equal(S_session_get(fx->db, VIN_A, &s), 1);
	assert_int_equal(s.s_rx_seq, 1);
	assert_null(s.s_aead);
	/* ...until the commit has stored them. */
	assert_int_equal(S_batch_commit(fx->db), TSPDB_OK);
	assert_int_equal(tspdb_session_live(fx->db), 0);
	assert_int_equal(query_int(fx, "SELECT rx_seq FROM sessions"), 1);
	assert_int_equal(query_int(fx, "SELECT tx_seq FROM sessions"),
	    TSPDB_TX_AHEAD);

	/* The first message after a release or a restart reads the row. */
	assert_int_equal(S_session_find(fx->db, VIN_A, &live), 1);
	assert_int_equal(live->s_rx_seq, 1);
	assert_int_equal(live->s_key_index, 3);
	assert_non_null(live->s_aead);
	tspdb_close(fx->db);
	assert_non_null(fx->db = S_open(fx->path));
	assert_int_equal(tspdb_session_live(fx->db), 0);
	assert_int_equal(S_session_telemetry(fx->db, VIN_A, 1, 3, &t, TSP,
	    3000), TSPDB_REPLAY);
	assert_int_equal(S_session_telemetry(fx->db, VIN_A, 2, 3, &t, TSP,
	    3000), TSPDB_OK);
	assert_int_equal(tspdb_session_live(fx->db), 1);
	assert_int_equal(query_int(fx, "SELECT rx_seq FROM sessions"), 2);

	/* A new authentication ends the session in memory too. */
	vehicle_ready(fx, VIN_A, 0x62);
	assert_int_equal(tspdb_session_live(fx->db), 0);
	assert_int_equal(S_session_find(fx->db, VIN_A, &live), 0);
	/* So does the end of a session. */
	assert_int_equal(draw(fx, VIN_A, 4, NULL), TSPDB_OK);
	assert_int_equal(tspdb_session_live(fx->db), 1);
	assert_int_equal(S_session_end(fx->db, VIN_A, 0), TSPDB_OK);
	assert_int_equal(tspdb_session_live(fx->db), 0);
	assert_int_equal(S_session_find(fx->db, VIN_A, &live), 0);
}

static void
test_reopen(void **state)
{
	struct fixture	*fx = *state;

	fill_record(fx, 'f');
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec), TSPDB_OK);
	vehicle_ready(fx, VIN_B, 0x51);
	assert_int_equal(draw(fx, VIN_B, 3, NULL), TSPDB_OK);
	tspdb_close(fx->db);

	/* The state survives a restart; migrations do not run twice. */
	fx->db = S_open(fx->path);
	assert_non_null(fx->db);
	assert_int_equal(S_keypos(fx->db, fx->fill.tf_chip_id), 4);
	assert_int_equal(draw(fx, VIN_B, 3, NULL), TSPDB_REUSED);
	assert_int_equal(draw(fx, VIN_B, 2, NULL), TSPDB_REUSED);
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec),
	    TSPDB_SAME);
	assert_int_equal(S_telemetry_count(fx->db, VIN_B), 1);
}

/* The object of array a whose vehicle_id is vid. */
static json_t *
by_vid(json_t *a, const char *vid)
{
	json_t	*o;
	size_t	 i;

	json_array_foreach(a, i, o)
		if (strcmp(json_string_value(json_object_get(o, "vehicle_id")),
		    vid) == 0)
			return o;
	fail_msg("no entry for %s", vid);
	return NULL;
}

static void
test_status_views(void **state)
{
	struct fixture		*fx = *state;
	struct tspdb_counts	 c;
	uint8_t			 prv[8] = "prv-der", ck2[32];
	uint64_t		 old;
	json_t			*a, *o;
	char			*text;

	fill_record(fx, 'f');
	assert_int_equal(S_fill_apply(fx->db, &fx->fill.tf_rec), TSPDB_OK);
	assert_int_equal(S_m2_apply(fx->db, VIN_B, fx->fill.tf_chip_id,
	    prv, sizeof(prv), 3, &old), TSPDB_OK);
	vehicle_ready(fx, VIN_A, 0x51);
	assert_int_equal(draw(fx, VIN_A, 2, NULL), TSPDB_OK);
	assert_int_equal(S_ho_record(fx->db, "0123456789abcdef0123456789abcdef",
	    VIN_A, "out", "tsp-b", "started", NULL, 2000), 0);
	assert_int_equal(S_ho_record(fx->db, "1123456789abcdef0123456789abcdef",
	    VIN_A, "out", "tsp-c", "done", NULL, 1500), 0);
	memset(ck2, 0x77, sizeof(ck2));
	assert_int_equal(S_ck2_bind(fx->db, "tsp-c",
	    "2123456789abcdef0123456789abcdef", ck2, 31000, 1000), TSPDB_OK);

	assert_int_equal(S_counts(fx->db, 1000, &c), 0);
	assert_int_equal(c.c_vehicles, 2);
	assert_int_equal(c.c_authenticated, 1);
	assert_int_equal(c.c_sessions, 1);
	assert_int_equal(c.c_handovers, 2);
	assert_int_equal(c.c_ck2_bindings, 1);
	assert_int_equal(c.c_fills, 1);
	/* An expired binding is no handover in flight. */
	assert_int_equal(S_counts(fx->db, 40000, &c), 0);
	assert_int_equal(c.c_handovers, 1);
	assert_int_equal(c.c_ck2_bindings, 0);

	a = S_status_sessions(fx->db, 1000);
	assert_non_null(a);
	assert_int_equal(json_array_size(a), 1);
	o = json_array_get(a, 0);
	assert_int_equal(json_object_size(o), 6);
	assert_null(json_object_get(o, "k1"));
	assert_string_equal(json_string_value(json_object_get(o,
	    "vehicle_id")), VIN_A);
	assert_int_equal(json_integer_value(json_object_get(o, "key_index")),
	    2);
	assert_int_equal(json_integer_value(json_object_get(o, "tx_seq")), 1);
	json_decref(a);
	a = S_status_sessions(fx->db, 0);
	assert_int_equal(json_array_size(a), 0);
	json_decref(a);

	a = S_status_vehicles(fx->db, 1000);
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(a, 0), "vehicle_id")), VIN_A);
	o = by_vid(a, VIN_A);
	assert_true(json_is_true(json_object_get(o, "authenticated")));
	assert_true(json_is_true(json_object_get(o, "session")));
	assert_string_equal(json_string_value(json_object_get(o, "via")), "f3");
	assert_int_equal(json_integer_value(json_object_get(o, "next_index")),
	    3);
	o = by_vid(a, VIN_B);
	assert_true(json_is_false(json_object_get(o, "authenticated")));
	assert_true(json_is_null(json_object_get(o, "via")));
	assert_int_equal(json_integer_value(json_object_get(o, "epoch")), 3);
	text = json_dumps(a, 0);
	assert_null(strstr(text, "prv"));
	free(text);
	json_decref(a);

	a = S_status_handovers(fx->db, 1000, 1000);
	assert_int_equal(json_array_size(a), 2);
	o = json_array_get(a, 0);
	assert_string_equal(json_string_value(json_object_get(o, "role")),
	    "source");
	assert_string_equal(json_string_value(json_object_get(o, "peer")),
	    "tsp-b");
	assert_int_equal(json_integer_value(json_object_get(o, "started_ms")),
	    2000);
	o = json_array_get(a, 1);
	assert_string_equal(json_string_value(json_object_get(o, "role")),
	    "target");
	assert_string_equal(json_string_value(json_object_get(o, "state")),
	    "bound");
	json_decref(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fill_idempotent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_m2_epochs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_nonces, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_draw_sequential, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_draw_arbitrary, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_m3, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_contexts, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_sequence, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_in_memory, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_views, setup,
		    teardown),
	};

	log_init("test_tspd_db", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
