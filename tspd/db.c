/*
 * The TSP store on SQLite: schema, prepared statements and one function per
 * protocol step.  Every state change runs in one transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "crypto.h"
#include "log.h"
#include "store.h"

#include "db_backend.h"

#include "db_priv.h"

/* Schema versions, applied in order by store_open(). */
static const char *const tspdb_migrations[] = {
	"CREATE TABLE fills(chip_id TEXT PRIMARY KEY, m INT, k INT, n INT,"
	"    created_ms INT);"
	"CREATE TABLE fill_keys(chip_id TEXT, idx INT, code TEXT, key BLOB,"
	"    PRIMARY KEY(chip_id, idx), UNIQUE(chip_id, code));"
	"CREATE TABLE registrations(vehicle_id TEXT PRIMARY KEY, chip_id TEXT,"
	"    prv BLOB, epoch INT);"
	"CREATE TABLE keypos(chip_id TEXT PRIMARY KEY, next_index INT);"
	"CREATE TABLE used_keys(chip_id TEXT, idx INT, how TEXT, used_ms INT,"
	"    PRIMARY KEY(chip_id, idx));"
	"CREATE TABLE auth(vehicle_id TEXT PRIMARY KEY, chip_id TEXT,"
	"    authed_ms INT, via TEXT);"
	"CREATE TABLE auth_nonces(nonce BLOB PRIMARY KEY, vehicle_id TEXT,"
	"    expires_ms INT);"
	"CREATE INDEX auth_nonces_expiry ON auth_nonces(expires_ms);"
	"CREATE TABLE sessions(vehicle_id TEXT PRIMARY KEY, chip_id TEXT,"
	"    k1 BLOB, key_index INT, rx_seq INT, tx_seq INT, opened_ms INT);"
	"CREATE TABLE telemetry(id INTEGER PRIMARY KEY, vehicle_id TEXT,"
	"    tsp_id TEXT, seq INT, unix_ms INT, lat REAL, lon REAL, speed REAL,"
	"    heading REAL, fuel REAL, odometer REAL, received_ms INT);"
	"CREATE INDEX telemetry_vehicle ON telemetry(vehicle_id, id);",
	tspdb_handover_schema,
	/* The admin endpoint's counts of handovers in flight, per scrape. */
	"CREATE INDEX handovers_in_flight ON handovers(handover_id)"
	"    WHERE state NOT IN ('done', 'failed');"
	"CREATE INDEX ck2_bindings_expiry ON ck2_bindings(expires_ms);",
	/*
	 * F5 service first: a vehicle sends a record again until a
	 * stored_seq covers it, and its record id makes the row once.
	 */
	"ALTER TABLE telemetry ADD COLUMN record_id INT;"
	"CREATE UNIQUE INDEX telemetry_record ON telemetry(vehicle_id,"
	"    record_id) WHERE record_id IS NOT NULL;",
};

enum tspdb_stmt {
	S_FILL_GET,
	S_FILL_INS,
	S_FKEY_INS,
	S_FKEY_ALL,
	S_FKEY_IDX,
	S_FKEY_CODE,
	S_KEYPOS_INIT,
	S_KEYPOS_GET,
	S_KEYPOS_SET,
	S_USED_GET,
	S_USED_INS,
	S_REG_GET,
	S_REG_PUT,
	S_AUTH_GET,
	S_AUTH_PUT,
	S_AUTH_DEL,
	S_NONCE_PURGE,
	S_NONCE_INS,
	S_SESS_GET,
	S_SESS_PUT,
	S_SESS_SEQ,
	S_SESS_DEL,
	S_TELE_INS,
	S_TELE_COUNT,
	S_COUNT
};

static const char *const tspdb_sql[S_COUNT] = {
	[S_FILL_GET] = "SELECT m, k, n, created_ms FROM fills WHERE chip_id = ?1",
	[S_FILL_INS] = "INSERT INTO fills(chip_id, m, k, n, created_ms)"
	    " VALUES(?1, ?2, ?3, ?4, ?5)",
	[S_FKEY_INS] = "INSERT INTO fill_keys(chip_id, idx, code, key)"
	    " VALUES(?1, ?2, ?3, ?4)",
	[S_FKEY_ALL] = "SELECT idx, code, key FROM fill_keys WHERE chip_id = ?1"
	    " ORDER BY idx",
	[S_FKEY_IDX] = "SELECT key FROM fill_keys WHERE chip_id = ?1"
	    " AND idx = ?2",
	[S_FKEY_CODE] = "SELECT idx, key FROM fill_keys WHERE chip_id = ?1"
	    " AND code = ?2",
	[S_KEYPOS_INIT] = "INSERT OR IGNORE INTO keypos(chip_id, next_index)"
	    " VALUES(?1, 0)",
	[S_KEYPOS_GET] = "SELECT next_index FROM keypos WHERE chip_id = ?1",
	[S_KEYPOS_SET] = "INSERT OR REPLACE INTO keypos(chip_id, next_index)"
	    " VALUES(?1, ?2)",
	[S_USED_GET] = "SELECT how FROM used_keys WHERE chip_id = ?1"
	    " AND idx = ?2",
	[S_USED_INS] = "INSERT INTO used_keys(chip_id, idx, how, used_ms)"
	    " VALUES(?1, ?2, ?3, ?4)",
	[S_REG_GET] = "SELECT chip_id, prv, epoch FROM registrations"
	    " WHERE vehicle_id = ?1",
	[S_REG_PUT] = "INSERT OR REPLACE INTO registrations(vehicle_id,"
	    " chip_id, prv, epoch) VALUES(?1, ?2, ?3, ?4)",
	[S_AUTH_GET] = "SELECT chip_id FROM auth WHERE vehicle_id = ?1 AND "
	    TSPDB_AUTH_LIVE("?2"),
	[S_AUTH_PUT] = "INSERT OR REPLACE INTO auth(vehicle_id, chip_id,"
	    " authed_ms, via) VALUES(?1, ?2, ?3, ?4)",
	[S_AUTH_DEL] = "DELETE FROM auth WHERE vehicle_id = ?1",
	[S_NONCE_PURGE] = "DELETE FROM auth_nonces WHERE expires_ms < ?1",
	[S_NONCE_INS] = "INSERT OR IGNORE INTO auth_nonces(nonce, vehicle_id,"
	    " expires_ms) VALUES(?1, ?2, ?3)",
	[S_SESS_GET] = "SELECT chip_id, k1, key_index, rx_seq, tx_seq,"
	    " opened_ms, EXISTS(SELECT 1 FROM auth"
	    " WHERE auth.vehicle_id = ?1) FROM sessions WHERE vehicle_id = ?1",
	[S_SESS_PUT] = "INSERT OR REPLACE INTO sessions(vehicle_id, chip_id,"
	    " k1, key_index, rx_seq, tx_seq, opened_ms, sequential)"
	    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[S_SESS_SEQ] = "UPDATE sessions SET rx_seq = ?2, tx_seq = ?3"
	    " WHERE vehicle_id = ?1",
	[S_SESS_DEL] = "DELETE FROM sessions WHERE vehicle_id = ?1",
	[S_TELE_INS] = "INSERT INTO telemetry(vehicle_id, tsp_id, seq,"
	    " unix_ms, lat, lon, speed, heading, fuel, odometer, received_ms,"
	    " record_id)"
	    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
	    " ON CONFLICT(vehicle_id, record_id) WHERE record_id IS NOT NULL"
	    " DO NOTHING",
	[S_TELE_COUNT] = "SELECT count(*) FROM telemetry WHERE vehicle_id = ?1",
};

_Static_assert(S_COUNT <= TSPDB_MAXSTMT, "too many statements");

/* Statement i with its bindings cleared, ready for binding. */
static sqlite3_stmt *
stmt(struct sqlt *db, enum tspdb_stmt i)
{
	store_reset(db->db_stmt[i]);
	return db->db_stmt[i];
}

int
tspdb_step_row(struct sqlt *db, sqlite3_stmt *st)
{
	int	 rc;

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	store_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	log_warnx("store: %s", sqlite3_errmsg(db->db_sql));
	return -1;
}

int
tspdb_column_text(sqlite3_stmt *st, int col, char *out, size_t len)
{
	const unsigned char	*s;
	int			 n;

	s = sqlite3_column_text(st, col);
	n = sqlite3_column_bytes(st, col);
	if (s == NULL || n < 0 || (size_t)n > len)
		return -1;
	memcpy(out, s, (size_t)n);
	out[n] = '\0';
	return 0;
}

static uint64_t
live_written(void *arg)
{
	return sqlt_written(arg);
}

static uint64_t
live_durable(void *arg)
{
	return sqlt_durable(arg);
}

static void
live_settle(void *arg)
{
	tspdb_batch_settle(arg);
}

/* What the sessions in memory ask of this store. */
static const struct tspdb_live_io sqlt_live_io = {
	.li_written = live_written,
	.li_durable = live_durable,
	.li_settle = live_settle,
};

int
tspdb_live_load(struct sqlt *db, const char *vid, struct tspdb_live **slp)
{
	struct tspdb_session	 s;
	int			 r;

	if ((*slp = tspdb_live_get(db->db_live, vid)) != NULL)
		return 1;
	if ((r = tspdb_session_select(db, vid, &s)) != 1)
		return r;
	*slp = tspdb_live_enter(db->db_live, &s);
	crypto_wipe(&s, sizeof(s));
	return *slp != NULL ? 1 : -1;
}

int
sqlt_session_load(struct sqlt *db, const char *vid)
{
	struct tspdb_live	*sl;

	return tspdb_live_load(db, vid, &sl);
}

struct sqlt *
sqlt_open(const char *path, struct event_base *base,
    void (*durable)(uint64_t, void *), void *arg)
{
	struct sqlt	*db;
	size_t		 i;

	if ((db = calloc(1, sizeof(*db))) == NULL) {
		log_warn("store");
		return NULL;
	}
	db->db_sql = store_open(path, tspdb_migrations,
	    sizeof(tspdb_migrations) / sizeof(tspdb_migrations[0]),
	    base != NULL ? STORE_COMMITTER : STORE_SYNC_NORMAL);
	if (db->db_sql == NULL) {
		free(db);
		return NULL;
	}
	if (base != NULL && (db->db_commit = committer_start(base, db->db_sql,
	    path, durable, arg)) == NULL) {
		store_close(db->db_sql);
		free(db);
		return NULL;
	}
	for (i = 0; i < S_COUNT; i++)
		db->db_stmt[i] = store_prepare(db->db_sql, tspdb_sql[i]);
	tspdb_handover_prepare(db);
	tspdb_status_prepare(db);
	db->db_live = tspdb_live_new(&sqlt_live_io, db);
	return db;
}

void
sqlt_close(struct sqlt *db)
{
	size_t	 i;

	if (db == NULL)
		return;
	if (db->db_batch && sqlt_batch_commit(db) != TSPDB_OK)
		log_warnx("store: the last telemetry batch was rolled back");
	committer_stop(db->db_commit);
	tspdb_batch_free(db);
	tspdb_live_free(db->db_live);
	for (i = 0; i < S_COUNT; i++)
		sqlite3_finalize(db->db_stmt[i]);
	tspdb_handover_finalize(db);
	tspdb_status_finalize(db);
	store_close(db->db_sql);
	free(db);
}

uint64_t
sqlt_written(const struct sqlt *db)
{
	return db->db_commit != NULL ? committer_written(db->db_commit) : 0;
}

uint64_t
sqlt_durable(const struct sqlt *db)
{
	return db->db_commit != NULL ? committer_durable(db->db_commit) : 0;
}

enum tspdb_result
tspdb_abort_tx(struct sqlt *db, enum tspdb_result res)
{
	store_rollback(db->db_sql);
	return res;
}

enum tspdb_result
tspdb_commit_tx(struct sqlt *db, enum tspdb_result res)
{
	if (store_commit(db->db_sql) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	return res;
}

/* ---- F1 ---- */

/* Compare fr with the stored record of its chip: TSPDB_SAME or CONFLICT. */
static enum tspdb_result
fill_compare(struct sqlt *db, const Qroam__FillRecord *fr,
    const struct tspdb_fill *f)
{
	sqlite3_stmt	*st;
	size_t		 i = 0;
	int		 r = 0, same;
	const char	*code;
	const void	*key;

	same = f->f_m == fr->m && f->f_k == fr->k && f->f_n == fr->n;
	st = stmt(db, S_FKEY_ALL);
	tspdb_bind_text(st, 1, fr->chip_id);
	while (same && (r = tspdb_step_row(db, st)) == 1) {
		code = (const char *)sqlite3_column_text(st, 1);
		key = sqlite3_column_blob(st, 2);
		if (i >= fr->n_keys ||
		    sqlite3_column_int64(st, 0) != (sqlite3_int64)i ||
		    code == NULL || strcmp(code, fr->keys[i]->code) != 0 ||
		    key == NULL || sqlite3_column_bytes(st, 2) !=
		    (int)fr->keys[i]->key.len ||
		    memcmp(key, fr->keys[i]->key.data, fr->keys[i]->key.len) != 0)
			same = 0;
		i++;
	}
	store_reset(st);
	if (r == -1)
		return TSPDB_ERROR;
	return same && i == fr->n_keys ? TSPDB_SAME : TSPDB_CONFLICT;
}

enum tspdb_result
sqlt_fill_apply(struct sqlt *db, const Qroam__FillRecord *fr)
{
	struct tspdb_fill	 f;
	sqlite3_stmt		*st;
	size_t			 i;
	int			 r;

	if (tspdb_begin(db) == -1)
		return TSPDB_ERROR;
	if ((r = sqlt_fill_get(db, fr->chip_id, &f)) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	if (r == 1)
		return tspdb_abort_tx(db, fill_compare(db, fr, &f));

	st = stmt(db, S_FILL_INS);
	tspdb_bind_text(st, 1, fr->chip_id);
	tspdb_bind_u64(st, 2, fr->m);
	tspdb_bind_u64(st, 3, fr->k);
	tspdb_bind_u64(st, 4, fr->n);
	tspdb_bind_u64(st, 5, fr->created_ms);
	if (store_step_done(st, NULL) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	for (i = 0; i < fr->n_keys; i++) {
		st = stmt(db, S_FKEY_INS);
		tspdb_bind_text(st, 1, fr->chip_id);
		tspdb_bind_u64(st, 2, i);
		tspdb_bind_text(st, 3, fr->keys[i]->code);
		tspdb_bind_blob(st, 4, fr->keys[i]->key.data,
		    fr->keys[i]->key.len);
		if (store_step_done(st, NULL) == -1)
			return tspdb_abort_tx(db, TSPDB_ERROR);
	}
	st = stmt(db, S_KEYPOS_INIT);
	tspdb_bind_text(st, 1, fr->chip_id);
	if (store_step_done(st, NULL) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	return tspdb_commit_tx(db, TSPDB_OK);
}

int
sqlt_fill_get(struct sqlt *db, const char *chip_id, struct tspdb_fill *f)
{
	sqlite3_stmt	*st;
	int		 r;

	st = stmt(db, S_FILL_GET);
	tspdb_bind_text(st, 1, chip_id);
	if ((r = tspdb_step_row(db, st)) != 1)
		return r;
	f->f_m = (uint32_t)sqlite3_column_int64(st, 0);
	f->f_k = (uint32_t)sqlite3_column_int64(st, 1);
	f->f_n = (uint32_t)sqlite3_column_int64(st, 2);
	f->f_created_ms = (uint64_t)sqlite3_column_int64(st, 3);
	store_reset(st);
	return 1;
}

int64_t
sqlt_keypos(struct sqlt *db, const char *chip_id)
{
	sqlite3_stmt	*st;
	int64_t		 pos;
	int		 r;

	st = stmt(db, S_KEYPOS_GET);
	tspdb_bind_text(st, 1, chip_id);
	if ((r = tspdb_step_row(db, st)) != 1)
		return r == 0 ? 0 : -1;
	pos = sqlite3_column_int64(st, 0);
	store_reset(st);
	return pos < 0 ? 0 : pos;
}

int
tspdb_key_used(struct sqlt *db, const char *chip_id, int64_t idx)
{
	sqlite3_stmt	*st;
	int		 r;

	st = stmt(db, S_USED_GET);
	tspdb_bind_text(st, 1, chip_id);
	tspdb_bind_u64(st, 2, (uint64_t)idx);
	if ((r = tspdb_step_row(db, st)) == 1)
		store_reset(st);
	return r;
}

/* ---- F2 ---- */

int
sqlt_reg_get(struct sqlt *db, const char *vid, struct tspdb_reg *r)
{
	sqlite3_stmt	*st;
	const void	*prv;
	int		 rc, len;

	memset(r, 0, sizeof(*r));
	st = stmt(db, S_REG_GET);
	tspdb_bind_text(st, 1, vid);
	if ((rc = tspdb_step_row(db, st)) != 1)
		return rc;
	prv = sqlite3_column_blob(st, 1);
	len = sqlite3_column_bytes(st, 1);
	if (tspdb_column_text(st, 0, r->r_chip_id, CHIP_ID_LEN) == -1 ||
	    prv == NULL || len <= 0 || (r->r_prv = malloc((size_t)len)) == NULL) {
		log_warnx("store: registration of %s unreadable", vid);
		store_reset(st);
		return -1;
	}
	memcpy(r->r_prv, prv, (size_t)len);
	r->r_prvlen = (size_t)len;
	r->r_epoch = (uint64_t)sqlite3_column_int64(st, 2);
	store_reset(st);
	return 1;
}

void
tspdb_reg_clear(struct tspdb_reg *r)
{
	if (r->r_prv != NULL) {
		crypto_wipe(r->r_prv, r->r_prvlen);
		free(r->r_prv);
	}
	r->r_prv = NULL;
	r->r_prvlen = 0;
}

/* Delete the auth and session rows of vid inside the open transaction. */
static int
vehicle_reset(struct sqlt *db, const char *vid)
{
	sqlite3_stmt	*st;

	tspdb_live_forget(db->db_live, vid);
	st = stmt(db, S_AUTH_DEL);
	tspdb_bind_text(st, 1, vid);
	if (store_step_done(st, NULL) == -1)
		return -1;
	st = stmt(db, S_SESS_DEL);
	tspdb_bind_text(st, 1, vid);
	return store_step_done(st, NULL);
}

enum tspdb_result
sqlt_m2_apply(struct sqlt *db, const char *vid, const char *chip_id,
    const uint8_t *prv, size_t prvlen, uint64_t epoch, uint64_t *old_epoch)
{
	struct tspdb_reg	 old;
	sqlite3_stmt		*st;
	int			 r;

	*old_epoch = 0;
	if (tspdb_begin(db) == -1)
		return TSPDB_ERROR;
	if ((r = sqlt_reg_get(db, vid, &old)) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	if (r == 1) {
		*old_epoch = old.r_epoch;
		tspdb_reg_clear(&old);
		if (epoch == *old_epoch)
			return tspdb_abort_tx(db, TSPDB_SAME);
		if (epoch < *old_epoch)
			return tspdb_abort_tx(db, TSPDB_STALE);
		if (vehicle_reset(db, vid) == -1)
			return tspdb_abort_tx(db, TSPDB_ERROR);
	}
	st = stmt(db, S_REG_PUT);
	tspdb_bind_text(st, 1, vid);
	tspdb_bind_text(st, 2, chip_id);
	tspdb_bind_blob(st, 3, prv, prvlen);
	tspdb_bind_u64(st, 4, epoch);
	if (store_step_done(st, NULL) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	return tspdb_commit_tx(db, TSPDB_OK);
}

/* ---- F3 ---- */

enum tspdb_result
sqlt_auth_commit(struct sqlt *db, const char *vid, const char *chip_id,
    const uint8_t *nonce, size_t noncelen, uint64_t now_ms,
    uint64_t expires_ms, const char *via)
{
	sqlite3_stmt	*st;
	int		 changes;

	if (tspdb_begin(db) == -1)
		return TSPDB_ERROR;
	st = stmt(db, S_NONCE_PURGE);
	tspdb_bind_u64(st, 1, now_ms);
	if (store_step_done(st, NULL) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	st = stmt(db, S_NONCE_INS);
	tspdb_bind_blob(st, 1, nonce, noncelen);
	tspdb_bind_text(st, 2, vid);
	tspdb_bind_u64(st, 3, expires_ms);
	if (store_step_done(st, &changes) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	if (changes == 0)
		return tspdb_abort_tx(db, TSPDB_REPLAY);
	if (vehicle_reset(db, vid) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	st = stmt(db, S_AUTH_PUT);
	tspdb_bind_text(st, 1, vid);
	tspdb_bind_text(st, 2, chip_id);
	tspdb_bind_u64(st, 3, now_ms);
	tspdb_bind_text(st, 4, via);
	if (store_step_done(st, NULL) == -1)
		return tspdb_abort_tx(db, TSPDB_ERROR);
	return tspdb_commit_tx(db, TSPDB_OK);
}

int
sqlt_auth_get(struct sqlt *db, const char *vid, uint64_t since_ms,
    char chip_id[CHIP_ID_LEN + 1])
{
	sqlite3_stmt	*st;
	int		 r;

	st = stmt(db, S_AUTH_GET);
	tspdb_bind_text(st, 1, vid);
	tspdb_bind_u64(st, 2, since_ms);
	if ((r = tspdb_step_row(db, st)) != 1)
		return r;
	r = tspdb_column_text(st, 0, chip_id, CHIP_ID_LEN) == -1 ? -1 : 1;
	store_reset(st);
	return r;
}

/* ---- F4 ---- */

int
tspdb_column_key(sqlite3_stmt *st, int col, uint8_t key[CRYPTO_KEYLEN])
{
	const void	*p;

	p = sqlite3_column_blob(st, col);
	if (p == NULL || sqlite3_column_bytes(st, col) != CRYPTO_KEYLEN)
		return -1;
	memcpy(key, p, CRYPTO_KEYLEN);
	return 0;
}

/* Look key index (or code) of chip_id up in fill_keys, without usage checks. */
static enum tspdb_result
key_lookup(struct sqlt *db, const char *chip_id, uint32_t index,
    const char *code, struct tspdb_key *key)
{
	sqlite3_stmt	*st;
	int		 r, col;
	int64_t		 idx;

	if (code != NULL) {
		st = stmt(db, S_FKEY_CODE);
		tspdb_bind_text(st, 2, code);
		col = 1;
	} else {
		st = stmt(db, S_FKEY_IDX);
		tspdb_bind_u64(st, 2, index);
		col = 0;
	}
	tspdb_bind_text(st, 1, chip_id);
	if ((r = tspdb_step_row(db, st)) != 1)
		return r == 0 ? TSPDB_UNKNOWN : TSPDB_ERROR;
	idx = code != NULL ? sqlite3_column_int64(st, 0) : (int64_t)index;
	if (idx < 0 || idx > UINT32_MAX ||
	    tspdb_column_key(st, col, key->k_key) == -1) {
		store_reset(st);
		log_warnx("store: key %lld of chip %s unreadable", (long long)idx,
		    chip_id);
		return TSPDB_ERROR;
	}
	key->k_index = (uint32_t)idx;
	store_reset(st);
	return TSPDB_OK;
}

/* TSPDB_OK if key idx of chip_id is neither below the position nor used. */
static enum tspdb_result
key_unused(struct sqlt *db, const char *chip_id, uint32_t idx)
{
	int64_t	 pos;
	int	 r;

	if ((pos = sqlt_keypos(db, chip_id)) == -1)
		return TSPDB_ERROR;
	if ((int64_t)idx < pos)
		return TSPDB_REUSED;
	if ((r = tspdb_key_used(db, chip_id, idx)) == -1)
		return TSPDB_ERROR;
	return r == 1 ? TSPDB_REUSED : TSPDB_OK;
}

enum tspdb_result
sqlt_key_select(struct sqlt *db, const char *chip_id, uint32_t index,
    const char *code, struct tspdb_key *key)
{
	enum tspdb_result	 res;

	if ((res = key_lookup(db, chip_id, index, code, key)) != TSPDB_OK)
		return res;
	if ((res = key_unused(db, chip_id, key->k_index)) != TSPDB_OK)
		crypto_wipe(key->k_key, sizeof(key->k_key));
	return res;
}

int
tspdb_key_mark(struct sqlt *db, const char *chip_id, int64_t idx,
    const char *how, uint64_t now_ms)
{
	sqlite3_stmt	*st;

	st = stmt(db, S_USED_INS);
	tspdb_bind_text(st, 1, chip_id);
	tspdb_bind_u64(st, 2, (uint64_t)idx);
	tspdb_bind_text(st, 3, how);
	tspdb_bind_u64(st, 4, now_ms);
	return store_step_done(st, NULL);
}

/*
 * Mark key idx used and move the key position, inside the open
 * transaction: sequentially by burning the unused keys from the position
 * up to idx, arbitrarily by skipping a run of used keys at the position.
 */
static int
key_consume(struct sqlt *db, const char *chip_id, uint32_t idx,
    int sequential, uint64_t now_ms)
{
	sqlite3_stmt	*st;
	int64_t		 pos, i;
	int		 r;

	if ((pos = sqlt_keypos(db, chip_id)) == -1)
		return -1;
	if (sequential) {
		for (i = pos; i < (int64_t)idx; i++) {
			if ((r = tspdb_key_used(db, chip_id, i)) == -1)
				return -1;
			if (r == 0 && tspdb_key_mark(db, chip_id, i, "burned",
			    now_ms) == -1)
				return -1;
		}
	}
	if (tspdb_key_mark(db, chip_id, idx, "m3", now_ms) == -1)
		return -1;
	if (sequential)
		pos = (int64_t)idx + 1;
	else {
		while ((r = tspdb_key_used(db, chip_id, pos)) == 1)
			pos++;
		if (r == -1)
			return -1;
	}
	st = stmt(db, S_KEYPOS_SET);
	tspdb_bind_text(st, 1, chip_id);
	tspdb_bind_u64(st, 2, (uint64_t)pos);
	return store_step_done(st, NULL);
}

int
tspdb_telemetry_insert(struct sqlt *db, const char *vid, const char *tsp_id,
    uint64_t seq, const Qroam__Telemetry *t, uint64_t now_ms)
{
	sqlite3_stmt	*st;

	st = stmt(db, S_TELE_INS);
	tspdb_bind_text(st, 1, vid);
	tspdb_bind_text(st, 2, tsp_id);
	tspdb_bind_u64(st, 3, seq);
	tspdb_bind_u64(st, 4, t->unix_ms);
	sqlite3_bind_double(st, 5, t->lat);
	sqlite3_bind_double(st, 6, t->lon);
	sqlite3_bind_double(st, 7, t->speed);
	sqlite3_bind_double(st, 8, t->heading);
	if (t->has_fuel)
		sqlite3_bind_double(st, 9, t->fuel);
	if (t->has_odometer)
		sqlite3_bind_double(st, 10, t->odometer);
	tspdb_bind_u64(st, 11, now_ms);
	if (t->has_record_id)
		tspdb_bind_u64(st, 12, t->record_id);
	return store_step_done(st, NULL);
}

enum tspdb_result
tspdb_session_open_tx(struct sqlt *db, const struct tspdb_session *s,
    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
    uint64_t now_ms)
{
	enum tspdb_result	 res;
	sqlite3_stmt		*st;

	if ((res = key_unused(db, s->s_chip_id, s->s_key_index)) != TSPDB_OK)
		return res;
	if (key_consume(db, s->s_chip_id, s->s_key_index, sequential,
	    now_ms) == -1)
		return TSPDB_ERROR;
	st = stmt(db, S_SESS_PUT);
	tspdb_bind_text(st, 1, s->s_vid);
	tspdb_bind_text(st, 2, s->s_chip_id);
	tspdb_bind_blob(st, 3, s->s_k1, sizeof(s->s_k1));
	tspdb_bind_u64(st, 4, s->s_key_index);
	tspdb_bind_u64(st, 5, 0);
	tspdb_bind_u64(st, 6, TSPDB_TX_AHEAD);	/* the ceiling: db_live.c */
	tspdb_bind_u64(st, 7, now_ms);
	tspdb_bind_u64(st, 8, sequential != 0);
	if (store_step_done(st, NULL) == -1)
		return TSPDB_ERROR;
	if (tspdb_telemetry_insert(db, s->s_vid, tsp_id, 0, d1, now_ms) == -1)
		return TSPDB_ERROR;
	return TSPDB_OK;
}

void
tspdb_session_opened(struct sqlt *db, const struct tspdb_session *s,
    uint64_t now_ms)
{
	struct tspdb_session	 live;

	live = *s;
	live.s_rx_seq = 0;
	live.s_tx_seq = 1;
	live.s_opened_ms = now_ms;
	live.s_authed = 1;	/* an M3 is accepted from an authenticated one */
	live.s_stored_seq = live.s_stored_told = 0;
	live.s_aead = NULL;
	tspdb_live_put(db->db_live, &live, TSPDB_TX_AHEAD);
	crypto_wipe(&live, sizeof(live));
}

enum tspdb_result
sqlt_session_open(struct sqlt *db, const struct tspdb_session *s,
    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
    uint64_t now_ms)
{
	enum tspdb_result	 res;

	if (tspdb_begin(db) == -1)
		return TSPDB_ERROR;
	tspdb_live_forget(db->db_live, s->s_vid);
	if ((res = tspdb_session_open_tx(db, s, sequential, d1, tsp_id,
	    now_ms)) != TSPDB_OK)
		return tspdb_abort_tx(db, res);
	if ((res = tspdb_commit_tx(db, TSPDB_OK)) != TSPDB_OK)
		return res;
	tspdb_session_opened(db, s, now_ms);
	return TSPDB_OK;
}

int
sqlt_session_get(struct sqlt *db, const char *vid, struct tspdb_session *s)
{
	int	 r;

	if ((r = tspdb_session_select(db, vid, s)) == 1)
		tspdb_live_seqs(db->db_live, vid, &s->s_rx_seq, &s->s_tx_seq);
	return r;
}

int
tspdb_session_select(struct sqlt *db, const char *vid,
    struct tspdb_session *s)
{
	sqlite3_stmt	*st;
	int		 r;

	memset(s, 0, sizeof(*s));
	st = stmt(db, S_SESS_GET);
	tspdb_bind_text(st, 1, vid);
	if ((r = tspdb_step_row(db, st)) != 1)
		return r;
	if (strlen(vid) > VIN_LEN ||
	    tspdb_column_text(st, 0, s->s_chip_id, CHIP_ID_LEN) == -1 ||
	    tspdb_column_key(st, 1, s->s_k1) == -1) {
		store_reset(st);
		crypto_wipe(s->s_k1, sizeof(s->s_k1));
		log_warnx("store: session of %s unreadable", vid);
		return -1;
	}
	memcpy(s->s_vid, vid, strlen(vid) + 1);
	s->s_key_index = (uint32_t)sqlite3_column_int64(st, 2);
	s->s_rx_seq = (uint64_t)sqlite3_column_int64(st, 3);
	s->s_tx_seq = (uint64_t)sqlite3_column_int64(st, 4);
	s->s_opened_ms = (uint64_t)sqlite3_column_int64(st, 5);
	s->s_authed = sqlite3_column_int(st, 6);
	store_reset(st);
	return 1;
}

int
tspdb_session_seq_write(struct sqlt *db, const char *vid, uint64_t rx_seq,
    uint64_t tx_seq)
{
	sqlite3_stmt	*st;
	int		 changes;

	st = stmt(db, S_SESS_SEQ);
	tspdb_bind_text(st, 1, vid);
	tspdb_bind_u64(st, 2, rx_seq);
	tspdb_bind_u64(st, 3, tx_seq);
	if (store_step_done(st, &changes) == -1)
		return -1;
	if (changes != 1) {
		log_warnx("store: the session of %s is gone from the store",
		    vid);
		return -1;
	}
	return 0;
}

enum tspdb_result
sqlt_session_telemetry(struct sqlt *db, const char *vid, uint64_t seq,
    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
    uint64_t now_ms)
{
	enum tspdb_result	 res;
	int			 now;

	if (tspdb_begin(db) == -1)
		return TSPDB_ERROR;
	res = tspdb_session_telemetry_tx(db, vid, seq, tx_seq, t, tsp_id,
	    now_ms, &now);
	if (res != TSPDB_OK)
		return tspdb_abort_tx(db, res);
	return tspdb_live_commit(db);
}

enum tspdb_result
sqlt_session_end(struct sqlt *db, const char *vid, int power_off)
{
	sqlite3_stmt	*st;
	int		 changes;

	if (power_off) {
		if (tspdb_begin(db) == -1)
			return TSPDB_ERROR;
		if (vehicle_reset(db, vid) == -1)
			return tspdb_abort_tx(db, TSPDB_ERROR);
		return tspdb_commit_tx(db, TSPDB_OK);
	}
	tspdb_batch_settle(db);
	tspdb_live_forget(db->db_live, vid);
	st = stmt(db, S_SESS_DEL);
	tspdb_bind_text(st, 1, vid);
	if (store_step_done(st, &changes) == -1)
		return TSPDB_ERROR;
	return changes > 0 ? TSPDB_OK : TSPDB_UNKNOWN;
}

int64_t
sqlt_telemetry_count(struct sqlt *db, const char *vid)
{
	sqlite3_stmt	*st;
	int64_t		 n;
	int		 r;

	st = stmt(db, S_TELE_COUNT);
	tspdb_bind_text(st, 1, vid);
	if ((r = tspdb_step_row(db, st)) != 1)
		return r == 0 ? 0 : -1;
	n = sqlite3_column_int64(st, 0);
	store_reset(st);
	return n;
}
