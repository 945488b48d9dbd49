/*
 * Inside the TSP store: the handle shared by db.c (F1-F5), db_batch.c (F5
 * group commit), db_live.c (sessions in memory) and db_handover.c (F6),
 * and the statement helpers they use.  Only those files include it.
 */
#ifndef TSPD_DB_PRIV_H
#define TSPD_DB_PRIV_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define TSPDB_MAXSTMT	32	/* prepared statements per file */

struct tspdb {
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
int	tspdb_step_row(struct tspdb *, sqlite3_stmt *);
/* Copy a text column of at most len characters into out (len + 1 bytes). */
int	tspdb_column_text(sqlite3_stmt *, int col, char *out, size_t len);
/* Copy the 32-byte key blob in column col into key; 0 or -1. */
int	tspdb_column_key(sqlite3_stmt *, int col, uint8_t key[CRYPTO_KEYLEN]);
/* Roll back the open transaction and pass res on. */
enum tspdb_result tspdb_abort_tx(struct tspdb *, enum tspdb_result res);
/* Commit the open transaction: res, or TSPDB_ERROR if the commit failed. */
enum tspdb_result tspdb_commit_tx(struct tspdb *, enum tspdb_result res);
/* 1 if key idx of chip_id is in used_keys, 0 if not, -1 on error. */
int	tspdb_key_used(struct tspdb *, const char *chip_id, int64_t idx);
/* Insert used_keys(chip_id, idx, how) inside the open transaction. */
int	tspdb_key_mark(struct tspdb *, const char *chip_id, int64_t idx,
	    const char *how, uint64_t now_ms);
/* Insert a telemetry row inside the open transaction. */
int	tspdb_telemetry_insert(struct tspdb *, const char *vid,
	    const char *tsp_id, uint64_t seq, const Qroam__Telemetry *t,
	    uint64_t now_ms);

/*
 * Before any transaction or write other than the batch's: have the open
 * telemetry batch committed (db_batch.c).
 */
void	tspdb_batch_settle(struct tspdb *);
/* BEGIN IMMEDIATE after settling the batch; 0 or -1. */
int	tspdb_begin(struct tspdb *);
/* The steps of tspdb_session_telemetry inside the open transaction. */
enum tspdb_result tspdb_session_telemetry_tx(struct tspdb *, const char *vid,
	    uint64_t seq, uint64_t tx_seq, const Qroam__Telemetry *t,
	    const char *tsp_id, uint64_t now_ms, int *now);

/* The row of vid's session, without settling the batch; as session_get. */
int	tspdb_session_select(struct tspdb *, const char *vid,
	    struct tspdb_session *s);
/* Write rx_seq and tx_seq to vid's row inside the open transaction. */
int	tspdb_session_seq_write(struct tspdb *, const char *vid,
	    uint64_t rx_seq, uint64_t tx_seq);

/*
 * The sessions held in memory (db_live.c).  An entry is a tspdb_session
 * with the sequence numbers last stored; tspdb_live_advance moves them
 * ahead of the row until tspdb_live_write has written them in the open
 * transaction and tspdb_live_settled(committed) has either made them the
 * stored ones or put the stored ones back.
 */
struct tspdb_live;
void	tspdb_live_init(struct tspdb *);
void	tspdb_live_free(struct tspdb *);
/* vid's entry or NULL; no store access. */
struct tspdb_live *tspdb_live_get(struct tspdb *, const char *vid);
/* vid's entry, loaded from its row if needed: 1, 0 (no session) or -1. */
int	tspdb_live_load(struct tspdb *, const char *vid, struct tspdb_live **);
const struct tspdb_session *tspdb_live_session(const struct tspdb_live *);
/* Enter session s as just stored with ceiling, replacing vid's entry. */
void	tspdb_live_put(struct tspdb *, const struct tspdb_session *s,
	    uint64_t ceiling);
/*
 * Drop vid's entry (after settling the batch if the entry is ahead of its
 * row): called by every change of a sessions row made outside this file's
 * knowledge, so the next use reads the row again.
 */
void	tspdb_live_forget(struct tspdb *, const char *vid);
/*
 * Take rx_seq and tx_seq (raising the ceiling when tx_seq nears it): 1 if
 * an answer sealed under tx_seq may leave before the batch commits.
 */
int	tspdb_live_advance(struct tspdb *, struct tspdb_live *,
	    uint64_t rx_seq, uint64_t tx_seq);
/* 1 and the numbers in memory if vid has an entry, else 0. */
int	tspdb_live_seqs(struct tspdb *, const char *vid,
	    uint64_t *rx_seq, uint64_t *tx_seq);
/* Write the rows of the entries ahead of them; 0 or -1. */
int	tspdb_live_write(struct tspdb *);
void	tspdb_live_settled(struct tspdb *, int committed);
/*
 * Write the entries ahead of their rows and commit the open transaction,
 * or roll it back if that fails; the entries follow.  A tspdb_result.
 */
enum tspdb_result tspdb_live_commit(struct tspdb *);

/* Prepare and finalize db_handover.c's statements. */
void	tspdb_handover_prepare(struct tspdb *);
void	tspdb_handover_finalize(struct tspdb *);
/* Prepare and finalize db_status.c's statements. */
void	tspdb_status_prepare(struct tspdb *);
void	tspdb_status_finalize(struct tspdb *);

#endif
