/*
 * The sessions of the TSP store as held in memory, so that a session
 * message costs no SELECT and K1's cipher context is made once; every
 * backend keeps its sessions here (db_live.h).  The sessions table
 * stays the durable truth: an entry is made when an M3
 * opens a session (tspdb_session_open) or on a vehicle's first message
 * after a restart (loaded from its row), and goes when the session ends,
 * the vehicle authenticates or registers anew, a handover step changes
 * the row, or the vehicle's last connection closes.  Telemetry advances
 * an entry's sequence numbers at once and marks it dirty; the batch
 * writes each dirty entry's row once, in its own transaction
 * (tspdb_live_dirty), and tells the table how that went.
 *
 * Answers to telemetry leave before their batch commits (service first),
 * so the row's tx_seq is not the last cloud->vehicle seq used but a
 * ceiling above every seq used so far, raised TSPDB_TX_AHEAD at a time: an
 * answer may leave at once while its seq is at or below a ceiling that is
 * durable, and a TSP that restarts continues above the ceiling, so no
 * seq is ever sealed twice under one K1.
 *
 * K1's cipher contexts (over a kilobyte each in OpenSSL) are a pool of at
 * most TSPDB_AEAD_POOL, least recently used first: a session in use has
 * one, with its key expanded once and reused message after message; an
 * idle one gives its context up to the next session that needs one, which
 * takes it with a new key.  So a held session costs some 300 bytes, and
 * the hot path still never expands a key.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"

#include "db_live.h"

#define LIVE_MINBUCKETS	1024

/* A context of the pool, lent to one session at a time. */
struct live_aead {
	struct crypto_aead	*la_ca;
	struct tspdb_live	*la_owner;
	struct live_aead	*la_prev, *la_next;	/* LRU: head newest */
};

struct tspdb_live {
	struct tspdb_session	 sl_sess;	/* s_aead: K1's context */
	uint64_t		 sl_rx_stored;	/* as in the sessions row */
	uint64_t		 sl_tx_stored;	/* the row's ceiling */
	uint64_t		 sl_tx_ceiling;	/* the ceiling the batch writes */
	uint64_t		 sl_ceiling_gen; /* commit that wrote sl_tx_stored */
	int			 sl_dirty;	/* numbers ahead of the row */
	int			 sl_release;	/* free after the commit */
	struct live_aead	*sl_aead;	/* the context lent, or NULL */
	struct tspdb_live	*sl_next;	/* hash chain */
	struct tspdb_live	*sl_dirty_next;
};

struct tspdb_ltab {
	const struct tspdb_live_io *lt_io;
	void			 *lt_arg;
	struct tspdb_live	**lt_bucket;
	size_t			  lt_nbucket;	/* a power of two */
	size_t			  lt_count;
	struct tspdb_live	 *lt_dirty;
	struct live_aead	 *lt_newest, *lt_oldest;
	size_t			  lt_naead;
	size_t			  lt_maxaead;
};

static void
aead_unlink(struct tspdb_ltab *lt, struct live_aead *la)
{
	if (la->la_prev != NULL)
		la->la_prev->la_next = la->la_next;
	else
		lt->lt_newest = la->la_next;
	if (la->la_next != NULL)
		la->la_next->la_prev = la->la_prev;
	else
		lt->lt_oldest = la->la_prev;
	la->la_prev = la->la_next = NULL;
}

static void
aead_push(struct tspdb_ltab *lt, struct live_aead *la)
{
	la->la_prev = NULL;
	la->la_next = lt->lt_newest;
	if (lt->lt_newest != NULL)
		lt->lt_newest->la_prev = la;
	lt->lt_newest = la;
	if (lt->lt_oldest == NULL)
		lt->lt_oldest = la;
}

/* Give sl's context back: freed, so its expanded key goes with it. */
static void
aead_release(struct tspdb_ltab *lt, struct tspdb_live *sl)
{
	struct live_aead	*la = sl->sl_aead;

	if (la == NULL)
		return;
	aead_unlink(lt, la);
	crypto_aead_free(la->la_ca);
	free(la);
	lt->lt_naead--;
	sl->sl_aead = NULL;
	sl->sl_sess.s_aead = NULL;
}

/*
 * Lend sl a context for K1: its own if it still has it, else a new one
 * while the pool has room, else the least recently used, re-keyed.  0, or
 * -1 (logged) if none could be made.
 */
static int
aead_lend(struct tspdb_ltab *lt, struct tspdb_live *sl)
{
	struct live_aead	*la = sl->sl_aead;

	if (la != NULL) {
		if (la != lt->lt_newest) {
			aead_unlink(lt, la);
			aead_push(lt, la);
		}
		return 0;
	}
	if (lt->lt_naead >= lt->lt_maxaead && (la = lt->lt_oldest) != NULL) {
		aead_unlink(lt, la);
		la->la_owner->sl_aead = NULL;
		la->la_owner->sl_sess.s_aead = NULL;
		if (crypto_aead_rekey(la->la_ca, sl->sl_sess.s_k1) == -1) {
			crypto_aead_free(la->la_ca);
			free(la);
			lt->lt_naead--;
			log_warnx("session of %s: no cipher context",
			    sl->sl_sess.s_vid);
			return -1;
		}
	} else {
		if ((la = calloc(1, sizeof(*la))) == NULL ||
		    (la->la_ca = crypto_aead_new(sl->sl_sess.s_k1)) == NULL) {
			free(la);
			log_warnx("session of %s: no cipher context",
			    sl->sl_sess.s_vid);
			return -1;
		}
		lt->lt_naead++;
	}
	la->la_owner = sl;
	sl->sl_aead = la;
	sl->sl_sess.s_aead = la->la_ca;
	aead_push(lt, la);
	return 0;
}

/* FNV-1a of a vehicle ID. */
static size_t
live_hash(const char *vid)
{
	uint32_t	 h = 2166136261u;

	while (*vid != '\0')
		h = (h ^ (uint8_t)*vid++) * 16777619u;
	return h;
}

struct tspdb_ltab *
tspdb_live_new(const struct tspdb_live_io *io, void *arg)
{
	struct tspdb_ltab	*lt;

	lt = xcalloc(1, sizeof(*lt));
	lt->lt_io = io;
	lt->lt_arg = arg;
	lt->lt_nbucket = LIVE_MINBUCKETS;
	lt->lt_maxaead = TSPDB_AEAD_POOL;
	lt->lt_bucket = xcalloc(lt->lt_nbucket, sizeof(*lt->lt_bucket));
	return lt;
}

/* Wipe K1 and its context and free the entry. */
static void
live_destroy(struct tspdb_ltab *lt, struct tspdb_live *sl)
{
	aead_release(lt, sl);
	crypto_wipe(sl, sizeof(*sl));
	free(sl);
}

void
tspdb_live_free(struct tspdb_ltab *lt)
{
	struct tspdb_live	*sl;
	size_t			 i;

	if (lt == NULL)
		return;
	for (i = 0; i < lt->lt_nbucket; i++) {
		while ((sl = lt->lt_bucket[i]) != NULL) {
			lt->lt_bucket[i] = sl->sl_next;
			live_destroy(lt, sl);
		}
	}
	free(lt->lt_bucket);
	free(lt);
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
	sl->sl_sess.s_aead = NULL;
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
tspdb_live_get(struct tspdb_ltab *lt, const char *vid)
{
	return *live_slot(lt, vid);
}

struct tspdb_live *
tspdb_live_enter(struct tspdb_ltab *lt, const struct tspdb_session *s)
{
	struct tspdb_live	*sl;

	/* Continue above the ceiling: seqs below it may have been used. */
	if ((sl = live_insert(lt, s, s->s_tx_seq,
	    lt->lt_io->li_written(lt->lt_arg))) == NULL)
		log_warn("session of %s", s->s_vid);
	return sl;
}

const struct tspdb_session *
tspdb_live_session(const struct tspdb_live *sl)
{
	return &sl->sl_sess;
}

void
tspdb_live_put(struct tspdb_ltab *lt, const struct tspdb_session *s,
    uint64_t ceiling)
{
	tspdb_live_forget(lt, s->s_vid);
	if (live_insert(lt, s, ceiling,
	    lt->lt_io->li_written(lt->lt_arg)) == NULL)
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
	live_destroy(lt, sl);
}

void
tspdb_live_forget(struct tspdb_ltab *lt, const char *vid)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(lt, vid)) == NULL)
		return;
	if (sl->sl_dirty)
		lt->lt_io->li_settle(lt->lt_arg);
	live_remove(lt, vid);
}

void
tspdb_live_release(struct tspdb_ltab *lt, const char *vid)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(lt, vid)) == NULL)
		return;
	if (sl->sl_dirty)
		sl->sl_release = 1;
	else
		live_remove(lt, vid);
}

int
tspdb_live_advance(struct tspdb_ltab *lt, struct tspdb_live *sl,
    uint64_t rx_seq, uint64_t tx_seq)
{
	sl->sl_sess.s_rx_seq = rx_seq;
	if (tx_seq > sl->sl_sess.s_tx_seq)
		sl->sl_sess.s_tx_seq = tx_seq;
	if (sl->sl_sess.s_tx_seq + TSPDB_TX_AHEAD / 2 > sl->sl_tx_ceiling)
		sl->sl_tx_ceiling = sl->sl_sess.s_tx_seq + TSPDB_TX_AHEAD;
	if (!sl->sl_dirty) {
		sl->sl_dirty = 1;
		sl->sl_dirty_next = lt->lt_dirty;
		lt->lt_dirty = sl;
	}
	return tx_seq <= sl->sl_tx_stored &&
	    sl->sl_ceiling_gen <= lt->lt_io->li_durable(lt->lt_arg);
}

int
tspdb_live_seqs(struct tspdb_ltab *lt, const char *vid, uint64_t *rx_seq,
    uint64_t *tx_seq)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(lt, vid)) == NULL)
		return 0;
	*rx_seq = sl->sl_sess.s_rx_seq;
	*tx_seq = sl->sl_sess.s_tx_seq;
	return 1;
}

int
tspdb_live_dirty(struct tspdb_ltab *lt, int (*write)(void *, const char *vid,
    uint64_t rx_seq, uint64_t ceiling), void *arg)
{
	struct tspdb_live	*sl;

	for (sl = lt->lt_dirty; sl != NULL; sl = sl->sl_dirty_next)
		if (write(arg, sl->sl_sess.s_vid, sl->sl_sess.s_rx_seq,
		    sl->sl_tx_ceiling) == -1)
			return -1;
	return 0;
}

void
tspdb_live_settled(struct tspdb_ltab *lt, int committed)
{
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
				sl->sl_ceiling_gen =
				    lt->lt_io->li_written(lt->lt_arg);
			}
		} else
			sl->sl_tx_ceiling = sl->sl_tx_stored;
		if (sl->sl_release) {
			memcpy(vid, sl->sl_sess.s_vid, sizeof(vid));
			live_remove(lt, vid);
		}
	}
}

int
tspdb_live_find(struct tspdb_ltab *lt, const char *vid,
    const struct tspdb_session **sp)
{
	struct tspdb_live	*sl;

	*sp = NULL;
	if ((sl = tspdb_live_get(lt, vid)) == NULL)
		return 0;
	if (aead_lend(lt, sl) == -1)
		return -1;
	*sp = &sl->sl_sess;
	return 1;
}

size_t
tspdb_live_count(const struct tspdb_ltab *lt)
{
	return lt->lt_count;
}

int
tspdb_live_stored(struct tspdb_ltab *lt, const char *vid, uint32_t key_index,
    uint64_t seq)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(lt, vid)) == NULL ||
	    sl->sl_sess.s_key_index != key_index ||
	    seq <= sl->sl_sess.s_stored_seq)
		return 0;
	sl->sl_sess.s_stored_seq = seq;
	return 1;
}

uint64_t
tspdb_live_tell(struct tspdb_ltab *lt, const char *vid)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(lt, vid)) == NULL ||
	    sl->sl_sess.s_stored_seq <= sl->sl_sess.s_stored_told)
		return 0;
	sl->sl_sess.s_stored_told = sl->sl_sess.s_stored_seq;
	return sl->sl_sess.s_stored_seq;
}

int
tspdb_live_next_tx(struct tspdb_ltab *lt, const char *vid, uint64_t *tx_seq,
    const struct tspdb_session **sp)
{
	struct tspdb_live	*sl;

	if ((sl = tspdb_live_get(lt, vid)) == NULL ||
	    sl->sl_sess.s_tx_seq + 1 > sl->sl_tx_stored ||
	    sl->sl_ceiling_gen > lt->lt_io->li_durable(lt->lt_arg) ||
	    aead_lend(lt, sl) == -1)
		return 0;
	*tx_seq = ++sl->sl_sess.s_tx_seq;
	*sp = &sl->sl_sess;
	return 1;
}

void
tspdb_live_contexts(struct tspdb_ltab *lt, size_t n)
{
	lt->lt_maxaead = n > 0 ? n : 1;
}
