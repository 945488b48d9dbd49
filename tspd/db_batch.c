/*
 * Group commit in the TSP store: the telemetry messages and the session
 * openings (M3) of one pass of the event loop are stored in one
 * transaction, which stays open until tspdb_batch_commit.  Every other transaction or write
 * settles the batch first, so transactions never nest and no other
 * protocol step joins or outlives the batch.  The sessions' sequence
 * numbers advance in memory (db_live.c); the commit writes each changed
 * session's row once, in the same transaction as the telemetry rows.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "store.h"

#include "db_priv.h"

void
tspdb_batch_set_flush(struct tspdb *db, void (*flush)(void *), void *arg)
{
	db->db_flush = flush;
	db->db_flush_arg = arg;
}

int
tspdb_batch_open(struct tspdb *db)
{
	return db->db_batch;
}

void
tspdb_batch_settle(struct tspdb *db)
{
	if (!db->db_batch)
		return;
	if (db->db_flush != NULL)
		db->db_flush(db->db_flush_arg);
	if (db->db_batch && tspdb_batch_commit(db) != TSPDB_OK)
		log_warnx("store: a telemetry batch was rolled back");
}

int
tspdb_begin(struct tspdb *db)
{
	tspdb_batch_settle(db);
	return store_begin(db->db_sql);
}

/* Open the batch transaction unless it is; 0 or -1. */
static int
batch_begin(struct tspdb *db)
{
	if (db->db_batch)
		return 0;
	if (store_begin(db->db_sql) == -1)
		return -1;
	db->db_batch = 1;
	db->db_batch_failed = 0;
	return 0;
}

enum tspdb_result
tspdb_batch_session_open(struct tspdb *db, const struct tspdb_session *s,
    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
    uint64_t now_ms)
{
	enum tspdb_result	 res;
	size_t			 cap;

	/* The vehicle's old session leaves memory (its numbers stored). */
	tspdb_live_forget(db, s->s_vid);
	if (batch_begin(db) == -1)
		return TSPDB_ERROR;
	res = tspdb_session_open_tx(db, s, sequential, d1, tsp_id, now_ms);
	if (res == TSPDB_ERROR) {
		db->db_batch_failed = 1;
		return res;
	}
	if (res != TSPDB_OK)
		return res;
	if (db->db_nopened == db->db_openedcap) {
		cap = db->db_openedcap ? 2 * db->db_openedcap : 16;
		db->db_opened = xreallocarray(db->db_opened, cap,
		    sizeof(*db->db_opened));
		db->db_openedcap = cap;
	}
	db->db_opened[db->db_nopened] = *s;
	db->db_opened[db->db_nopened].s_opened_ms = now_ms;
	db->db_opened[db->db_nopened++].s_aead = NULL;
	return TSPDB_OK;
}

/* The batch's sessions enter memory once committed, or are forgotten. */
static void
batch_opened_settle(struct tspdb *db, int committed)
{
	size_t	 i;

	for (i = 0; i < db->db_nopened; i++) {
		if (committed)
			tspdb_session_opened(db, &db->db_opened[i],
			    db->db_opened[i].s_opened_ms);
		crypto_wipe(&db->db_opened[i], sizeof(db->db_opened[i]));
	}
	db->db_nopened = 0;
}

void
tspdb_batch_free(struct tspdb *db)
{
	batch_opened_settle(db, 0);
	free(db->db_opened);
	db->db_opened = NULL;
	db->db_openedcap = 0;
}

enum tspdb_result
tspdb_batch_telemetry(struct tspdb *db, const char *vid, uint64_t seq,
    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
    uint64_t now_ms, int *now)
{
	enum tspdb_result	 res;

	*now = 0;
	if (batch_begin(db) == -1)
		return TSPDB_ERROR;
	res = tspdb_session_telemetry_tx(db, vid, seq, tx_seq, t, tsp_id,
	    now_ms, now);
	if (res == TSPDB_ERROR)
		db->db_batch_failed = 1;
	return res;
}

enum tspdb_result
tspdb_batch_commit(struct tspdb *db)
{
	enum tspdb_result	 res;
	int			 failed = db->db_batch_failed;

	if (!db->db_batch)
		return TSPDB_OK;
	db->db_batch = 0;
	db->db_batch_failed = 0;
	if (failed) {
		tspdb_abort_tx(db, TSPDB_ERROR);
		tspdb_live_settled(db, 0);
		batch_opened_settle(db, 0);
		return TSPDB_ERROR;
	}
	res = tspdb_live_commit(db);
	batch_opened_settle(db, res == TSPDB_OK);
	return res;
}
