/*
 * Unit tests of the vehicle's unstored telemetry (vehicled/records.c):
 * record ids strictly increasing across a restart whatever the clock
 * does, the queue's coverage by a cumulative stored_seq, the resend of
 * every uncovered record in the next session (oldest first, flagged as a
 * resend, with new seqs), stored_seq values that cover nothing new, and
 * the bound that drops the oldest record.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"

#include "../../vehicled/records.h"

/* A record with id. */
static Qroam__Telemetry
rec(uint64_t id)
{
	Qroam__Telemetry	t = QROAM__TELEMETRY__INIT;

	t.unix_ms = id / 1000;
	t.lat = 30.05;
	t.lon = 120.05;
	t.has_record_id = 1;
	t.record_id = id;
	return t;
}

/* Add records first..last (ids) to q; none may be dropped. */
static void
add_ids(struct vrecq *q, uint64_t first, uint64_t last)
{
	Qroam__Telemetry	t;
	uint64_t		id, dropped = 0;

	for (id = first; id <= last; id++) {
		t = rec(id);
		assert_int_equal(vrecq_add(q, &t, 0, &dropped), 0);
	}
}

/* Send every pending record of the session from seq on; the last seq. */
static uint64_t
send_all(struct vrecq *q, uint64_t seq, uint64_t *ids, size_t *n)
{
	struct vrec	*r;

	*n = 0;
	while ((r = vrecq_next(q)) != NULL) {
		ids[(*n)++] = r->r_t.record_id;
		vrecq_sent(q, seq++);
	}
	return seq - 1;
}

static void
test_record_ids(void **state)
{
	struct vrecid	ri;
	uint64_t	raise, a, b, c, mark;

	(void)state;
	vrecid_init(&ri, 0);
	/* The clock: the first id is the time, and the mark runs ahead. */
	a = vrecid_next(&ri, 1000000, &raise);
	assert_true(a == 1000000);
	assert_true(raise == a + VREC_MARK_AHEAD_US);
	vrecid_raised(&ri, raise);
	mark = raise;
	/* The same microsecond, or a clock stepped back: still above. */
	b = vrecid_next(&ri, 1000000, &raise);
	assert_true(b == a + 1 && raise == 0);
	c = vrecid_next(&ri, 10, &raise);
	assert_true(c == b + 1 && raise == 0);
	/* Past the mark: a new one is due before the id is used. */
	a = vrecid_next(&ri, mark + 5, &raise);
	assert_true(a == mark + 5 && raise == a + VREC_MARK_AHEAD_US);
	/* Not stored (a store failure): the next id asks again. */
	b = vrecid_next(&ri, mark + 6, &raise);
	assert_true(b == mark + 6 && raise != 0);
	vrecid_raised(&ri, raise);
	mark = raise;
	/* A restart with the stored mark and a clock far behind. */
	vrecid_init(&ri, mark);
	a = vrecid_next(&ri, 5, &raise);
	assert_true(a == mark + 1 && a > b);
	assert_true(raise == a + VREC_MARK_AHEAD_US);
}

static void
test_stored_covers_a_prefix(void **state)
{
	struct vrecq	 q;
	struct vrec	*r;
	uint64_t	 ids[16];
	size_t		 n;

	(void)state;
	vrecq_init(&q, 100);
	add_ids(&q, 1, 5);
	assert_true(send_all(&q, 1, ids, &n) == 5);
	assert_int_equal(n, 5);
	assert_int_equal(vrecq_pending(&q), 0);
	/* Cumulative: seq 3 covers records 1..3. */
	assert_int_equal(vrecq_stored(&q, 3), 3);
	assert_int_equal(vrecq_len(&q), 2);
	/* Repeated or lower: nothing new. */
	assert_int_equal(vrecq_stored(&q, 3), 0);
	assert_int_equal(vrecq_stored(&q, 2), 0);
	/* A seq that carried no record (M6) is covered by the next one. */
	add_ids(&q, 6, 6);
	r = vrecq_next(&q);
	assert_non_null(r);
	assert_true(r->r_t.record_id == 6 && r->r_again == 0);
	vrecq_sent(&q, 7);
	assert_int_equal(vrecq_stored(&q, 6), 2);
	assert_int_equal(vrecq_stored(&q, 7), 1);
	assert_int_equal(vrecq_len(&q), 0);
	assert_null(vrecq_next(&q));
	vrecq_free(&q);
}

static void
test_next_session_resends(void **state)
{
	struct vrecq	 q;
	struct vrec	*r;
	uint64_t	 ids[16];
	size_t		 n;

	(void)state;
	vrecq_init(&q, 100);
	add_ids(&q, 10, 14);
	send_all(&q, 1, ids, &n);
	assert_int_equal(vrecq_stored(&q, 2), 2);
	/* Records 12..14 unstored; one more comes before the new session. */
	add_ids(&q, 15, 15);
	vrecq_session(&q);
	assert_int_equal(vrecq_pending(&q), 4);
	r = vrecq_next(&q);
	assert_true(r->r_t.record_id == 12 && r->r_again == 1);
	/* Same ids in order, new seqs from 1; 15 is not a resend. */
	assert_true(send_all(&q, 1, ids, &n) == 4);
	assert_int_equal(n, 4);
	assert_true(ids[0] == 12 && ids[1] == 13 && ids[2] == 14 &&
	    ids[3] == 15);
	/* The new session's stored_seq counts from its own seqs. */
	assert_int_equal(vrecq_stored(&q, 3), 3);
	r = vrecq_next(&q);
	assert_null(r);
	assert_int_equal(vrecq_len(&q), 1);
	/* Another session: 15 is a resend now. */
	vrecq_session(&q);
	r = vrecq_next(&q);
	assert_true(r->r_t.record_id == 15 && r->r_again == 1);
	vrecq_free(&q);
}

static void
test_pending_not_covered(void **state)
{
	struct vrecq	 q;
	struct vrec	*r;

	(void)state;
	vrecq_init(&q, 100);
	add_ids(&q, 1, 4);
	/* Paced: two sent, two wait; a stored_seq covers only those sent. */
	vrecq_sent(&q, 1);
	vrecq_sent(&q, 2);
	assert_int_equal(vrecq_pending(&q), 2);
	assert_int_equal(vrecq_stored(&q, 2), 2);
	assert_int_equal(vrecq_len(&q), 2);
	r = vrecq_next(&q);
	assert_true(r->r_t.record_id == 3);
	vrecq_free(&q);
}

static void
test_bound_drops_oldest(void **state)
{
	struct vrecq		 q;
	struct vrec		*r;
	Qroam__Telemetry	 t;
	uint64_t		 dropped = 0, ids[64];
	size_t			 n, i;

	(void)state;
	vrecq_init(&q, 40);
	/* Past the first allocation: the ring grows in order. */
	add_ids(&q, 1, 30);
	vrecq_sent(&q, 1);
	vrecq_sent(&q, 2);
	add_ids(&q, 31, 40);
	assert_int_equal(vrecq_len(&q), 40);
	t = rec(41);
	assert_int_equal(vrecq_add(&q, &t, 0, &dropped), 1);
	assert_true(dropped == 1);
	assert_int_equal(vrecq_len(&q), 40);
	/* Record 2 was sent as seq 2: still the head, still covered by 2. */
	assert_int_equal(vrecq_pending(&q), 39);
	t = rec(42);
	assert_int_equal(vrecq_add(&q, &t, 1, &dropped), 1);
	assert_true(dropped == 2);
	assert_int_equal(vrecq_pending(&q), 40);
	assert_int_equal(vrecq_stored(&q, 2), 0);
	send_all(&q, 3, ids, &n);
	assert_int_equal(n, 40);
	for (i = 0; i < n; i++)
		assert_true(ids[i] == 3 + i);
	vrecq_session(&q);
	r = vrecq_next(&q);
	assert_true(r->r_t.record_id == 3 && r->r_again == 1);
	vrecq_free(&q);
	/* A bound of one keeps the newest. */
	vrecq_init(&q, 1);
	add_ids(&q, 1, 1);
	t = rec(2);
	assert_int_equal(vrecq_add(&q, &t, 0, &dropped), 1);
	assert_true(dropped == 1);
	assert_true(vrecq_next(&q)->r_t.record_id == 2);
	vrecq_free(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_ids),
		cmocka_unit_test(test_stored_covers_a_prefix),
		cmocka_unit_test(test_next_session_resends),
		cmocka_unit_test(test_pending_not_covered),
		cmocka_unit_test(test_bound_drops_oldest),
	};

	log_init("test_records", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
