/*
 * The TSP store's part of the handover (F6): the handovers audit table,
 * CK2 bindings, the RD1 a TSPA sends and its application at TSPB.  Each
 * protocol step that changes state runs in one transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "store.h"

#include "db_priv.h"

const char tspdb_handover_schema[] =
	"CREATE TABLE handovers(handover_id TEXT PRIMARY KEY, vehicle_id TEXT,"
	"    role TEXT, peer TEXT, state TEXT, reason TEXT, created_ms INT,"
	"    updated_ms INT);"
	"CREATE TABLE ck2_bindings(initiator TEXT, handover_id TEXT, ck2 BLOB,"
	"    expires_ms INT, PRIMARY KEY(initiator, handover_id));"
	"ALTER TABLE sessions ADD COLUMN sequential INT;";

enum tspdb_hstmt {
	H_HO_UPSERT,
	H_HO_SET,
	H_HO_GET,
	H_HO_RECOVER,
	H_AUTH_GET,
	H_AUTH_PUT,
	H_AUTH_DEL,
	H_SESS_MODE,
	H_SESS_RX,
	H_SESS_TX,
	H_TELE_LAST,
	H_TELE_RANGE,
	H_USED_FROM,
	H_USED_INS,
	H_KEYPOS_SET,
	H_CK2_EXPIRE,
	H_CK2_PURGE,
	H_CK2_INS,
	H_CK2_GET,
	H_CK2_DEL,
	H_COUNT
};

_Static_assert(H_COUNT <= TSPDB_MAXSTMT, "too many statements");

static const char *const tspdb_hsql[H_COUNT] = {
	[H_HO_UPSERT] = "INSERT INTO handovers(handover_id, vehicle_id, role,"
	    " peer, state, reason, created_ms, updated_ms)"
	    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
	    " ON CONFLICT(handover_id) DO UPDATE SET"
	    " vehicle_id = coalesce(excluded.vehicle_id, vehicle_id),"
	    " state = excluded.state, reason = excluded.reason,"
	    " updated_ms = excluded.updated_ms",
	[H_HO_SET] = "UPDATE handovers SET state = ?2, reason = ?3,"
	    " updated_ms = ?4, vehicle_id = coalesce(?5, vehicle_id)"
	    " WHERE handover_id = ?1",
	[H_HO_GET] = "SELECT state FROM handovers WHERE handover_id = ?1",
	[H_HO_RECOVER] = "UPDATE handovers SET state = 'failed',"
	    " reason = 'tspd restarted', updated_ms = ?1"
	    " WHERE state NOT IN ('done', 'failed', 'bound')",
	[H_AUTH_GET] = "SELECT chip_id, authed_ms FROM auth"
	    " WHERE vehicle_id = ?1",
	[H_AUTH_PUT] = "INSERT OR REPLACE INTO auth(vehicle_id, chip_id,"
	    " authed_ms, via) VALUES(?1, ?2, ?3, 'handover')",
	[H_AUTH_DEL] = "DELETE FROM auth WHERE vehicle_id = ?1",
	[H_SESS_MODE] = "SELECT sequential FROM sessions WHERE vehicle_id = ?1",
	[H_SESS_RX] = "UPDATE sessions SET rx_seq = ?2"
	    " WHERE vehicle_id = ?1 AND rx_seq < ?2",
	[H_SESS_TX] = "UPDATE sessions SET tx_seq = tx_seq + 1"
	    " WHERE vehicle_id = ?1",
	[H_TELE_LAST] = "SELECT tsp_id, seq, unix_ms, lat, lon, speed,"
	    " heading, fuel, odometer, record_id FROM (SELECT * FROM telemetry"
	    " WHERE vehicle_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id",
	[H_TELE_RANGE] = "SELECT tsp_id, seq, unix_ms FROM telemetry"
	    " WHERE vehicle_id = ?1 AND unix_ms BETWEEN ?2 AND ?3",
	[H_USED_FROM] = "SELECT idx FROM used_keys WHERE chip_id = ?1"
	    " AND idx >= ?2 ORDER BY idx",
	[H_USED_INS] = "INSERT OR IGNORE INTO used_keys(chip_id, idx, how,"
	    " used_ms) VALUES(?1, ?2, 'm3', ?3)",
	[H_KEYPOS_SET] = "INSERT OR REPLACE INTO keypos(chip_id, next_index)"
	    " VALUES(?1, ?2)",
	[H_CK2_EXPIRE] = "UPDATE handovers SET state = 'failed',"
	    " reason = 'ck2 expired', updated_ms = ?1"
	    " WHERE role = 'in' AND state = 'bound' AND handover_id IN"
	    " (SELECT handover_id FROM ck2_bindings WHERE expires_ms < ?1)",
	[H_CK2_PURGE] = "DELETE FROM ck2_bindings WHERE expires_ms < ?1",
	[H_CK2_INS] = "INSERT OR IGNORE INTO ck2_bindings(initiator,"
	    " handover_id, ck2, expires_ms) VALUES(?1, ?2, ?3, ?4)",
	[H_CK2_GET] = "SELECT ck2, expires_ms FROM ck2_bindings"
	    " WHERE initiator = ?1 AND handover_id = ?2",
	[H_CK2_DEL] = "DELETE FROM ck2_bindings WHERE initiator = ?1"
	    " AND handover_id = ?2",
};

/* Statement i with its bindings cleared, ready for binding. */
static sqlite3_stmt *
hstmt(struct sqlt *db, enum tspdb_hstmt i)
{
	store_reset(db->db_hstmt[i]);
	return db->db_hstmt[i];
}

void
tspdb_handover_prepare(struct sqlt *db)
{
	size_t	 i;

	for (i = 0; i < H_COUNT; i++)
		db->db_hstmt[i] = store_prepare(db->db_sql, tspdb_hsql[i]);
}

void
tspdb_handover_finalize(struct sqlt *db)
{
	size_t	 i;

	for (i = 0; i < H_COUNT; i++)
		sqlite3_finalize(db->db_hstmt[i]);
}

/* Bind a text that may be NULL (stored as NULL). */
static void
bind_opt_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s != NULL)
		tspdb_bind_text(st, col, s);
	else
		sqlite3_bind_null(st, col);
}

int
sqlt_ho_record(struct sqlt *db, const char *hid, const char *vid,
    const char *role, const char *peer, const char *state,
    const char *reason, uint64_t now_ms)
{
	sqlite3_stmt	*st;

	tspdb_batch_settle(db);
	st = hstmt(db, H_HO_UPSERT);
	tspdb_bind_text(st, 1, hid);
	bind_opt_text(st, 2, vid);
	tspdb_bind_text(st, 3, role);
	tspdb_bind_text(st, 4, peer);
	tspdb_bind_text(st, 5, state);
	bind_opt_text(st, 6, reason);
	tspdb_bind_u64(st, 7, now_ms);
	return store_step_done(st, NULL);
}

int
sqlt_ho_known(struct sqlt *db, const char *hid)
{
	sqlite3_stmt	*st;
	int		 r;

	const unsigned char	*state;

	st = hstmt(db, H_HO_GET);
	tspdb_bind_text(st, 1, hid);
	if ((r = tspdb_step_row(db, st)) == 1) {
		state = sqlite3_column_text(st, 0);
		if (state != NULL && (strcmp((const char *)state, "done") == 0 ||
		    strcmp((const char *)state, "failed") == 0))
			r = 2;
		else if (state != NULL &&
		    strcmp((const char *)state, "bound") == 0)
			r = 3;
		store_reset(st);
	}
	return r;
}

int
sqlt_ho_recover(struct sqlt *db, uint64_t now_ms)
{
	sqlite3_stmt	*st;
	int		 changes;

	tspdb_batch_settle(db);
	st = hstmt(db, H_HO_RECOVER);
	tspdb_bind_u64(st, 1, now_ms);
	if (store_step_done(st, &changes) == -1 ||
	    sqlt_ck2_purge(db, now_ms) == -1)
		return -1;
	return changes;
}

enum tspdb_result
sqlt_session_seq(struct sqlt *db, const char *vid, uint64_t seq)
{
	struct tspdb_session	 s;
	sqlite3_stmt		*st;
	int			 r, changes;

	if (tspdb_begin(db) == -1)
		return TSPDB_ERROR;
	tspdb_live_forget(db->db_live, vid);
	r = sqlt_session_get(db, vid, &s);
	crypto_wipe(s.s_k1, sizeof(s.s_k1));
	if (r != 1)
		return tspdb_abort_tx(db, r == 0 ? TSPDB_UNKNOWN : TSPDB_ERROR);
	st = hstmt(db, H_SESS_RX);
	tspdb_bind_text(st, 1, vid);
	tspdb_bind_u64(st, 2, seq);
	if (store_step_done(st, &changes) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	if (changes != 1)
		return tspdb_abort_tx(db, TSPDB_REPLAY);
	return tspdb_commit_tx(db, TSPDB_OK);
}

/* Set handover hid's state, reason and vehicle inside any transaction. */
static int
ho_set(struct sqlt *db, const char *hid, const char *state,
    const char *reason, const char *vid, uint64_t now_ms)
{
	sqlite3_stmt	*st;

	st = hstmt(db, H_HO_SET);
	tspdb_bind_text(st, 1, hid);
	tspdb_bind_text(st, 2, state);
	bind_opt_text(st, 3, reason);
	tspdb_bind_u64(st, 4, now_ms);
	bind_opt_text(st, 5, vid);
	return store_step_done(st, NULL);
}

enum tspdb_result
sqlt_ho_out_done(struct sqlt *db, const char *hid, const char *vid,
    uint64_t now_ms, struct tspdb_ready *rr)
{
	struct tspdb_session	 s;
	sqlite3_stmt		*st;
	int			 changes, r;

	memset(rr, 0, sizeof(*rr));
	if (tspdb_begin(db) == -1)
		return TSPDB_ERROR;
	tspdb_live_forget(db->db_live, vid);
	st = hstmt(db, H_AUTH_DEL);
	tspdb_bind_text(st, 1, vid);
	if (store_step_done(st, NULL) == -1 ||
	    ho_set(db, hid, "done", NULL, vid, now_ms) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	st = hstmt(db, H_SESS_TX);
	tspdb_bind_text(st, 1, vid);
	if (store_step_done(st, &changes) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	if (changes == 1) {
		if ((r = sqlt_session_get(db, vid, &s)) != 1) {
			crypto_wipe(&s, sizeof(s));
			return tspdb_abort_tx(db, TSPDB_ERROR);
		}
		rr->rr_session = 1;
		memcpy(rr->rr_k1, s.s_k1, sizeof(rr->rr_k1));
		rr->rr_tx_seq = s.s_tx_seq;
		crypto_wipe(&s, sizeof(s));
	}
	if (tspdb_commit_tx(db, TSPDB_OK) != TSPDB_OK) {
		crypto_wipe(rr, sizeof(*rr));
		return TSPDB_ERROR;
	}
	return TSPDB_OK;
}

/* ---- RD1 at TSPA ---- */

/* Read the vehicle's last telemetry rows into rd (most recent last). */
static int
rd1_history(struct sqlt *db, struct tspdb_rd1 *rd)
{
	Qroam__Telemetry	*t;
	sqlite3_stmt		*st;
	size_t			 n = 0;
	int			 r;

	st = hstmt(db, H_TELE_LAST);
	tspdb_bind_text(st, 1, rd->rd_vid);
	tspdb_bind_u64(st, 2, TSPDB_RD1_HISTORY);
	while (n < TSPDB_RD1_HISTORY && (r = tspdb_step_row(db, st)) == 1) {
		t = &rd->rd_hist[n];
		qroam__telemetry__init(t);
		if (tspdb_column_text(st, 0, rd->rd_origin[n].o_tsp,
		    NAME_MAXLEN) == -1) {
			store_reset(st);
			return -1;
		}
		rd->rd_origin[n].o_seq = (uint64_t)sqlite3_column_int64(st, 1);
		t->unix_ms = (uint64_t)sqlite3_column_int64(st, 2);
		t->lat = sqlite3_column_double(st, 3);
		t->lon = sqlite3_column_double(st, 4);
		t->speed = sqlite3_column_double(st, 5);
		t->heading = sqlite3_column_double(st, 6);
		if ((t->has_fuel = sqlite3_column_type(st, 7) != SQLITE_NULL))
			t->fuel = sqlite3_column_double(st, 7);
		if ((t->has_odometer = sqlite3_column_type(st, 8) !=
		    SQLITE_NULL))
			t->odometer = sqlite3_column_double(st, 8);
		if ((t->has_record_id = sqlite3_column_type(st, 9) !=
		    SQLITE_NULL))
			t->record_id = (uint64_t)sqlite3_column_int64(st, 9);
		rd->rd_histp[n++] = t;
	}
	store_reset(st);
	rd->rd_msg.n_history = n;
	rd->rd_msg.history = rd->rd_histp;
	return r == -1 ? -1 : 0;
}

/* Read the used keys at or after the key position into rd (at most m). */
static int
rd1_used(struct sqlt *db, struct tspdb_rd1 *rd, uint32_t m)
{
	sqlite3_stmt	*st;
	size_t		 n = 0;
	int64_t		 idx;
	int		 r;

	st = hstmt(db, H_USED_FROM);
	tspdb_bind_text(st, 1, rd->rd_chip_id);
	tspdb_bind_u64(st, 2, rd->rd_msg.next_index);
	while ((r = tspdb_step_row(db, st)) == 1) {
		idx = sqlite3_column_int64(st, 0);
		if (idx < 0 || idx >= m || n == m) {
			store_reset(st);
			log_warnx("store: used key %lld of chip %s out of "
			    "range", (long long)idx, rd->rd_chip_id);
			return -1;
		}
		rd->rd_used[n++] = (uint32_t)idx;
	}
	rd->rd_msg.n_used = n;
	rd->rd_msg.used = rd->rd_used;
	return r;
}

/* The authentication, draw mode and key position of rd's vehicle. */
static int
rd1_state(struct sqlt *db, struct tspdb_rd1 *rd, struct tspdb_fill *f)
{
	sqlite3_stmt	*st;
	int64_t		 pos;
	int		 r;

	st = hstmt(db, H_AUTH_GET);
	tspdb_bind_text(st, 1, rd->rd_vid);
	if ((r = tspdb_step_row(db, st)) != 1)
		return r;
	r = tspdb_column_text(st, 0, rd->rd_chip_id, CHIP_ID_LEN);
	rd->rd_msg.authed_ms = (uint64_t)sqlite3_column_int64(st, 1);
	store_reset(st);
	if (r == -1 || sqlt_fill_get(db, rd->rd_chip_id, f) != 1 ||
	    (pos = sqlt_keypos(db, rd->rd_chip_id)) == -1 || pos > f->f_m)
		return -1;
	rd->rd_msg.next_index = (uint32_t)pos;
	rd->rd_msg.sequential = 1;
	st = hstmt(db, H_SESS_MODE);
	tspdb_bind_text(st, 1, rd->rd_vid);
	if ((r = tspdb_step_row(db, st)) == -1)
		return -1;
	if (r == 1 && sqlite3_column_type(st, 0) != SQLITE_NULL)
		rd->rd_msg.sequential = sqlite3_column_int64(st, 0) != 0;
	store_reset(st);
	return 1;
}

int
sqlt_rd1_load(struct sqlt *db, const char *vid, struct tspdb_rd1 *rd)
{
	struct tspdb_fill	 f;
	int			 r;

	memset(rd, 0, sizeof(*rd));
	qroam__rd1__init(&rd->rd_msg);
	tspdb_batch_settle(db);
	if (strlen(vid) > VIN_LEN)
		return -1;
	memcpy(rd->rd_vid, vid, strlen(vid) + 1);
	if ((r = rd1_state(db, rd, &f)) != 1)
		return r;
	rd->rd_msg.vehicle_id = rd->rd_vid;
	rd->rd_msg.chip_id = rd->rd_chip_id;
	rd->rd_hist = calloc(TSPDB_RD1_HISTORY, sizeof(*rd->rd_hist));
	rd->rd_histp = calloc(TSPDB_RD1_HISTORY, sizeof(*rd->rd_histp));
	rd->rd_origin = calloc(TSPDB_RD1_HISTORY, sizeof(*rd->rd_origin));
	rd->rd_used = calloc(f.f_m ? f.f_m : 1, sizeof(*rd->rd_used));
	if (rd->rd_hist == NULL || rd->rd_histp == NULL ||
	    rd->rd_origin == NULL || rd->rd_used == NULL ||
	    rd1_history(db, rd) == -1 || rd1_used(db, rd, f.f_m) == -1) {
		tspdb_rd1_free(rd);
		return -1;
	}
	return 1;
}

void
tspdb_rd1_free(struct tspdb_rd1 *rd)
{
	free(rd->rd_hist);
	free(rd->rd_histp);
	free(rd->rd_origin);
	free(rd->rd_used);
	memset(rd, 0, sizeof(*rd));
}

/* ---- CK2 bindings at TSPB ---- */

/* Fail the rows of expired bindings and delete those, in the open tx. */
static int
ck2_expire(struct sqlt *db, uint64_t now_ms)
{
	sqlite3_stmt	*st;

	st = hstmt(db, H_CK2_EXPIRE);
	tspdb_bind_u64(st, 1, now_ms);
	if (store_step_done(st, NULL) == -1)
		return -1;
	st = hstmt(db, H_CK2_PURGE);
	tspdb_bind_u64(st, 1, now_ms);
	return store_step_done(st, NULL);
}

int
sqlt_ck2_purge(struct sqlt *db, uint64_t now_ms)
{
	if (tspdb_begin(db) == -1)
		return -1;
	if (ck2_expire(db, now_ms) == -1) {
		tspdb_abort_tx(db, TSPDB_ERROR);
		return -1;
	}
	return tspdb_commit_tx(db, TSPDB_OK) == TSPDB_OK ? 0 : -1;
}

enum tspdb_result
sqlt_ck2_bind(struct sqlt *db, const char *initiator, const char *hid,
    const uint8_t ck2[CRYPTO_KEYLEN], uint64_t expires_ms, uint64_t now_ms)
{
	sqlite3_stmt	*st;
	int		 changes;

	if (tspdb_begin(db) == -1)
		return TSPDB_ERROR;
	if (ck2_expire(db, now_ms) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	st = hstmt(db, H_CK2_INS);
	tspdb_bind_text(st, 1, initiator);
	tspdb_bind_text(st, 2, hid);
	tspdb_bind_blob(st, 3, ck2, CRYPTO_KEYLEN);
	tspdb_bind_u64(st, 4, expires_ms);
	if (store_step_done(st, &changes) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	if (changes == 0)
		return tspdb_abort_tx(db, TSPDB_REPLAY);
	if (sqlt_ho_record(db, hid, NULL, "in", initiator, "bound", NULL,
	    now_ms) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	return tspdb_commit_tx(db, TSPDB_OK);
}

int
sqlt_ck2_get(struct sqlt *db, const char *initiator, const char *hid,
    uint8_t ck2[CRYPTO_KEYLEN], uint64_t *expires_ms)
{
	sqlite3_stmt	*st;
	int		 r;

	st = hstmt(db, H_CK2_GET);
	tspdb_bind_text(st, 1, initiator);
	tspdb_bind_text(st, 2, hid);
	if ((r = tspdb_step_row(db, st)) != 1)
		return r;
	r = tspdb_column_key(st, 0, ck2) == -1 ? -1 : 1;
	*expires_ms = (uint64_t)sqlite3_column_int64(st, 1);
	store_reset(st);
	return r;
}

/* ---- M8 at TSPB ---- */

/*
 * Move the chip's key position to max(own, rd1->next_index), burning the
 * unused keys below it, mark RD1's used keys and skip a run of used keys
 * at the new position; inside the open transaction.
 */
static int
m8_keys(struct sqlt *db, const Qroam__RD1 *rd1, uint64_t now_ms)
{
	sqlite3_stmt	*st;
	int64_t		 pos, i;
	size_t		 u;
	int		 r;

	if ((pos = sqlt_keypos(db, rd1->chip_id)) == -1)
		return -1;
	for (i = pos; i < (int64_t)rd1->next_index; i++) {
		if ((r = tspdb_key_used(db, rd1->chip_id, i)) == -1)
			return -1;
		if (r == 0 && tspdb_key_mark(db, rd1->chip_id, i, "burned",
		    now_ms) == -1)
			return -1;
	}
	if (pos < (int64_t)rd1->next_index)
		pos = rd1->next_index;
	for (u = 0; u < rd1->n_used; u++) {
		st = hstmt(db, H_USED_INS);
		tspdb_bind_text(st, 1, rd1->chip_id);
		tspdb_bind_u64(st, 2, rd1->used[u]);
		tspdb_bind_u64(st, 3, now_ms);
		if (store_step_done(st, NULL) == -1)
			return -1;
	}
	while ((r = tspdb_key_used(db, rd1->chip_id, pos)) == 1)
		pos++;
	if (r == -1)
		return -1;
	st = hstmt(db, H_KEYPOS_SET);
	tspdb_bind_text(st, 1, rd1->chip_id);
	tspdb_bind_u64(st, 2, (uint64_t)pos);
	return store_step_done(st, NULL);
}

/*
 * Mark in dup[] the history rows already stored here under the same
 * (tsp_id, seq, unix_ms), by one pass over the rows in RD1's time span.
 */
static int
m8_duplicates(struct sqlt *db, const Qroam__RD1 *rd1,
    const struct tspdb_origin *origin, char *dup)
{
	sqlite3_stmt	*st;
	uint64_t	 lo = UINT64_MAX, hi = 0, seq, ms;
	const char	*tsp;
	size_t		 i;
	int		 r;

	for (i = 0; i < rd1->n_history; i++) {
		ms = rd1->history[i]->unix_ms;
		lo = ms < lo ? ms : lo;
		hi = ms > hi ? ms : hi;
	}
	if (rd1->n_history == 0)
		return 0;
	st = hstmt(db, H_TELE_RANGE);
	tspdb_bind_text(st, 1, rd1->vehicle_id);
	tspdb_bind_u64(st, 2, lo);
	tspdb_bind_u64(st, 3, hi);
	while ((r = tspdb_step_row(db, st)) == 1) {
		tsp = (const char *)sqlite3_column_text(st, 0);
		seq = (uint64_t)sqlite3_column_int64(st, 1);
		ms = (uint64_t)sqlite3_column_int64(st, 2);
		for (i = 0; tsp != NULL && i < rd1->n_history; i++)
			if (!dup[i] && rd1->history[i]->unix_ms == ms &&
			    origin[i].o_seq == seq &&
			    strcmp(origin[i].o_tsp, tsp) == 0)
				dup[i] = 1;
	}
	return r;
}

/* Store RD1's history rows not present yet, inside the open transaction. */
static int
m8_history(struct sqlt *db, const Qroam__RD1 *rd1,
    const struct tspdb_origin *origin, uint64_t now_ms)
{
	char	 dup[TSPDB_RD1_HISTORY];
	size_t	 i;

	if (rd1->n_history > TSPDB_RD1_HISTORY)
		return -1;
	memset(dup, 0, sizeof(dup));
	if (m8_duplicates(db, rd1, origin, dup) == -1)
		return -1;
	for (i = 0; i < rd1->n_history; i++)
		if (!dup[i] && tspdb_telemetry_insert(db, rd1->vehicle_id,
		    origin[i].o_tsp, origin[i].o_seq, rd1->history[i],
		    now_ms) == -1)
			return -1;
	return 0;
}

enum tspdb_result
sqlt_m8_apply(struct sqlt *db, const char *initiator, const char *hid,
    const Qroam__RD1 *rd1, const struct tspdb_origin *origin, uint64_t now_ms)
{
	sqlite3_stmt	*st;
	int		 changes;

	if (tspdb_begin(db) == -1)
		return TSPDB_ERROR;
	st = hstmt(db, H_CK2_DEL);
	tspdb_bind_text(st, 1, initiator);
	tspdb_bind_text(st, 2, hid);
	if (store_step_done(st, &changes) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	if (changes != 1)
		return tspdb_abort_tx(db, TSPDB_UNKNOWN);
	st = hstmt(db, H_AUTH_PUT);
	tspdb_bind_text(st, 1, rd1->vehicle_id);
	tspdb_bind_text(st, 2, rd1->chip_id);
	tspdb_bind_u64(st, 3, rd1->authed_ms);
	if (store_step_done(st, NULL) == -1 ||
	    m8_keys(db, rd1, now_ms) == -1 ||
	    m8_history(db, rd1, origin, now_ms) == -1 ||
	    sqlt_ho_record(db, hid, rd1->vehicle_id, "in", initiator, "done",
	    NULL, now_ms) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	return tspdb_commit_tx(db, TSPDB_OK);
}
