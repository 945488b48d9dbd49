/*
 * The sessions of the TSP store as held in memory, so that a session
 * message costs no SELECT and K1's cipher context is made once.  The
 * sessions table stays the durable truth: an entry is made when an M3
 * opens a session (tspdb_session_open) or on a vehicle's first message
 * after a restart (loaded from its row), and goes when the session ends,
 * the vehicle authenticates or registers anew, a handover step changes
 * the row, or the vehicle's last connection closes.  Telemetry advances
 * an entry's sequence numbers at once and marks it dirty; the batch
 * writes each dirty entry's row once, in its own transaction.
 *
 * Answers to telemetry leave before their batch commits (service first),
 * so the row's tx_seq is not the last cloud->vehicle seq used but a
 * ceiling above every seq used so far, raised TSPDB_TX_AHEAD at a time: an
 * answer may leave at once while its seq is at or below a ceiling that is
 * durable, and a TSP that restarts continues above the ceiling, so no
 * seq is ever sealed twice under one K1.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"

#include "db_priv.h"

#define LIVE_MINBUCKETS	1024

struct tspdb_live {
	struct tspdb_session	 sl_sess;	/* s_aead: K1's context */
	uint64_t		 sl_rx_stored;	/* as in the sessions row */
	uint64_t		 sl_tx_stored;	/* the row's ceiling */
	uint64_t		 sl_tx_ceiling;	/* the ceiling the batch writes */
	uint64_t		 sl_ceiling_gen; /* commit that wrote sl_tx_stored */
	int			 sl_dirty;	/* numbers ahead of the row */
	int			 sl_release;	/* free after the commit */
	struct tspdb_live	*sl_next;	/* hash chain */
	struct tspdb_live	*sl_dirty_next;
};

struct tspdb_ltab {
	struct tspdb_live	**lt_bucket;
	size_t			  lt_nbucket;	/* a power of two */
	size_t			  lt_count;
	struct tspdb_live	 *lt_dirty;
};

/* FNV-1a of a vehicle ID. */
static size_t
live_hash(const char *vid)
{
	uint32_t	 h = 2166136261u;

	while (*vid != '\0')
		h = (h ^ (uint8_t)*vid++) * 16777619u;
	return h;
}

void
tspdb_live_init(struct tspdb *db)
{
	struct tspdb_ltab	*lt;

	lt = xcalloc(1, sizeof(*lt));
	lt->lt_nbucket = LIVE_MINBUCKETS;
	lt->lt_bucket = xcalloc(lt->lt_nbucket, sizeof(*lt->lt_bucket));
	db->db_live = lt;
}

/* Wipe K1 and its context and free the entry. */
static void
live_destroy(struct tspdb_live *sl)
{
	crypto_aead_free(sl->sl_sess.s_aead);
	crypto_wipe(sl, sizeof(*sl));
	free(sl);
}

void
tspdb_live_free(struct tspdb *db)
{
	struct tspdb_ltab	*lt = db->db_live;
	struct tspdb_live	*sl;
	size_t			 i;

	if (lt == NULL)
		return;
	for (i = 0; i < lt->lt_nbucket; i++) {
		while ((sl = lt->lt_bucket[i]) != NULL) {
			lt->lt_bucket[i] = sl->sl_next;
			live_destroy(sl);
		}
	}
	free(lt->lt_bucket);
	free(lt);
	db->db_live = NULL;
}

/* The link that points at vid's entry (or the chain's NULL end). */
static struct tspdb_live **
live_slot(struct tspdb_ltab *lt, const char *vid)
{
	struct tspdb_live	**p;

	p = &lt->lt_bucket[live_hash(vid) & (lt->lt_nbucket - 1)];
	while (*p != NULL && strcmp((*p)->sl_sess.s_vid, vid) != 0)
		p = &(*p)->sl_next;
	return p;
}

/* Double the buckets when the table is full; kept as is if memory is short. */
static void
live_grow(struct tspdb_ltab *lt)
{
	struct tspdb_live	**nb, *sl;
	size_t			  i, n = lt->lt_nbucket * 2, h;

	if (lt->lt_count < lt->lt_nbucket ||
	    (nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (i = 0; i < lt->lt_nbucket; i++) {
		while ((sl = lt->lt_bucket[i]) != NULL) {
			lt->lt_bucket[i] = sl->sl_next;
			h = live_hash(sl->sl_sess.s_vid) & (n - 1);
			sl->sl_next = nb[h];
			nb[h] = sl;
		}
	}
	free(lt->lt_bucket);
	lt->lt_bucket = nb;
	lt->lt_nbucket = n;
}

/*
 * Enter session s with a new context for its K1, its row's tx_seq ceiling
 * written by commit gen; NULL if short.
 */
static struct tspdb_live *
live_insert(struct tspdb_ltab *lt, const struct tspdb_session *s,
    uint64_t ceiling, uint64_t gen)
{
	struct tspdb_live	*sl, **p;

	if ((sl = calloc(1, sizeof(*sl))) == NULL)
		return NULL;
	sl->sl_sess = *s;
	if ((sl->sl_sess.s_aead = crypto_aead_new(s->s_k1)) == NULL) {
		live_destroy(sl);
		return NULL;
	}
	sl->sl_rx_stored = s->s_rx_seq;
	sl->sl_tx_stored = sl->sl_tx_ceiling = ceiling;
	sl->sl_ceiling_gen = gen;
	live_grow(lt);
	p = live_slot(lt, s->s_vid);
	sl->sl_next = NULL;
	*p = sl;
	lt->lt_count++;
	return sl;
}

struct tspdb_live *
tspdb_live_get(struct tspdb *db, const char *vid)
{
	return *live_slot(db->db_live, vid);
}

int
tspdb_live_load(struct tspdb *db, const char *vid, struct tspdb_live **slp)
{
	struct tspdb_session	 s;
	int			 r;

	if ((*slp = tspdb_live_get(db, vid)) != NULL)
		return 1;
	if ((r = tspdb_session_select(db, vid, &s)) != 1)
		return r;
	/* Continue above the ceiling: seqs below it may have been used. */
	*slp = live_insert(db->db_live, &s, s.s_tx_seq, tspdb_written(db));
	crypto_wipe(&s, sizeof(s));
	if (*slp == NULL) {
		log_warn("session of %s", vid);
		return -1;
	}
	return 1;
}

const struct tspdb_session *
tspdb_live_session(const struct tspdb_live *sl)
{
	return &sl->sl_sess;
}

void
tspdb_live_put(struct tspdb *db, const struct tspdb_session *s,
    uint64_t ceiling)
{
	tspdb_live_forget(db, s->s_vid);
	if (live_insert(db->db_live, s, ceiling, tspdb_written(db)) == NULL)
		log_warn("session of %s kept in the store only", s->s_vid);
}

/* Take sl off the dirty list. */
static void
live_undirty(struct tspdb_ltab *lt, struct tspdb_live *sl)
{
	struct tspdb_live	**p;

	for (p = &lt->lt_dirty; *p != NULL; p = &(*p)->sl_dirty_next)
		if (*p == sl) {
			*p = sl->sl_dirty_next;
			break;
		}
	sl->sl_dirty = 0;
	sl->sl_dirty_next = NULL;
}

/* Unlink and free vid's entry, if there is one. */
static void
live_remove(struct tspdb_ltab *lt, const char *vid)
{
	struct tspdb_live	**p, *sl;

	p = live_slot(lt, vid);
	if ((sl = *p) == NULL)
		return;
	if (sl->sl_dirty)
		live_undirty(lt, sl);
	*p = sl->sl_next;
	lt->lt_count--;
	live_destroy(sl);
}

void
tspdb_live_forget(struct tspdb *db, const char *vid)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(db, vid)) == NULL)
		return;
	if (sl->sl_dirty)
		tspdb_batch_settle(db);
	live_remove(db->db_live, vid);
}

void
tspdb_session_release(struct tspdb *db, const char *vid)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(db, vid)) == NULL)
		return;
	if (sl->sl_dirty)
		sl->sl_release = 1;
	else
		live_remove(db->db_live, vid);
}

int
tspdb_live_advance(struct tspdb *db, struct tspdb_live *sl, uint64_t rx_seq,
    uint64_t tx_seq)
{
	sl->sl_sess.s_rx_seq = rx_seq;
	if (tx_seq > sl->sl_sess.s_tx_seq)
		sl->sl_sess.s_tx_seq = tx_seq;
	if (sl->sl_sess.s_tx_seq + TSPDB_TX_AHEAD / 2 > sl->sl_tx_ceiling)
		sl->sl_tx_ceiling = sl->sl_sess.s_tx_seq + TSPDB_TX_AHEAD;
	if (!sl->sl_dirty) {
		sl->sl_dirty = 1;
		sl->sl_dirty_next = db->db_live->lt_dirty;
		db->db_live->lt_dirty = sl;
	}
	return tx_seq <= sl->sl_tx_stored &&
	    sl->sl_ceiling_gen <= tspdb_durable(db);
}

int
tspdb_live_seqs(struct tspdb *db, const char *vid, uint64_t *rx_seq,
    uint64_t *tx_seq)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(db, vid)) == NULL)
		return 0;
	*rx_seq = sl->sl_sess.s_rx_seq;
	*tx_seq = sl->sl_sess.s_tx_seq;
	return 1;
}

int
tspdb_live_write(struct tspdb *db)
{
	struct tspdb_live	*sl;

	for (sl = db->db_live->lt_dirty; sl != NULL; sl = sl->sl_dirty_next)
		if (tspdb_session_seq_write(db, sl->sl_sess.s_vid,
		    sl->sl_sess.s_rx_seq, sl->sl_tx_ceiling) == -1)
			return -1;
	return 0;
}

void
tspdb_live_settled(struct tspdb *db, int committed)
{
	struct tspdb_ltab	*lt = db->db_live;
	struct tspdb_live	*sl;
	char			 vid[VIN_LEN + 1];

	while ((sl = lt->lt_dirty) != NULL) {
		lt->lt_dirty = sl->sl_dirty_next;
		sl->sl_dirty = 0;
		sl->sl_dirty_next = NULL;
		/*
		 * After a rollback the numbers in memory stay: answers under
		 * them may have left, and no seq may serve twice.
		 */
		if (committed) {
			sl->sl_rx_stored = sl->sl_sess.s_rx_seq;
			if (sl->sl_tx_stored != sl->sl_tx_ceiling) {
				sl->sl_tx_stored = sl->sl_tx_ceiling;
				sl->sl_ceiling_gen = tspdb_written(db);
			}
		} else
			sl->sl_tx_ceiling = sl->sl_tx_stored;
		if (sl->sl_release) {
			memcpy(vid, sl->sl_sess.s_vid, sizeof(vid));
			live_remove(lt, vid);
		}
	}
}

/*
 * The session in memory checks seq and takes the new numbers; the row
 * gets them when the transaction commits (tspdb_live_write).
 */
enum tspdb_result
tspdb_session_telemetry_tx(struct tspdb *db, const char *vid, uint64_t seq,
    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
    uint64_t now_ms, int *now)
{
	struct tspdb_live	*sl;
	int			 r;

	if ((r = tspdb_live_load(db, vid, &sl)) != 1)
		return r == 0 ? TSPDB_UNKNOWN : TSPDB_ERROR;
	if (seq <= tspdb_live_session(sl)->s_rx_seq)
		return TSPDB_REPLAY;
	if (tspdb_telemetry_insert(db, vid, tsp_id, seq, t, now_ms) == -1)
		return TSPDB_ERROR;
	*now = tspdb_live_advance(db, sl, seq, tx_seq);
	return TSPDB_OK;
}

enum tspdb_result
tspdb_live_commit(struct tspdb *db)
{
	enum tspdb_result	 res;

	if (tspdb_live_write(db) == -1)
		res = tspdb_abort_tx(db, TSPDB_ERROR);
	else
		res = tspdb_commit_tx(db, TSPDB_OK);
	tspdb_live_settled(db, res == TSPDB_OK);
	return res;
}

int
tspdb_session_find(struct tspdb *db, const char *vid,
    const struct tspdb_session **sp)
{
	struct tspdb_live	*sl;
	int			 r;

	*sp = NULL;
	if ((r = tspdb_live_load(db, vid, &sl)) == 1)
		*sp = &sl->sl_sess;
	return r;
}

size_t
tspdb_session_live(const struct tspdb *db)
{
	return db->db_live->lt_count;
}

int
tspdb_session_stored(struct tspdb *db, const char *vid, uint32_t key_index,
    uint64_t seq)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(db, vid)) == NULL ||
	    sl->sl_sess.s_key_index != key_index ||
	    seq <= sl->sl_sess.s_stored_seq)
		return 0;
	sl->sl_sess.s_stored_seq = seq;
	return 1;
}

uint64_t
tspdb_session_tell(struct tspdb *db, const char *vid)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(db, vid)) == NULL ||
	    sl->sl_sess.s_stored_seq <= sl->sl_sess.s_stored_told)
		return 0;
	sl->sl_sess.s_stored_told = sl->sl_sess.s_stored_seq;
	return sl->sl_sess.s_stored_seq;
}

int
tspdb_session_next_tx(struct tspdb *db, const char *vid, uint64_t *tx_seq,
    const struct tspdb_session **sp)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(db, vid)) == NULL ||
	    sl->sl_sess.s_tx_seq + 1 > sl->sl_tx_stored ||
	    sl->sl_ceiling_gen > tspdb_durable(db))
		return 0;
	*tx_seq = ++sl->sl_sess.s_tx_seq;
	*sp = &sl->sl_sess;
	return 1;
}
