/*
 * Group commit in the TSP store: the telemetry messages and the session
 * openings (M3) of one pass of the event loop are stored in one
 * transaction, which stays open until sqlt_batch_commit.  Every other
 * transaction or write
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
sqlt_batch_set_flush(struct sqlt *db, void (*flush)(void *), void *arg)
{
	db->db_flush = flush;
	db->db_flush_arg = arg;
}

int
sqlt_batch_open(struct sqlt *db)
{
	return db->db_batch;
}

void
tspdb_batch_settle(struct sqlt *db)
{
	if (!db->db_batch)
		return;
	if (db->db_flush != NULL)
		db->db_flush(db->db_flush_arg);
	if (db->db_batch && sqlt_batch_commit(db) != TSPDB_OK)
		log_warnx("store: a telemetry batch was rolled back");
}

int
tspdb_begin(struct sqlt *db)
{
	tspdb_batch_settle(db);
	return store_begin(db->db_sql);
}

/* Open the batch transaction unless it is; 0 or -1. */
static int
batch_begin(struct sqlt *db)
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
sqlt_batch_session_open(struct sqlt *db, const struct tspdb_session *s,
    int sequential, const Qroam__Telemetry *d1, const char *tsp_id,
    uint64_t now_ms, void *tag)
{
	enum tspdb_result	 res;
	size_t			 cap;

	/* The vehicle's old session leaves memory (its numbers stored). */
	tspdb_live_forget(db->db_live, s->s_vid);
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
		db->db_opened_tag = xreallocarray(db->db_opened_tag, cap,
		    sizeof(*db->db_opened_tag));
		db->db_openedcap = cap;
	}
	db->db_opened_tag[db->db_nopened] = tag;
	db->db_opened[db->db_nopened] = *s;
	db->db_opened[db->db_nopened].s_opened_ms = now_ms;
	db->db_opened[db->db_nopened++].s_aead = NULL;
	return TSPDB_OK;
}

/* The batch's sessions enter memory once committed, or are forgotten. */
static void
batch_opened_settle(struct sqlt *db, int committed)
{
	size_t	 i;

	for (i = 0; i < db->db_nopened; i++) {
		if (committed)
			tspdb_session_opened(db, &db->db_opened[i],
			    db->db_opened[i].s_opened_ms);
		crypto_wipe(&db->db_opened[i], sizeof(db->db_opened[i]));
		if (db->db_settled != NULL)
			db->db_settled(db->db_opened_tag[i], committed,
			    db->db_settled_arg);
	}
	db->db_nopened = 0;
}

void
tspdb_batch_free(struct sqlt *db)
{
	batch_opened_settle(db, 0);
	free(db->db_opened);
	free(db->db_opened_tag);
	db->db_opened = NULL;
	db->db_opened_tag = NULL;
	db->db_openedcap = 0;
}

/*
 * The session in memory checks seq and takes the new numbers; the row
 * gets them when the transaction commits (tspdb_live_commit).
 */
enum tspdb_result
tspdb_session_telemetry_tx(struct sqlt *db, const char *vid, uint64_t seq,
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
	*now = tspdb_live_advance(db->db_live, sl, seq, tx_seq);
	return TSPDB_OK;
}

/* Write one entry's numbers to its row inside the open transaction. */
static int
live_row_write(void *arg, const char *vid, uint64_t rx_seq, uint64_t ceiling)
{
	return tspdb_session_seq_write(arg, vid, rx_seq, ceiling);
}

enum tspdb_result
tspdb_live_commit(struct sqlt *db)
{
	enum tspdb_result	 res;

	if (tspdb_live_dirty(db->db_live, live_row_write, db) == -1)
		res = tspdb_abort_tx(db, TSPDB_ERROR);
	else
		res = tspdb_commit_tx(db, TSPDB_OK);
	tspdb_live_settled(db->db_live, res == TSPDB_OK);
	return res;
}

enum tspdb_result
sqlt_batch_telemetry(struct sqlt *db, const char *vid, uint64_t seq,
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
sqlt_batch_commit(struct sqlt *db)
{
	enum tspdb_result	 res;
	int			 failed = db->db_batch_failed;

	if (!db->db_batch)
		return TSPDB_OK;
	db->db_batch = 0;
	db->db_batch_failed = 0;
	if (failed) {
		tspdb_abort_tx(db, TSPDB_ERROR);
		tspdb_live_settled(db->db_live, 0);
		batch_opened_settle(db, 0);
		return TSPDB_ERROR;
	}
	res = tspdb_live_commit(db);
	batch_opened_settle(db, res == TSPDB_OK);
	return res;
}
