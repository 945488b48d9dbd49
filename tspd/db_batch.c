/*
 * Group commit of F5 telemetry in the TSP store: the telemetry messages
 * of one pass of the event loop are stored in one transaction, which
 * stays open until tspdb_batch_commit.  Every other transaction or write
 * settles the batch first, so transactions never nest and no other
 * protocol step joins or outlives the batch.  The sessions' sequence
 * numbers advance in memory (db_live.c); the commit writes each changed
 * session's row once, in the same transaction as the telemetry rows.
 */
#include <stdlib.h>

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

enum tspdb_result
tspdb_batch_telemetry(struct tspdb *db, const char *vid, uint64_t seq,
    uint64_t tx_seq, const Qroam__Telemetry *t, const char *tsp_id,
    uint64_t now_ms, int *now)
{
	enum tspdb_result	 res;

	if (!db->db_batch) {
		if (store_begin(db->db_sql) == -1)
			return TSPDB_ERROR;
		db->db_batch = 1;
		db->db_batch_failed = 0;
	}
	*now = 0;
	res = tspdb_session_telemetry_tx(db, vid, seq, tx_seq, t, tsp_id,
	    now_ms, now);
	if (res == TSPDB_ERROR)
		db->db_batch_failed = 1;
	return res;
}

enum tspdb_result
tspdb_batch_commit(struct tspdb *db)
{
	int	 failed = db->db_batch_failed;

	if (!db->db_batch)
		return TSPDB_OK;
	db->db_batch = 0;
	db->db_batch_failed = 0;
	if (failed) {
		tspdb_abort_tx(db, TSPDB_ERROR);
		tspdb_live_settled(db, 0);
		return TSPDB_ERROR;
	}
	return tspdb_live_commit(db);
}
