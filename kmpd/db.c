/*
 * kmpd's SQLite store.  Serving a party is one transaction: its nonce,
 * the session row, its issued row and an audit row, so that a session
 * key is never issued twice to one party, even across a crash.  The
 * session's key stays in its row only until both parties have it.  The
 * audit log and the views hold IDs and times, never keys.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "commit.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "msg.h"
#include "store.h"

struct kmp_db {
	sqlite3		 *kd_db;
	struct committer *kd_commit;
	sqlite3_stmt	 *kd_ident, *kd_add, *kd_nonce, *kd_slot, *kd_key;
	sqlite3_stmt	 *kd_prune, *kd_nput, *kd_sput, *kd_iput, *kd_audit;
	sqlite3_stmt	 *kd_both, *kd_wipe, *kd_counts, *kd_open;
};

static const char *const kmp_schema[] = {
	"CREATE TABLE identities ("
	" identity TEXT PRIMARY KEY,"
	" kind TEXT NOT NULL CHECK (kind IN ('vehicle', 'encryptor')),"
	" ik BLOB NOT NULL CHECK (length(ik) = 32),"
	" created_ms INTEGER NOT NULL,"
	" added_by TEXT NOT NULL);"
	"CREATE TABLE sessions ("
	" session_id TEXT PRIMARY KEY,"
	" key BLOB CHECK (key IS NULL OR length(key) = 32),"
	" key_id TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" completed_ms INTEGER);"
	"CREATE TABLE issued ("
	" session_id TEXT NOT NULL REFERENCES sessions(session_id),"
	" kind TEXT NOT NULL,"
	" identity TEXT NOT NULL REFERENCES identities(identity),"
	" issued_ms INTEGER NOT NULL,"
	" PRIMARY KEY (session_id, kind),"
	" UNIQUE (session_id, identity));"
	"CREATE TABLE nonces ("
	" identity TEXT NOT NULL,"
	" nonce BLOB NOT NULL,"
	" received_ms INTEGER NOT NULL,"
	" PRIMARY KEY (identity, nonce));"
	"CREATE INDEX nonces_received ON nonces(received_ms);"
	"CREATE TABLE audit ("
	" id INTEGER PRIMARY KEY,"
	" ms INTEGER NOT NULL,"
	" event TEXT NOT NULL,"
	" identity TEXT,"
	" session_id TEXT,"
	" detail TEXT);",
};

static void
kmp_db_prepare(struct kmp_db *kd)
{
	sqlite3	*db = kd->kd_db;

	kd->kd_ident = store_prepare(db, "SELECT kind, ik FROM identities"
	    " WHERE identity = ?");
	kd->kd_add = store_prepare(db, "INSERT OR IGNORE INTO identities"
	    " (identity, kind, ik, created_ms, added_by) VALUES (?,?,?,?,?)");
	kd->kd_nonce = store_prepare(db, "SELECT 1 FROM nonces"
	    " WHERE identity = ? AND nonce = ?");
	kd->kd_slot = store_prepare(db, "SELECT identity FROM issued"
	    " WHERE session_id = ? AND kind = ?");
	kd->kd_key = store_prepare(db, "SELECT key, key_id FROM sessions"
	    " WHERE session_id = ? AND key IS NOT NULL");
	kd->kd_prune = store_prepare(db, "DELETE FROM nonces"
	    " WHERE received_ms < ?");
	kd->kd_nput = store_prepare(db, "INSERT INTO nonces"
	    " (identity, nonce, received_ms) VALUES (?,?,?)");
	kd->kd_sput = store_prepare(db, "INSERT OR IGNORE INTO sessions"
	    " (session_id, key, key_id, created_ms) VALUES (?,?,?,?)");
	kd->kd_iput = store_prepare(db, "INSERT INTO issued"
	    " (session_id, kind, identity, issued_ms) VALUES (?,?,?,?)");
	kd->kd_audit = store_prepare(db, "INSERT INTO audit"
	    " (ms, event, identity, session_id, detail) VALUES (?,?,?,?,?)");
	kd->kd_both = store_prepare(db, "SELECT count(*) FROM issued"
	    " WHERE session_id = ?");
	kd->kd_wipe = store_prepare(db, "UPDATE sessions SET key = NULL,"
	    " completed_ms = ? WHERE session_id = ?");
	kd->kd_counts = store_prepare(db, "SELECT"
	    " (SELECT count(*) FROM identities WHERE kind = 'vehicle'),"
	    " (SELECT count(*) FROM identities WHERE kind = 'encryptor'),"
	    " (SELECT count(*) FROM sessions),"
	    " (SELECT count(*) FROM sessions WHERE key IS NOT NULL),"
	    " (SELECT count(*) FROM issued)");
	kd->kd_open = store_prepare(db, "SELECT s.session_id, s.key_id,"
	    " s.created_ms, i.kind, i.identity FROM sessions s"
	    " JOIN issued i USING (session_id) WHERE s.key IS NOT NULL"
	    " ORDER BY s.session_id LIMIT ?");
}

struct kmp_db *
kmp_db_open(const char *path, struct event_base *base,
    void (*durable)(uint64_t, void *), void *arg)
{
	struct kmp_db	*kd;

	kd = xcalloc(1, sizeof(*kd));
	kd->kd_db = store_open(path, kmp_schema,
	    sizeof(kmp_schema) / sizeof(kmp_schema[0]), STORE_COMMITTER);
	if (kd->kd_db == NULL) {
		free(kd);
		return NULL;
	}
	/* Answers wait for their commit to be durable (conn_barrier). */
	if ((kd->kd_commit = committer_start(base, kd->kd_db, path, durable,
	    arg)) == NULL) {
		store_close(kd->kd_db);
		free(kd);
		return NULL;
	}
	kmp_db_prepare(kd);
	return kd;
}

void
kmp_db_close(struct kmp_db *kd)
{
	if (kd == NULL)
		return;
	committer_stop(kd->kd_commit);
	store_close(kd->kd_db);
	free(kd);
}

uint64_t
kmp_db_written(struct kmp_db *kd)
{
	return committer_written(kd->kd_commit);
}

int
kmp_db_identity(struct kmp_db *kd, const char *identity,
    struct kmp_identity *ki)
{
	sqlite3_stmt	*st = kd->kd_ident;
	const void	*ik;
	int		 rc;

	sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ik = sqlite3_column_blob(st, 1);
		if (ik == NULL || sqlite3_column_bytes(st, 1) != 32) {
			store_reset(st);
			return -1;
		}
		snprintf(ki->ki_kind, sizeof(ki->ki_kind), "%s",
		    (const char *)sqlite3_column_text(st, 0));
		memcpy(ki->ki_ik, ik, 32);
	}
	store_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* One audit row (no key material ever goes into detail). */
static int
kmp_db_audit(struct kmp_db *kd, uint64_t ms, const char *event,
    const char *identity, const char *session_id, const char *detail)
{
	sqlite3_stmt	*st = kd->kd_audit;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ms);
	sqlite3_bind_text(st, 2, event, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, identity, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, session_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, detail, -1, SQLITE_STATIC);
	return store_step_done(st, NULL);
}

/* An identity exists: 2 if with this kind and key, 1 if not, -1. */
static int
kmp_db_same_identity(struct kmp_db *kd, const char *identity,
    const char *kind, const uint8_t ik[32])
{
	struct kmp_identity	ki;
	int			rc;

	if ((rc = kmp_db_identity(kd, identity, &ki)) != 1)
		return -1;
	rc = strcmp(ki.ki_kind, kind) == 0 &&
	    CRYPTO_memcmp(ki.ki_ik, ik, 32) == 0 ? 2 : 1;
	crypto_wipe(&ki, sizeof(ki));
	return rc;
}

int
kmp_db_add_identity(struct kmp_db *kd, const char *identity,
    const char *kind, const uint8_t ik[32], uint64_t now_ms, const char *by)
{
	sqlite3_stmt	*st = kd->kd_add;
	int		 n = 0;

	sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, ik, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)now_ms);
	sqlite3_bind_text(st, 5, by, -1, SQLITE_STATIC);
	if (store_begin(kd->kd_db) == -1) {
		store_reset(st);
		return -1;
	}
	if (store_step_done(st, &n) == -1 || (n == 1 && kmp_db_audit(kd,
	    now_ms, "identity-added", identity, NULL, kind) == -1)) {
		store_rollback(kd->kd_db);
		return -1;
	}
	if (n == 0) {
		store_rollback(kd->kd_db);
		return kmp_db_same_identity(kd, identity, kind, ik);
	}
	return store_commit(kd->kd_db) == -1 ? -1 : 0;
}

int
kmp_db_nonce_seen(struct kmp_db *kd, const char *identity,
    const uint8_t *nonce)
{
	sqlite3_stmt	*st = kd->kd_nonce;
	int		 rc;

	sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, nonce, MSG_KMP_NONCELEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	store_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
kmp_db_slot(struct kmp_db *kd, const char *session_id, const char *kind,
    const char *identity)
{
	sqlite3_stmt	*st = kd->kd_slot;
	int		 rc, same = 0;

	sqlite3_bind_text(st, 1, session_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		same = strcmp((const char *)sqlite3_column_text(st, 0),
		    identity) == 0;
	store_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	return rc == SQLITE_ROW ? (same ? 1 : 2) : -1;
}

int
kmp_db_session_key(struct kmp_db *kd, const char *session_id,
    uint8_t key[32], char *key_id, size_t key_id_len)
{
	sqlite3_stmt	*st = kd->kd_key;
	int		 rc;

	sqlite3_bind_text(st, 1, session_id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != 32) {
			store_reset(st);
			return -1;
		}
		memcpy(key, sqlite3_column_blob(st, 0), 32);
		snprintf(key_id, key_id_len, "%s",
		    (const char *)sqlite3_column_text(st, 1));
	}
	store_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* The statements of an issue, inside its transaction. */
static int
kmp_db_issue_steps(struct kmp_db *kd, const struct kmp_issue *is,
    int *complete)
{
	int64_t		 n;

	sqlite3_bind_int64(kd->kd_prune, 1, (sqlite3_int64)is->is_prune_ms);
	sqlite3_bind_text(kd->kd_nput, 1, is->is_identity, -1, SQLITE_STATIC);
	sqlite3_bind_blob(kd->kd_nput, 2, is->is_nonce, MSG_KMP_NONCELEN,
	    SQLITE_STATIC);
	sqlite3_bind_int64(kd->kd_nput, 3, (sqlite3_int64)is->is_now_ms);
	sqlite3_bind_text(kd->kd_sput, 1, is->is_session_id, -1,
	    SQLITE_STATIC);
	sqlite3_bind_blob(kd->kd_sput, 2, is->is_key, 32, SQLITE_STATIC);
	sqlite3_bind_text(kd->kd_sput, 3, is->is_key_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(kd->kd_sput, 4, (sqlite3_int64)is->is_now_ms);
	sqlite3_bind_text(kd->kd_iput, 1, is->is_session_id, -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(kd->kd_iput, 2, is->is_kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(kd->kd_iput, 3, is->is_identity, -1, SQLITE_STATIC);
	sqlite3_bind_int64(kd->kd_iput, 4, (sqlite3_int64)is->is_now_ms);
	sqlite3_bind_text(kd->kd_both, 1, is->is_session_id, -1,
	    SQLITE_STATIC);
	if (store_step_done(kd->kd_prune, NULL) == -1 ||
	    store_step_done(kd->kd_nput, NULL) == -1 ||
	    store_step_done(kd->kd_sput, NULL) == -1 ||
	    store_step_done(kd->kd_iput, NULL) == -1 ||
	    kmp_db_audit(kd, is->is_now_ms, "issued", is->is_identity,
	    is->is_session_id, is->is_kind) == -1 ||
	    store_row_int64(kd->kd_both, &n, 1) == -1)
		return -1;
	*complete = n >= 2;
	if (!*complete)
		return 0;
	sqlite3_bind_int64(kd->kd_wipe, 1, (sqlite3_int64)is->is_now_ms);
	sqlite3_bind_text(kd->kd_wipe, 2, is->is_session_id, -1,
	    SQLITE_STATIC);
	if (store_step_done(kd->kd_wipe, NULL) == -1 ||
	    kmp_db_audit(kd, is->is_now_ms, "complete", NULL,
	    is->is_session_id, "key wiped: both parties served") == -1)
		return -1;
	return 0;
}

int
kmp_db_issue(struct kmp_db *kd, const struct kmp_issue *is, int *complete)
{
	sqlite3_stmt	*all[] = { kd->kd_prune, kd->kd_nput, kd->kd_sput,
			    kd->kd_iput, kd->kd_audit, kd->kd_both,
			    kd->kd_wipe };
	size_t		 i;

	*complete = 0;
	if (store_begin(kd->kd_db) == -1)
		return -1;
	if (kmp_db_issue_steps(kd, is, complete) == -1) {
		for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			store_reset(all[i]);
		store_rollback(kd->kd_db);
		return -1;
	}
	return store_commit(kd->kd_db);
}

int
kmp_db_counts(struct kmp_db *kd, struct kmp_db_counts *c)
{
	int64_t	v[5];

	if (store_row_int64(kd->kd_counts, v, 5) == -1)
		return -1;
	c->kc_vehicles = v[0];
	c->kc_encryptors = v[1];
	c->kc_sessions = v[2];
	c->kc_sessions_open = v[3];
	c->kc_issued = v[4];
	return 0;
}

json_t *
kmp_db_open_sessions(struct kmp_db *kd, size_t max)
{
	sqlite3_stmt	*st = kd->kd_open;
	json_t		*a;
	int		 rc;

	if ((a = json_array()) == NULL)
		return NULL;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:s, s:s}",
		    "session_id", (const char *)sqlite3_column_text(st, 0),
		    "key_id", (const char *)sqlite3_column_text(st, 1),
		    "created_ms", (json_int_t)sqlite3_column_int64(st, 2),
		    "served_kind", (const char *)sqlite3_column_text(st, 3),
		    "served_identity",
		    (const char *)sqlite3_column_text(st, 4)));
	store_reset(st);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return NULL;
	}
	return a;
}
