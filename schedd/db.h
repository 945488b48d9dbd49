/*
 * schedd's store: one row per handover with its state, the QKD key_IDs
 * issued for it (IDs only: CK1 and CK2 never leave memory) and an audit
 * log of every transition.
 */
#ifndef SCHEDD_DB_H
#define SCHEDD_DB_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

struct sched_db;

/* A handovers row; NULL strings are stored as NULL. */
struct ho_row {
	const char	*hr_id;
	const char	*hr_initiator;
	const char	*hr_target;
	const char	*hr_state;
	const char	*hr_ck1_key_id;
	const char	*hr_ck2_key_id;
	uint64_t	 hr_created_ms;
	uint64_t	 hr_updated_ms;
	uint64_t	 hr_expires_ms;
	const char	*hr_reason;
};

/* Open or create the store at path; NULL on failure (logged). */
struct sched_db	*sched_db_open(const char *path, struct event_base *);
void		 sched_db_close(struct sched_db *);

/*
 * Fail every handover left unfinished by an earlier run, reason
 * "scheduler restarted", with an audit row each.  The count, or -1.
 */
int	sched_db_recover(struct sched_db *, uint64_t now_ms);

/* 1 if a handover with this id was ever recorded, 0 if not, -1 on error. */
int	sched_db_known(struct sched_db *, const char *id);

/* The row and one audit row (event, detail) in one transaction; 0 or -1. */
int	sched_db_record(struct sched_db *, const struct ho_row *,
	    const char *event, const char *detail);

/* Handovers by state, for /status and /metrics. */
struct sched_db_counts {
	int64_t		sc_inflight;	/* neither done nor failed */
	int64_t		sc_done;
	int64_t		sc_failed;
};

/* 0 and *c filled, or -1 on a store error. */
int	sched_db_counts(struct sched_db *, struct sched_db_counts *c);
/*
 * The handovers in flight, sorted by handover_id, at most max: a JSON
 * array of {handover_id, vehicle_id (null), from, to, state, started_ms},
 * or NULL on a store error.
 */
json_t	*sched_db_inflight(struct sched_db *, size_t max);

#endif
