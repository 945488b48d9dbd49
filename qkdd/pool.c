/*
 * qkdd's SQLite store.  keys holds the distilled keys of every SAE pair
 * (sae_a < sae_b); enc_keys marks a key reserved for its master and slave
 * (master_done = 1), dec_keys deletes it and writes its ID, parties and
 * times (never the key) to delivered.  secure_delete overwrites deleted
 * keys in the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "pool.h"
#include "rand.h"
#include "store.h"

struct qkd_pool {
	sqlite3		*p_db;
	sqlite3_stmt	*p_ins;
	sqlite3_stmt	*p_avail;
	sqlite3_stmt	*p_pick;
	sqlite3_stmt	*p_reserve;
	sqlite3_stmt	*p_get;
	sqlite3_stmt	*p_del;
	sqlite3_stmt	*p_deliv;
	sqlite3_stmt	*p_stats;
};

static const char *const pool_schema[] = {
	"CREATE TABLE keys ("
	" key_id TEXT PRIMARY KEY,"
	" sae_a TEXT NOT NULL, sae_b TEXT NOT NULL,"
	" key BLOB NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" master TEXT, slave TEXT,"
	" master_done INTEGER NOT NULL DEFAULT 0,"
	" reserved_ms INTEGER);"
	"CREATE INDEX keys_pair ON keys(sae_a, sae_b, master_done);"
	"CREATE TABLE delivered ("
	" key_id TEXT PRIMARY KEY,"
	" sae_a TEXT NOT NULL, sae_b TEXT NOT NULL,"
	" master TEXT NOT NULL, slave TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL, enc_ms INTEGER NOT NULL,"
	" dec_ms INTEGER NOT NULL);"
	"CREATE TABLE links ("
	" sae_a TEXT NOT NULL, sae_b TEXT NOT NULL,"
	" qber REAL, eavesdropper REAL NOT NULL, secret_bps REAL NOT NULL,"
	" keys_made INTEGER NOT NULL, aborts INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" PRIMARY KEY (sae_a, sae_b));",
};

/* Open the store, overwrite deleted keys, prepare the statements. */
struct qkd_pool *
qkd_pool_open(const char *path)
{
	struct qkd_pool	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->p_db = store_open(path, pool_schema,
	    sizeof(pool_schema) / sizeof(pool_schema[0]), 1);
	if (p->p_db == NULL ||
	    store_exec(p->p_db, "PRAGMA secure_delete = ON") == -1) {
		store_close(p->p_db);
		free(p);
		return NULL;
	}
	p->p_ins = store_prepare(p->p_db, "INSERT INTO keys (key_id, sae_a, "
	    "sae_b, key, created_ms) VALUES (?, ?, ?, ?, ?)");
	p->p_avail = store_prepare(p->p_db, "SELECT count(*) FROM keys "
	    "WHERE sae_a = ? AND sae_b = ? AND master_done = 0");
	p->p_pick = store_prepare(p->p_db, "SELECT key_id, key FROM keys "
	    "WHERE sae_a = ? AND sae_b = ? AND master_done = 0 "
	    "ORDER BY rowid LIMIT ?");
	p->p_reserve = store_prepare(p->p_db, "UPDATE keys SET master = ?, "
	    "slave = ?, master_done = 1, reserved_ms = ?, key = ? "
	    "WHERE key_id = ? AND master_done = 0");
	p->p_get = store_prepare(p->p_db, "SELECT key, master, slave, "
	    "master_done, sae_a, sae_b, created_ms, reserved_ms FROM keys "
	    "WHERE key_id = ?");
	p->p_del = store_prepare(p->p_db, "DELETE FROM keys WHERE key_id = ?");
	p->p_deliv = store_prepare(p->p_db, "INSERT INTO delivered (key_id, "
	    "sae_a, sae_b, master, slave, created_ms, enc_ms, dec_ms) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
	p->p_stats = store_prepare(p->p_db, "INSERT OR REPLACE INTO links "
	    "(sae_a, sae_b, qber, eavesdropper, secret_bps, keys_made, aborts, "
	    "updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
	return p;
}

void
qkd_pool_close(struct qkd_pool *p)
{
	if (p == NULL)
		return;
	sqlite3_finalize(p->p_ins);
	sqlite3_finalize(p->p_avail);
	sqlite3_finalize(p->p_pick);
	sqlite3_finalize(p->p_reserve);
	sqlite3_finalize(p->p_get);
	sqlite3_finalize(p->p_del);
	sqlite3_finalize(p->p_deliv);
	sqlite3_finalize(p->p_stats);
	store_close(p->p_db);
	free(p);
}

int
qkd_pool_begin(struct qkd_pool *p)
{
	return store_begin(p->p_db);
}

int
qkd_pool_commit(struct qkd_pool *p)
{
	return store_commit(p->p_db);
}

void
qkd_pool_rollback(struct qkd_pool *p)
{
	store_rollback(p->p_db);
}

/* A random (version 4) UUID in lowercase text. */
static void
qkd_pool_uuid(char out[QKD_KEYID_LEN + 1])
{
	uint8_t	u[16];

	qrand_bytes(u, sizeof(u));
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(out, QKD_KEYID_LEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4],
	    u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
	    u[15]);
}

/* Insert keys under fresh UUIDs inside the caller's transaction. */
int
qkd_pool_add(struct qkd_pool *p, const char *a, const char *b,
    const uint8_t *keys, size_t n, size_t keylen)
{
	char		id[QKD_KEYID_LEN + 1];
	uint64_t	now = store_now_ms();
	size_t		i;

	for (i = 0; i < n; i++) {
		qkd_pool_uuid(id);
		sqlite3_bind_text(p->p_ins, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(p->p_ins, 2, a, -1, SQLITE_STATIC);
		sqlite3_bind_text(p->p_ins, 3, b, -1, SQLITE_STATIC);
		sqlite3_bind_blob(p->p_ins, 4, keys + i * keylen, (int)keylen,
		    SQLITE_STATIC);
		sqlite3_bind_int64(p->p_ins, 5, (sqlite3_int64)now);
		if (store_step_done(p->p_ins, NULL) == -1)
			return -1;
	}
	return 0;
}

/* Count the pair's keys that no master has taken yet. */
int
qkd_pool_available(struct qkd_pool *p, const char *a, const char *b,
    size_t *count)
{
	int	rc;

	sqlite3_bind_text(p->p_avail, 1, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(p->p_avail, 2, b, -1, SQLITE_STATIC);
	rc = sqlite3_step(p->p_avail);
	if (rc == SQLITE_ROW)
		*count = (size_t)sqlite3_column_int64(p->p_avail, 0);
	else
		log_warnx("key count: %s", sqlite3_errmsg(p->p_db));
	store_reset(p->p_avail);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* The pair of two SAE ids in store order. */
static void
qkd_pool_pair(const char *x, const char *y, const char **a, const char **b)
{
	if (strcmp(x, y) < 0) {
		*a = x;
		*b = y;
	} else {
		*a = y;
		*b = x;
	}
}

/* Up to n unreserved keys of the pair into out; how many into *got. */
static int
qkd_pool_pick(struct qkd_pool *p, const char *a, const char *b, size_t n,
    size_t keylen, struct qkd_key *out, size_t *got)
{
	const void	*blob;
	int		 rc, len;

	*got = 0;
	sqlite3_bind_text(p->p_pick, 1, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(p->p_pick, 2, b, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p->p_pick, 3, (sqlite3_int64)n);
	while ((rc = sqlite3_step(p->p_pick)) == SQLITE_ROW) {
		blob = sqlite3_column_blob(p->p_pick, 1);
		len = sqlite3_column_bytes(p->p_pick, 1);
		if (blob == NULL || len < 0 || (size_t)len < keylen)
			continue;	/* shorter than asked: leave it */
		snprintf(out[*got].qk_id, sizeof(out[*got].qk_id), "%s",
		    (const char *)sqlite3_column_text(p->p_pick, 0));
		memcpy(out[*got].qk_key, blob, keylen);
		out[*got].qk_len = keylen;
		(*got)++;
	}
	if (rc != SQLITE_DONE)
		log_warnx("key selection: %s", sqlite3_errmsg(p->p_db));
	store_reset(p->p_pick);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Take the oldest free keys for master and slave, all or none. */
int
qkd_pool_reserve(struct qkd_pool *p, const char *master, const char *slave,
    size_t n, size_t keylen, struct qkd_key *out)
{
	const char	*a, *b;
	uint64_t	 now = store_now_ms();
	size_t		 got, i;
	int		 changes;

	qkd_pool_pair(master, slave, &a, &b);
	if (keylen > QKD_KEYMAX || store_begin(p->p_db) == -1)
		return -1;
	if (qkd_pool_pick(p, a, b, n, keylen, out, &got) == -1)
		goto fail;
	if (got < n) {
		store_rollback(p->p_db);
		return 1;
	}
	for (i = 0; i < n; i++) {
		sqlite3_bind_text(p->p_reserve, 1, master, -1, SQLITE_STATIC);
		sqlite3_bind_text(p->p_reserve, 2, slave, -1, SQLITE_STATIC);
		sqlite3_bind_int64(p->p_reserve, 3, (sqlite3_int64)now);
		sqlite3_bind_blob(p->p_reserve, 4, out[i].qk_key, (int)keylen,
		    SQLITE_STATIC);
		sqlite3_bind_text(p->p_reserve, 5, out[i].qk_id, -1,
		    SQLITE_STATIC);
		if (store_step_done(p->p_reserve, &changes) == -1 ||
		    changes != 1)
			goto fail;
	}
	if (store_commit(p->p_db) == -1)
		goto wipe;
	return 0;
 fail:
	store_rollback(p->p_db);
 wipe:
	for (i = 0; i < n; i++)
		crypto_wipe(&out[i], sizeof(out[i]));
	return -1;
}

/* Column i of the statement as text, "" when NULL. */
static const char *
qkd_pool_text(sqlite3_stmt *st, int i)
{
	const unsigned char	*s = sqlite3_column_text(st, i);

	return s != NULL ? (const char *)s : "";
}

/*
 * One key of a dec_keys request: checks it was reserved for master and
 * slave, copies it to out, records the delivery and deletes it.
 */
static enum qkd_take
qkd_pool_take_one(struct qkd_pool *p, const char *master, const char *slave,
    const char *id, struct qkd_key *out)
{
	sqlite3_stmt	*g = p->p_get;
	enum qkd_take	 res = QKD_TAKE_ERROR;
	int		 rc, len;

	sqlite3_bind_text(g, 1, id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(g)) != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			res = QKD_TAKE_NOTFOUND;
		else
			log_warnx("key lookup: %s", sqlite3_errmsg(p->p_db));
		goto out;
	}
	if (sqlite3_column_int(g, 3) == 0) {
		res = QKD_TAKE_NOTFOUND;	/* never issued to a master */
		goto out;
	}
	if (strcmp(qkd_pool_text(g, 1), master) != 0 ||
	    strcmp(qkd_pool_text(g, 2), slave) != 0) {
		res = QKD_TAKE_DENIED;
		goto out;
	}
	len = sqlite3_column_bytes(g, 0);
	if (len <= 0 || len > QKD_KEYMAX)
		goto out;
	memcpy(out->qk_key, sqlite3_column_blob(g, 0), (size_t)len);
	out->qk_len = (size_t)len;
	snprintf(out->qk_id, sizeof(out->qk_id), "%s", id);
	sqlite3_bind_text(p->p_deliv, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(p->p_deliv, 2, qkd_pool_text(g, 4), -1,
	    SQLITE_TRANSIENT);
	sqlite3_bind_text(p->p_deliv, 3, qkd_pool_text(g, 5), -1,
	    SQLITE_TRANSIENT);
	sqlite3_bind_text(p->p_deliv, 4, master, -1, SQLITE_STATIC);
	sqlite3_bind_text(p->p_deliv, 5, slave, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p->p_deliv, 6, sqlite3_column_int64(g, 6));
	sqlite3_bind_int64(p->p_deliv, 7, sqlite3_column_int64(g, 7));
	sqlite3_bind_int64(p->p_deliv, 8, (sqlite3_int64)store_now_ms());
	store_reset(g);
	sqlite3_bind_text(p->p_del, 1, id, -1, SQLITE_STATIC);
	if (store_step_done(p->p_deliv, NULL) == -1 ||
	    store_step_done(p->p_del, NULL) == -1)
		return QKD_TAKE_ERROR;
	return QKD_TAKE_OK;
 out:
	store_reset(g);
	return res;
}

/* Deliver keys to their slave, all or none, and forget them. */
enum qkd_take
qkd_pool_take(struct qkd_pool *p, const char *master, const char *slave,
    const char *const *ids, size_t n, struct qkd_key *out, size_t *bad)
{
	enum qkd_take	res = QKD_TAKE_OK;
	size_t		i;

	*bad = 0;
	if (store_begin(p->p_db) == -1)
		return QKD_TAKE_ERROR;
	for (i = 0; i < n; i++) {
		if ((res = qkd_pool_take_one(p, master, slave, ids[i],
		    &out[i])) != QKD_TAKE_OK) {
			*bad = i;
			break;
		}
	}
	if (res == QKD_TAKE_OK && store_commit(p->p_db) == 0)
		return QKD_TAKE_OK;
	if (res == QKD_TAKE_OK)
		res = QKD_TAKE_ERROR;
	else
		store_rollback(p->p_db);
	for (i = 0; i < n; i++)
		crypto_wipe(&out[i], sizeof(out[i]));
	return res;
}

/* Upsert a link's statistics row. */
int
qkd_pool_link_stats(struct qkd_pool *p, const char *a, const char *b,
    double qber, double eve, double secret_bps, uint64_t keys_made,
    uint64_t aborts)
{
	sqlite3_stmt	*st = p->p_stats;

	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	if (qber >= 0.0)
		sqlite3_bind_double(st, 3, qber);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_double(st, 4, eve);
	sqlite3_bind_double(st, 5, secret_bps);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)keys_made);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)aborts);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)store_now_ms());
	return store_step_done(st, NULL);
}
