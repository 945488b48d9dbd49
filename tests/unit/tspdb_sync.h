/*
 * The TSP store's requests made synchronously, for the store's tests:
 * each S_ function makes the request and runs the store's loop (if it has
 * one) until the answer came, and returns what the step found in the
 * store's older synchronous form: 1/0/-1 for a lookup, 0/-1 for a change
 * without a result of its own, the value or -1 for a count, the JSON or
 * NULL.
 */
#ifndef TSPDB_SYNC_H
#define TSPDB_SYNC_H

#include <event2/event.h>
#include <cmocka.h>

#include "../../tspd/db_backend.h"

static inline void
sync_done(struct tspdb_req *rq)
{
	*(int *)rq->rq_arg = 1;
}

static int sync_flag;

static inline void
sync_begin(struct tspdb_req *rq)
{
	sync_flag = 0;
	tspdb_req_init(rq, sync_done, &sync_flag);
}

static inline void
sync_wait(struct tspdb *db, struct tspdb_req *rq)
{
	(void)rq;
	while (!sync_flag && tspdb_base(db) != NULL)
		event_base_loop(tspdb_base(db), EVLOOP_ONCE);
	assert_true(sync_flag);
}

/* Open the store at path without a loop; handovers unfinished fail. */
static inline struct tspdb *
S_open(const char *path)
{
	int	 n;

	return tspdb_open(path, NULL, NULL, NULL, "test", store_now_ms(), &n);
}

static inline enum tspdb_result
S_fill_apply(struct tspdb *db, const Qroam__FillRecord *fr)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_fill_apply(db, fr, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline int
S_fill_get(struct tspdb *db, const char *chip_id, struct tspdb_fill *f)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_fill_get(db, chip_id, f, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? 1 :
	    rq.rq_result == TSPDB_UNKNOWN ? 0 : -1;
}

static inline int64_t
S_keypos(struct tspdb *db, const char *chip_id)
{
	struct tspdb_req	 rq;
	int64_t		 v = -1;

	sync_begin(&rq);
	tspdb_keypos(db, chip_id, &v, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? v : -1;
}

static inline enum tspdb_result
S_m2_apply(struct tspdb *db, const char *vid, const char *chip_id,
    const uint8_t *prv, size_t prvlen, uint64_t epoch, uint64_t *old_epoch)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_m2_apply(db, vid, chip_id, prv, prvlen, epoch, old_epoch, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline int
S_reg_get(struct tspdb *db, const char *vid, struct tspdb_reg *r)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_reg_get(db, vid, r, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? 1 :
	    rq.rq_result == TSPDB_UNKNOWN ? 0 : -1;
}

static inline enum tspdb_result
S_auth_commit(struct tspdb *db, const char *vid, const char *chip_id,
    const uint8_t *nonce, size_t noncelen, uint64_t now_ms, uint64_t expires_ms,
    const char *via)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_auth_commit(db, vid, chip_id, nonce, noncelen, now_ms,
	    expires_ms, via, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline int
S_auth_get_since(struct tspdb *db, const char *vid, uint64_t since_ms,
    char chip_id[CHIP_ID_LEN + 1])
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_auth_get(db, vid, since_ms, chip_id, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? 1 :
	    rq.rq_result == TSPDB_UNKNOWN ? 0 : -1;
}

static inline int
S_auth_get(struct tspdb *db, const char *vid, char chip_id[CHIP_ID_LEN + 1])
{
	return S_auth_get_since(db, vid, 0, chip_id);
}

static inline int64_t
S_auth_expire(struct tspdb *db, uint64_t since_ms)
{
	struct tspdb_req	 rq;
	uint64_t		 n = 0;

	sync_begin(&rq);
	tspdb_auth_expire(db, since_ms, &n, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? (int64_t)n : -1;
}

static inline enum tspdb_result
S_key_select(struct tspdb *db, const char *chip_id, uint32_t index,
    const char *code, struct tspdb_key *key)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_key_select(db, chip_id, index, code, key, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline enum tspdb_result
S_session_open(struct tspdb *db, const struct tspdb_session *s, int sequential,
    const Qroam__Telemetry *d1, const char *tsp_id, uint64_t now_ms)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_session_open(db, s, sequential, d1, tsp_id, now_ms, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline int
S_session_get(struct tspdb *db, const char *vid, struct tspdb_session *s)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_session_get(db, vid, s, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? 1 :
	    rq.rq_result == TSPDB_UNKNOWN ? 0 : -1;
}

static inline int
S_session_load(struct tspdb *db, const char *vid)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_session_load(db, vid, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? 1 :
	    rq.rq_result == TSPDB_UNKNOWN ? 0 : -1;
}

static inline enum tspdb_result
S_session_telemetry(struct tspdb *db, const char *vid, uint64_t seq,
    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
    uint64_t now_ms)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_session_telemetry(db, vid, seq, tx_seq, t, tsp_id, now_ms, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline enum tspdb_result
S_session_end(struct tspdb *db, const char *vid, int power_off)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_session_end(db, vid, power_off, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline int64_t
S_telemetry_count(struct tspdb *db, const char *vid)
{
	struct tspdb_req	 rq;
	int64_t		 v = -1;

	sync_begin(&rq);
	tspdb_telemetry_count(db, vid, &v, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? v : -1;
}

static inline int
S_ho_record(struct tspdb *db, const char *hid, const char *vid,
    const char *role, const char *peer, const char *state, const char *reason,
    uint64_t now_ms)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_ho_record(db, hid, vid, role, peer, state, reason, now_ms, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? 0 : -1;
}

/* The state of a handover's row, as tspdb_ho_known answers it. */
static inline enum tspdb_result
S_ho_known(struct tspdb *db, const char *hid)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_ho_known(db, hid, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline enum tspdb_result
S_session_seq(struct tspdb *db, const char *vid, uint64_t seq)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_session_seq(db, vid, seq, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline enum tspdb_result
S_ho_out_done(struct tspdb *db, const char *hid, const char *vid,
    uint64_t now_ms, struct tspdb_ready *r)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_ho_out_done(db, hid, vid, now_ms, r, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline int
S_rd1_load(struct tspdb *db, const char *vid, struct tspdb_rd1 *rd)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_rd1_load(db, vid, rd, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? 1 :
	    rq.rq_result == TSPDB_UNKNOWN ? 0 : -1;
}

static inline enum tspdb_result
S_ck2_bind(struct tspdb *db, const char *initiator, const char *hid,
    const uint8_t ck2[CRYPTO_KEYLEN], uint64_t expires_ms, uint64_t now_ms)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_ck2_bind(db, initiator, hid, ck2, expires_ms, now_ms, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline int
S_ck2_get(struct tspdb *db, const char *initiator, const char *hid,
    uint8_t ck2[CRYPTO_KEYLEN], uint64_t *expires_ms)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_ck2_get(db, initiator, hid, ck2, expires_ms, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? 1 :
	    rq.rq_result == TSPDB_UNKNOWN ? 0 : -1;
}

static inline int
S_ck2_purge(struct tspdb *db, uint64_t now_ms)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_ck2_purge(db, now_ms, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? 0 : -1;
}

static inline enum tspdb_result
S_m8_apply(struct tspdb *db, const char *initiator, const char *hid,
    const Qroam__RD1 *rd1, const struct tspdb_origin *origin, uint64_t now_ms)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_m8_apply(db, initiator, hid, rd1, origin, now_ms, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

static inline int
S_counts(struct tspdb *db, uint64_t now_ms, struct tspdb_counts *c)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_counts(db, now_ms, c, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? 0 : -1;
}

static inline json_t *
S_status_sessions(struct tspdb *db, size_t max)
{
	struct tspdb_req	 rq;
	json_t		*v = NULL;

	sync_begin(&rq);
	tspdb_status_sessions(db, max, &v, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? v : NULL;
}

static inline json_t *
S_status_vehicles(struct tspdb *db, size_t max)
{
	struct tspdb_req	 rq;
	json_t		*v = NULL;

	sync_begin(&rq);
	tspdb_status_vehicles(db, max, &v, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? v : NULL;
}

static inline json_t *
S_status_handovers(struct tspdb *db, uint64_t now_ms, size_t max)
{
	struct tspdb_req	 rq;
	json_t		*v = NULL;

	sync_begin(&rq);
	tspdb_status_handovers(db, now_ms, max, &v, &rq);
	sync_wait(db, &rq);
	return rq.rq_result == TSPDB_OK ? v : NULL;
}

/* The session in memory, read from the store first if it is not. */
static inline int
S_session_find(struct tspdb *db, const char *vid,
    const struct tspdb_session **sp)
{
	int	 r;

	if ((r = tspdb_session_find(db, vid, sp)) != 0)
		return r;
	if ((r = S_session_load(db, vid)) != 1)
		return r;
	return tspdb_session_find(db, vid, sp);
}

/* Commit the open batch. */
static inline enum tspdb_result
S_batch_commit(struct tspdb *db)
{
	struct tspdb_req	 rq;

	sync_begin(&rq);
	tspdb_batch_commit(db, &rq);
	sync_wait(db, &rq);
	return rq.rq_result;
}

#endif
