/*
 * What the TSP store tells operators (the /status views of the admin
 * endpoint and the gauges of /metrics): counts and sorted, capped lists
 * read with prepared statements.  No statement here selects a key column
 * (fill_keys.key, registrations.prv, sessions.k1, ck2_bindings.ck2).
 * And the housekeeping of F8: the sweep of idle authentications.
 */
#include <string.h>

#include "log.h"
#include "store.h"

#include "db_backend.h"
#include "db_priv.h"

/*
 * A handover is in flight while it is neither done nor failed; an
 * incoming one only while its CK2 binding is still valid (?1 = now).
 */
#define INFLIGHT							\
	"state NOT IN ('done', 'failed') AND (role = 'out' OR EXISTS"	\
	" (SELECT 1 FROM ck2_bindings b"				\
	" WHERE b.handover_id = handovers.handover_id"			\
	" AND b.expires_ms >= ?1))"

enum tspdb_sstmt {
	T_COUNTS,
	T_SESSIONS,
	T_VEHICLES,
	T_HANDOVERS,
	T_AUTH_EXPIRE,
	T_COUNT
};

_Static_assert(T_COUNT <= TSPDB_MAXSTMT, "too many statements");

static const char *const tspdb_ssql[T_COUNT] = {
	[T_COUNTS] = "SELECT (SELECT count(*) FROM registrations),"
	    " (SELECT count(*) FROM auth), (SELECT count(*) FROM sessions),"
	    " (SELECT count(*) FROM handovers WHERE " INFLIGHT "),"
	    " (SELECT count(*) FROM ck2_bindings WHERE expires_ms >= ?1),"
	    " (SELECT count(*) FROM fills)",
	[T_SESSIONS] = "SELECT vehicle_id, chip_id, key_index, rx_seq, tx_seq,"
	    " opened_ms FROM sessions ORDER BY vehicle_id LIMIT ?1",
	[T_VEHICLES] = "SELECT r.vehicle_id, r.chip_id, r.epoch,"
	    " coalesce(k.next_index, 0), a.vehicle_id IS NOT NULL, a.via,"
	    " s.vehicle_id IS NOT NULL FROM registrations r"
	    " LEFT JOIN keypos k ON k.chip_id = r.chip_id"
	    " LEFT JOIN auth a ON a.vehicle_id = r.vehicle_id"
	    " LEFT JOIN sessions s ON s.vehicle_id = r.vehicle_id"
	    " ORDER BY r.vehicle_id LIMIT ?1",
	[T_HANDOVERS] = "SELECT handover_id, vehicle_id, role, peer, state,"
	    " created_ms FROM handovers WHERE " INFLIGHT
	    " ORDER BY handover_id LIMIT ?2",
	[T_AUTH_EXPIRE] = "DELETE FROM auth WHERE NOT " TSPDB_AUTH_LIVE("?1"),
};

void
tspdb_status_prepare(struct sqlt *db)
{
	size_t	 i;

	for (i = 0; i < T_COUNT; i++)
		db->db_sstmt[i] = store_prepare(db->db_sql, tspdb_ssql[i]);
}

void
tspdb_status_finalize(struct sqlt *db)
{
	size_t	 i;

	for (i = 0; i < T_COUNT; i++)
		sqlite3_finalize(db->db_sstmt[i]);
}

/* Statement i with its bindings cleared, ready for binding. */
static sqlite3_stmt *
sstmt(struct sqlt *db, enum tspdb_sstmt i)
{
	store_reset(db->db_sstmt[i]);
	return db->db_sstmt[i];
}

int
sqlt_counts(struct sqlt *db, uint64_t now_ms, struct tspdb_counts *c)
{
	sqlite3_stmt	*st = sstmt(db, T_COUNTS);
	int64_t		 v[6];

	memset(c, 0, sizeof(*c));
	tspdb_bind_u64(st, 1, now_ms);
	if (store_row_int64(st, v, 6) == -1)
		return -1;
	c->c_vehicles = v[0];
	c->c_authenticated = v[1];
	c->c_sessions = v[2];
	c->c_handovers = v[3];
	c->c_ck2_bindings = v[4];
	c->c_fills = v[5];
	return 0;
}

int64_t
sqlt_auth_expire(struct sqlt *db, uint64_t since_ms)
{
	sqlite3_stmt	*st = sstmt(db, T_AUTH_EXPIRE);
	int		 n;

	if (since_ms == 0)
		return 0;
	if (tspdb_begin(db) == -1)
		return -1;
	tspdb_bind_u64(st, 1, since_ms);
	if (store_step_done(st, &n) == -1) {
		tspdb_abort_tx(db, TSPDB_ERROR);
		return -1;
	}
	return tspdb_commit_tx(db, TSPDB_OK) == TSPDB_OK ? n : -1;
}

/* Text column col as a JSON string, or JSON null when it is NULL. */
static json_t *
column_json_text(sqlite3_stmt *st, int col)
{
	const char	*s = (const char *)sqlite3_column_text(st, col);

	return s != NULL ? json_string(s) : json_null();
}

/* Integer column col as a JSON integer. */
static json_t *
column_json_int(sqlite3_stmt *st, int col)
{
	return json_integer((json_int_t)sqlite3_column_int64(st, col));
}

/*
 * Run st (bound already) and turn each row into an object with row();
 * the array, or NULL on a store error or lack of memory.
 */
static json_t *
status_rows(struct sqlt *db, sqlite3_stmt *st,
    json_t *(*row)(sqlite3_stmt *))
{
	json_t	*a, *o;
	int	 r;

	if ((a = json_array()) == NULL) {
		store_reset(st);
		return NULL;
	}
	while ((r = tspdb_step_row(db, st)) == 1) {
		if ((o = row(st)) == NULL || json_array_append_new(a, o) == -1) {
			store_reset(st);
			json_decref(a);
			return NULL;
		}
	}
	if (r == -1) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* One row of T_SESSIONS (K1 is not selected). */
static json_t *
session_row(sqlite3_stmt *st)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}",
	    "vehicle_id", column_json_text(st, 0),
	    "chip_id", column_json_text(st, 1),
	    "key_index", column_json_int(st, 2),
	    "rx_seq", column_json_int(st, 3),
	    "tx_seq", column_json_int(st, 4),
	    "opened_ms", column_json_int(st, 5));
}

/* One row of T_VEHICLES (Prv is not selected). */
static json_t *
vehicle_row(sqlite3_stmt *st)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:b, s:o, s:b}",
	    "vehicle_id", column_json_text(st, 0),
	    "chip_id", column_json_text(st, 1),
	    "epoch", column_json_int(st, 2),
	    "next_index", column_json_int(st, 3),
	    "authenticated", sqlite3_column_int(st, 4) != 0,
	    "via", column_json_text(st, 5),
	    "session", sqlite3_column_int(st, 6) != 0);
}

/* One row of T_HANDOVERS; the stored role out/in reads source/target. */
static json_t *
handover_row(sqlite3_stmt *st)
{
	const char	*role = (const char *)sqlite3_column_text(st, 2);

	return json_pack("{s:o, s:o, s:s, s:o, s:o, s:o}",
	    "handover_id", column_json_text(st, 0),
	    "vehicle_id", column_json_text(st, 1),
	    "role", role != NULL && strcmp(role, "out") == 0 ? "source" :
	    "target",
	    "peer", column_json_text(st, 3),
	    "state", column_json_text(st, 4),
	    "started_ms", column_json_int(st, 5));
}

/*
 * The sessions held in memory are ahead of their rows: their sequence
 * numbers are the ones in use (the row's tx_seq is only a ceiling).
 */
json_t *
sqlt_status_sessions(struct sqlt *db, size_t max)
{
	sqlite3_stmt	*st = sstmt(db, T_SESSIONS);
	json_t		*a, *o;
	const char	*vid;
	uint64_t	 rx, tx;
	size_t		 i;

	tspdb_bind_u64(st, 1, max);
	if ((a = status_rows(db, st, session_row)) == NULL)
		return NULL;
	json_array_foreach(a, i, o) {
		vid = json_string_value(json_object_get(o, "vehicle_id"));
		if (vid == NULL || tspdb_live_seqs(db->db_live, vid, &rx, &tx) != 1)
			continue;
		json_object_set_new(o, "rx_seq", json_integer((json_int_t)rx));
		json_object_set_new(o, "tx_seq", json_integer((json_int_t)tx));
	}
	return a;
}

json_t *
sqlt_status_vehicles(struct sqlt *db, size_t max)
{
	sqlite3_stmt	*st = sstmt(db, T_VEHICLES);

	tspdb_bind_u64(st, 1, max);
	return status_rows(db, st, vehicle_row);
}

json_t *
sqlt_status_handovers(struct sqlt *db, uint64_t now_ms, size_t max)
{
	sqlite3_stmt	*st = sstmt(db, T_HANDOVERS);

	tspdb_bind_u64(st, 1, now_ms);
	tspdb_bind_u64(st, 2, max);
	return status_rows(db, st, handover_row);
}
