/*
 * The measurements of qbench.  A vehicle shuttles between two TSPs whose
 * regions meet at a meridian: its telemetry, placed just before the
 * boundary and heading across it, makes the current TSP offer M5; qbench
 * answers M6, times M5 -> HandoverReady, then (as vehicled) destroys the
 * next chip key and wraps K1 for the next TSP, and crosses in one of
 * three ways: prepared entry (M3 to the next TSP at once, two sessions
 * until the crossing, then Bye to the old one and the first message on
 * the new session), the patent's order (the prepared M3 alone on a
 * connection opened before the crossing) or re-authentication (connect,
 * M4 and a new M3).  Throughput commands keep a window of M4s or
 * telemetry messages in flight on one connection.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#include "qbench.h"

#define QB_EDGE_DEG	0.001	/* telemetry this far before the boundary */
#define QB_RTT_EACH	50	/* raw round trips sampled per crossing */

/* One side of the boundary. */
struct qb_side {
	const char		*s_id;
	const struct endpoint	*s_ep;
	double			 s_lon;		/* where telemetry places us */
	double			 s_heading;	/* towards the other side */
};

/* One vehicle's shuttle and what it measured. */
struct qb_shuttle {
	struct qbench		*sh_q;
	uint32_t		 sh_index;
	struct bveh		 sh_v;
	struct bconn		 sh_conn;
	struct qb_side		 sh_side[2];
	int			 sh_at;		/* side of the session */
	double			*sh_prep;	/* us, M5 -> HandoverReady */
	double			*sh_gap_h;	/* us, prepared crossing */
	double			*sh_gap_r;	/* us, crossing with F3 + F4 */
	double			*sh_gap_p;	/* us, prepared entry */
	double			*sh_lag_p;	/* us, ... until stored_seq */
	double			*sh_destroy;	/* us, key destruction in gap_h */
	size_t			 sh_nprep, sh_ngap_h, sh_ngap_r, sh_ngap_p;
	uint32_t		 sh_failures;
	double			 sh_end_us;
	pthread_barrier_t	*sh_barrier;
};

/* The two sides of the bench's boundary; 0 or -1. */
static int
qb_sides(struct qbench *q, struct qb_side side[2])
{
	side[0].s_id = q->q_tsp_a;
	side[1].s_id = q->q_tsp_b;
	if ((side[0].s_ep = qb_vehicle_ep(q, q->q_tsp_a)) == NULL ||
	    (side[1].s_ep = qb_vehicle_ep(q, q->q_tsp_b)) == NULL)
		return -1;
	side[0].s_lon = q->q_boundary_lon - QB_EDGE_DEG;
	side[0].s_heading = 90;
	side[1].s_lon = q->q_boundary_lon + QB_EDGE_DEG;
	side[1].s_heading = 270;
	return 0;
}

/* Load the vehicle, authenticate at side 0 and open a session there. */
static int
qb_shuttle_start(struct qb_shuttle *sh)
{
	char	path[1024];

	qb_store_path(sh->sh_q, sh->sh_index, path, sizeof(path));
	if (bveh_load(&sh->sh_v, path) == -1)
		return -1;
	sh->sh_at = 0;
	if (bconn_open(&sh->sh_conn, sh->sh_side[0].s_ep) == -1)
		return -1;
	if (bveh_auth(&sh->sh_v, &sh->sh_conn, sh->sh_side[0].s_id) != 0 ||
	    bveh_m3(&sh->sh_v, &sh->sh_conn, sh->sh_side[0].s_id) != 0) {
		fprintf(stderr, "qbench: %s: no session with %s\n",
		    sh->sh_v.bv_vid, sh->sh_side[0].s_id);
		return -1;
	}
	return 0;
}

static void
qb_shuttle_free(struct qb_shuttle *sh)
{
	bconn_close(&sh->sh_conn);
	bveh_close(&sh->sh_v);
	free(sh->sh_prep);
	free(sh->sh_gap_h);
	free(sh->sh_gap_r);
	free(sh->sh_gap_p);
	free(sh->sh_lag_p);
	free(sh->sh_destroy);
}

/* Answer M5 with M6 naming next; 0, or -1 if next is no candidate. */
static int
qb_answer_m5(struct qb_shuttle *sh, const Qroam__M5 *m5, const char *next)
{
	Qroam__SessionInner	in = QROAM__SESSION_INNER__INIT;
	Qroam__M6		m6 = QROAM__M6__INIT;
	size_t			i;

	for (i = 0; i < m5->n_candidates; i++)
		if (strcmp(m5->candidates[i]->tsp_id, next) == 0)
			break;
	if (i == m5->n_candidates)
		return -1;
	m6.continue_service = 1;
	m6.next_tsp_id = (char *)next;
	in.body_case = QROAM__SESSION_INNER__BODY_M6;
	in.m6 = &m6;
	return bveh_send_inner(&sh->sh_v, &sh->sh_conn, &in);
}

/*
 * Telemetry at the boundary, M5, M6, HandoverReady from the next TSP.
 * 0 with *prep_us the time from M5 to HandoverReady, or -1.
 */
static int
qb_prepare(struct qb_shuttle *sh, double *prep_us)
{
	const struct qb_side	*from = &sh->sh_side[sh->sh_at];
	const struct qb_side	*to = &sh->sh_side[!sh->sh_at];
	Qroam__SessionInner	*in;
	double			 t0 = 0;
	int			 status, rc = 1;

	if (bveh_queue_telemetry(&sh->sh_v, &sh->sh_conn, sh->sh_q->q_lat,
	    from->s_lon, from->s_heading, sh->sh_q->q_speed) == -1 ||
	    bconn_flush(&sh->sh_conn) == -1)
		return -1;
	while (rc == 1) {
		in = bveh_recv_inner(&sh->sh_v, &sh->sh_conn, QB_WAIT_MS,
		    &status);
		if (in == NULL)
			return -1;
		if (in->body_case == QROAM__SESSION_INNER__BODY_M5 && t0 == 0) {
			t0 = qb_now_us();
			if (qb_answer_m5(sh, in->m5, to->s_id) == -1)
				rc = -1;
		} else if (in->body_case == QROAM__SESSION_INNER__BODY_READY &&
		    t0 != 0) {
			*prep_us = qb_now_us() - t0;
			rc = strcmp(in->ready->tsp_id, to->s_id) == 0 ? 0 : -1;
		}
		qroam__session_inner__free_unpacked(in, NULL);
	}
	/* As vehicled: the next TSP's M3 is made now, off the crossing. */
	if (rc == 0 && bveh_m3_prepare(&sh->sh_v, to->s_id) == -1)
		return -1;
	return rc;
}

/* Leave the current TSP: Bye on the session, then close. */
static void
qb_leave(struct qb_shuttle *sh)
{
	Qroam__SessionInner	in = QROAM__SESSION_INNER__INIT;
	Qroam__Bye		bye = QROAM__BYE__INIT;

	bye.reason = (char *)"region change";
	in.body_case = QROAM__SESSION_INNER__BODY_BYE;
	in.bye = &bye;
	bveh_send_inner(&sh->sh_v, &sh->sh_conn, &in);
	bconn_close(&sh->sh_conn);
}

/*
 * Cross to the other side.  prepared: M3 alone on a connection opened
 * after HandoverReady; else connect, F3 and F4.  0 with *gap_us (the
 * crossing until the new TSP's first ServiceResponse), or -1.
 */
static int
qb_cross(struct qb_shuttle *sh, int prepared, double *gap_us)
{
	const struct qb_side	*to = &sh->sh_side[!sh->sh_at];
	struct bconn		 pre;
	double			 t0;
	int			 rc;

	if (prepared && bconn_open(&pre, to->s_ep) == -1)
		return -1;
	qb_leave(sh);
	t0 = qb_now_us();
	if (!prepared && bconn_open(&pre, to->s_ep) == -1)
		return -1;
	sh->sh_conn = pre;
	sh->sh_at = !sh->sh_at;
	if (!prepared && bveh_auth(&sh->sh_v, &sh->sh_conn, to->s_id) != 0)
		return -1;
	if ((rc = bveh_m3(&sh->sh_v, &sh->sh_conn, to->s_id)) != 0) {
		fprintf(stderr, "qbench: %s: M3 at %s: %s\n", sh->sh_v.bv_vid,
		    to->s_id, rc > 0 ? msg_status_name(rc) : "no reply");
		return -1;
	}
	*gap_us = qb_now_us() - t0;
	return 0;
}

/* A session as the vehicle holds it, so that it can hold two at once. */
struct qb_sess {
	char		 ss_tsp[sizeof(((struct bveh *)0)->bv_tsp)];
	uint8_t		 ss_k1[32];
	uint64_t	 ss_tx, ss_rx;
};

static void
qb_sess_swap(struct bveh *v, struct qb_sess *s)
{
	struct qb_sess	 cur;

	memcpy(cur.ss_tsp, v->bv_tsp, sizeof(cur.ss_tsp));
	memcpy(cur.ss_k1, v->bv_k1, sizeof(cur.ss_k1));
	cur.ss_tx = v->bv_tx;
	cur.ss_rx = v->bv_rx;
	memcpy(v->bv_tsp, s->ss_tsp, sizeof(v->bv_tsp));
	memcpy(v->bv_k1, s->ss_k1, sizeof(v->bv_k1));
	v->bv_tx = s->ss_tx;
	v->bv_rx = s->ss_rx;
	*s = cur;
	crypto_wipe(&cur, sizeof(cur));
}

/*
 * Prepared entry (F6.8): after HandoverReady the M3 goes to the next TSP
 * at once, on a connection of its own, while the old session goes on.
 * Then the crossing: Bye to the old TSP and one telemetry message on the
 * new session.  0 with *gap_us (the crossing until its ServiceResponse)
 * and *lag_us (until a stored_seq covers it), or -1.
 */
static int
qb_enter_prepared(struct qb_shuttle *sh, double *gap_us, double *lag_us)
{
	const struct qb_side	*to = &sh->sh_side[!sh->sh_at];
	Qroam__SessionInner	*in;
	struct bconn		 next;
	struct qb_sess		 old;
	uint64_t		 seq, stored = 0;
	double			 t0;
	int			 status, answered = 0;

	if (bconn_open(&next, to->s_ep) == -1)
		return -1;
	/* Keep the old session: a copy, then the new one replaces it. */
	memcpy(old.ss_tsp, sh->sh_v.bv_tsp, sizeof(old.ss_tsp));
	memcpy(old.ss_k1, sh->sh_v.bv_k1, sizeof(old.ss_k1));
	old.ss_tx = sh->sh_v.bv_tx;
	old.ss_rx = sh->sh_v.bv_rx;
	if (bveh_m3(&sh->sh_v, &next, to->s_id) != 0) {
		qb_sess_swap(&sh->sh_v, &old);
		bconn_close(&next);
		return -1;
	}
	/* The crossing. */
	qb_sess_swap(&sh->sh_v, &old);
	qb_leave(sh);
	qb_sess_swap(&sh->sh_v, &old);
	crypto_wipe(&old, sizeof(old));
	t0 = qb_now_us();
	sh->sh_conn = next;
	sh->sh_at = !sh->sh_at;
	/* Standing still: the message is service, not a handover trigger. */
	if (bveh_queue_telemetry(&sh->sh_v, &sh->sh_conn, sh->sh_q->q_lat,
	    to->s_lon, to->s_heading, 0) == -1 ||
	    bconn_flush(&sh->sh_conn) == -1)
		return -1;
	seq = sh->sh_v.bv_tx;
	while (!answered || stored < seq) {
		if ((in = bveh_recv_inner(&sh->sh_v, &sh->sh_conn, QB_WAIT_MS,
		    &status)) == NULL)
			return -1;
		if (in->body_case == QROAM__SESSION_INNER__BODY_RESPONSE) {
			if (!answered && in->response->ack_seq == seq) {
				*gap_us = qb_now_us() - t0;
				answered = 1;
			}
			if (in->response->has_stored_seq &&
			    in->response->stored_seq > stored)
				stored = in->response->stored_seq;
		}
		qroam__session_inner__free_unpacked(in, NULL);
	}
	*lag_us = qb_now_us() - t0;
	return 0;
}

/* How a vehicle crosses. */
enum qb_kind {
	QB_PREPARED,		/* prepared entry, after a handover */
	QB_ON_CROSSING,		/* the patent's order, after a handover */
	QB_REAUTH,		/* F3 + F4 at the new TSP */
};

/*
 * One crossing of kind.  A handover that fails counts and the crossing
 * falls back to F3 + F4, as a vehicle does.  0, or -1 when even that
 * failed.
 */
static int
qb_crossing(struct qb_shuttle *sh, enum qb_kind kind)
{
	const struct qb_side	*here;
	double			 prep, gap, lag;
	int			 from = sh->sh_at, rc;

	if (kind != QB_REAUTH) {
		if (qb_prepare(sh, &prep) == 0) {
			if (kind == QB_PREPARED)
				rc = qb_enter_prepared(sh, &gap, &lag);
			else
				rc = qb_cross(sh, 1, &gap);
		} else
			rc = -1;
		if (rc == 0) {
			sh->sh_prep[sh->sh_nprep++] = prep;
			if (kind == QB_PREPARED) {
				sh->sh_lag_p[sh->sh_ngap_p] = lag;
				sh->sh_gap_p[sh->sh_ngap_p++] = gap;
			} else {
				sh->sh_destroy[sh->sh_ngap_h] =
				    sh->sh_v.bv_destroy_us;
				sh->sh_gap_h[sh->sh_ngap_h++] = gap;
			}
			return 0;
		}
		sh->sh_failures++;
		if (sh->sh_at == from)
			return qb_cross(sh, 0, &gap);
		/* Crossed, but the new TSP wanted F3 first. */
		here = &sh->sh_side[sh->sh_at];
		if (sh->sh_conn.bc_fd == -1 && bconn_open(&sh->sh_conn,
		    here->s_ep) == -1)
			return -1;
		if (bveh_auth(&sh->sh_v, &sh->sh_conn, here->s_id) != 0 ||
		    bveh_m3(&sh->sh_v, &sh->sh_conn, here->s_id) != 0)
			return -1;
		return 0;
	}
	if (qb_cross(sh, 0, &gap) == -1)
		return -1;
	sh->sh_gap_r[sh->sh_ngap_r++] = gap;
	return 0;
}

/* Room for n samples of each kind. */
static void
qb_shuttle_alloc(struct qb_shuttle *sh, size_t n)
{
	sh->sh_prep = xcalloc(n + 1, sizeof(double));
	sh->sh_gap_h = xcalloc(n + 1, sizeof(double));
	sh->sh_gap_r = xcalloc(n + 1, sizeof(double));
	sh->sh_gap_p = xcalloc(n + 1, sizeof(double));
	sh->sh_lag_p = xcalloc(n + 1, sizeof(double));
	sh->sh_destroy = xcalloc(n + 1, sizeof(double));
}

/* Print p50 (and p99) of samples under a name; returns p50. */
static double
qb_report(const struct qbench *q, const char *name, double *v, size_t n,
    double *p99)
{
	double	p50, x99;

	qb_print_samples(q, name, v, n);
	qb_percentiles(v, n, &p50, &x99);
	if (p99 != NULL)
		*p99 = x99;
	return p50;
}

/*
 * gap: one vehicle crosses n times, in turn with prepared entry,
 * re-authentication and the patent's order (P R H P R H ...: each
 * direction gets each kind), with raw loopback round trips sampled
 * before every crossing.
 */
int
qb_cmd_gap(struct qbench *q)
{
	static const enum qb_kind kinds[] = { QB_PREPARED, QB_REAUTH,
	    QB_ON_CROSSING };
	struct qb_shuttle	 sh;
	double			*rtt, h50, r50, p50, p99, t50, d50, e50, l50;
	uint32_t		 k, n = q->q_count ? q->q_count : 18;
	uint16_t		 port;

	memset(&sh, 0, sizeof(sh));
	sh.sh_q = q;
	sh.sh_index = q->q_first;
	if (qb_sides(q, sh.sh_side) == -1 || (port = qb_echo_start()) == 0)
		return result_print(QB_LOCAL, "ERROR", "reason=setup");
	qb_shuttle_alloc(&sh, n);
	rtt = xcalloc((size_t)n * QB_RTT_EACH, sizeof(*rtt));
	if (qb_shuttle_start(&sh) == -1) {
		qb_shuttle_free(&sh);
		free(rtt);
		return result_print(QB_RAN, "FAILED", "reason=start");
	}
	for (k = 0; k < n; k++) {
		if (qb_rtt(port, 256, rtt + (size_t)k * QB_RTT_EACH,
		    QB_RTT_EACH) == -1 || qb_crossing(&sh, kinds[k % 3]) == -1)
			break;
	}
	t50 = qb_report(q, "rtt_us", rtt, (size_t)k * QB_RTT_EACH, NULL);
	e50 = qb_report(q, "gap_prepared_us", sh.sh_gap_p, sh.sh_ngap_p, NULL);
	l50 = qb_report(q, "stored_lag_us", sh.sh_lag_p, sh.sh_ngap_p, NULL);
	h50 = qb_report(q, "gap_handover_us", sh.sh_gap_h, sh.sh_ngap_h, NULL);
	d50 = qb_report(q, "destroy_us", sh.sh_destroy, sh.sh_ngap_h, NULL);
	r50 = qb_report(q, "gap_reauth_us", sh.sh_gap_r, sh.sh_ngap_r, NULL);
	p50 = qb_report(q, "prep_us", sh.sh_prep, sh.sh_nprep, &p99);
	result_print(QB_RAN, k == n ? "OK" : "FAILED", "crossings=%u"
	    " prepared=%zu handovers=%zu reauths=%zu failures=%u rtt_us_p50=%.1f"
	    " gap_prepared_us_p50=%.1f stored_lag_us_p50=%.1f"
	    " gap_handover_us_p50=%.1f key_destroy_us_p50=%.1f"
	    " gap_reauth_us_p50=%.1f prep_us_p50=%.1f prep_us_p99=%.1f", k,
	    sh.sh_ngap_p, sh.sh_ngap_h, sh.sh_ngap_r, sh.sh_failures, t50, e50,
	    l50, h50, d50, r50, p50, p99);
	qb_shuttle_free(&sh);
	free(rtt);
	return QB_RAN;
}

/* One thread of the handover command: n prepared crossings. */
static void *
qb_handover_main(void *arg)
{
	struct qb_shuttle	*sh = arg;
	uint32_t		 k;
	int			 ok = qb_shuttle_start(sh) == 0;

	pthread_barrier_wait(sh->sh_barrier);
	for (k = 0; ok && k < sh->sh_q->q_count; k++)
		if (qb_crossing(sh, QB_ON_CROSSING) == -1)
			ok = 0;
	if (!ok)
		sh->sh_failures++;
	sh->sh_end_us = qb_now_us();
	return NULL;
}

/*
 * handover: P vehicles shuttle at once, n prepared crossings each; the
 * rate is completed handovers over the time from the common start to
 * the last vehicle's end.
 */
int
qb_cmd_handover(struct qbench *q)
{
	struct qb_shuttle	*sh;
	pthread_t		*th;
	pthread_barrier_t	 bar;
	double			*prep, t0, end = 0, p50, p99;
	size_t			 i, np = 0, n = q->q_count ? q->q_count : 10;
	uint32_t		 fails = 0, P = q->q_parallel ? q->q_parallel : 1;

	q->q_count = (uint32_t)n;
	sh = xcalloc(P, sizeof(*sh));
	th = xcalloc(P, sizeof(*th));
	prep = xcalloc(P * n + 1, sizeof(*prep));
	pthread_barrier_init(&bar, NULL, P + 1);
	for (i = 0; i < P; i++) {
		sh[i].sh_q = q;
		sh[i].sh_index = q->q_first + (uint32_t)i;
		sh[i].sh_barrier = &bar;
		qb_shuttle_alloc(&sh[i], n);
		if (qb_sides(q, sh[i].sh_side) == -1)
			fatalx("unknown TSP");
		if (pthread_create(&th[i], NULL, qb_handover_main, &sh[i]) != 0)
			fatalx("pthread_create");
	}
	pthread_barrier_wait(&bar);
	t0 = qb_now_us();
	for (i = 0; i < P; i++) {
		pthread_join(th[i], NULL);
		if (sh[i].sh_end_us > end)
			end = sh[i].sh_end_us;
		fails += sh[i].sh_failures;
		memcpy(prep + np, sh[i].sh_prep, sh[i].sh_nprep * sizeof(*prep));
		np += sh[i].sh_nprep;
		qb_shuttle_free(&sh[i]);
	}
	pthread_barrier_destroy(&bar);
	p50 = qb_report(q, "prep_us", prep, np, &p99);
	result_print(QB_RAN, fails ? "FAILED" : "OK", "parallel=%u handovers=%zu"
	    " failures=%u seconds=%.3f per_second=%.1f prep_us_p50=%.1f"
	    " prep_us_p99=%.1f", P, np, fails, (end - t0) / 1e6,
	    end > t0 ? (double)np / ((end - t0) / 1e6) : 0.0, p50, p99);
	free(prep);
	free(th);
	free(sh);
	return QB_RAN;
}

/* Open vehicle first's connection to TSP A; 0 or -1. */
static int
qb_single(struct qbench *q, struct bveh *v, struct bconn *bc)
{
	const struct endpoint	*ep;
	char			 path[1024];

	qb_store_path(q, q->q_first, path, sizeof(path));
	if ((ep = qb_vehicle_ep(q, q->q_tsp_a)) == NULL ||
	    bveh_load(v, path) == -1)
		return -1;
	if (bconn_open(bc, ep) == -1) {
		bveh_close(v);
		return -1;
	}
	return 0;
}

/*
 * auth: M4s pipelined on one connection, window W, for s seconds; every
 * AuthResult is checked (nonce and signature) before it counts.  The TSP
 * may answer them in any order: M4 n uses slot n % W and is sent only
 * once the slot's previous M4 has been answered.
 */
int
qb_cmd_auth(struct qbench *q)
{
	struct bveh	 v;
	struct bconn	 bc;
	struct frame	 f;
	uint8_t		(*nonce)[MSG_AUTH_NONCELEN];
	uint64_t	*slot;		/* request id in the slot, or UINT64_MAX */
	uint64_t	 sent = 0, got = 0, ok = 0, W, i;
	double		 t0, stop, end;

	W = q->q_window ? q->q_window : 16;
	if (qb_single(q, &v, &bc) == -1)
		return result_print(QB_LOCAL, "ERROR", "reason=setup");
	nonce = xcalloc(W, sizeof(*nonce));
	slot = xcalloc(W, sizeof(*slot));
	for (i = 0; i < W; i++)
		slot[i] = UINT64_MAX;
	t0 = qb_now_us();
	stop = t0 + (q->q_seconds > 0 ? q->q_seconds : 2) * 1e6;
	end = t0;
	while (got < sent || qb_now_us() < stop) {
		while (slot[sent % W] == UINT64_MAX && qb_now_us() < stop)
			if (bveh_queue_m4(&v, &bc, q->q_tsp_a, sent,
			    nonce[sent % W]) == -1)
				fatalx("M4");
			else {
				slot[sent % W] = sent;
				sent++;
			}
		if (bconn_flush(&bc) == -1 || bconn_recv(&bc, &f,
		    QB_WAIT_MS) != 1)
			break;
		if (slot[f.f_request_id % W] == f.f_request_id) {
			slot[f.f_request_id % W] = UINT64_MAX;
			if (bveh_auth_ok(&v, &f, q->q_tsp_a,
			    nonce[f.f_request_id % W]))
				ok++;
		}
		frame_release(&f);
		got++;
		end = qb_now_us();
	}
	bconn_close(&bc);
	bveh_close(&v);
	free(slot);
	free(nonce);
	return result_print(QB_RAN, got == sent && ok == got ? "OK" : "FAILED",
	    "window=%llu sent=%llu ok=%llu seconds=%.3f per_second=%.1f",
	    (unsigned long long)W, (unsigned long long)sent,
	    (unsigned long long)ok, (end - t0) / 1e6,
	    end > t0 ? (double)ok / ((end - t0) / 1e6) : 0.0);
}

/*
 * Count the answers among the frames that arrived and take in stored_seq
 * (*stored: the highest); the count of frames, or -1 on error.
 */
static int
qb_acks(struct bveh *v, struct bconn *bc, int timeout_ms, uint64_t *acked,
    uint64_t *stored)
{
	Qroam__SessionInner	*in;
	int			 status, n = 0;

	for (;;) {
		in = bveh_recv_inner(v, bc, n == 0 ? timeout_ms : 0, &status);
		if (in == NULL)
			return n > 0 || status == QB_TIMEOUT ? n : -1;
		if (in->body_case == QROAM__SESSION_INNER__BODY_RESPONSE) {
			if (in->response->ack_seq > 0)
				(*acked)++;
			if (in->response->has_stored_seq &&
			    in->response->stored_seq > *stored)
				*stored = in->response->stored_seq;
		}
		qroam__session_inner__free_unpacked(in, NULL);
		n++;
	}
}

/*
 * telemetry: F3 and F4 at TSP A, then telemetry pipelined on the session,
 * window W of unanswered messages, for s seconds; each answer is
 * decrypted and counted, and the run lasts until stored_seq covers every
 * message: the rate is of records durably stored.
 */
int
qb_cmd_telemetry(struct qbench *q)
{
	struct bveh	 v;
	struct bconn	 bc;
	uint64_t	 sent = 0, acked = 0, first, stored = 0, W;
	double		 t0, stop, end;

	W = q->q_window ? q->q_window : 128;
	if (qb_single(q, &v, &bc) == -1)
		return result_print(QB_LOCAL, "ERROR", "reason=setup");
	if (bveh_auth(&v, &bc, q->q_tsp_a) != 0 ||
	    bveh_m3(&v, &bc, q->q_tsp_a) != 0) {
		bconn_close(&bc);
		bveh_close(&v);
		return result_print(QB_RAN, "FAILED", "reason=no-session");
	}
	first = v.bv_tx + 1;
	stored = first - 1;
	t0 = end = qb_now_us();
	stop = t0 + (q->q_seconds > 0 ? q->q_seconds : 2) * 1e6;
	while (acked < sent || stored + 1 < first + sent ||
	    qb_now_us() < stop) {
		while (sent - acked < W && qb_now_us() < stop) {
			if (bveh_queue_telemetry(&v, &bc, q->q_lat,
			    q->q_boundary_lon - 0.05, 0, 0) == -1)
				fatalx("telemetry");
			sent++;
		}
		if (bconn_flush(&bc) == -1 || qb_acks(&v, &bc, QB_WAIT_MS,
		    &acked, &stored) <= 0)
			break;
		end = qb_now_us();
	}
	bconn_close(&bc);
	bveh_close(&v);
	stored -= first - 1;
	return result_print(QB_RAN, acked == sent && stored == sent ? "OK" :
	    "FAILED", "window=%llu sent=%llu acked=%llu stored=%llu seconds=%.3f"
	    " per_second=%.1f", (unsigned long long)W, (unsigned long long)sent,
	    (unsigned long long)acked, (unsigned long long)stored,
	    (end - t0) / 1e6,
	    end > t0 ? (double)stored / ((end - t0) / 1e6) : 0.0);
}
