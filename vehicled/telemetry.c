/*
 * F5 on the open session, service first: the TSP answers each message at
 * once and reports separately, as a cumulative stored_seq, which records
 * are durably committed.  So every telemetry record gets a record id and
 * is held (records.h) until a stored_seq of the session it was sent in
 * covers it; a new session, here or at the next TSP, sends the records
 * held again, oldest first and before new ones, a few per tick.  The
 * data of an M3 is committed with the session: the M3's answer covers it,
 * and an M3 left unanswered leaves its data to be sent again.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "log.h"
#include "store.h"
#include "vmetrics.h"
#include "vmsg.h"

/* The unix time in µs, for record ids. */
static uint64_t
telemetry_unix_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The fleet store raised the record id mark. */
static void
telemetry_mark_raised(void *arg, int rc)
{
	struct vclient	*c = arg;

	c->vc_mark_raising = 0;
	client_log_enter(c);
	if (rc == 0)
		vrecid_raised(&c->vc_recid, c->vc_mark_want);
	else
		client_error(c, "cannot store the record id mark");
}

void
telemetry_record_id(struct vclient *c, Qroam__Telemetry *t)
{
	uint64_t	raise;
	int		ahead;

	t->record_id = vrecid_next(&c->vc_recid, telemetry_unix_us(), &raise);
	t->has_record_id = 1;
	/* The fleet store raises the mark while half its lead is left. */
	ahead = vchip_async(c->vc_chip) && t->record_id +
	    VREC_MARK_AHEAD_US / 2 > c->vc_recid.ri_mark;
	if ((raise == 0 && !ahead) || c->vc_mark_raising)
		return;
	c->vc_mark_want = raise ? raise : t->record_id + VREC_MARK_AHEAD_US;
	switch (vchip_raise(c->vc_chip, "record_id_mark",
	    (int64_t)c->vc_mark_want, telemetry_mark_raised, c)) {
	case 0:
		vrecid_raised(&c->vc_recid, c->vc_mark_want);
		break;
	case 1:
		c->vc_mark_raising = 1;
		if (raise != 0)
			log_warnx("record id %llu used before its mark is"
			    " stored", (unsigned long long)t->record_id);
		break;
	default:
		client_error(c, "cannot store the record id mark");
		break;
	}
}

int
telemetry_keep(struct vclient *c, const Qroam__Telemetry *t, int again)
{
	uint64_t	id = 0;
	int		r;

	if ((r = vrecq_add(&c->vc_recs, t, again, &id)) == -1) {
		client_error(c, "no memory to hold telemetry record %llu",
		    (unsigned long long)t->record_id);
		return -1;
	}
	if (r == 0)
		return 0;
	c->vc_stats.vs_dropped++;
	vmetrics_telemetry_dropped();
	vchip_count(c->vc_chip, "telemetry_dropped", 1);
	/* The first drop, then one line per thousand. */
	if (c->vc_drop_logged == 0 ||
	    c->vc_stats.vs_dropped - c->vc_drop_logged >= 1000) {
		log_warnx("unstored telemetry full (%zu records, unstored_max):"
		    " record %llu dropped unstored; %llu dropped so far",
		    vrecq_len(&c->vc_recs), (unsigned long long)id,
		    (unsigned long long)c->vc_stats.vs_dropped);
		c->vc_drop_logged = c->vc_stats.vs_dropped;
	}
	return 0;
}

void
telemetry_d1_unanswered(struct vclient *c)
{
	if (!c->vc_has_d1)
		return;
	c->vc_has_d1 = 0;
	telemetry_keep(c, &c->vc_d1, 1);
}


/* Send record r, vrecq_next()'s, as the next telemetry message; 0 or -1. */
static int
telemetry_send(struct vclient *c, struct vrec *r)
{
	Qroam__SessionInner	in = QROAM__SESSION_INNER__INIT;

	in.body_case = QROAM__SESSION_INNER__BODY_TELEMETRY;
	in.telemetry = &r->r_t;
	if (client_send_inner(c, &in) == -1) {
		client_error(c, "session: cannot send telemetry to %s",
		    c->vc_tsp);
		return -1;
	}
	vrecq_sent(&c->vc_recs, c->vc_tx_seq);
	/* session_rekey counts new records: resends do not renew a session. */
	if (!r->r_again)
		c->vc_nsent++;
	c->vc_stats.vs_telemetry_sent++;
	vmetrics_telemetry_sent();
	if (r->r_again) {
		c->vc_stats.vs_resent++;
		vmetrics_telemetry_resent();
	}
	if (c->vc_gap_wait && c->vc_gap_seq == 0)
		c->vc_gap_seq = c->vc_tx_seq;
	log_debug("telemetry %llu sent to %s (%.5f,%.5f)%s",
	    (unsigned long long)c->vc_tx_seq, c->vc_tsp, r->r_t.lat, r->r_t.lon,
	    r->r_again ? " again" : "");
	return 0;
}

void
telemetry_tick(struct vclient *c, const struct route_pos *rp)
{
	Qroam__Telemetry	 t;
	struct vrec		*r;
	uint32_t		 n, sent = 0, again = 0;
	int			 was;

	/* A sample that cannot be held is not sent: it could be lost. */
	vmsg_telemetry(&t, rp, store_now_ms());
	telemetry_record_id(c, &t);
	telemetry_keep(c, &t, 0);
	for (n = 0; n <= c->vc_conf->vc_resend_burst; n++) {
		if ((r = vrecq_next(&c->vc_recs)) == NULL)
			break;
		was = r->r_again;
		if (telemetry_send(c, r) == -1)
			break;
		sent++;
		again += was != 0;
	}
	if (sent > 0)
		vchip_count(c->vc_chip, "telemetry_sent", sent);
	if (again > 0)
		vchip_count(c->vc_chip, "telemetry_resent", again);
}

/*
 * A stored_seq of the session: the records it covers are durably at the
 * TSP and are let go.  One above our last seq cannot be ours.
 */
static void
telemetry_stored(struct vclient *c, uint64_t stored)
{
	size_t	n;

	if (stored > c->vc_tx_seq) {
		client_error(c, "session: stored_seq %llu from %s is above our"
		    " last seq %llu; ignored", (unsigned long long)stored,
		    c->vc_tsp, (unsigned long long)c->vc_tx_seq);
		return;
	}
	if ((n = vrecq_stored(&c->vc_recs, stored)) == 0)
		return;
	c->vc_stats.vs_stored += n;
	vmetrics_telemetry_stored(n);
	vchip_count(c->vc_chip, "telemetry_stored", (int64_t)n);
	log_debug("stored_seq %llu from %s: %zu records stored, %zu held",
	    (unsigned long long)stored, c->vc_tsp, n, vrecq_len(&c->vc_recs));
}

void
telemetry_response(struct vclient *c, const Qroam__ServiceResponse *sr)
{
	uint64_t	ack = sr->ack_seq;

	/* stored_seq counts even when it comes with an ack seen before. */
	if (sr->has_stored_seq)
		telemetry_stored(c, sr->stored_seq);
	if (ack <= c->vc_acked || ack > c->vc_tx_seq) {
		if (!sr->has_stored_seq)
			log_debug("session: ack %llu from %s ignored",
			    (unsigned long long)ack, c->vc_tsp);
		return;
	}
	c->vc_acked = ack;
	if (c->vc_ctl_seq != 0 && ack == c->vc_ctl_seq)
		return;
	c->vc_stats.vs_telemetry_acked++;
	vmetrics_telemetry_acked();
	vchip_count(c->vc_chip, "telemetry_acked", 1);
	log_debug("telemetry %llu acknowledged by %s",
	    (unsigned long long)ack, c->vc_tsp);
	if (c->vc_gap_wait && c->vc_gap_seq != 0 && ack >= c->vc_gap_seq)
		client_served(c, 0);
}
