/*
 * The vehicle's unstored telemetry (PROTOCOL F5, service first): every
 * record carries a record id, strictly increasing over the vehicle's life,
 * and stays in a bounded queue until a stored_seq of the session it was
 * sent in covers it.  A new session sends the uncovered records again,
 * oldest first, with the same record id and new seqs.
 *
 * The queue and the id generator are plain data structures: no sockets,
 * no store, no clock of their own, so that they can be unit-tested.
 */
#ifndef VEHICLED_RECORDS_H
#define VEHICLED_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "qroam.pb-c.h"

/*
 * How far ahead of the ids handed out the durable mark runs (µs): one
 * store write per minute of records at most.
 */
#define VREC_MARK_AHEAD_US	(60ULL * 1000 * 1000)

/*
 * Record ids: max(last + 1, the unix time in µs).  The last id is never
 * above a mark kept in the chip store, which is raised (durably, before
 * the id is used) once an id reaches it, so that after a restart the
 * first id starts above every id handed out before, whatever the clock
 * did in between.
 */
struct vrecid {
	uint64_t	ri_last;	/* the last id handed out */
	uint64_t	ri_mark;	/* durable: no id handed out is above it */
};

/* Start after a restart: every id handed out so far is at most mark. */
void	vrecid_init(struct vrecid *, uint64_t mark);
/*
 * The next id at unix time now_us.  When the id would pass the mark, the
 * new mark is returned in *raise (else 0): the caller stores it durably
 * before it uses the id, and only then calls vrecid_raised().
 */
uint64_t vrecid_next(struct vrecid *, uint64_t now_us, uint64_t *raise);
/* The mark returned by vrecid_next() is stored. */
void	vrecid_raised(struct vrecid *, uint64_t mark);

/* One telemetry record held until it is covered by a stored_seq. */
struct vrec {
	Qroam__Telemetry	r_t;	/* with r_t.record_id set */
	uint64_t		r_seq;	/* its seq, if sent in this session */
	int			r_again; /* sent before: a resend */
};

/*
 * The records in record-id order.  Those sent in the current session are
 * a prefix of the queue (resends go out oldest first, before new ones),
 * so a cumulative stored_seq covers a prefix of that prefix.
 */
struct vrecq {
	struct vrec	*q_ring;
	size_t		 q_cap;		/* allocated */
	size_t		 q_max;		/* held at most (unstored_max) */
	size_t		 q_head;
	size_t		 q_n;
	size_t		 q_nsent;	/* the first q_nsent sent in this session */
	uint64_t	 q_stored;	/* the session's highest stored_seq */
};

/* An empty queue of at most max records (max >= 1). */
void	vrecq_init(struct vrecq *, size_t max);
void	vrecq_free(struct vrecq *);

/*
 * Append a record (t's record_id set by the caller).  When the queue is
 * full the oldest record goes: 1 with its id in *dropped_id, else 0; -1
 * if no memory could be had (the new record is not held).
 */
int	vrecq_add(struct vrecq *, const Qroam__Telemetry *t, int again,
	    uint64_t *dropped_id);
/* A new session: every record held is to be sent (again). */
void	vrecq_session(struct vrecq *);
/* The next record to send in this session, or NULL. */
struct vrec *vrecq_next(struct vrecq *);
/* vrecq_next()'s record went out as seq (above every earlier one). */
void	vrecq_sent(struct vrecq *, uint64_t seq);
/*
 * A stored_seq of the current session: drop every record sent in it with
 * a seq up to stored.  Returns how many were covered (0 for a stored_seq
 * not above the last one).
 */
size_t	vrecq_stored(struct vrecq *, uint64_t stored);

/* Records held; of them, not sent in this session. */
size_t	vrecq_len(const struct vrecq *);
size_t	vrecq_pending(const struct vrecq *);

#endif
