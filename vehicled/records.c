/*
 * Unstored telemetry records and their ids.  The queue is a ring that
 * grows on demand up to its bound, so that a fleet of vehicles whose TSPs
 * commit promptly holds a few records each, not the bound.
 */
#include <stdlib.h>
#include <string.h>

#include "records.h"

#define VRECQ_MINCAP	16

void
vrecid_init(struct vrecid *ri, uint64_t mark)
{
	ri->ri_last = mark;
	ri->ri_mark = mark;
}

uint64_t
vrecid_next(struct vrecid *ri, uint64_t now_us, uint64_t *raise)
{
	uint64_t	id = ri->ri_last + 1;

	if (now_us > id)
		id = now_us;
	*raise = id > ri->ri_mark ? id + VREC_MARK_AHEAD_US : 0;
	ri->ri_last = id;
	return id;
}

void
vrecid_raised(struct vrecid *ri, uint64_t mark)
{
	if (mark > ri->ri_mark)
		ri->ri_mark = mark;
}

void
vrecq_init(struct vrecq *q, size_t max)
{
	memset(q, 0, sizeof(*q));
	q->q_max = max > 0 ? max : 1;
}

void
vrecq_free(struct vrecq *q)
{
	free(q->q_ring);
	memset(q, 0, sizeof(*q));
}

/* The i-th record from the oldest. */
static struct vrec *
vrecq_at(const struct vrecq *q, size_t i)
{
	return &q->q_ring[(q->q_head + i) % q->q_cap];
}

/* Grow the ring (records moved to the front in order); 0 or -1. */
static int
vrecq_grow(struct vrecq *q)
{
	struct vrec	*nr;
	size_t		 cap, i;

	cap = q->q_cap ? q->q_cap * 2 : VRECQ_MINCAP;
	if (cap > q->q_max)
		cap = q->q_max;
	if ((nr = calloc(cap, sizeof(*nr))) == NULL)
		return -1;
	for (i = 0; i < q->q_n; i++)
		nr[i] = *vrecq_at(q, i);
	free(q->q_ring);
	q->q_ring = nr;
	q->q_cap = cap;
	q->q_head = 0;
	return 0;
}

/* Remove the oldest record. */
static void
vrecq_pop(struct vrecq *q)
{
	q->q_head = (q->q_head + 1) % q->q_cap;
	q->q_n--;
	if (q->q_nsent > 0)
		q->q_nsent--;
}

int
vrecq_add(struct vrecq *q, const Qroam__Telemetry *t, int again,
    uint64_t *dropped_id)
{
	struct vrec	*r;
	int		 dropped = 0;

	if (q->q_n == q->q_cap && q->q_cap < q->q_max && vrecq_grow(q) == -1)
		return -1;
	if (q->q_n == q->q_max) {
		*dropped_id = vrecq_at(q, 0)->r_t.record_id;
		vrecq_pop(q);
		dropped = 1;
	}
	r = vrecq_at(q, q->q_n);
	memset(r, 0, sizeof(*r));
	r->r_t = *t;
	r->r_t.base.n_unknown_fields = 0;
	r->r_t.base.unknown_fields = NULL;
	r->r_again = again != 0;
	q->q_n++;
	return dropped;
}

void
vrecq_session(struct vrecq *q)
{
	size_t	i;

	for (i = 0; i < q->q_nsent; i++)
		vrecq_at(q, i)->r_again = 1;
	q->q_nsent = 0;
	q->q_stored = 0;
}

struct vrec *
vrecq_next(struct vrecq *q)
{
	return q->q_nsent < q->q_n ? vrecq_at(q, q->q_nsent) : NULL;
}

void
vrecq_sent(struct vrecq *q, uint64_t seq)
{
	if (q->q_nsent >= q->q_n)
		return;
	vrecq_at(q, q->q_nsent)->r_seq = seq;
	q->q_nsent++;
}

size_t
vrecq_stored(struct vrecq *q, uint64_t stored)
{
	size_t	n = 0;

	if (stored <= q->q_stored)
		return 0;
	q->q_stored = stored;
	while (q->q_nsent > 0 && vrecq_at(q, 0)->r_seq <= stored) {
		vrecq_pop(q);
		n++;
	}
	return n;
}

size_t
vrecq_len(const struct vrecq *q)
{
	return q->q_n;
}

size_t
vrecq_pending(const struct vrecq *q)
{
	return q->q_n - q->q_nsent;
}
