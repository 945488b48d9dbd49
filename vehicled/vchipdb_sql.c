/*
 * The fleet store's SQL.  One row per vehicle in `vehicles` (its chip and
 * its registration), its keys in `chip_keys`, the TSP lists of M1 once
 * each in `m1_lists` (every vehicle of a deployment holds the same one),
 * and the journal in `events` and `counters`, all keyed by vehicle_id so
 * that a test or a bench reads one vehicle as it reads a store file of
 * its own, with `WHERE vehicle_id = ?`.  Destroyed keys are overwritten
 * (secure_delete) and the WAL is checkpointed every few hundred groups
 * and at close, which moves the zeroed pages into the main file.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ids.h"
#include "keyseq.h"
#include "log.h"
#include "rand.h"
#include "store.h"
#include "vchipdb_sql.h"

static const char *const vchip_sql_migrations[] = {
	"CREATE TABLE vehicles(vehicle_id TEXT PRIMARY KEY, chip_id TEXT,"
	"  m INT, k INT, n INT, filled_ms INT, reg_chip_id TEXT, pbv BLOB,"
	"  registered_ms INT, m1 TEXT) WITHOUT ROWID;"
	"CREATE TABLE chip_keys(vehicle_id TEXT NOT NULL, idx INT NOT NULL,"
	"  code TEXT, key BLOB, destroyed INT NOT NULL DEFAULT 0,"
	"  destroyed_ms INT, PRIMARY KEY(vehicle_id, idx)) WITHOUT ROWID;"
	"CREATE TABLE m1_lists(digest TEXT PRIMARY KEY, tsps BLOB NOT NULL)"
	"  WITHOUT ROWID;"
	"CREATE TABLE events(id INTEGER PRIMARY KEY, vehicle_id TEXT, ms INT,"
	"  kind TEXT, tsp_id TEXT, detail TEXT);"
	"CREATE INDEX events_vehicle ON events(vehicle_id, kind);"
	"CREATE TABLE counters(vehicle_id TEXT NOT NULL, name TEXT NOT NULL,"
	"  value INT, PRIMARY KEY(vehicle_id, name)) WITHOUT ROWID;",
};

sqlite3 *
vchip_sql_open(const char *path)
{
	sqlite3	*db;

	db = store_open(path, vchip_sql_migrations,
	    sizeof(vchip_sql_migrations) / sizeof(vchip_sql_migrations[0]),
	    STORE_SYNC_FULL);
	if (db == NULL)
		return NULL;
	if (store_exec(db, "PRAGMA secure_delete = ON") == -1) {
		store_close(db);
		return NULL;
	}
	return db;
}

/* Every TSP list of M1 in the file, interned by digest. */
static int
vchip_sql_load_m1(sqlite3 *db)
{
	sqlite3_stmt	*st;
	const char	*digest;
	int		 rc;

	st = store_prepare(db, "SELECT digest, tsps FROM m1_lists");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		digest = (const char *)sqlite3_column_text(st, 0);
		if (digest != NULL && vchipdb_tsps(digest,
		    sqlite3_column_blob(st, 1),
		    (size_t)sqlite3_column_bytes(st, 1)) == NULL)
			log_warnx("fleet store: TSP list %.16s does not decode",
			    digest);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Copy a text column into dst of len bytes ("" for NULL). */
static void
vchip_sql_text(sqlite3_stmt *st, int col, char *dst, size_t len)
{
	const char	*s = (const char *)sqlite3_column_text(st, col);

	snprintf(dst, len, "%s", s != NULL ? s : "");
}

/* One row of vehicles into its slot. */
static void
vchip_sql_load_row(struct vchipdb *fd, sqlite3_stmt *st)
{
	struct vchip	*ch;
	const char	*vid = (const char *)sqlite3_column_text(st, 0);
	const void	*pbv;
	int		 len;

	if (vid == NULL || !id_valid_vin(vid))
		return;
	ch = vchipdb_loaded(fd, vid);
	if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
		ch->ch_filled = 1;
		vchip_sql_text(st, 1, ch->ch_info.ci_chip_id,
		    sizeof(ch->ch_info.ci_chip_id));
		ch->ch_info.ci_m = (uint32_t)sqlite3_column_int64(st, 2);
		ch->ch_info.ci_k = (uint32_t)sqlite3_column_int64(st, 3);
		ch->ch_info.ci_n = (uint32_t)sqlite3_column_int64(st, 4);
		ch->ch_info.ci_filled_ms = (uint64_t)sqlite3_column_int64(st, 5);
	}
	pbv = sqlite3_column_blob(st, 7);
	len = sqlite3_column_bytes(st, 7);
	if (sqlite3_column_type(st, 6) != SQLITE_NULL && pbv != NULL &&
	    len > 0) {
		ch->ch_registered = 1;
		vchip_sql_text(st, 6, ch->ch_reg_chip, sizeof(ch->ch_reg_chip));
		ch->ch_pbv = xmalloc((size_t)len);
		memcpy(ch->ch_pbv, pbv, (size_t)len);
		ch->ch_pbvlen = (size_t)len;
		ch->ch_reg_ms = (uint64_t)sqlite3_column_int64(st, 8);
		if (sqlite3_column_text(st, 9) != NULL)
			ch->ch_tsps = vchip_interned((const char *)
			    sqlite3_column_text(st, 9));
		vchipdb_loaded_registration(fd);
	}
}

/* The destroyed keys of every slot, and the record id marks. */
static int
vchip_sql_load_keys(sqlite3 *db, struct vchipdb *fd)
{
	sqlite3_stmt	*st;
	struct vchip	*ch;
	const char	*vid;
	int		 rc;

	st = store_prepare(db, "SELECT vehicle_id, max(CASE WHEN destroyed != 0"
	    " THEN idx END), sum(destroyed != 0) FROM chip_keys GROUP BY"
	    " vehicle_id");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((vid = (const char *)sqlite3_column_text(st, 0)) == NULL)
			continue;
		ch = vchipdb_loaded(fd, vid);
		ch->ch_maxd = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 :
		    sqlite3_column_int64(st, 1);
		ch->ch_ndestroyed = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	st = store_prepare(db, "SELECT vehicle_id, value FROM counters WHERE"
	    " name = 'record_id_mark'");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((vid = (const char *)sqlite3_column_text(st, 0)) != NULL) {
			ch = vchipdb_loaded(fd, vid);
			ch->ch_mark = ch->ch_mark_floor =
			    sqlite3_column_int64(st, 1);
		}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
vchip_sql_load(sqlite3 *db, struct vchipdb *fd)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (vchip_sql_load_m1(db) == -1)
		return -1;
	st = store_prepare(db, "SELECT vehicle_id, chip_id, m, k, n, filled_ms,"
	    " reg_chip_id, pbv, registered_ms, m1 FROM vehicles");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		vchip_sql_load_row(fd, st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	return vchip_sql_load_keys(db, fd);
}

int
vchip_sql_prepare(struct vchip_sql *s, sqlite3 *db)
{
	memset(s, 0, sizeof(*s));
	s->s_db = db;
	s->s_begin = store_prepare(db, "BEGIN IMMEDIATE");
	s->s_commit = store_prepare(db, "COMMIT");
	s->s_rollback = store_prepare(db, "ROLLBACK");
	s->s_save = store_prepare(db, "SAVEPOINT op");
	s->s_release = store_prepare(db, "RELEASE op");
	s->s_undo = store_prepare(db, "ROLLBACK TO op");
	s->s_next_seq = store_prepare(db, "SELECT idx, code, key FROM chip_keys"
	    " WHERE vehicle_id = ?1 AND destroyed = 0 AND idx > (SELECT"
	    " COALESCE(MAX(idx), -1) FROM chip_keys WHERE vehicle_id = ?1 AND"
	    " destroyed != 0) ORDER BY idx LIMIT 1");
	s->s_count_unused = store_prepare(db, "SELECT count(*) FROM chip_keys"
	    " WHERE vehicle_id = ? AND destroyed = 0");
	s->s_nth_unused = store_prepare(db, "SELECT idx, code, key FROM"
	    " chip_keys WHERE vehicle_id = ? AND destroyed = 0 ORDER BY idx"
	    " LIMIT 1 OFFSET ?");
	s->s_destroy = store_prepare(db, "UPDATE chip_keys SET key = NULL,"
	    " destroyed = 1, destroyed_ms = ? WHERE vehicle_id = ? AND idx = ?"
	    " AND destroyed = 0");
	s->s_raise = store_prepare(db, "INSERT INTO counters(vehicle_id, name,"
	    " value) VALUES(?, ?, ?) ON CONFLICT(vehicle_id, name) DO UPDATE"
	    " SET value = max(value, excluded.value)");
	s->s_count = store_prepare(db, "INSERT INTO counters(vehicle_id, name,"
	    " value) VALUES(?, ?, ?) ON CONFLICT(vehicle_id, name) DO UPDATE"
	    " SET value = value + excluded.value");
	s->s_del_keys = store_prepare(db, "DELETE FROM chip_keys WHERE"
	    " vehicle_id = ?");
	s->s_ins_key = store_prepare(db, "INSERT INTO chip_keys(vehicle_id, idx,"
	    " code, key) VALUES(?, ?, ?, ?)");
	s->s_put_fill = store_prepare(db, "INSERT INTO vehicles(vehicle_id,"
	    " chip_id, m, k, n, filled_ms) VALUES(?, ?, ?, ?, ?, ?)"
	    " ON CONFLICT(vehicle_id) DO UPDATE SET chip_id = excluded.chip_id,"
	    " m = excluded.m, k = excluded.k, n = excluded.n,"
	    " filled_ms = excluded.filled_ms");
	s->s_put_m1 = store_prepare(db, "INSERT OR IGNORE INTO m1_lists(digest,"
	    " tsps) VALUES(?, ?)");
	s->s_put_reg = store_prepare(db, "INSERT INTO vehicles(vehicle_id,"
	    " reg_chip_id, pbv, registered_ms, m1) VALUES(?, ?, ?, ?, ?)"
	    " ON CONFLICT(vehicle_id) DO UPDATE SET"
	    " reg_chip_id = excluded.reg_chip_id, pbv = excluded.pbv,"
	    " registered_ms = excluded.registered_ms, m1 = excluded.m1");
	s->s_event = store_prepare(db, "INSERT INTO events(vehicle_id, ms, kind,"
	    " tsp_id, detail) VALUES(?, ?, ?, ?, ?)");
	return 0;
}

void
vchip_sql_finalize(struct vchip_sql *s)
{
	sqlite3_stmt	**st[] = {
		&s->s_begin, &s->s_commit, &s->s_rollback, &s->s_save,
		&s->s_release, &s->s_undo, &s->s_next_seq, &s->s_count_unused,
		&s->s_nth_unused, &s->s_destroy, &s->s_raise, &s->s_count,
		&s->s_del_keys, &s->s_ins_key, &s->s_put_fill, &s->s_put_m1,
		&s->s_put_reg, &s->s_event,
	};
	size_t		  i;

	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		sqlite3_finalize(*st[i]);
		*st[i] = NULL;
	}
}

/* Step a statement to its end and reset it; 0, or -1. */
static int
vchip_sql_done(sqlite3_stmt *st, int *changes)
{
	int	rc = sqlite3_step(st);

	if (changes != NULL)
		*changes = sqlite3_changes(sqlite3_db_handle(st));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The key of the row st is on into ck; 0, or -1 if it has no material. */
static int
vchip_sql_key(sqlite3_stmt *st, struct chip_key *ck)
{
	const char	*code = (const char *)sqlite3_column_text(st, 1);
	const void	*key = sqlite3_column_blob(st, 2);

	memset(ck, 0, sizeof(*ck));
	ck->ck_index = (uint32_t)sqlite3_column_int64(st, 0);
	if (code != NULL)
		snprintf(ck->ck_code, sizeof(ck->ck_code), "%s", code);
	if (key == NULL || sqlite3_column_bytes(st, 2) != CHIP_KEYLEN)
		return -1;
	memcpy(ck->ck_key, key, CHIP_KEYLEN);
	return 0;
}

/* Select the key a take of op draws: 1 found, 0 none, -1 error. */
static int
vchip_sql_pick(struct vchip_sql *s, struct vchip_op *op)
{
	const char	*vid = op->op_chip->ch_vid;
	sqlite3_stmt	*st = s->s_next_seq;
	int64_t		 n = 0;
	int		 rc;

	if (op->op_mode == CHIP_ARBITRARY) {
		sqlite3_bind_text(s->s_count_unused, 1, vid, -1, SQLITE_STATIC);
		if (sqlite3_step(s->s_count_unused) == SQLITE_ROW)
			n = sqlite3_column_int64(s->s_count_unused, 0);
		sqlite3_reset(s->s_count_unused);
		if (n <= 0)
			return 0;
		st = s->s_nth_unused;
		sqlite3_bind_int64(st, 2, qrand_uniform(n > UINT32_MAX ?
		    UINT32_MAX : (uint32_t)n));
	}
	sqlite3_bind_text(st, 1, vid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = vchip_sql_key(st, &op->op_key) == 0 ? 1 : -1;
	else
		rc = rc == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/* VOP_TAKE: draw the next key and destroy it in the transaction. */
static int
vchip_sql_take(struct vchip_sql *s, struct vchip_op *op)
{
	int	rc, changes = 0;

	if ((rc = vchip_sql_pick(s, op)) <= 0) {
		op->op_draw = rc == 0 ? CHIP_DRAW_NONE : CHIP_DRAW_ERROR;
		return rc;
	}
	sqlite3_bind_int64(s->s_destroy, 1, (sqlite3_int64)store_now_ms());
	sqlite3_bind_text(s->s_destroy, 2, op->op_chip->ch_vid, -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(s->s_destroy, 3, op->op_key.ck_index);
	if (vchip_sql_done(s->s_destroy, &changes) == -1 || changes != 1) {
		chip_key_wipe(&op->op_key);
		op->op_draw = CHIP_DRAW_ERROR;
		return -1;
	}
	op->op_draw = CHIP_DRAW_OK;
	return 0;
}

/* VOP_FILL: replace the chip's keys with the fill of op_buf. */
static int
vchip_sql_fill(struct vchip_sql *s, struct vchip_op *op)
{
	const char		*vid = op->op_chip->ch_vid, *why = "?";
	Qroam__FillRecord	*rec;
	size_t			 i;
	int			 rc = -1;

	rec = qroam__fill_record__unpack(NULL, op->op_len, op->op_buf);
	if (rec == NULL || keyseq_validate(rec, &why) == -1 ||
	    rec->n_keys != rec->m)
		goto out;
	sqlite3_bind_text(s->s_del_keys, 1, vid, -1, SQLITE_STATIC);
	if (vchip_sql_done(s->s_del_keys, NULL) == -1)
		goto out;
	for (i = 0; i < rec->n_keys; i++) {
		sqlite3_bind_text(s->s_ins_key, 1, vid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->s_ins_key, 2, (sqlite3_int64)i);
		sqlite3_bind_text(s->s_ins_key, 3, rec->keys[i]->code, -1,
		    SQLITE_STATIC);
		sqlite3_bind_blob(s->s_ins_key, 4, rec->keys[i]->key.data,
		    (int)rec->keys[i]->key.len, SQLITE_STATIC);
		if (vchip_sql_done(s->s_ins_key, NULL) == -1)
			goto out;
	}
	sqlite3_bind_text(s->s_put_fill, 1, vid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->s_put_fill, 2, rec->chip_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->s_put_fill, 3, rec->m);
	sqlite3_bind_int64(s->s_put_fill, 4, rec->k);
	sqlite3_bind_int64(s->s_put_fill, 5, rec->n);
	op->op_info.ci_filled_ms = store_now_ms();
	sqlite3_bind_int64(s->s_put_fill, 6,
	    (sqlite3_int64)op->op_info.ci_filled_ms);
	if (vchip_sql_done(s->s_put_fill, NULL) == -1)
		goto out;
	snprintf(op->op_info.ci_chip_id, sizeof(op->op_info.ci_chip_id), "%s",
	    rec->chip_id);
	op->op_info.ci_m = rec->m;
	op->op_info.ci_k = rec->k;
	op->op_info.ci_n = rec->n;
	rc = 0;
 out:
	if (rec != NULL) {
		for (i = 0; i < rec->n_keys; i++)
			crypto_wipe(rec->keys[i]->key.data, rec->keys[i]->key.len);
		qroam__fill_record__free_unpacked(rec, NULL);
	}
	return rc;
}

/* VOP_REG: the registration, its TSP list stored once. */
static int
vchip_sql_reg(struct vchip_sql *s, struct vchip_op *op)
{
	sqlite3_bind_text(s->s_put_m1, 1, op->op_digest, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s->s_put_m1, 2, op->op_buf, (int)op->op_len,
	    SQLITE_STATIC);
	if (vchip_sql_done(s->s_put_m1, NULL) == -1)
		return -1;
	op->op_ms = store_now_ms();
	sqlite3_bind_text(s->s_put_reg, 1, op->op_chip->ch_vid, -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s->s_put_reg, 2, op->op_chip_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s->s_put_reg, 3, op->op_pbv, (int)op->op_pbvlen,
	    SQLITE_STATIC);
	sqlite3_bind_int64(s->s_put_reg, 4, (sqlite3_int64)op->op_ms);
	sqlite3_bind_text(s->s_put_reg, 5, op->op_digest, -1, SQLITE_STATIC);
	return vchip_sql_done(s->s_put_reg, NULL);
}

/* VOP_RAISE, VOP_COUNTS and VOP_EVENT: the journal and the marks. */
static int
vchip_sql_journal(struct vchip_sql *s, struct vchip_op *op)
{
	const char	*vid = op->op_chip->ch_vid;
	size_t		 i;

	switch (op->op_kind) {
	case VOP_RAISE:
		sqlite3_bind_text(s->s_raise, 1, vid, -1, SQLITE_STATIC);
		sqlite3_bind_text(s->s_raise, 2, op->op_name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->s_raise, 3, op->op_value);
		return vchip_sql_done(s->s_raise, NULL);
	case VOP_COUNTS:
		for (i = 0; i < VCHIP_NCOUNT; i++) {
			if (op->op_counts[i] == 0)
				continue;
			sqlite3_bind_text(s->s_count, 1, vid, -1, SQLITE_STATIC);
			sqlite3_bind_text(s->s_count, 2, vchip_count_names[i],
			    -1, SQLITE_STATIC);
			sqlite3_bind_int64(s->s_count, 3, op->op_counts[i]);
			if (vchip_sql_done(s->s_count, NULL) == -1)
				return -1;
		}
		return 0;
	default:
		sqlite3_bind_text(s->s_event, 1, vid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->s_event, 2, (sqlite3_int64)op->op_ms);
		sqlite3_bind_text(s->s_event, 3, op->op_name, -1, SQLITE_STATIC);
		if (op->op_tsp[0] != '\0')
			sqlite3_bind_text(s->s_event, 4, op->op_tsp, -1,
			    SQLITE_STATIC);
		sqlite3_bind_text(s->s_event, 5, op->op_detail, -1,
		    SQLITE_STATIC);
		return vchip_sql_done(s->s_event, NULL);
	}
}

/* Apply one step under its savepoint; a failure undoes it alone. */
static void
vchip_sql_step(struct vchip_sql *s, struct vchip_op *op)
{
	int	rc;

	if (op->op_rc == -1 || vchip_sql_done(s->s_save, NULL) == -1) {
		op->op_rc = -1;
		return;
	}
	if (op->op_kind == VOP_TAKE)
		rc = vchip_sql_take(s, op);
	else if (op->op_kind == VOP_FILL)
		rc = vchip_sql_fill(s, op);
	else if (op->op_kind == VOP_REG)
		rc = vchip_sql_reg(s, op);
	else
		rc = vchip_sql_journal(s, op);
	if (rc == -1) {
		if (op->op_err == NULL)
			op->op_err = strdup(sqlite3_errmsg(s->s_db));
		vchip_sql_done(s->s_undo, NULL);
		op->op_rc = -1;
	}
	vchip_sql_done(s->s_release, NULL);
}

void
vchip_sql_group(struct vchip_sql *s, struct vchip_opq *group)
{
	struct vchip_op	*op;
	int		 ok;

	ok = vchip_sql_done(s->s_begin, NULL) == 0;
	TAILQ_FOREACH(op, group, op_entry)
		if (ok)
			vchip_sql_step(s, op);
	if (ok && vchip_sql_done(s->s_commit, NULL) == 0)
		return;
	/* Nothing of the group is stored: no key of it may be used. */
	vchip_sql_done(s->s_rollback, NULL);
	TAILQ_FOREACH(op, group, op_entry) {
		op->op_rc = -1;
		if (op->op_kind == VOP_TAKE) {
			chip_key_wipe(&op->op_key);
			op->op_draw = CHIP_DRAW_ERROR;
		}
		if (op->op_err == NULL)
			op->op_err = strdup("the group's commit failed");
	}
}

void
vchip_sql_checkpoint(struct vchip_sql *s, int truncate)
{
	if (s->s_db == NULL)
		return;
	sqlite3_wal_checkpoint_v2(s->s_db, NULL, truncate ?
	    SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}
