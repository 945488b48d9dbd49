/*
 * qkdd's SQLite store.  keys holds the distilled keys of every SAE pair
 * (sae_a < sae_b); enc_keys marks a key reserved for its master and slave
 * (master_done = 1), dec_keys deletes it and writes its ID, parties and
 * times (never the key) to delivered.  secure_delete overwrites deleted
 * keys in the file.
 *
 * The unreserved keys of each pair are counted once at open and then in
 * memory: an insert adds to its pair's count and a reservation takes from
 * it, as changes of the open transaction that the commit applies and a
 * rollback drops.  dec_keys only deletes reserved keys and leaves the
 * counts alone.  Pairs are found by a hash of their two SAE ids.
 *
 * In a group (qkd_pool_group_begin) the requests share one transaction,
 * opened by the first that changes anything; a dec_keys that is refused
 * undoes its part with a savepoint, and a store error fails the group.
 * A link tick that comes while the group's transaction is open joins it,
 * and its commit or rollback settles the group's changes too: the group
 * then only reports the outcome.
 *
 * Opened on an event loop, the store is synced by a committer (commit.h):
 * a commit only writes the WAL, and the committer thread reports on the
 * loop which commits have reached the disk.  Opened without one, each
 * commit is synced before it returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "crypto.h"
#include "log.h"
#include "pool.h"
#include "rand.h"
#include "store.h"

#define POOL_BUCKETS	64	/* first hash size, doubled as pairs come */

/* One SAE pair's count of unreserved keys. */
struct qkd_pool_pair {
	struct qkd_pool_pair	*pp_next;	/* in its hash bucket */
	struct qkd_pool_pair	*pp_next_dirty;	/* in p_dirty */
	int			 pp_dirty;	/* on p_dirty */
	uint32_t		 pp_hash;
	size_t			 pp_avail;	/* as committed */
	int64_t			 pp_delta;	/* by the open transaction */
	size_t			 pp_counted;	/* scratch of a recount */
	const char		*pp_b;		/* into pp_a's allocation */
	char			 pp_a[];	/* "a\0b\0" */
};

struct qkd_pool {
	sqlite3			*p_db;
	struct committer	*p_commit;	/* NULL: each commit synced */
	sqlite3_stmt		*p_ins;
	sqlite3_stmt		*p_counts;
	sqlite3_stmt		*p_pick;
	sqlite3_stmt		*p_reserve;
	sqlite3_stmt		*p_get;
	sqlite3_stmt		*p_del;
	sqlite3_stmt		*p_deliv;
	sqlite3_stmt		*p_stats;
	struct qkd_pool_pair	**p_buckets;
	size_t			 p_nbuckets;
	size_t			 p_npairs;
	struct qkd_pool_pair	*p_dirty;	/* pairs with a pp_delta */
	int			 p_txn;		/* a transaction is open */
	int			 p_group;	/* a group is open */
	int			 p_group_failed; /* some of its changes are lost */
	int			 p_group_dirty;	/* its transaction holds changes */
	uint64_t		 p_commits;
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

/* FNV-1a over "a\0b". */
static uint32_t
qkd_pool_hash(const char *a, const char *b)
{
	uint32_t	h = 2166136261u;

	for (; *a != '\0'; a++)
		h = (h ^ (uint8_t)*a) * 16777619u;
	h *= 16777619u;
	for (; *b != '\0'; b++)
		h = (h ^ (uint8_t)*b) * 16777619u;
	return h;
}

/* Double the buckets and move every pair over; -1 when out of memory. */
static int
qkd_pool_grow(struct qkd_pool *p)
{
	struct qkd_pool_pair	**nb, *pp, *next;
	size_t			  n = p->p_nbuckets ? 2 * p->p_nbuckets :
				    POOL_BUCKETS, i;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return -1;
	for (i = 0; i < p->p_nbuckets; i++) {
		for (pp = p->p_buckets[i]; pp != NULL; pp = next) {
			next = pp->pp_next;
			pp->pp_next = nb[pp->pp_hash % n];
			nb[pp->pp_hash % n] = pp;
		}
	}
	free(p->p_buckets);
	p->p_buckets = nb;
	p->p_nbuckets = n;
	return 0;
}

/* The pair a < b, added with no keys when create is set; NULL if none. */
static struct qkd_pool_pair *
qkd_pool_find(struct qkd_pool *p, const char *a, const char *b, int create)
{
	struct qkd_pool_pair	*pp;
	uint32_t		 h = qkd_pool_hash(a, b);
	size_t			 la = strlen(a), lb = strlen(b);

	if (p->p_nbuckets > 0) {
		for (pp = p->p_buckets[h % p->p_nbuckets]; pp != NULL;
		    pp = pp->pp_next)
			if (pp->pp_hash == h && strcmp(pp->pp_a, a) == 0 &&
			    strcmp(pp->pp_b, b) == 0)
				return pp;
	}
	if (!create)
		return NULL;
	if (p->p_npairs >= p->p_nbuckets && qkd_pool_grow(p) == -1)
		return NULL;
	if ((pp = calloc(1, sizeof(*pp) + la + lb + 2)) == NULL)
		return NULL;
	memcpy(pp->pp_a, a, la + 1);
	memcpy(pp->pp_a + la + 1, b, lb + 1);
	pp->pp_b = pp->pp_a + la + 1;
	pp->pp_hash = h;
	pp->pp_next = p->p_buckets[h % p->p_nbuckets];
	p->p_buckets[h % p->p_nbuckets] = pp;
	p->p_npairs++;
	return pp;
}

/*
 * Count the unreserved keys of every pair in the store (at open, and
 * after a failed commit); the counts change only if the whole count
 * succeeds.  0 or -1, logged.
 */
static int
qkd_pool_recount(struct qkd_pool *p)
{
	struct qkd_pool_pair	*pp;
	sqlite3_stmt		*st = p->p_counts;
	const char		*a, *b;
	size_t			 i;
	int			 rc;

	for (i = 0; i < p->p_nbuckets; i++)
		for (pp = p->p_buckets[i]; pp != NULL; pp = pp->pp_next)
			pp->pp_counted = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		a = (const char *)sqlite3_column_text(st, 0);
		b = (const char *)sqlite3_column_text(st, 1);
		if (a == NULL || b == NULL)
			continue;
		if ((pp = qkd_pool_find(p, a, b, 1)) == NULL) {
			log_warnx("key count: out of memory");
			store_reset(st);
			return -1;
		}
		pp->pp_counted = (size_t)sqlite3_column_int64(st, 2);
	}
	if (rc != SQLITE_DONE) {
		log_warnx("key count: %s", sqlite3_errmsg(p->p_db));
		store_reset(st);
		return -1;
	}
	store_reset(st);
	for (i = 0; i < p->p_nbuckets; i++)
		for (pp = p->p_buckets[i]; pp != NULL; pp = pp->pp_next)
			pp->pp_avail = pp->pp_counted;
	return 0;
}

/*
 * Open the store (with a committer on base's loop, if given), overwrite
 * deleted keys, prepare the statements, count.
 */
struct qkd_pool *
qkd_pool_open(const char *path, struct event_base *base,
    void (*durable)(uint64_t, void *), void *arg)
{
	struct qkd_pool	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->p_db = store_open(path, pool_schema,
	    sizeof(pool_schema) / sizeof(pool_schema[0]),
	    base != NULL ? STORE_COMMITTER : STORE_SYNC_FULL);
	if (p->p_db == NULL ||
	    store_exec(p->p_db, "PRAGMA secure_delete = ON") == -1 ||
	    (base != NULL && (p->p_commit = committer_start(base, p->p_db,
	    path, durable, arg)) == NULL)) {
		store_close(p->p_db);
		free(p);
		return NULL;
	}
	p->p_ins = store_prepare(p->p_db, "INSERT INTO keys (key_id, sae_a, "
	    "sae_b, key, created_ms) VALUES (?, ?, ?, ?, ?)");
	p->p_counts = store_prepare(p->p_db, "SELECT sae_a, sae_b, count(*) "
	    "FROM keys WHERE master_done = 0 GROUP BY sae_a, sae_b");
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
	if (qkd_pool_recount(p) == -1) {
		qkd_pool_close(p);
		return NULL;
	}
	return p;
}

void
qkd_pool_close(struct qkd_pool *p)
{
	struct qkd_pool_pair	*pp, *next;
	size_t			 i;

	if (p == NULL)
		return;
	/* Whatever is written reaches the disk before the store closes. */
	committer_stop(p->p_commit);
	sqlite3_finalize(p->p_ins);
	sqlite3_finalize(p->p_counts);
	sqlite3_finalize(p->p_pick);
	sqlite3_finalize(p->p_reserve);
	sqlite3_finalize(p->p_get);
	sqlite3_finalize(p->p_del);
	sqlite3_finalize(p->p_deliv);
	sqlite3_finalize(p->p_stats);
	store_close(p->p_db);
	for (i = 0; i < p->p_nbuckets; i++) {
		for (pp = p->p_buckets[i]; pp != NULL; pp = next) {
			next = pp->pp_next;
			free(pp);
		}
	}
	free(p->p_buckets);
	free(p);
}

/* Note d more (or fewer) unreserved keys of pp in the open transaction. */
static void
qkd_pool_change(struct qkd_pool *p, struct qkd_pool_pair *pp, int64_t d)
{
	pp->pp_delta += d;
	if (!pp->pp_dirty) {
		pp->pp_dirty = 1;
		pp->pp_next_dirty = p->p_dirty;
		p->p_dirty = pp;
	}
}

/* End the transaction's changes to the counts, applied or not. */
static void
qkd_pool_settle(struct qkd_pool *p, int apply)
{
	struct qkd_pool_pair	*pp;
	int64_t			 n;

	while ((pp = p->p_dirty) != NULL) {
		p->p_dirty = pp->pp_next_dirty;
		if (apply) {
			n = (int64_t)pp->pp_avail + pp->pp_delta;
			pp->pp_avail = n > 0 ? (size_t)n : 0;
		}
		pp->pp_delta = 0;
		pp->pp_dirty = 0;
		pp->pp_next_dirty = NULL;
	}
	p->p_txn = 0;
	p->p_group_dirty = 0;
}

/* Open a transaction, or join the group's that is open. */
int
qkd_pool_begin(struct qkd_pool *p)
{
	if (p->p_txn) {
		if (!p->p_group)
			fatalx("qkd_pool_begin: a transaction is open");
		return 0;
	}
	if (store_begin(p->p_db) == -1)
		return -1;
	p->p_txn = 1;
	return 0;
}

/*
 * Commit, then apply the transaction's changes to the counts.  A commit
 * that fails has been rolled back; the store is counted again rather
 * than trusted to match the changes dropped.
 */
int
qkd_pool_commit(struct qkd_pool *p)
{
	if (store_commit(p->p_db) == 0) {
		qkd_pool_settle(p, 1);
		p->p_commits++;
		return 0;
	}
	qkd_pool_settle(p, 0);
	if (p->p_group)
		p->p_group_failed = 1;
	if (qkd_pool_recount(p) == -1)
		log_warnx("key counts may be off until the store recovers");
	return -1;
}

void
qkd_pool_rollback(struct qkd_pool *p)
{
	store_rollback(p->p_db);
	qkd_pool_settle(p, 0);
	if (p->p_group)
		p->p_group_failed = 1;
}

void
qkd_pool_group_begin(struct qkd_pool *p)
{
	p->p_group = 1;
}

int
qkd_pool_group_open(const struct qkd_pool *p)
{
	return p->p_group;
}

int
qkd_pool_group_end(struct qkd_pool *p)
{
	int	rc;

	if (!p->p_group)
		return 0;
	if (p->p_txn) {
		if (p->p_group_failed)
			qkd_pool_rollback(p);
		else if (!p->p_group_dirty) {
			/* Refusals only: nothing to store. */
			store_rollback(p->p_db);
			qkd_pool_settle(p, 0);
		} else if (qkd_pool_commit(p) == -1)
			log_warnx("key store: a group of requests failed to "
			    "commit");
	}
	rc = p->p_group_failed ? -1 : 0;
	p->p_group = 0;
	p->p_group_failed = 0;
	p->p_group_dirty = 0;
	return rc;
}

uint64_t
qkd_pool_commits(const struct qkd_pool *p)
{
	return p->p_commits;
}

uint64_t
qkd_pool_written(const struct qkd_pool *p)
{
	return p->p_commit != NULL ? committer_written(p->p_commit) :
	    p->p_commits;
}

uint64_t
qkd_pool_durable(const struct qkd_pool *p)
{
	return p->p_commit != NULL ? committer_durable(p->p_commit) :
	    p->p_commits;
}

/*
 * Start the work of one request: in the group's transaction (opened by
 * the first request that needs it), else in a transaction of its own
 * (*own set).  0, or -1 if it cannot start (a group that failed already
 * takes no more work).
 */
static int
qkd_pool_work_begin(struct qkd_pool *p, int *own)
{
	*own = !p->p_group;
	if (p->p_group && p->p_group_failed)
		return -1;
	if (!p->p_txn && qkd_pool_begin(p) == -1)
		return -1;
	return 0;
}

/* A request's work went wrong in the store: undo it, or fail the group. */
static void
qkd_pool_work_failed(struct qkd_pool *p, int own)
{
	if (own)
		qkd_pool_rollback(p);
	else
		p->p_group_failed = 1;
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
	struct qkd_pool_pair	*pp;
	char			 id[QKD_KEYID_LEN + 1];
	uint64_t		 now = store_now_ms();
	size_t			 i;
	int			 rc = 0;

	if (!p->p_txn)
		fatalx("qkd_pool_add outside a transaction");
	if ((pp = qkd_pool_find(p, a, b, 1)) == NULL) {
		log_warnx("key store: out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		qkd_pool_uuid(id);
		sqlite3_bind_text(p->p_ins, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(p->p_ins, 2, a, -1, SQLITE_STATIC);
		sqlite3_bind_text(p->p_ins, 3, b, -1, SQLITE_STATIC);
		sqlite3_bind_blob(p->p_ins, 4, keys + i * keylen, (int)keylen,
		    SQLITE_STATIC);
		sqlite3_bind_int64(p->p_ins, 5, (sqlite3_int64)now);
		if (store_step_done(p->p_ins, NULL) == -1) {
			rc = -1;
			break;
		}
	}
	/* Those inserted count, should the caller commit them after all. */
	qkd_pool_change(p, pp, (int64_t)i);
	return rc;
}

/* The pair's unreserved keys: committed, and the open transaction's. */
size_t
qkd_pool_available(struct qkd_pool *p, const char *a, const char *b)
{
	struct qkd_pool_pair	*pp;
	int64_t			 n;

	if ((pp = qkd_pool_find(p, a, b, 0)) == NULL)
		return 0;
	n = (int64_t)pp->pp_avail + pp->pp_delta;
	return n > 0 ? (size_t)n : 0;
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

/*
 * Take the oldest free keys for master and slave, all or none.  The count
 * answers "not enough" without a transaction; the keys picked decide
 * otherwise, since a key shorter than keylen does not qualify.
 */
int
qkd_pool_reserve(struct qkd_pool *p, const char *master, const char *slave,
    size_t n, size_t keylen, struct qkd_key *out)
{
	struct qkd_pool_pair	*pp;
	const char		*a, *b;
	uint64_t		 now = store_now_ms();
	size_t			 got, i;
	int			 changes, own;

	qkd_pool_pair(master, slave, &a, &b);
	if (keylen > QKD_KEYMAX)
		return -1;
	if ((pp = qkd_pool_find(p, a, b, 0)) == NULL ||
	    qkd_pool_available(p, a, b) < n)
		return 1;
	if (qkd_pool_work_begin(p, &own) == -1)
		return -1;
	if (qkd_pool_pick(p, a, b, n, keylen, out, &got) == -1)
		goto fail;
	/* Nothing is changed yet: a group has nothing to undo. */
	if (got < n) {
		if (own)
			qkd_pool_rollback(p);
		for (i = 0; i < got; i++)
			crypto_wipe(&out[i], sizeof(out[i]));
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
	qkd_pool_change(p, pp, -(int64_t)n);
	if (own && qkd_pool_commit(p) == -1)
		goto wipe;
	p->p_group_dirty |= !own;
	return 0;
 fail:
	qkd_pool_work_failed(p, own);
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

/*
 * Settle a delivery in a group: keep its changes (RELEASE), or undo them
 * for a refusal (ROLLBACK TO).  A savepoint that cannot be settled, and a
 * store error, fail the group.
 */
static enum qkd_take
qkd_pool_take_settle(struct qkd_pool *p, enum qkd_take res)
{
	if (res == QKD_TAKE_ERROR) {
		p->p_group_failed = 1;
		return res;
	}
	if ((res != QKD_TAKE_OK &&
	    store_exec(p->p_db, "ROLLBACK TO qkd_take") == -1) ||
	    store_exec(p->p_db, "RELEASE qkd_take") == -1) {
		p->p_group_failed = 1;
		return QKD_TAKE_ERROR;
	}
	if (res == QKD_TAKE_OK)
		p->p_group_dirty = 1;
	return res;
}

/* Deliver keys to their slave, all or none, and forget them. */
enum qkd_take
qkd_pool_take(struct qkd_pool *p, const char *master, const char *slave,
    const char *const *ids, size_t n, struct qkd_key *out, size_t *bad)
{
	enum qkd_take	res = QKD_TAKE_OK;
	size_t		i;
	int		own;

	*bad = 0;
	if (qkd_pool_work_begin(p, &own) == -1)
		return QKD_TAKE_ERROR;
	if (!own && store_exec(p->p_db, "SAVEPOINT qkd_take") == -1) {
		p->p_group_failed = 1;
		return QKD_TAKE_ERROR;
	}
	for (i = 0; i < n; i++) {
		if ((res = qkd_pool_take_one(p, master, slave, ids[i],
		    &out[i])) != QKD_TAKE_OK) {
			*bad = i;
			break;
		}
	}
	if (!own)
		res = qkd_pool_take_settle(p, res);
	else if (res == QKD_TAKE_OK && qkd_pool_commit(p) == -1)
		res = QKD_TAKE_ERROR;
	else if (res != QKD_TAKE_OK)
		qkd_pool_rollback(p);
	if (res == QKD_TAKE_OK)
		return QKD_TAKE_OK;
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
