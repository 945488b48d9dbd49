/*
 * The SQLite backend of the TSP store, the embedded default: a store
 * setting that is a path.  Its steps (db.c, db_batch.c, db_live.c,
 * db_handover.c, db_status.c) run on the loop, against a database file
 * in WAL mode whose commits the committer thread makes durable
 * (commit.h), so each request has its result at once; the answer still
 * leaves through the front's queue, as a server's would.  The M3s of a
 * batch are answered when the batch is settled.
 */
#include <string.h>

#include "log.h"

#include "db_backend.h"
#include "db_priv.h"

static struct sqlt *
sq(const struct tspdb *db)
{
	return tspdb_state(db);
}

/* The result of a lookup that returned 1, 0 or -1. */
static enum tspdb_result
get_result(int r)
{
	return r == 1 ? TSPDB_OK : r == 0 ? TSPDB_UNKNOWN : TSPDB_ERROR;
}

/* Whatever no other backend took is a path. */
static int
sqlite_accepts(const char *spec)
{
	return spec[0] != '\0';
}

/* An M3 of the batch: its request learns whether the batch committed. */
static void
sqlite_settled(void *tag, int committed, void *arg)
{
	tspdb_answer(arg, tag, committed ? TSPDB_OK : TSPDB_ERROR);
}

static int
sqlite_open(struct tspdb *db, const char *spec,
    void (*durable)(uint64_t, void *), void *arg, const char *instance,
    uint64_t now_ms, int *recovered)
{
	struct sqlt	*s;
	int		 n;

	(void)instance;		/* one instance has the file */
	if ((s = sqlt_open(spec, tspdb_base(db), durable, arg)) == NULL)
		return -1;
	s->db_settled = sqlite_settled;
	s->db_settled_arg = db;
	tspdb_set_state(db, s);
	if ((n = sqlt_ho_recover(s, now_ms)) == -1) {
		sqlt_close(s);
		tspdb_set_state(db, NULL);
		return -1;
	}
	*recovered = n;
	return 0;
}

static void
sqlite_close(struct tspdb *db)
{
	sqlt_close(sq(db));
	tspdb_set_state(db, NULL);
}

static void
sqlite_batch_session_open(struct tspdb *db, const struct tspdb_session *s,
    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
    uint64_t now_ms, struct tspdb_req *rq)
{
	enum tspdb_result	 res;

	res = sqlt_batch_session_open(sq(db), s, sequential, d1, tsp_id,
	    now_ms, rq);
	if (res != TSPDB_OK)
		tspdb_answer(db, rq, res);
}

static void
sqlite_batch_commit(struct tspdb *db, struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_batch_commit(sq(db)));
}

static void
sqlite_fill_apply(struct tspdb *db, const Qroam__FillRecord *fr,
    struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_fill_apply(sq(db), fr));
}

static void
sqlite_fill_get(struct tspdb *db, const char *chip_id, struct tspdb_fill *f,
    struct tspdb_req *rq)
{
	tspdb_answer(db, rq, get_result(sqlt_fill_get(sq(db), chip_id, f)));
}

static void
sqlite_keypos(struct tspdb *db, const char *chip_id, int64_t *pos,
    struct tspdb_req *rq)
{
	int64_t	 v;

	if ((v = sqlt_keypos(sq(db), chip_id)) == -1) {
		tspdb_answer(db, rq, TSPDB_ERROR);
		return;
	}
	*pos = v;
	tspdb_answer(db, rq, TSPDB_OK);
}

static void
sqlite_m2_apply(struct tspdb *db, const char *vid, const char *chip_id,
    const uint8_t *prv, size_t prvlen, uint64_t epoch, uint64_t *old_epoch,
    struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_m2_apply(sq(db), vid, chip_id, prv, prvlen,
	    epoch, old_epoch));
}

static void
sqlite_reg_get(struct tspdb *db, const char *vid, struct tspdb_reg *r,
    struct tspdb_req *rq)
{
	tspdb_answer(db, rq, get_result(sqlt_reg_get(sq(db), vid, r)));
}

static void
sqlite_auth_commit(struct tspdb *db, const char *vid, const char *chip_id,
    const uint8_t *nonce, size_t noncelen, uint64_t now_ms, uint64_t expires_ms,
    const char *via, struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_auth_commit(sq(db), vid, chip_id, nonce,
	    noncelen, now_ms, expires_ms, via));
}

static void
sqlite_auth_get(struct tspdb *db, const char *vid, uint64_t since_ms,
    char chip_id[CHIP_ID_LEN + 1], struct tspdb_req *rq)
{
	tspdb_answer(db, rq, get_result(sqlt_auth_get(sq(db), vid, since_ms,
	    chip_id)));
}

static void
sqlite_auth_expire(struct tspdb *db, uint64_t since_ms, uint64_t *n,
    struct tspdb_req *rq)
{
	int64_t	 r;

	if ((r = sqlt_auth_expire(sq(db), since_ms)) >= 0)
		*n = (uint64_t)r;
	tspdb_answer(db, rq, r >= 0 ? TSPDB_OK : TSPDB_ERROR);
}

static void
sqlite_key_select(struct tspdb *db, const char *chip_id, uint32_t index,
    const char *code, struct tspdb_key *key, struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_key_select(sq(db), chip_id, index, code,
	    key));
}

static void
sqlite_session_open(struct tspdb *db, const struct tspdb_session *s,
    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
    uint64_t now_ms, struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_session_open(sq(db), s, sequential, d1,
	    tsp_id, now_ms));
}

static void
sqlite_session_get(struct tspdb *db, const char *vid, struct tspdb_session *s,
    struct tspdb_req *rq)
{
	tspdb_answer(db, rq, get_result(sqlt_session_get(sq(db), vid, s)));
}

static void
sqlite_session_load(struct tspdb *db, const char *vid, struct tspdb_req *rq)
{
	tspdb_answer(db, rq, get_result(sqlt_session_load(sq(db), vid)));
}

static void
sqlite_session_telemetry(struct tspdb *db, const char *vid, uint64_t seq,
    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
    uint64_t now_ms, struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_session_telemetry(sq(db), vid, seq, tx_seq,
	    t, tsp_id, now_ms));
}

static void
sqlite_session_end(struct tspdb *db, const char *vid, int power_off,
    struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_session_end(sq(db), vid, power_off));
}

static void
sqlite_telemetry_count(struct tspdb *db, const char *vid, int64_t *n,
    struct tspdb_req *rq)
{
	int64_t	 v;

	if ((v = sqlt_telemetry_count(sq(db), vid)) == -1) {
		tspdb_answer(db, rq, TSPDB_ERROR);
		return;
	}
	*n = v;
	tspdb_answer(db, rq, TSPDB_OK);
}

static void
sqlite_ho_record(struct tspdb *db, const char *hid, const char *vid,
    const char *role, const char *peer, const char *state, const char *reason,
    uint64_t now_ms, struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_ho_record(sq(db), hid, vid, role, peer,
	    state, reason, now_ms) == -1 ? TSPDB_ERROR :
	    TSPDB_OK);
}

static void
sqlite_ho_known(struct tspdb *db, const char *hid, struct tspdb_req *rq)
{
	int	 r = sqlt_ho_known(sq(db), hid);

	tspdb_answer(db, rq, r == 2 ? TSPDB_STALE : r == 3 ? TSPDB_SAME :
	    get_result(r));
}

static void
sqlite_session_seq(struct tspdb *db, const char *vid, uint64_t seq,
    struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_session_seq(sq(db), vid, seq));
}

static void
sqlite_ho_out_done(struct tspdb *db, const char *hid, const char *vid,
    uint64_t now_ms, struct tspdb_ready *r, struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_ho_out_done(sq(db), hid, vid, now_ms, r));
}

static void
sqlite_rd1_load(struct tspdb *db, const char *vid, struct tspdb_rd1 *rd,
    struct tspdb_req *rq)
{
	tspdb_answer(db, rq, get_result(sqlt_rd1_load(sq(db), vid, rd)));
}

static void
sqlite_ck2_bind(struct tspdb *db, const char *initiator, const char *hid,
    const uint8_t ck2[CRYPTO_KEYLEN], uint64_t expires_ms, uint64_t now_ms,
    struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_ck2_bind(sq(db), initiator, hid, ck2,
	    expires_ms, now_ms));
}

static void
sqlite_ck2_get(struct tspdb *db, const char *initiator, const char *hid,
    uint8_t ck2[CRYPTO_KEYLEN], uint64_t *expires_ms, struct tspdb_req *rq)
{
	tspdb_answer(db, rq, get_result(sqlt_ck2_get(sq(db), initiator, hid,
	    ck2, expires_ms)));
}

static void
sqlite_ck2_purge(struct tspdb *db, uint64_t now_ms, struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_ck2_purge(sq(db),
	    now_ms) == -1 ? TSPDB_ERROR :
	    TSPDB_OK);
}

static void
sqlite_m8_apply(struct tspdb *db, const char *initiator, const char *hid,
    const Qroam__RD1 *rd1, const struct tspdb_origin *origin, uint64_t now_ms,
    struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_m8_apply(sq(db), initiator, hid, rd1, origin,
	    now_ms));
}

static void
sqlite_counts(struct tspdb *db, uint64_t now_ms, struct tspdb_counts *c,
    struct tspdb_req *rq)
{
	tspdb_answer(db, rq, sqlt_counts(sq(db), now_ms,
	    c) == -1 ? TSPDB_ERROR :
	    TSPDB_OK);
}

static void
sqlite_status_sessions(struct tspdb *db, size_t max, json_t **out,
    struct tspdb_req *rq)
{
	*out = sqlt_status_sessions(sq(db), max);
	tspdb_answer(db, rq, *out != NULL ? TSPDB_OK : TSPDB_ERROR);
}

static void
sqlite_status_vehicles(struct tspdb *db, size_t max, json_t **out,
    struct tspdb_req *rq)
{
	*out = sqlt_status_vehicles(sq(db), max);
	tspdb_answer(db, rq, *out != NULL ? TSPDB_OK : TSPDB_ERROR);
}

static void
sqlite_status_handovers(struct tspdb *db, uint64_t now_ms, size_t max,
    json_t **out, struct tspdb_req *rq)
{
	*out = sqlt_status_handovers(sq(db), now_ms, max);
	tspdb_answer(db, rq, *out != NULL ? TSPDB_OK : TSPDB_ERROR);
}

static int
sqlite_session_find(struct tspdb *db, const char *vid,
    const struct tspdb_session **sp)
{
	return tspdb_live_find(sq(db)->db_live, vid, sp);
}

static void
sqlite_session_release(struct tspdb *db, const char *vid)
{
	tspdb_live_release(sq(db)->db_live, vid);
}

static size_t
sqlite_session_live(const struct tspdb *db)
{
	return tspdb_live_count(sq(db)->db_live);
}

static void
sqlite_session_contexts(struct tspdb *db, size_t n)
{
	tspdb_live_contexts(sq(db)->db_live, n);
}

static int
sqlite_session_stored(struct tspdb *db, const char *vid, uint32_t key_index,
    uint64_t seq)
{
	return tspdb_live_stored(sq(db)->db_live, vid, key_index, seq);
}

static uint64_t
sqlite_session_tell(struct tspdb *db, const char *vid)
{
	return tspdb_live_tell(sq(db)->db_live, vid);
}

static int
sqlite_session_next_tx(struct tspdb *db, const char *vid, uint64_t *tx_seq,
    const struct tspdb_session **sp)
{
	return tspdb_live_next_tx(sq(db)->db_live, vid, tx_seq, sp);
}

static void
sqlite_batch_set_flush(struct tspdb *db, void (*flush)(void *), void *arg)
{
	sqlt_batch_set_flush(sq(db), flush, arg);
}

static enum tspdb_result
sqlite_batch_telemetry(struct tspdb *db, const char *vid, uint64_t seq,
    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
    uint64_t now_ms, int *now)
{
	return sqlt_batch_telemetry(sq(db), vid, seq, tx_seq, t, tsp_id,
	    now_ms, now);
}

static int
sqlite_batch_open(struct tspdb *db)
{
	return sqlt_batch_open(sq(db));
}

static uint64_t
sqlite_written(const struct tspdb *db)
{
	return sqlt_written(sq(db));
}

static uint64_t
sqlite_durable(const struct tspdb *db)
{
	return sqlt_durable(sq(db));
}

const struct tspdb_backend tspdb_sqlite = {
	.be_name = "sqlite",
	.be_accepts = sqlite_accepts,
	.be_open = sqlite_open,
	.be_close = sqlite_close,
	.be_fill_apply = sqlite_fill_apply,
	.be_fill_get = sqlite_fill_get,
	.be_keypos = sqlite_keypos,
	.be_m2_apply = sqlite_m2_apply,
	.be_reg_get = sqlite_reg_get,
	.be_auth_commit = sqlite_auth_commit,
	.be_auth_get = sqlite_auth_get,
	.be_auth_expire = sqlite_auth_expire,
	.be_key_select = sqlite_key_select,
	.be_session_open = sqlite_session_open,
	.be_session_get = sqlite_session_get,
	.be_session_load = sqlite_session_load,
	.be_session_telemetry = sqlite_session_telemetry,
	.be_session_end = sqlite_session_end,
	.be_telemetry_count = sqlite_telemetry_count,
	.be_batch_session_open = sqlite_batch_session_open,
	.be_batch_commit = sqlite_batch_commit,
	.be_ho_record = sqlite_ho_record,
	.be_ho_known = sqlite_ho_known,
	.be_session_seq = sqlite_session_seq,
	.be_ho_out_done = sqlite_ho_out_done,
	.be_rd1_load = sqlite_rd1_load,
	.be_ck2_bind = sqlite_ck2_bind,
	.be_ck2_get = sqlite_ck2_get,
	.be_ck2_purge = sqlite_ck2_purge,
	.be_m8_apply = sqlite_m8_apply,
	.be_counts = sqlite_counts,
	.be_status_sessions = sqlite_status_sessions,
	.be_status_vehicles = sqlite_status_vehicles,
	.be_status_handovers = sqlite_status_handovers,
	.be_session_find = sqlite_session_find,
	.be_session_release = sqlite_session_release,
	.be_session_live = sqlite_session_live,
	.be_session_contexts = sqlite_session_contexts,
	.be_session_stored = sqlite_session_stored,
	.be_session_tell = sqlite_session_tell,
	.be_session_next_tx = sqlite_session_next_tx,
	.be_batch_set_flush = sqlite_batch_set_flush,
	.be_batch_telemetry = sqlite_batch_telemetry,
	.be_batch_open = sqlite_batch_open,
	.be_written = sqlite_written,
	.be_durable = sqlite_durable,
};
