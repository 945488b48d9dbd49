/*
 * schedd's SQLite store.  Each transition of a handover rewrites its row
 * and appends an audit row in the same transaction, so the audit log never
 * disagrees with the state.  Neither table ever holds key material.
 */
#include <stdlib.h>

#include <jansson.h>

#include "commit.h"
#include "db.h"
#include "log.h"
#include "store.h"

struct sched_db {
	sqlite3		*sd_db;
	struct committer *sd_commit;
	sqlite3_stmt	*sd_put;
	sqlite3_stmt	*sd_audit;
	sqlite3_stmt	*sd_known;
	sqlite3_stmt	*sd_counts;
	sqlite3_stmt	*sd_inflight;
};

static const char *const sched_schema[] = {
	"CREATE TABLE handovers ("
	" handover_id TEXT PRIMARY KEY,"
	" initiator TEXT NOT NULL,"
	" target TEXT,"
	" state TEXT NOT NULL,"
	" ck1_key_id TEXT,"
	" ck2_key_id TEXT,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" expires_ms INTEGER NOT NULL,"
	" reason TEXT);"
	"CREATE INDEX handovers_state ON handovers(state);"
	"CREATE TABLE audit ("
	" id INTEGER PRIMARY KEY,"
	" ms INTEGER NOT NULL,"
	" handover_id TEXT NOT NULL,"
	" event TEXT NOT NULL,"
	" detail TEXT);"
	"CREATE INDEX audit_handover ON audit(handover_id, id);",
};

#define SCHED_UNFINISHED	"state NOT IN ('done', 'failed')"

struct sched_db *
sched_db_open(const char *path, struct event_base *base)
{
	struct sched_db	*sd;

	sd = xcalloc(1, sizeof(*sd));
	sd->sd_db = store_open(path, sched_schema,
	    sizeof(sched_schema) / sizeof(sched_schema[0]), STORE_COMMITTER);
	if (sd->sd_db == NULL) {
		free(sd);
		return NULL;
	}
	/*
	 * The committer syncs and checkpoints off the loop.  No answer waits
	 * for it: a handover left unfinished by a crash fails at the restart
	 * (sched_db_recover), and its TSPs degrade to re-authentication.
	 */
	if ((sd->sd_commit = committer_start(base, sd->sd_db, path, NULL,
	    NULL)) == NULL) {
		store_close(sd->sd_db);
		free(sd);
		return NULL;
	}
	sd->sd_put = store_prepare(sd->sd_db, "INSERT OR REPLACE INTO handovers"
	    " (handover_id, initiator, target, state, ck1_key_id, ck2_key_id,"
	    " created_ms, updated_ms, expires_ms, reason)"
	    " VALUES (?,?,?,?,?,?,?,?,?,?)");
	sd->sd_audit = store_prepare(sd->sd_db, "INSERT INTO audit"
	    " (ms, handover_id, event, detail) VALUES (?,?,?,?)");
	sd->sd_known = store_prepare(sd->sd_db,
	    "SELECT 1 FROM handovers WHERE handover_id = ?");
	sd->sd_counts = store_prepare(sd->sd_db, "SELECT"
	    " count(*) FILTER (WHERE " SCHED_UNFINISHED "),"
	    " count(*) FILTER (WHERE state = 'done'),"
	    " count(*) FILTER (WHERE state = 'failed') FROM handovers");
	sd->sd_inflight = store_prepare(sd->sd_db, "SELECT handover_id,"
	    " initiator, target, state, created_ms FROM handovers"
	    " WHERE " SCHED_UNFINISHED " ORDER BY handover_id LIMIT ?");
	return sd;
}

void
sched_db_close(struct sched_db *sd)
{
	if (sd == NULL)
		return;
	committer_stop(sd->sd_commit);
	store_close(sd->sd_db);
	free(sd);
}

int
sched_db_recover(struct sched_db *sd, uint64_t now_ms)
{
	sqlite3_stmt	*audit, *fail;
	int		 n = 0;

	audit = store_prepare(sd->sd_db, "INSERT INTO audit"
	    " (ms, handover_id, event, detail)"
	    " SELECT ?, handover_id, 'failed',"
	    " 'scheduler restarted in state ' || state"
	    " FROM handovers WHERE " SCHED_UNFINISHED);
	fail = store_prepare(sd->sd_db, "UPDATE handovers SET state = 'failed',"
	    " reason = 'scheduler restarted', updated_ms = ?"
	    " WHERE " SCHED_UNFINISHED);
	sqlite3_bind_int64(audit, 1, (sqlite3_int64)now_ms);
	sqlite3_bind_int64(fail, 1, (sqlite3_int64)now_ms);
	if (store_begin(sd->sd_db) == -1)
		n = -1;
	else if (store_step_done(audit, NULL) == -1 ||
	    store_step_done(fail, &n) == -1) {
		store_rollback(sd->sd_db);
		n = -1;
	} else if (store_commit(sd->sd_db) == -1)
		n = -1;
	sqlite3_finalize(audit);
	sqlite3_finalize(fail);
	return n;
}

int
sched_db_known(struct sched_db *sd, const char *id)
{
	int	rc;

	sqlite3_bind_text(sd->sd_known, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(sd->sd_known);
	store_reset(sd->sd_known);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Bind a text column, NULL for NULL. */
static void
sched_db_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, col);
	else
		sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
}

int
sched_db_record(struct sched_db *sd, const struct ho_row *hr,
    const char *event, const char *detail)
{
	sqlite3_stmt	*put = sd->sd_put, *audit = sd->sd_audit;

	sched_db_text(put, 1, hr->hr_id);
	sched_db_text(put, 2, hr->hr_initiator);
	sched_db_text(put, 3, hr->hr_target);
	sched_db_text(put, 4, hr->hr_state);
	sched_db_text(put, 5, hr->hr_ck1_key_id);
	sched_db_text(put, 6, hr->hr_ck2_key_id);
	sqlite3_bind_int64(put, 7, (sqlite3_int64)hr->hr_created_ms);
	sqlite3_bind_int64(put, 8, (sqlite3_int64)hr->hr_updated_ms);
	sqlite3_bind_int64(put, 9, (sqlite3_int64)hr->hr_expires_ms);
	sched_db_text(put, 10, hr->hr_reason);
	sqlite3_bind_int64(audit, 1, (sqlite3_int64)hr->hr_updated_ms);
	sched_db_text(audit, 2, hr->hr_id);
	sched_db_text(audit, 3, event);
	sched_db_text(audit, 4, detail);
	if (store_begin(sd->sd_db) == -1) {
		store_reset(put);
		store_reset(audit);
		return -1;
	}
	if (store_step_done(put, NULL) == -1 ||
	    store_step_done(audit, NULL) == -1) {
		store_reset(put);
		store_reset(audit);
		store_rollback(sd->sd_db);
		return -1;
	}
	return store_commit(sd->sd_db);
}

int
sched_db_counts(struct sched_db *sd, struct sched_db_counts *c)
{
	int64_t	v[3];

	if (store_row_int64(sd->sd_counts, v, 3) == -1)
		return -1;
	c->sc_inflight = v[0];
	c->sc_done = v[1];
	c->sc_failed = v[2];
	return 0;
}

/* Text column col as a JSON string, or JSON null when it is NULL. */
static json_t *
sched_db_json_text(sqlite3_stmt *st, int col)
{
	const char	*s = (const char *)sqlite3_column_text(st, col);

	return s != NULL ? json_string(s) : json_null();
}

json_t *
sched_db_inflight(struct sched_db *sd, size_t max)
{
	sqlite3_stmt	*st = sd->sd_inflight;
	json_t		*a, *o;
	int		 rc;

	if ((a = json_array()) == NULL)
		return NULL;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* The scheduler never learns which vehicle moves. */
		o = json_pack("{s:o, s:n, s:o, s:o, s:o, s:I}",
		    "handover_id", sched_db_json_text(st, 0),
		    "vehicle_id",
		    "from", sched_db_json_text(st, 1),
		    "to", sched_db_json_text(st, 2),
		    "state", sched_db_json_text(st, 3),
		    "started_ms", (json_int_t)sqlite3_column_int64(st, 4));
		if (o == NULL || json_array_append_new(a, o) == -1)
			break;
	}
	store_reset(st);
	if (rc != SQLITE_DONE) {
		if (rc != SQLITE_ROW)
			log_warnx("store: %s", sqlite3_errmsg(sd->sd_db));
		json_decref(a);
		return NULL;
	}
	return a;
}
