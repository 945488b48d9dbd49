/*
 * SQLite helpers: WAL mode, a schema version (PRAGMA user_version) with
 * forward migrations, transactions and prepared statements.
 */
#ifndef QROAM_STORE_H
#define QROAM_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* How a store's commits reach the disk. */
#define STORE_SYNC_NORMAL	0	/* durable across process crashes */
#define STORE_SYNC_FULL		1	/* each commit synced before it returns */
#define STORE_COMMITTER		2	/* synced by a committer (commit.h) */

/*
 * Open (creating) path, set WAL and foreign keys, then run migrations[i]
 * for every i >= the stored user_version, each in its own transaction
 * (migrations NULL: a further connection, schema left alone).  sync is
 * one of STORE_SYNC_NORMAL, STORE_SYNC_FULL and STORE_COMMITTER.  NULL on
 * failure, logged.
 */
sqlite3	*store_open(const char *path, const char *const *migrations,
	    size_t nmigrations, int sync);
void	store_close(sqlite3 *);

/* Prepare sql; a failure is a programming error and fatal. */
sqlite3_stmt *store_prepare(sqlite3 *, const char *sql);
/* Run statements without results; 0 or -1 (logged). */
int	store_exec(sqlite3 *, const char *sql);

int	store_begin(sqlite3 *);		/* BEGIN IMMEDIATE */
int	store_commit(sqlite3 *);
void	store_rollback(sqlite3 *);

/* Reset and clear bindings so the statement can be reused. */
void	store_reset(sqlite3_stmt *);
/* Step a statement expected to finish (INSERT/UPDATE/DELETE); resets it.
 * 0 or -1 (logged).  changes receives sqlite3_changes if not NULL. */
int	store_step_done(sqlite3_stmt *, int *changes);

/*
 * Step a statement (bound already) that yields one row of integers, such
 * as a SELECT count(*): its first n columns into v[0..n-1]; resets it.
 * 0, or -1 (logged) when it fails or yields no row.
 */
int	store_row_int64(sqlite3_stmt *, int64_t *v, int n);

uint64_t store_now_ms(void);	/* wall clock, ms since the epoch */

#endif
