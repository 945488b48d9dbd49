/*
 * The key store of qkdd (SQLite): distilled keys per unordered SAE pair,
 * each reserved at most once for a master and a slave (enc_keys) and
 * handed to that slave at most once (dec_keys), after which the key is
 * deleted and only its ID is kept in the delivery record.  Link
 * statistics are kept alongside for operators.  Each pair's count of
 * unreserved keys is kept in memory, so that status and the metrics never
 * scan the store.
 *
 * Reservations and deliveries are committed in groups, as PostgreSQL
 * commits many transactions with one flush: the KME opens a group, every
 * enc_keys and dec_keys of one pass of the event loop adds its changes to
 * the group's transaction, and the group is committed at once
 * (qkd_pool_group_end).  On an event loop the commit only writes the WAL;
 * a committer thread (commit.h) syncs it and reports on the loop how many
 * commits are durable, and the group's answers go out only then.
 */
#ifndef QKDD_POOL_H
#define QKDD_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#define QKD_KEYID_LEN	36			/* UUID text */
#define QKD_KEYMAX	512			/* bytes, 4096 bits */

struct qkd_key {
	char		 qk_id[QKD_KEYID_LEN + 1];
	uint8_t		 qk_key[QKD_KEYMAX];
	size_t		 qk_len;
};

enum qkd_take {
	QKD_TAKE_OK,
	QKD_TAKE_NOTFOUND,	/* no such key, or not issued yet */
	QKD_TAKE_DENIED,	/* issued for another master or slave */
	QKD_TAKE_ERROR,		/* store failure, logged */
};

struct qkd_pool;

/*
 * Open (creating) the store at path and count every pair's unreserved
 * keys in it; NULL on failure, logged.  With base, a committer on its
 * loop syncs the commits and durable(n, arg), unless NULL, runs on the
 * loop each time n commits are durable; the loop never syncs.  Without
 * (tools, tests), each commit is synced before it returns.
 */
struct qkd_pool *qkd_pool_open(const char *path, struct event_base *base,
	    void (*durable)(uint64_t n, void *arg), void *arg);
/* Sync whatever is written, then close. */
void	qkd_pool_close(struct qkd_pool *);

/*
 * A transaction grouping qkd_pool_add calls (the links commit one per
 * tick).  The counts take its changes at a successful commit and drop
 * them at a rollback; a failed commit, rolled back, has the counts read
 * again from the store.  0 or -1, logged.  While a group is open its
 * transaction is joined instead: the commit or rollback then ends the
 * group's changes too, and qkd_pool_group_end reports how.
 */
int	qkd_pool_begin(struct qkd_pool *);
int	qkd_pool_commit(struct qkd_pool *);
void	qkd_pool_rollback(struct qkd_pool *);

/*
 * Open a group if none is: the qkd_pool_reserve and qkd_pool_take calls
 * from now on leave their changes in one transaction instead of
 * committing each.  Their results stand only once qkd_pool_group_end
 * returned 0 and its commit is durable; nothing may be answered before.
 */
void	qkd_pool_group_begin(struct qkd_pool *);
/* 1 while a group is open. */
int	qkd_pool_group_open(const struct qkd_pool *);
/*
 * Commit the group: 0 if every change made in it is stored, -1 if any was
 * lost (a store failure: the group's transaction was rolled back, and the
 * requests of the group must be answered as failed).  Closes the group.
 */
int	qkd_pool_group_end(struct qkd_pool *);
/* Transactions committed since the store was opened. */
uint64_t qkd_pool_commits(const struct qkd_pool *);
/*
 * Commits written so far, and of those the ones durable so far: a change
 * stands across a crash of the machine once qkd_pool_durable reaches the
 * qkd_pool_written of right after its commit.  Without a committer both
 * are qkd_pool_commits.
 */
uint64_t qkd_pool_written(const struct qkd_pool *);
uint64_t qkd_pool_durable(const struct qkd_pool *);

/*
 * Inside a transaction: add n keys of keylen bytes (consecutive in keys)
 * for the pair a < b, each under a fresh UUID v4.  0, or -1 after which
 * the caller rolls back (some of the keys may have been inserted).
 */
int	qkd_pool_add(struct qkd_pool *, const char *a, const char *b,
	    const uint8_t *keys, size_t n, size_t keylen);

/*
 * Unreserved keys of the pair a < b as the store holds them, an open
 * transaction's additions included; from memory, never from the store.
 */
size_t	qkd_pool_available(struct qkd_pool *, const char *a, const char *b);

/*
 * enc_keys: reserve the n oldest unreserved keys of the pair for master
 * and slave, cut to keylen bytes, and copy them to out[0..n-1]; in the
 * open group, else in one transaction committed before it returns.  0;
 * 1 if fewer than n keys of keylen bytes or more are stored (nothing is
 * changed); -1 on a store error (in a group, the whole group fails).
 */
int	qkd_pool_reserve(struct qkd_pool *, const char *master,
	    const char *slave, size_t n, size_t keylen, struct qkd_key *out);

/*
 * dec_keys: the keys ids[0..n-1] reserved for master and slave into
 * out[0..n-1], deleted from the pool and recorded as delivered; in the
 * open group, else in one transaction.  Nothing changes unless every key
 * qualifies (an ID named twice does not); *bad is the index of the first
 * that did not.  QKD_TAKE_ERROR in a group fails the whole group.
 */
enum qkd_take qkd_pool_take(struct qkd_pool *, const char *master,
	    const char *slave, const char *const *ids, size_t n,
	    struct qkd_key *out, size_t *bad);

/* Record a link's statistics (no key material); 0 or -1. */
int	qkd_pool_link_stats(struct qkd_pool *, const char *a, const char *b,
	    double qber, double eve, double secret_bps, uint64_t keys_made,
	    uint64_t aborts);

#endif
