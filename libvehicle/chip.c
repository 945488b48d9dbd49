/*
 * The emulated security chip.  Keys live in chip_keys; a key that was used
 * is overwritten (key=NULL, destroyed=1) and committed with
 * synchronous=FULL before the message that uses it leaves the vehicle, so
 * a crash can never make the chip use a key twice.  secure_delete makes
 * SQLite zero the freed bytes, and a WAL checkpoint after each destruction
 * moves the zeroed page into the main file.  The journal (events and
 * counters) does not wait for the disk: it is written with
 * synchronous=NORMAL, which in WAL mode loses nothing when the process
 * dies and reaches the disk with the next synced commit, so that the
 * vehicle's bookkeeping never stalls a protocol step.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chip.h"
#include "crypto.h"
#include "ids.h"
#include "keyseq.h"
#include "log.h"
#include "rand.h"
#include "store.h"

#define CHIP_MAXREGION	4096

static const char *const chip_migrations[] = {
	"CREATE TABLE chip(id INTEGER PRIMARY KEY CHECK(id=1), chip_id TEXT,"
	"  m INT, k INT, n INT, filled_ms INT);"
	"CREATE TABLE chip_keys(idx INTEGER PRIMARY KEY, code TEXT UNIQUE,"
	"  key BLOB, destroyed INT NOT NULL DEFAULT 0, destroyed_ms INT);"
	"CREATE TABLE registration(id INTEGER PRIMARY KEY CHECK(id=1),"
	"  vehicle_id TEXT, chip_id TEXT, pbv BLOB, registered_ms INT);"
	"CREATE TABLE reg_tsps(tsp_id TEXT PRIMARY KEY, host TEXT, port INT,"
	"  region TEXT);"
	"CREATE TABLE events(id INTEGER PRIMARY KEY, ms INT, kind TEXT,"
	"  tsp_id TEXT, detail TEXT);"
	"CREATE TABLE counters(name TEXT PRIMARY KEY, value INT);",
	/* 2: IK_v, the initial key towards the KMP (PROTOCOL 11.1). */
	"ALTER TABLE chip ADD COLUMN ik BLOB;",
};

sqlite3 *
chip_open(const char *path)
{
	sqlite3	*db;

	db = store_open(path, chip_migrations,
	    sizeof(chip_migrations) / sizeof(chip_migrations[0]), 1);
	if (db == NULL)
		return NULL;
	if (store_exec(db, "PRAGMA secure_delete = ON") == -1) {
		store_close(db);
		return NULL;
	}
	return db;
}

void
chip_close(sqlite3 *db)
{
	store_close(db);
}

/* Insert the keys of rec; runs inside the caller's transaction. */
static int
chip_fill_keys(sqlite3 *db, const Qroam__FillRecord *rec)
{
	sqlite3_stmt	*st;
	size_t		 i;
	int		 rc = 0;

	st = store_prepare(db, "INSERT INTO chip_keys(idx, code, key, destroyed)"
	    " VALUES(?, ?, ?, 0)");
	for (i = 0; i < rec->n_keys && rc == 0; i++) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)i);
		sqlite3_bind_text(st, 2, rec->keys[i]->code, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, rec->keys[i]->key.data,
		    (int)rec->keys[i]->key.len, SQLITE_STATIC);
		rc = store_step_done(st, NULL);
	}
	sqlite3_finalize(st);
	return rc;
}

int
chip_fill(sqlite3 *db, const Qroam__FillRecord *rec)
{
	sqlite3_stmt	*st;
	const char	*why = "?";

	if (keyseq_validate(rec, &why) == -1) {
		log_warnx("chip: fill record rejected: %s", why);
		return -1;
	}
	if (rec->n_keys != rec->m) {
		log_warnx("chip: fill record has %zu keys for m=%u", rec->n_keys,
		    rec->m);
		return -1;
	}
	if (store_begin(db) == -1)
		return -1;
	if (store_exec(db, "DELETE FROM chip_keys; DELETE FROM chip") == -1)
		goto fail;
	st = store_prepare(db, "INSERT INTO chip(id, chip_id, m, k, n, filled_ms,"
	    " ik) VALUES(1, ?, ?, ?, ?, ?, ?)");
	sqlite3_bind_text(st, 1, rec->chip_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, rec->m);
	sqlite3_bind_int64(st, 3, rec->k);
	sqlite3_bind_int64(st, 4, rec->n);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)store_now_ms());
	if (rec->has_ik && rec->ik.len == CHIP_KEYLEN)
		sqlite3_bind_blob(st, 6, rec->ik.data, (int)rec->ik.len,
		    SQLITE_STATIC);
	if (store_step_done(st, NULL) == -1) {
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	if (chip_fill_keys(db, rec) == -1)
		goto fail;
	if (store_commit(db) == -1)
		return -1;
	sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
	    NULL);
	return 0;
 fail:
	store_rollback(db);
	return -1;
}

int
chip_initial_key(sqlite3 *db, uint8_t ik[CHIP_KEYLEN])
{
	sqlite3_stmt	*st;
	int		 rc;

	st = store_prepare(db, "SELECT ik FROM chip WHERE id = 1 AND"
	    " length(ik) = 32");
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		memcpy(ik, sqlite3_column_blob(st, 0), CHIP_KEYLEN);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
chip_get(sqlite3 *db, struct chip_info *ci)
{
	sqlite3_stmt	*st;
	const char	*id;
	int		 rc;

	memset(ci, 0, sizeof(*ci));
	st = store_prepare(db, "SELECT chip_id, m, k, n, filled_ms FROM chip"
	    " WHERE id = 1");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		id = (const char *)sqlite3_column_text(st, 0);
		if (id == NULL || !id_valid_hex(id, CHIP_ID_LEN)) {
			log_warnx("chip: stored chip_id is not valid");
			rc = -1;
		} else {
			snprintf(ci->ci_chip_id, sizeof(ci->ci_chip_id), "%s", id);
			ci->ci_m = (uint32_t)sqlite3_column_int64(st, 1);
			ci->ci_k = (uint32_t)sqlite3_column_int64(st, 2);
			ci->ci_n = (uint32_t)sqlite3_column_int64(st, 3);
			ci->ci_filled_ms = (uint64_t)sqlite3_column_int64(st, 4);
			rc = 1;
		}
	} else if (rc == SQLITE_DONE)
		rc = 0;
	else {
		log_warnx("chip: %s", sqlite3_errmsg(db));
		rc = -1;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Read the (idx, code, key, destroyed) row st is positioned on. */
static enum chip_draw
chip_row_key(sqlite3_stmt *st, struct chip_key *ck)
{
	const char	*code;
	const void	*key;

	memset(ck, 0, sizeof(*ck));
	ck->ck_index = (uint32_t)sqlite3_column_int64(st, 0);
	if ((code = (const char *)sqlite3_column_text(st, 1)) != NULL)
		snprintf(ck->ck_code, sizeof(ck->ck_code), "%s", code);
	if (sqlite3_column_int(st, 3) != 0)
		return CHIP_DRAW_DESTROYED;
	key = sqlite3_column_blob(st, 2);
	if (key == NULL || sqlite3_column_bytes(st, 2) != CHIP_KEYLEN) {
		log_warnx("chip: key %u has no usable material", ck->ck_index);
		return CHIP_DRAW_ERROR;
	}
	memcpy(ck->ck_key, key, CHIP_KEYLEN);
	return CHIP_DRAW_OK;
}

/* Step a prepared key query and return its first row as a key. */
static enum chip_draw
chip_query_key(sqlite3 *db, sqlite3_stmt *st, struct chip_key *ck)
{
	enum chip_draw	 r;
	int		 rc;

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = chip_row_key(st, ck);
	else if (rc == SQLITE_DONE)
		r = CHIP_DRAW_NONE;
	else {
		log_warnx("chip: %s", sqlite3_errmsg(db));
		r = CHIP_DRAW_ERROR;
	}
	sqlite3_finalize(st);
	return r;
}

/*
 * Sequential mode draws the first unused key after the last destroyed one:
 * a TSP burns the keys a vehicle skipped, so they are no use any more.
 */
#define CHIP_SEQ_WHERE	" WHERE destroyed = 0 AND idx > (SELECT" \
	" COALESCE(MAX(idx), -1) FROM chip_keys WHERE destroyed != 0)"

enum chip_draw
chip_draw(sqlite3 *db, enum chip_mode mode, struct chip_key *ck)
{
	sqlite3_stmt	*st;
	int64_t		 n;

	if (mode == CHIP_SEQUENTIAL) {
		st = store_prepare(db, "SELECT idx, code, key, destroyed"
		    " FROM chip_keys" CHIP_SEQ_WHERE " ORDER BY idx LIMIT 1");
		return chip_query_key(db, st, ck);
	}
	if ((n = chip_unused(db, CHIP_ARBITRARY)) < 0)
		return CHIP_DRAW_ERROR;
	if (n == 0)
		return CHIP_DRAW_NONE;
	if (n > UINT32_MAX)
		n = UINT32_MAX;
	st = store_prepare(db, "SELECT idx, code, key, destroyed FROM chip_keys"
	    " WHERE destroyed = 0 ORDER BY idx LIMIT 1 OFFSET ?");
	sqlite3_bind_int64(st, 1, qrand_uniform((uint32_t)n));
	return chip_query_key(db, st, ck);
}

enum chip_draw
chip_draw_index(sqlite3 *db, uint32_t idx, struct chip_key *ck)
{
	sqlite3_stmt	*st;

	st = store_prepare(db, "SELECT idx, code, key, destroyed FROM chip_keys"
	    " WHERE idx = ?");
	sqlite3_bind_int64(st, 1, idx);
	return chip_query_key(db, st, ck);
}

enum chip_draw
chip_draw_code(sqlite3 *db, const char *code, struct chip_key *ck)
{
	sqlite3_stmt	*st;

	st = store_prepare(db, "SELECT idx, code, key, destroyed FROM chip_keys"
	    " WHERE code = ?");
	sqlite3_bind_text(st, 1, code, -1, SQLITE_TRANSIENT);
	return chip_query_key(db, st, ck);
}

int
chip_destroy_key(sqlite3 *db, uint32_t idx)
{
	sqlite3_stmt	*st;
	int		 changes = 0, rc;

	st = store_prepare(db, "UPDATE chip_keys SET key = NULL, destroyed = 1,"
	    " destroyed_ms = ? WHERE idx = ? AND destroyed = 0");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)store_now_ms());
	sqlite3_bind_int64(st, 2, idx);
	rc = store_step_done(st, &changes);
	sqlite3_finalize(st);
	if (rc == -1)
		return -1;
	if (changes != 1) {
		log_warnx("chip: key %u is not an unused key", idx);
		return -1;
	}
	/* Best effort: a reader may hold the WAL open; the commit is durable. */
	sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
	    NULL);
	return 0;
}

int64_t
chip_unused(sqlite3 *db, enum chip_mode mode)
{
	sqlite3_stmt	*st;
	int64_t		 n = -1;

	if (mode == CHIP_SEQUENTIAL)
		st = store_prepare(db, "SELECT COUNT(*) FROM chip_keys"
		    CHIP_SEQ_WHERE);
	else
		st = store_prepare(db, "SELECT COUNT(*) FROM chip_keys"
		    " WHERE destroyed = 0");
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else
		log_warnx("chip: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return n;
}

void
chip_key_wipe(struct chip_key *ck)
{
	crypto_wipe(ck, sizeof(*ck));
}

/* Check one TspInfo of M1 before it is stored. */
static int
chip_tsp_valid(const Qroam__TspInfo *ti)
{
	size_t	i;

	if (!id_valid_name(ti->tsp_id) || ti->host[0] == '\0' ||
	    strlen(ti->host) >= sizeof(((struct endpoint *)0)->ep_host) ||
	    ti->port == 0 || ti->port > 65535 || ti->n_region > CHIP_MAXREGION)
		return 0;
	for (i = 0; i < ti->n_region; i++) {
		if (!isfinite(ti->region[i]->lat) ||
		    !isfinite(ti->region[i]->lon) ||
		    fabs(ti->region[i]->lat) > 90 ||
		    fabs(ti->region[i]->lon) > 180)
			return 0;
	}
	return 1;
}

/* "lat,lon lat,lon ..." for the reg_tsps.region column; malloc'd or NULL. */
static char *
chip_region_text(const Qroam__TspInfo *ti)
{
	char	*s;
	size_t	 i, len = ti->n_region * 64 + 1, off = 0;

	if ((s = malloc(len)) == NULL)
		return NULL;
	s[0] = '\0';
	for (i = 0; i < ti->n_region; i++)
		off += snprintf(s + off, len - off, "%s%.9g,%.9g", i ? " " : "",
		    ti->region[i]->lat, ti->region[i]->lon);
	return s;
}

/* Replace reg_tsps with the list of M1; inside the caller's transaction. */
static int
chip_reg_save_tsps(sqlite3 *db, const Qroam__M1 *m1)
{
	sqlite3_stmt	*st;
	char		*region;
	size_t		 i;
	int		 rc = 0;

	if (store_exec(db, "DELETE FROM reg_tsps") == -1)
		return -1;
	st = store_prepare(db, "INSERT OR REPLACE INTO reg_tsps(tsp_id, host,"
	    " port, region) VALUES(?, ?, ?, ?)");
	for (i = 0; i < m1->n_tsps && rc == 0; i++) {
		if ((region = chip_region_text(m1->tsps[i])) == NULL) {
			rc = -1;
			break;
		}
		sqlite3_bind_text(st, 1, m1->tsps[i]->tsp_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, m1->tsps[i]->host, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, m1->tsps[i]->port);
		sqlite3_bind_text(st, 4, region, -1, SQLITE_TRANSIENT);
		rc = store_step_done(st, NULL);
		free(region);
	}
	sqlite3_finalize(st);
	return rc;
}

int
chip_m1_check(const char *vid, const char *chip_id, const Qroam__M1 *m1)
{
	size_t	i;

	if (!id_valid_vin(vid) || !id_valid_hex(chip_id, CHIP_ID_LEN) ||
	    m1->n_tsps > TOPO_MAXTSP) {
		log_warnx("chip: registration rejected: bad identifiers");
		return -1;
	}
	for (i = 0; i < m1->n_tsps; i++) {
		if (!chip_tsp_valid(m1->tsps[i])) {
			log_warnx("chip: registration rejected: TSP entry %zu"
			    " is not valid", i);
			return -1;
		}
	}
	return 0;
}

int
chip_reg_save(sqlite3 *db, const char *vid, const char *chip_id,
    const Qroam__M1 *m1)
{
	sqlite3_stmt	*st;

	if (chip_m1_check(vid, chip_id, m1) == -1)
		return -1;
	if (store_begin(db) == -1)
		return -1;
	st = store_prepare(db, "INSERT OR REPLACE INTO registration(id,"
	    " vehicle_id, chip_id, pbv, registered_ms) VALUES(1, ?, ?, ?, ?)");
	sqlite3_bind_text(st, 1, vid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, chip_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, m1->pbv.data, (int)m1->pbv.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)store_now_ms());
	if (store_step_done(st, NULL) == -1) {
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	if (chip_reg_save_tsps(db, m1) == -1)
		goto fail;
	return store_commit(db);
 fail:
	store_rollback(db);
	return -1;
}

int
chip_reg_load(sqlite3 *db, struct chip_reg *cr)
{
	sqlite3_stmt	*st;
	const char	*vid, *cid;
	const void	*pbv;
	int		 rc, len;

	memset(cr, 0, sizeof(*cr));
	st = store_prepare(db, "SELECT vehicle_id, chip_id, pbv, registered_ms"
	    " FROM registration WHERE id = 1");
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		log_warnx("chip: %s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return -1;
	}
	vid = (const char *)sqlite3_column_text(st, 0);
	cid = (const char *)sqlite3_column_text(st, 1);
	pbv = sqlite3_column_blob(st, 2);
	len = sqlite3_column_bytes(st, 2);
	rc = -1;
	if (vid == NULL || cid == NULL || pbv == NULL || len <= 0 ||
	    !id_valid_vin(vid) || !id_valid_hex(cid, CHIP_ID_LEN))
		log_warnx("chip: stored registration is not valid");
	else if ((cr->cr_pbv = malloc(len)) != NULL) {
		snprintf(cr->cr_vid, sizeof(cr->cr_vid), "%s", vid);
		snprintf(cr->cr_chip_id, sizeof(cr->cr_chip_id), "%s", cid);
		memcpy(cr->cr_pbv, pbv, len);
		cr->cr_pbvlen = len;
		cr->cr_ms = (uint64_t)sqlite3_column_int64(st, 3);
		rc = 1;
	}
	sqlite3_finalize(st);
	return rc;
}

void
chip_reg_clear(struct chip_reg *cr)
{
	free(cr->cr_pbv);
	memset(cr, 0, sizeof(*cr));
}

/* Parse a stored region text into tt; 0 or -1. */
static int
chip_region_parse(const char *s, struct topo_tsp *tt)
{
	struct geo_point	*pts = NULL, *np;
	size_t			 n = 0, cap = 0;
	double			 lat, lon;
	int			 used;

	while (s != NULL && sscanf(s, " %lf,%lf%n", &lat, &lon, &used) == 2) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			if (cap > CHIP_MAXREGION ||
			    (np = reallocarray(pts, cap, sizeof(*pts))) == NULL) {
				free(pts);
				return -1;
			}
			pts = np;
		}
		pts[n].gp_lat = lat;
		pts[n].gp_lon = lon;
		n++;
		s += used;
	}
	tt->tt_region = pts;
	tt->tt_nregion = n;
	return 0;
}

int
chip_reg_tsps(sqlite3 *db, struct topo *t)
{
	sqlite3_stmt	*st;
	struct topo_tsp	*tt;
	const char	*id, *host;
	int		 rc;

	memset(t, 0, sizeof(*t));
	st = store_prepare(db, "SELECT tsp_id, host, port, region FROM reg_tsps"
	    " ORDER BY rowid");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    t->t_ntsps < TOPO_MAXTSP) {
		id = (const char *)sqlite3_column_text(st, 0);
		host = (const char *)sqlite3_column_text(st, 1);
		if (id == NULL || host == NULL || !id_valid_name(id) ||
		    strlen(host) >= sizeof(tt->tt_vehicle.ep_host))
			continue;
		tt = &t->t_tsps[t->t_ntsps];
		snprintf(tt->tt_id, sizeof(tt->tt_id), "%s", id);
		snprintf(tt->tt_vehicle.ep_host, sizeof(tt->tt_vehicle.ep_host),
		    "%s", host);
		tt->tt_vehicle.ep_port = (uint16_t)sqlite3_column_int(st, 2);
		if (chip_region_parse((const char *)sqlite3_column_text(st, 3),
		    tt) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
		t->t_ntsps++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_warnx("chip: cannot read the TSP list of M1");
		chip_reg_tsps_free(t);
		return -1;
	}
	return (int)t->t_ntsps;
}

void
chip_reg_tsps_free(struct topo *t)
{
	size_t	i;

	for (i = 0; i < t->t_ntsps; i++)
		free(t->t_tsps[i].tt_region);
	memset(t, 0, sizeof(*t));
}

/* Run a journal statement without a sync of its own (see above). */
static void
chip_journal_step(sqlite3 *db, sqlite3_stmt *st)
{
	store_exec(db, "PRAGMA synchronous = NORMAL");
	store_step_done(st, NULL);
	store_exec(db, "PRAGMA synchronous = FULL");
}

void
chip_event(sqlite3 *db, const char *kind, const char *tsp_id,
    const char *fmt, ...)
{
	sqlite3_stmt	*st;
	va_list		 ap;
	char		 detail[512];

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	st = store_prepare(db, "INSERT INTO events(ms, kind, tsp_id, detail)"
	    " VALUES(?, ?, ?, ?)");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)store_now_ms());
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	if (tsp_id != NULL && tsp_id[0] != '\0')
		sqlite3_bind_text(st, 3, tsp_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
	chip_journal_step(db, st);
	sqlite3_finalize(st);
}

void
chip_count(sqlite3 *db, const char *name, int64_t delta)
{
	sqlite3_stmt	*st;

	st = store_prepare(db, "INSERT INTO counters(name, value) VALUES(?, ?)"
	    " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, delta);
	chip_journal_step(db, st);
	sqlite3_finalize(st);
}

int64_t
chip_counter(sqlite3 *db, const char *name)
{
	sqlite3_stmt	*st;
	int64_t		 v = 0;

	st = store_prepare(db, "SELECT value FROM counters WHERE name = ?");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int
chip_counter_raise(sqlite3 *db, const char *name, int64_t value)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = store_prepare(db, "INSERT INTO counters(name, value) VALUES(?, ?)"
	    " ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	rc = store_step_done(st, NULL);
	sqlite3_finalize(st);
	return rc;
}
