/*
 * Inside the SQLite backend of the TSP store: the handle shared by db.c
 * (F1-F5), db_batch.c (F5 group commit), db_live.c (sessions in memory),
 * db_handover.c (F6) and db_status.c, the statement helpers they use and
 * their functions, each of which runs its step at once and returns the
 * result; db_sqlite.c answers the store's requests with them.  Only those
 * files include it.
 */
#ifndef TSPD_DB_PRIV_H
#define TSPD_DB_PRIV_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "db_live.h"

#define TSPDB_MAXSTMT	32	/* prepared statements per file */

struct sqlt {
	sqlite3		*db_sql;
	sqlite3_stmt	*db_stmt[TSPDB_MAXSTMT];	/* db.c's */
	sqlite3_stmt	*db_hstmt[TSPDB_MAXSTMT];	/* db_handover.c's */
	sqlite3_stmt	*db_sstmt[TSPDB_MAXSTMT];	/* db_status.c's */
	int		 db_batch;		/* batch open */
	int		 db_batch_failed;	/* a step of it failed */
	void		(*db_flush)(void *);	/* commits the batch */
	void		*db_flush_arg;
	struct tspdb_ltab *db_live;		/* db_live.c */
	struct committer *db_commit;		/* NULL: each commit syncs */
	/* Sessions opened in the batch, entered in memory at its commit. */
	struct tspdb_session *db_opened;
	void		**db_opened_tag;
	size_t		 db_nopened;
	size_t		 db_openedcap;
	/* Told of each session of a batch: committed or not. */
	void		(*db_settled)(void *tag, int committed, void *arg);
	void		*db_settled_arg;
};

/* Schema of the handover tables, the second migration of the store. */
extern const char tspdb_handover_schema[];

static inline void
tspdb_bind_text(sqlite3_stmt *st, int col, const char *s)
{
	sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
}

static inline void
tspdb_bind_blob(sqlite3_stmt *st, int col, const void *p, size_t len)
{
	sqlite3_bind_blob(st, col, p, (int)len, SQLITE_STATIC);
}

static inline void
tspdb_bind_u64(sqlite3_stmt *st, int col, uint64_t v)
{
	sqlite3_bind_int64(st, col, (sqlite3_int64)v);
}

/* Step a query: 1 with a row, 0 when done, -1 on error (logged, reset). */
int	tspdb_step_row(struct sqlt *, sqlite3_stmt *);
/* Copy a text column of at most len characters into out (len + 1 bytes). */
int	tspdb_column_text(sqlite3_stmt *, int col, char *out, size_t len);
/* Copy the 32-byte key blob in column col into key; 0 or -1. */
int	tspdb_column_key(sqlite3_stmt *, int col, uint8_t key[CRYPTO_KEYLEN]);
/* Roll back the open transaction and pass res on. */
enum tspdb_result tspdb_abort_tx(struct sqlt *, enum tspdb_result res);
/* Commit the open transaction: res, or TSPDB_ERROR if the commit failed. */
enum tspdb_result tspdb_commit_tx(struct sqlt *, enum tspdb_result res);
/* 1 if key idx of chip_id is in used_keys, 0 if not, -1 on error. */
int	tspdb_key_used(struct sqlt *, const char *chip_id, int64_t idx);
/* Insert used_keys(chip_id, idx, how) inside the open transaction. */
int	tspdb_key_mark(struct sqlt *, const char *chip_id, int64_t idx,
	    const char *how, uint64_t now_ms);
/* Insert a telemetry row inside the open transaction. */
int	tspdb_telemetry_insert(struct sqlt *, const char *vid,
	    const char *tsp_id, uint64_t seq, const Qroam__Telemetry *t,
	    uint64_t now_ms);

/*
 * Before any transaction or write other than the batch's: have the open
 * telemetry batch committed (db_batch.c).
 */
void	tspdb_batch_settle(struct sqlt *);
/* Forget the sessions of a batch never committed; free what it holds. */
void	tspdb_batch_free(struct sqlt *);
/* BEGIN IMMEDIATE after settling the batch; 0 or -1. */
int	tspdb_begin(struct sqlt *);
/* The steps of tspdb_session_telemetry inside the open transaction. */
enum tspdb_result tspdb_session_telemetry_tx(struct sqlt *, const char *vid,
	    uint64_t seq, uint64_t tx_seq, const Qroam__Telemetry *t,
	    const char *tsp_id, uint64_t now_ms, int *now);

/*
 * The steps of tspdb_session_open inside the open transaction; TSPDB_OK,
 * TSPDB_REUSED before any write, or TSPDB_ERROR.
 */
enum tspdb_result tspdb_session_open_tx(struct sqlt *,
	    const struct tspdb_session *s, int sequential,
	    const Qroam__Telemetry *d1, const char *tsp_id, uint64_t now_ms);
/* Session s was committed: enter it in memory. */
void	tspdb_session_opened(struct sqlt *, const struct tspdb_session *s,
	    uint64_t now_ms);
/* The row of vid's session, without settling the batch; as session_get. */
int	tspdb_session_select(struct sqlt *, const char *vid,
	    struct tspdb_session *s);
/* Write rx_seq and tx_seq to vid's row inside the open transaction. */
int	tspdb_session_seq_write(struct sqlt *, const char *vid,
	    uint64_t rx_seq, uint64_t tx_seq);

/* vid's session row into memory (db_live.h): 1, 0 (no session) or -1. */
int	tspdb_live_load(struct sqlt *, const char *vid, struct tspdb_live **);
/*
 * Write the entries ahead of their rows and commit the open transaction,
 * or roll it back if that fails; the entries follow.  A tspdb_result.
 */
enum tspdb_result tspdb_live_commit(struct sqlt *);

/* Prepare and finalize db_handover.c's statements. */
void	tspdb_handover_prepare(struct sqlt *);
void	tspdb_handover_finalize(struct sqlt *);
/* Prepare and finalize db_status.c's statements. */
void	tspdb_status_prepare(struct sqlt *);
void	tspdb_status_finalize(struct sqlt *);

/* ---- the steps, as db.h describes them ---- */

/*
 * Open (creating or migrating) the store at path; NULL on failure, logged.
 * With base, its commits become durable off the loop (commit.h): a
 * function that changes state returns once the change is written and
 * visible, and durable(n, arg) reports on the loop when the first n
 * commits (tspdb_written) are durable; whatever depends on a change waits
 * for that (conn_barrier).  Without base every commit is synced before it
 * returns (tools and tests).
 */
struct sqlt	*sqlt_open(const char *path, struct event_base *base,
		    void (*durable)(uint64_t n, void *arg), void *arg);
void		 sqlt_close(struct sqlt *);
/* Commits made so far / known durable so far. */
uint64_t	 sqlt_written(const struct sqlt *);
uint64_t	 sqlt_durable(const struct sqlt *);

/* ---- F1 ---- */

/*
 * Store a validated fill record and its key position (0).  A record whose
 * chip is stored already is never altered: TSPDB_SAME when it matches,
 * TSPDB_CONFLICT when it does not.
 */
enum tspdb_result sqlt_fill_apply(struct sqlt *, const Qroam__FillRecord *);
/* 1 and *f filled, 0 if the chip is unknown, -1 on a store error. */
int	sqlt_fill_get(struct sqlt *, const char *chip_id, struct tspdb_fill *f);
/* The chip's next unused position in sequential order; -1 on error. */
int64_t	sqlt_keypos(struct sqlt *, const char *chip_id);

/* ---- F2 ---- */

/*
 * Apply an M2: stored when the vehicle is new or epoch is above the stored
 * one (which also ends the vehicle's authentication and session, made
 * under the old binding).  Equal epoch: TSPDB_SAME; lower: TSPDB_STALE.
 * *old_epoch receives the stored epoch (0 if none).
 */
enum tspdb_result sqlt_m2_apply(struct sqlt *, const char *vid,
	    const char *chip_id, const uint8_t *prv, size_t prvlen,
	    uint64_t epoch, uint64_t *old_epoch);
/* 1 and *r filled, 0 if the vehicle is unknown, -1 on a store error. */
int	sqlt_reg_get(struct sqlt *, const char *vid, struct tspdb_reg *r);
/* Wipe and free the private key of r. */
void	tspdb_reg_clear(struct tspdb_reg *r);

/* ---- F3 ---- */

/*
 * Record a successful authentication in one transaction: purge expired
 * nonces, refuse a nonce seen before (TSPDB_REPLAY), store the nonce until
 * expires_ms, upsert auth(vid, chip_id, now, via) and end the vehicle's
 * session.
 */
enum tspdb_result sqlt_auth_commit(struct sqlt *, const char *vid,
	    const char *chip_id, const uint8_t *nonce, size_t noncelen,
	    uint64_t now_ms, uint64_t expires_ms, const char *via);
/*
 * 1 and chip_id of the authentication filled, 0 if none or last used
 * before since_ms, -1 on error.
 */
int	sqlt_auth_get(struct sqlt *, const char *vid, uint64_t since_ms,
	    char chip_id[CHIP_ID_LEN + 1]);
/* Delete the authentications last used before since_ms: their number, -1. */
int64_t	sqlt_auth_expire(struct sqlt *, uint64_t since_ms);

/* ---- F4 ---- */

/*
 * Select the key an M3 names, without changing anything.  Sequential mode
 * (code == NULL): index must be below m, at or after the key position and
 * not used.  Arbitrary mode: code must name a key that lies at or after
 * the key position and is not used.  TSPDB_OK and *key filled,
 * TSPDB_UNKNOWN (index out of range, unknown code), TSPDB_REUSED or
 * TSPDB_ERROR.
 */
enum tspdb_result sqlt_key_select(struct sqlt *, const char *chip_id,
	    uint32_t index, const char *code, struct tspdb_key *key);

/*
 * Open a session after a successful M3, in one transaction: mark key
 * s->s_key_index used ('m3'); in sequential mode burn the unused keys it
 * skipped and move the key position past it, in arbitrary mode move the
 * key position past any run of used keys; replace the vehicle's session
 * with s (rx_seq 0, tx_seq 1) and store d1 as telemetry seq 0.
 * TSPDB_REUSED if the key turned out used; nothing changes then.
 */
enum tspdb_result sqlt_session_open(struct sqlt *,
	    const struct tspdb_session *s, int sequential,
	    const Qroam__Telemetry *d1, const char *tsp_id, uint64_t now_ms);
/*
 * 1 and *s filled from the store (s_aead NULL), 0 if there is no session,
 * -1 on error.  Sequence numbers advanced by the open batch are included.
 */
int	sqlt_session_get(struct sqlt *, const char *vid,
	    struct tspdb_session *s);
/* Read vid's session into memory: 1, 0 (no session) or -1. */
int	sqlt_session_load(struct sqlt *, const char *vid);
/*
 * Store telemetry received in the session under seq and advance rx_seq to
 * seq and tx_seq to tx_seq, in one transaction.  TSPDB_REPLAY if seq is
 * not above rx_seq, TSPDB_UNKNOWN if the session is gone.
 */
enum tspdb_result sqlt_session_telemetry(struct sqlt *, const char *vid,
	    uint64_t seq, uint64_t tx_seq, const Qroam__Telemetry *t,
	    const char *tsp_id, uint64_t now_ms);
/*
 * End the vehicle's session; TSPDB_UNKNOWN if there was none.  With
 * power_off its authentication ends in the same transaction (F8).
 */
enum tspdb_result sqlt_session_end(struct sqlt *, const char *vid,
	    int power_off);

/* Rows of telemetry stored for vid; -1 on error. */
int64_t	sqlt_telemetry_count(struct sqlt *, const char *vid);

/* ---- F5: group commit (db_batch.c) ---- */

/*
 * While a telemetry batch is open, every other transaction or write of
 * the store first calls flush(arg), which commits the batch with
 * tspdb_batch_commit (and answers its messages); without a flush
 * function the store commits the batch itself.
 */
void	sqlt_batch_set_flush(struct sqlt *, void (*flush)(void *),
	    void *arg);
/*
 * tspdb_session_telemetry inside the batch transaction, which it opens if
 * none is.  Later reads see the new rx_seq and tx_seq at once; the
 * sessions' rows get them once per batch, in its commit.  *now is 1 when
 * an answer sealed under tx_seq may leave before the commit (tx_seq lies
 * below a durable ceiling), 0 when it must wait for the commit to be
 * durable.  A record whose record id is stored already is not stored
 * again (TSPDB_OK).  TSPDB_ERROR spoils the batch: its commit then rolls
 * the rows back; the sequence numbers in memory stay, since answers
 * under them may have left.
 */
enum tspdb_result sqlt_batch_telemetry(struct sqlt *, const char *vid,
	    uint64_t seq, uint64_t tx_seq, const Qroam__Telemetry *t,
	    const char *tsp_id, uint64_t now_ms, int *now);
/*
 * tspdb_session_open inside the batch transaction: TSPDB_OK (the session
 * enters memory at the commit), TSPDB_REUSED (nothing written) or
 * TSPDB_ERROR, which spoils the batch.  On TSPDB_OK, db_settled learns
 * with tag whether the batch was committed.
 */
enum tspdb_result sqlt_batch_session_open(struct sqlt *,
	    const struct tspdb_session *s, int sequential,
	    const Qroam__Telemetry *d1, const char *tsp_id, uint64_t now_ms,
	    void *tag);
/* 1 if a batch transaction is open. */
int	sqlt_batch_open(struct sqlt *);
/*
 * Commit the open batch (TSPDB_OK, also with none open), or roll it back
 * and return TSPDB_ERROR if the commit or one of its steps failed.
 */
enum tspdb_result sqlt_batch_commit(struct sqlt *);

/* ---- F6: handover ---- */





/*
 * Record the state of handover hid (role 'out' or 'in') in handovers,
 * creating the row or updating state, reason and time; vid may be NULL
 * to keep the stored one.  0 or -1.
 */
int	sqlt_ho_record(struct sqlt *, const char *hid, const char *vid,
	    const char *role, const char *peer, const char *state,
	    const char *reason, uint64_t now_ms);
/*
 * 1 if handover hid is under way, 2 if it ended, 3 if its CK2 is bound, 0
 * if unknown, -1 on error.
 */
int	sqlt_ho_known(struct sqlt *, const char *hid);
/* At start-up: handovers left unfinished by an earlier run have failed. */
int	sqlt_ho_recover(struct sqlt *, uint64_t now_ms);
/*
 * Accept session message seq of vid that carries no telemetry: advance
 * rx_seq to seq.  TSPDB_REPLAY if seq is not above rx_seq, TSPDB_UNKNOWN
 * if there is no session.
 */
enum tspdb_result sqlt_session_seq(struct sqlt *, const char *vid,
	    uint64_t seq);
/*
 * TSPA, M8 acknowledged: in one transaction delete the vehicle's auth row,
 * mark handover hid done and, if the vehicle still has a session, reserve
 * its next cloud->vehicle seq (r->rr_k1 then holds K1; the caller wipes).
 */
enum tspdb_result sqlt_ho_out_done(struct sqlt *, const char *hid,
	    const char *vid, uint64_t now_ms, struct tspdb_ready *r);
/*
 * Build RD1 for vid from the store: its authentication, the draw mode of
 * its session, the key position and used keys at or after it, and its
 * last TSPDB_RD1_HISTORY telemetry rows.  1, 0 if vid has no auth row
 * here, -1 on error.
 */
int	sqlt_rd1_load(struct sqlt *, const char *vid, struct tspdb_rd1 *);
void	tspdb_rd1_free(struct tspdb_rd1 *);
/*
 * TSPB: store CK2 of (initiator, hid) until expires_ms and mark the
 * handover row 'bound', in one transaction that also purges expired
 * bindings.  TSPDB_REPLAY if the binding exists already.
 */
enum tspdb_result sqlt_ck2_bind(struct sqlt *, const char *initiator,
	    const char *hid, const uint8_t ck2[CRYPTO_KEYLEN],
	    uint64_t expires_ms, uint64_t now_ms);
/* 1 with ck2 and *expires_ms filled, 0 if there is none, -1 on error. */
int	sqlt_ck2_get(struct sqlt *, const char *initiator, const char *hid,
	    uint8_t ck2[CRYPTO_KEYLEN], uint64_t *expires_ms);
/* Delete bindings expired before now_ms (their rows fail); -1 on error. */
int	sqlt_ck2_purge(struct sqlt *, uint64_t now_ms);
/*
 * TSPB: apply a checked RD1 received from initiator, in one transaction:
 * auth row via 'handover', key position max(own, next_index) with the
 * keys below burned, the used keys, the history rows not present yet
 * (origin[i] names row i's TSP and seq), the binding deleted and the
 * handover row done.  TSPDB_UNKNOWN if the binding is gone.
 */
enum tspdb_result sqlt_m8_apply(struct sqlt *, const char *initiator,
	    const char *hid, const Qroam__RD1 *rd1,
	    const struct tspdb_origin *origin, uint64_t now_ms);

/* ---- operations (db_status.c) ---- */


/* The counts at now_ms; 0, or -1 on a store error. */
int	sqlt_counts(struct sqlt *, uint64_t now_ms, struct tspdb_counts *);
/*
 * JSON arrays of at most max rows sorted by vehicle_id (sessions,
 * vehicles) or handover_id (handovers in flight at now_ms), holding IDs,
 * indexes, sequence numbers and times only; NULL on a store error.
 */
json_t	*sqlt_status_sessions(struct sqlt *, size_t max);
json_t	*sqlt_status_vehicles(struct sqlt *, size_t max);
json_t	*sqlt_status_handovers(struct sqlt *, uint64_t now_ms, size_t max);

#endif
