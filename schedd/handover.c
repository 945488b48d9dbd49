/*
 * The handover state machine of the scheduler (PROTOCOL F6 steps 3-6):
 *
 *   a1   A1 from TSPA taken; CK1 being taken from TSPA's key reserve
 *   ck1  KeyReply sent to TSPA; waiting for its A2
 *   a2   A2 forwarded to TSPB; TSPA's A2 waits for its answer (M7)
 *   a3   A3 from TSPB taken; CK2 being taken from TSPB's key reserve
 *   done KeyReply to TSPB, M7 to TSPA
 *   failed  timeout, KME refusal, a TSP gone or refusing; every request
 *        still waiting gets Status UNAVAILABLE with the reason
 *
 * Every transition goes through ho_set_state(), which persists the row,
 * appends an audit row and logs one line.  CK1 and CK2 live only in memory
 * and are wiped as soon as M7 is sealed or the handover ends.  The key
 * reserves (keys.c) hold keys fetched from the KME ahead of need, so a
 * key is usually at hand; an empty reserve asks the KME for this
 * handover's key, and when none can be had the handover fails with the
 * KME's reason.  A2 goes
 * to TSPB as a request on the long-lived channel to it (channels.c).  A
 * handover is freed once it ended and nothing refers to it any more: no
 * forwarded A2 in flight (a wait for a key is cancelled when it ends).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ids.h"
#include "keysrc.h"
#include "log.h"
#include "msg.h"
#include "rand.h"
#include "sched.h"
#include "store.h"

enum ho_state {
	HO_A1,
	HO_CK1,
	HO_A2,
	HO_A3,
	HO_DONE,
	HO_FAILED,
};

static const char *const ho_state_names[] = {
	"a1", "ck1", "a2", "a3", "done", "failed",
};

/* The A2 forwarded to TSPB. */
enum fwd_state {
	FWD_NONE,		/* not forwarded */
	FWD_SENT,		/* A2 sent, its Status awaited */
	FWD_ACKED,		/* TSPB answered OK */
};

/* A request whose answer is deferred, and where the answer goes. */
struct ho_waiter {
	struct conn	*hw_conn;	/* NULL: nobody waits */
	uint64_t	 hw_reqid;
};

struct handover {
	TAILQ_ENTRY(handover)	 ho_entry;
	struct sched		*ho_s;
	char			 ho_id[SCHED_HO_IDLEN + 1];
	char			 ho_initiator[NAME_MAXLEN + 1];
	char			 ho_target[NAME_MAXLEN + 1];
	enum ho_state		 ho_state;
	int			 ho_recorded;
	char			 ho_ck1_id[KEYSRC_IDMAX + 1];
	char			 ho_ck2_id[KEYSRC_IDMAX + 1];
	uint8_t			 ho_ck1[KEYSRC_KEYLEN];
	uint64_t		 ho_created_ms;
	uint64_t		 ho_updated_ms;
	uint64_t		 ho_expires_ms;
	char			 ho_reason[200];
	struct ho_waiter	 ho_a1;		/* TSPA's A1, until KeyReply */
	struct ho_waiter	 ho_a2;		/* TSPA's A2, until M7 */
	struct ho_waiter	 ho_a3;		/* TSPB's A3, until KeyReply */
	struct chan		*ho_fwd;	/* the channel to TSPB */
	enum fwd_state		 ho_fwd_state;
	uint64_t		 ho_fwd_reqid;	/* 0: no A2 in flight */
	struct event		*ho_timer;
	struct keysrc_reserve	*ho_wait_r;	/* of the key awaited */
	struct keysrc_wait	*ho_wait;	/* NULL: none awaited */
};

/* done or failed: nothing more will happen to it. */
static int
ho_finished(const struct handover *ho)
{
	return ho->ho_state == HO_DONE || ho->ho_state == HO_FAILED;
}

static struct handover *
ho_find(struct sched *s, const char *id)
{
	struct handover	*ho;

	TAILQ_FOREACH(ho, &s->s_handovers, ho_entry)
		if (strcmp(ho->ho_id, id) == 0)
			return ho;
	return NULL;
}

/* Free ho if it ended and nothing refers to it any more. */
static void
ho_release(struct handover *ho)
{
	struct sched	*s = ho->ho_s;

	if (!ho_finished(ho) || ho->ho_wait != NULL || ho->ho_fwd_reqid != 0)
		return;
	TAILQ_REMOVE(&s->s_handovers, ho, ho_entry);
	s->s_nhandovers--;
	event_free(ho->ho_timer);
	crypto_wipe(ho, sizeof(*ho));
	free(ho);
}

/*
 * The one way a handover changes state: rewrite its row, append an audit
 * row (event, detail) and log one line.  The state changes only once it is
 * stored: 0, or -1 if the store failed and nothing changed.
 */
static int
ho_set_state(struct handover *ho, enum ho_state to, const char *event,
    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
ho_set_state(struct handover *ho, enum ho_state to, const char *event,
    const char *fmt, ...)
{
	struct ho_row	 hr;
	va_list		 ap;
	char		 detail[256];
	const char	*from;
	uint64_t	 now = store_now_ms();
	int		 rc;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	from = ho->ho_recorded ? ho_state_names[ho->ho_state] : "new";
	memset(&hr, 0, sizeof(hr));
	hr.hr_id = ho->ho_id;
	hr.hr_initiator = ho->ho_initiator;
	hr.hr_target = ho->ho_target[0] ? ho->ho_target : NULL;
	hr.hr_state = ho_state_names[to];
	hr.hr_ck1_key_id = ho->ho_ck1_id[0] ? ho->ho_ck1_id : NULL;
	hr.hr_ck2_key_id = ho->ho_ck2_id[0] ? ho->ho_ck2_id : NULL;
	hr.hr_created_ms = ho->ho_created_ms;
	hr.hr_updated_ms = now;
	hr.hr_expires_ms = ho->ho_expires_ms;
	hr.hr_reason = ho->ho_reason[0] ? ho->ho_reason : NULL;
	rc = sched_db_record(ho->ho_s->s_db, &hr, event, detail);
	if (ho->ho_recorded && ho->ho_state == to)
		log_info("handover %s: %s: %s%s", ho->ho_id, from, detail,
		    rc == -1 ? " (not stored)" : "");
	else
		log_info("handover %s: %s -> %s: %s%s", ho->ho_id, from,
		    ho_state_names[to], detail, rc == -1 ? " (not stored)" : "");
	if (rc == 0) {
		ho->ho_state = to;
		ho->ho_recorded = 1;
		ho->ho_updated_ms = now;
	}
	return rc;
}

/* Answer a deferred request with a Status, once. */
static void
ho_answer_status(struct ho_waiter *hw, int code, const char *detail)
{
	if (hw->hw_conn == NULL)
		return;
	(void)conn_send_status(hw->hw_conn, hw->hw_reqid, code, detail);
	hw->hw_conn = NULL;
}

/*
 * Leave no key behind; stop the timer, give up a key awaited (a key set
 * aside for it returns to the reserve), forget a forwarded A2.
 */
static void
ho_wind_down(struct handover *ho)
{
	crypto_wipe(ho->ho_ck1, sizeof(ho->ho_ck1));
	evtimer_del(ho->ho_timer);
	if (ho->ho_wait != NULL)
		keysrc_reserve_cancel(ho->ho_wait_r, ho->ho_wait);
	ho->ho_wait = NULL;
	if (ho->ho_fwd_reqid != 0)
		chan_cancel(ho->ho_fwd, ho->ho_fwd_reqid);
	ho->ho_fwd_reqid = 0;
}

/* The handover failed: tell whoever still waits, record it, wind down. */
static void
ho_fail(struct handover *ho, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ho_fail(struct handover *ho, int code, const char *fmt, ...)
{
	va_list	ap;

	if (ho_finished(ho))
		return;
	sched_metric_handover("failed", 0);
	va_start(ap, fmt);
	vsnprintf(ho->ho_reason, sizeof(ho->ho_reason), fmt, ap);
	va_end(ap);
	if (ho_set_state(ho, HO_FAILED, "failed", "%s", ho->ho_reason) == -1)
		ho->ho_state = HO_FAILED;
	ho_answer_status(&ho->ho_a1, code, ho->ho_reason);
	ho_answer_status(&ho->ho_a2, code, ho->ho_reason);
	ho_answer_status(&ho->ho_a3, code, ho->ho_reason);
	ho_wind_down(ho);
}

/* handover_timeout passed since A1. */
static void
ho_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct handover	*ho = arg;

	(void)fd;
	(void)ev;
	ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE, "handover timed out");
	ho_release(ho);
}

/* KeyReply{handover_id, key_id, master_sae} on a deferred request. */
static int
ho_send_key_reply(struct handover *ho, struct ho_waiter *hw, const char *key_id)
{
	Qroam__KeyReply	kr = QROAM__KEY_REPLY__INIT;
	int		rc;

	if (hw->hw_conn == NULL)
		return -1;
	kr.handover_id = ho->ho_id;
	kr.key_id = (char *)key_id;
	kr.master_sae = (char *)ho->ho_s->s_conf->sc_common.cc_id;
	rc = conn_send(hw->hw_conn, QROAM__MSG_TYPE__MT_KEY_REPLY, hw->hw_reqid,
	    &kr.base);
	hw->hw_conn = NULL;
	return rc;
}

/*
 * Ask TSP tsp's key reserve for a key for ho, handed to cb; 0, or -1 if
 * the request could not be made.
 */
static int
ho_want_key(struct handover *ho, const char *tsp, keysrc_cb cb)
{
	if ((ho->ho_wait_r = sched_keys_reserve(ho->ho_s, tsp)) == NULL ||
	    (ho->ho_wait = keysrc_reserve_get(ho->ho_wait_r, cb, ho)) == NULL)
		return -1;
	return 0;
}

/* CK1 came from TSPA's reserve or the KME (or did not): answer A1. */
static void
ho_ck1_cb(void *arg, enum keysrc_result res, const struct keysrc_key *keys,
    size_t n, const char *why)
{
	struct handover	*ho = arg;
	const char	*key_id;

	ho->ho_wait = NULL;
	if (ho->ho_state != HO_A1) {
		ho_release(ho);
		return;
	}
	if (res != KEYSRC_OK || n != 1) {
		ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE, "no CK1 for %s: %s",
		    ho->ho_initiator, why != NULL ? why : "no key");
		ho_release(ho);
		return;
	}
	key_id = keys[0].kk_id;
	memcpy(ho->ho_ck1, keys[0].kk_key, sizeof(ho->ho_ck1));
	snprintf(ho->ho_ck1_id, sizeof(ho->ho_ck1_id), "%s", key_id);
	if (ho_set_state(ho, HO_CK1, "ck1", "CK1 key_ID %s shared with %s",
	    key_id, ho->ho_initiator) == -1)
		ho_fail(ho, QROAM__STATUS_CODE__INTERNAL, "store failed");
	else if (ho_send_key_reply(ho, &ho->ho_a1, key_id) == -1)
		ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE,
		    "cannot send KeyReply to %s", ho->ho_initiator);
	ho_release(ho);
}

int
ho_a1(struct sched *s, struct conn *c, uint64_t reqid,
    const Qroam__KeyRequest *req, char *why, size_t whylen)
{
	struct handover	*ho;
	struct timeval	 tv;
	int		 known = 0;

	if (ho_find(s, req->handover_id) != NULL ||
	    (known = sched_db_known(s->s_db, req->handover_id)) == 1) {
		snprintf(why, whylen, "handover_id already used");
		return QROAM__STATUS_CODE__BAD_REQUEST;
	}
	if (known == -1 || s->s_nhandovers >= SCHED_MAX_HANDOVERS ||
	    (ho = calloc(1, sizeof(*ho))) == NULL) {
		snprintf(why, whylen, "%s", known == -1 ? "store error" :
		    "too many handovers in progress");
		return QROAM__STATUS_CODE__UNAVAILABLE;
	}
	if ((ho->ho_timer = evtimer_new(s->s_base, ho_timeout_cb, ho)) == NULL) {
		free(ho);
		snprintf(why, whylen, "out of memory");
		return QROAM__STATUS_CODE__INTERNAL;
	}
	ho->ho_s = s;
	snprintf(ho->ho_id, sizeof(ho->ho_id), "%s", req->handover_id);
	snprintf(ho->ho_initiator, sizeof(ho->ho_initiator), "%s", req->from);
	ho->ho_created_ms = store_now_ms();
	ho->ho_expires_ms = ho->ho_created_ms + s->s_conf->sc_handover_timeout_ms;
	TAILQ_INSERT_TAIL(&s->s_handovers, ho, ho_entry);
	s->s_nhandovers++;
	if (ho_set_state(ho, HO_A1, "a1", "A1 from %s", req->from) == -1) {
		ho->ho_state = HO_FAILED;
		ho_release(ho);
		snprintf(why, whylen, "store failed");
		return QROAM__STATUS_CODE__INTERNAL;
	}
	ho->ho_a1.hw_conn = c;
	ho->ho_a1.hw_reqid = reqid;
	tv.tv_sec = s->s_conf->sc_handover_timeout_ms / 1000;
	tv.tv_usec = s->s_conf->sc_handover_timeout_ms % 1000 * 1000;
	evtimer_add(ho->ho_timer, &tv);
	if (ho_want_key(ho, ho->ho_initiator, ho_ck1_cb) == -1) {
		ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE,
		    "cannot ask for CK1");
		ho_release(ho);
	}
	return 0;
}

/*
 * TSPB's answer to the forwarded A2: Status OK, or the handover fails
 * (a refusal, another answer, or no answer: the channel lost it).
 */
static void
ho_fwd_reply(void *arg, const struct frame *f, const char *lost)
{
	struct handover	*ho = arg;
	Qroam__Status	*st = NULL;

	ho->ho_fwd_reqid = 0;
	if (f == NULL)
		ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE,
		    "access request not delivered to %s: %s", ho->ho_target,
		    lost);
	else if (f->f_type != QROAM__MSG_TYPE__MT_STATUS ||
	    (st = (Qroam__Status *)frame_unpack(f,
	    &qroam__status__descriptor)) == NULL)
		ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE,
		    "unexpected answer to the access request from %s",
		    ho->ho_target);
	else if (st->code == QROAM__STATUS_CODE__OK) {
		ho->ho_fwd_state = FWD_ACKED;
		if (!ho_finished(ho))
			(void)ho_set_state(ho, ho->ho_state, "a2_accepted",
			    "%s accepted the access request", ho->ho_target);
	} else
		ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE,
		    "%s refused the access request: %s %s", ho->ho_target,
		    msg_status_name(st->code), st->detail ? st->detail : "");
	if (st != NULL)
		qroam__status__free_unpacked(st, NULL);
	ho_release(ho);
}

/* Send A2 to TSPB's provisioning listener on the channel to it. */
static int
ho_forward(struct handover *ho)
{
	struct sched		*s = ho->ho_s;
	const struct topo_tsp	*tt = topo_tsp(s->s_topo, ho->ho_target);
	Qroam__AccessRequest	 ar = QROAM__ACCESS_REQUEST__INIT;

	if (tt == NULL || (ho->ho_fwd = sched_chan_tsp(s, tt)) == NULL)
		return -1;
	ar.type = 2;
	ar.target = ho->ho_target;
	ar.initiator = ho->ho_initiator;
	ar.handover_id = ho->ho_id;
	if (chan_request(ho->ho_fwd, QROAM__MSG_TYPE__MT_ACCESS_REQUEST,
	    &ar.base, (int)s->s_conf->sc_handover_timeout_ms, ho_fwd_reply,
	    ho, &ho->ho_fwd_reqid) == -1) {
		ho->ho_fwd_reqid = 0;
		return -1;
	}
	ho->ho_fwd_state = FWD_SENT;
	return 0;
}

int
ho_a2(struct sched *s, struct conn *c, uint64_t reqid,
    const Qroam__AccessRequest *req, char *why, size_t whylen)
{
	struct handover	*ho;

	if ((ho = ho_find(s, req->handover_id)) == NULL) {
		snprintf(why, whylen, "unknown handover");
		return QROAM__STATUS_CODE__BAD_REQUEST;
	}
	if (strcmp(ho->ho_initiator, req->initiator) != 0) {
		snprintf(why, whylen, "handover of another TSP");
		return QROAM__STATUS_CODE__BAD_REQUEST;
	}
	if (ho->ho_state != HO_CK1) {
		snprintf(why, whylen, "handover is in state %s, not ck1",
		    ho_state_names[ho->ho_state]);
		return QROAM__STATUS_CODE__BAD_REQUEST;
	}
	snprintf(ho->ho_target, sizeof(ho->ho_target), "%s", req->target);
	ho->ho_a2.hw_conn = c;
	ho->ho_a2.hw_reqid = reqid;
	if (ho_set_state(ho, HO_A2, "a2", "A2 from %s to %s, forwarding",
	    ho->ho_initiator, ho->ho_target) == -1)
		ho_fail(ho, QROAM__STATUS_CODE__INTERNAL, "store failed");
	else if (ho_forward(ho) == -1)
		ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE,
		    "cannot forward the access request to %s", ho->ho_target);
	ho_release(ho);
	return 0;
}

/*
 * M7 for TSPA: ct = AEAD_CK1(M7Inner{ck2, TSPB and its provisioning
 * address, expiry}), AAD qroam/1|M7|TSPA|handover_id.  m7 points into
 * nonce and *ct (malloc'd); the plaintext holding CK2 is wiped.
 */
static int
ho_seal_m7(struct handover *ho, const uint8_t ck2[KEYSRC_KEYLEN],
    Qroam__M7 *m7, uint8_t nonce[CRYPTO_NONCELEN], uint8_t **ct)
{
	const struct topo_tsp	*tt = topo_tsp(ho->ho_s->s_topo, ho->ho_target);
	Qroam__M7Inner		 in = QROAM__M7_INNER__INIT;
	char			 aad[MSG_AAD_MAX];
	uint8_t			*pt;
	size_t			 len;
	int			 rc;

	in.ck2.data = (uint8_t *)ck2;
	in.ck2.len = KEYSRC_KEYLEN;
	in.tsp_id = ho->ho_target;
	in.host = (char *)tt->tt_provision.ep_host;
	in.port = tt->tt_provision.ep_port;
	in.expiry_ms = store_now_ms() + ho->ho_s->s_conf->sc_ck2_lifetime_ms;
	if (msg_aad(aad, sizeof(aad), "M7", ho->ho_initiator, ho->ho_id,
	    NULL) == -1)
		return -1;
	len = qroam__m7_inner__get_packed_size(&in);
	if ((pt = malloc(len)) == NULL)
		return -1;
	if ((*ct = malloc(len + CRYPTO_TAGLEN)) == NULL) {
		free(pt);
		return -1;
	}
	qroam__m7_inner__pack(&in, pt);
	qrand_bytes(nonce, CRYPTO_NONCELEN);
	rc = crypto_aead_seal(ho->ho_ck1, nonce, aad, pt, len, *ct);
	crypto_wipe(pt, len);
	free(pt);
	if (rc == -1) {
		free(*ct);
		*ct = NULL;
		return -1;
	}
	m7->handover_id = ho->ho_id;
	m7->nonce.data = nonce;
	m7->nonce.len = CRYPTO_NONCELEN;
	m7->ct.data = *ct;
	m7->ct.len = len + CRYPTO_TAGLEN;
	return 0;
}

/* CK2 is here: record the end, answer A3 with KeyReply and A2 with M7. */
static void
ho_complete(struct handover *ho, const char *key_id, const uint8_t *ck2)
{
	Qroam__M7	 m7 = QROAM__M7__INIT;
	uint8_t		 nonce[CRYPTO_NONCELEN], *ct = NULL;
	struct conn	*tspa = ho->ho_a2.hw_conn;
	uint64_t	 reqid = ho->ho_a2.hw_reqid;

	snprintf(ho->ho_ck2_id, sizeof(ho->ho_ck2_id), "%s", key_id);
	if (ho_seal_m7(ho, ck2, &m7, nonce, &ct) == -1) {
		ho_fail(ho, QROAM__STATUS_CODE__INTERNAL, "cannot seal M7");
		return;
	}
	if (ho_set_state(ho, HO_DONE, "done", "CK2 key_ID %s shared with %s, "
	    "M7 to %s", key_id, ho->ho_target, ho->ho_initiator) == -1) {
		ho_fail(ho, QROAM__STATUS_CODE__INTERNAL, "store failed");
	} else {
		(void)ho_send_key_reply(ho, &ho->ho_a3, key_id);
		ho->ho_a2.hw_conn = NULL;
		if (tspa != NULL)
			(void)conn_send(tspa, QROAM__MSG_TYPE__MT_M7, reqid,
			    &m7.base);
		sched_metric_handover("ok", ho->ho_created_ms);
		ho_wind_down(ho);
	}
	free(ct);
}

/* CK2 came from TSPB's reserve or the KME (or did not). */
static void
ho_ck2_cb(void *arg, enum keysrc_result res, const struct keysrc_key *keys,
    size_t n, const char *why)
{
	struct handover	*ho = arg;

	ho->ho_wait = NULL;
	if (ho->ho_state == HO_A3) {
		if (res != KEYSRC_OK || n != 1)
			ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE,
			    "no CK2 for %s: %s", ho->ho_target,
			    why != NULL ? why : "no key");
		else
			ho_complete(ho, keys[0].kk_id, keys[0].kk_key);
	}
	ho_release(ho);
}

int
ho_a3(struct sched *s, struct conn *c, uint64_t reqid,
    const Qroam__KeyRequest *req, char *why, size_t whylen)
{
	struct handover	*ho;

	if ((ho = ho_find(s, req->handover_id)) == NULL) {
		snprintf(why, whylen, "unknown handover");
		return QROAM__STATUS_CODE__BAD_REQUEST;
	}
	if (strcmp(ho->ho_initiator, req->initiator) != 0 ||
	    strcmp(ho->ho_target, req->from) != 0) {
		snprintf(why, whylen, "no access request from %s to %s for "
		    "this handover", req->initiator, req->from);
		return QROAM__STATUS_CODE__BAD_REQUEST;
	}
	if (ho->ho_state != HO_A2) {
		snprintf(why, whylen, "handover is in state %s, not a2",
		    ho_state_names[ho->ho_state]);
		return QROAM__STATUS_CODE__BAD_REQUEST;
	}
	ho->ho_a3.hw_conn = c;
	ho->ho_a3.hw_reqid = reqid;
	if (ho_set_state(ho, HO_A3, "a3", "A3 from %s", req->from) == -1) {
		ho_fail(ho, QROAM__STATUS_CODE__INTERNAL, "store failed");
		ho_release(ho);
		return 0;
	}
	if (ho_want_key(ho, ho->ho_target, ho_ck2_cb) == -1) {
		ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE,
		    "cannot ask for CK2");
		ho_release(ho);
	}
	return 0;
}

/* Forget c in ho's waiters; 1 if a request of it was still waiting. */
static int
ho_forget_conn(struct handover *ho, struct conn *c)
{
	struct ho_waiter	*hw[] = { &ho->ho_a1, &ho->ho_a2, &ho->ho_a3 };
	size_t			 i;
	int			 waited = 0;

	for (i = 0; i < sizeof(hw) / sizeof(hw[0]); i++)
		if (hw[i]->hw_conn == c) {
			hw[i]->hw_conn = NULL;
			waited = 1;
		}
	return waited;
}

void
ho_conn_closed(struct sched *s, struct conn *c)
{
	struct handover	*ho, *next;

	for (ho = TAILQ_FIRST(&s->s_handovers); ho != NULL; ho = next) {
		next = TAILQ_NEXT(ho, ho_entry);
		if (!ho_forget_conn(ho, c))
			continue;
		ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE,
		    "%s closed its connection", conn_peer_cn(c));
		ho_release(ho);
	}
}

void
ho_shutdown(struct sched *s)
{
	struct handover	*ho;

	s->s_stopping = 1;
	TAILQ_FOREACH(ho, &s->s_handovers, ho_entry)
		ho_fail(ho, QROAM__STATUS_CODE__UNAVAILABLE, "scheduler stopping");
	while ((ho = TAILQ_FIRST(&s->s_handovers)) != NULL) {
		ho->ho_fwd_reqid = 0;
		ho_release(ho);
	}
}
