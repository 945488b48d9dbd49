/*
 * F6 as TSPB, the cloud a vehicle is about to enter.  schedd forwards A2
 * on the provisioning listener; this TSP acknowledges it, sends A3 on its
 * long-lived channel to schedd (handover_chan.c), fetches CK2 from the KME by the key_ID of the
 * KeyReply and binds it to (initiator, handover_id) in the store with an
 * expiry.  TSPA then sends M8 (RD1 under CK2): a valid one is stored in
 * one transaction and acknowledged under CK2, which is deleted with it.
 * An M8 that overtakes the binding waits for it in memory.  One state
 * enum, one timer and one teardown (hin_close) per incoming handover.
 * The store steps are requests; a handover closed while its binding is
 * being stored is freed by the store's answer.
 */
#include <sys/queue.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "store.h"

#include "tspd.h"

#define HIN_MAX		1024	/* incoming handovers under way at most */

enum hin_state {
	HIN_A3,			/* A3 sent, waiting for KeyReply */
	HIN_CK2,		/* fetching CK2 from the KME */
};

static const char *const hin_state_names[] = {
	"A3", "CK2",
};

/* One incoming handover until its CK2 is bound. */
struct hin {
	struct tspd		*hi_env;
	char			 hi_id[TSPD_HO_IDLEN + 1];
	const struct topo_tsp	*hi_initiator;
	enum hin_state		 hi_state;	/* set by hin_set_state only */
	uint64_t		 hi_req;	/* A3 on the scheduler channel */
	struct event		*hi_timer;
	Qroam__M8		*hi_m8;		/* an M8 waiting for CK2 */
	struct conn		*hi_m8_conn;
	uint64_t		 hi_m8_reqid;
	struct tspdb_req	 hi_rq;		/* the binding of CK2 */
	int			 hi_storing;
	int			 hi_closed;	/* free once it is answered */
	TAILQ_ENTRY(hin)	 hi_entry;
};

struct tspd_hin {
	TAILQ_HEAD(, hin)	 hl_list;
	size_t			 hl_n;
	TAILQ_HEAD(, m8_req)	 hl_m8wait;	/* M8s looking for a binding */
};

static void	hin_close(struct hin *, const char *reason);
static void	m8_process(struct tspd *, struct conn *, uint64_t reqid,
		    Qroam__M8 *);
static void	m8_stop_waiting(struct tspd *);
static void	hin_reply(void *, const struct frame *, const char *);

void
tspd_handover_in_init(struct tspd *env)
{
	env->t_hin = xcalloc(1, sizeof(*env->t_hin));
	TAILQ_INIT(&env->t_hin->hl_list);
	TAILQ_INIT(&env->t_hin->hl_m8wait);
}

void
tspd_handover_in_shutdown(struct tspd *env)
{
	struct hin	*h;

	while (env->t_hin != NULL &&
	    (h = TAILQ_FIRST(&env->t_hin->hl_list)) != NULL)
		hin_close(h, "tspd stopping");
	if (env->t_hin != NULL)
		m8_stop_waiting(env);
}

void
tspd_handover_in_free(struct tspd *env)
{
	tspd_handover_in_shutdown(env);
	free(env->t_hin);
	env->t_hin = NULL;
}

/*
 * The one place the state of h changes, each change logged at debug
 * level.  An incoming handover starts zeroed, in HIN_A3, so setting
 * that first state logs its name only.
 */
static void
hin_set_state(struct hin *h, enum hin_state to)
{
	if (h->hi_state != to)
		log_debug("handover in id=%s: %s -> %s", h->hi_id,
		    hin_state_names[h->hi_state], hin_state_names[to]);
	else
		log_debug("handover in id=%s: %s", h->hi_id,
		    hin_state_names[to]);
	h->hi_state = to;
}

static struct hin *
hin_find(struct tspd *env, const char *hid)
{
	struct hin	*h;

	if (env->t_hin == NULL)
		return NULL;
	TAILQ_FOREACH(h, &env->t_hin->hl_list, hi_entry)
		if (strcmp(h->hi_id, hid) == 0)
			return h;
	return NULL;
}

/*
 * The one teardown of an incoming handover: reason NULL once CK2 is
 * bound, else record and log the failure and refuse a waiting M8.
 */
static void
hin_close(struct hin *h, const char *reason)
{
	struct tspd	*env = h->hi_env;

	if (reason != NULL) {
		tspd_metric_handover(TSPD_HO_TARGET, "failed", 0);
		log_warnx("handover in failed id=%s from=%s state=%s reason=%s",
		    h->hi_id, h->hi_initiator->tt_id,
		    hin_state_names[h->hi_state], reason);
		tspdb_ho_record(env->t_db, h->hi_id, NULL, "in",
		    h->hi_initiator->tt_id, "failed", reason, store_now_ms(),
		    NULL);
		if (h->hi_m8 != NULL)
			conn_send_status(h->hi_m8_conn, h->hi_m8_reqid,
			    QROAM__STATUS_CODE__AUTH_FAILED,
			    "no key for this handover");
	}
	if (h->hi_m8 != NULL)
		qroam__m8__free_unpacked(h->hi_m8, NULL);
	if (h->hi_req != 0)
		chan_cancel(tspd_handover_chan_sched(env), h->hi_req);
	if (h->hi_timer != NULL)
		event_free(h->hi_timer);
	TAILQ_REMOVE(&env->t_hin->hl_list, h, hi_entry);
	env->t_hin->hl_n--;
	h->hi_closed = 1;
	if (!h->hi_storing)
		free(h);
}

static void
hin_fail(struct hin *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
hin_fail(struct hin *h, const char *fmt, ...)
{
	char	 reason[256];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	hin_close(h, reason);
}

static void
hin_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	hin_fail(arg, "timeout");
}

/* Start A3 for a checked A2: send it to schedd under a timer. */
static void
hin_start(struct tspd *env, const struct topo_tsp *initiator, const char *hid)
{
	Qroam__KeyRequest	 a3 = QROAM__KEY_REQUEST__INIT;
	struct chan		*sched = tspd_handover_chan_sched(env);
	struct timeval		 tv;
	struct hin		*h;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		log_warn("handover in id=%s", hid);
		return;
	}
	h->hi_env = env;
	memcpy(h->hi_id, hid, sizeof(h->hi_id));
	h->hi_initiator = initiator;
	hin_set_state(h, HIN_A3);
	TAILQ_INSERT_TAIL(&env->t_hin->hl_list, h, hi_entry);
	env->t_hin->hl_n++;
	if ((h->hi_timer = evtimer_new(env->t_base, hin_timeout, h)) == NULL) {
		hin_fail(h, "no timer");
		return;
	}
	tv.tv_sec = env->t_conf.tc_handover_timeout_ms / 1000;
	tv.tv_usec = (env->t_conf.tc_handover_timeout_ms % 1000) * 1000;
	evtimer_add(h->hi_timer, &tv);
	a3.type = 1;
	a3.from = (char *)env->t_id;
	a3.handover_id = h->hi_id;
	a3.initiator = (char *)initiator->tt_id;
	if (sched == NULL || chan_request(sched,
	    QROAM__MSG_TYPE__MT_KEY_REQUEST, &a3.base,
	    (int)env->t_conf.tc_handover_timeout_ms, hin_reply, h,
	    &h->hi_req) == -1) {
		h->hi_req = 0;
		hin_fail(h, "cannot send A3");
	}
}

/* Check an A2 for this TSP: NULL and *initiator set, or the reason. */
static const char *
access_check(struct tspd *env, const Qroam__AccessRequest *ar,
    const struct topo_tsp **initiator)
{
	if (ar->type != 2)
		return "not an access request";
	if (strcmp(ar->target, env->t_id) != 0)
		return "target is another TSP";
	if (!id_valid_name(ar->initiator) ||
	    (*initiator = topo_tsp(&env->t_topo, ar->initiator)) == NULL ||
	    *initiator == env->t_self)
		return "unknown initiator";
	if (!id_valid_hex(ar->handover_id, TSPD_HO_IDLEN))
		return "bad handover_id";
	return NULL;
}

/* A checked A2 waiting for the store to tell whether its id is new. */
struct access_req {
	struct tspdb_req	 ar_rq;
	struct tspd		*ar_env;
	struct conn		*ar_conn;	/* referenced */
	uint64_t		 ar_reqid;
	const struct topo_tsp	*ar_initiator;
	char			 ar_hid[TSPD_HO_IDLEN + 1];
};

/* Answer an A2: start the handover unless its id is known or too many. */
static void
access_known(struct tspdb_req *rq)
{
	struct access_req	*ar = rq->rq_arg;
	struct tspd		*env = ar->ar_env;
	const char		*why = NULL;
	int			 code = QROAM__STATUS_CODE__OK;

	if (rq->rq_result == TSPDB_OK || rq->rq_result == TSPDB_SAME ||
	    rq->rq_result == TSPDB_STALE) {
		why = "handover_id used before";
		code = QROAM__STATUS_CODE__BAD_REQUEST;
	} else if (rq->rq_result != TSPDB_UNKNOWN) {
		why = "store error";
		code = QROAM__STATUS_CODE__INTERNAL;
	} else if (hin_find(env, ar->ar_hid) != NULL)
		;	/* a repeated A2 came meanwhile */
	else if (env->t_hin == NULL || env->t_hin->hl_n >= HIN_MAX) {
		why = "too many handovers under way";
		code = QROAM__STATUS_CODE__UNAVAILABLE;
	} else {
		log_info("handover in id=%s from=%s: access request accepted",
		    ar->ar_hid, ar->ar_initiator->tt_id);
		/* The region knows it is under way: an M8 may reach another
		 * instance first. */
		tspdb_ho_record(env->t_db, ar->ar_hid, NULL, "in",
		    ar->ar_initiator->tt_id, "a3", NULL, store_now_ms(), NULL);
		hin_start(env, ar->ar_initiator, ar->ar_hid);
	}
	if (why != NULL)
		log_warnx("access request refused from %s: %s",
		    conn_peer_cn(ar->ar_conn), why);
	conn_send_status(ar->ar_conn, ar->ar_reqid, code, why);
	conn_unref(ar->ar_conn);
	free(ar);
}

void
tspd_handover_access(struct tspd *env, struct conn *c, const struct frame *f)
{
	Qroam__AccessRequest	*ar;
	struct access_req	*aq;
	const struct topo_tsp	*initiator = NULL;
	const char		*why = NULL;
	int			 code = QROAM__STATUS_CODE__BAD_REQUEST;

	ar = (Qroam__AccessRequest *)frame_unpack(f,
	    &qroam__access_request__descriptor);
	if (ar == NULL)
		why = "malformed access request";
	else if (env->t_keysrc == NULL || env->t_hin == NULL) {
		why = "handover disabled";
		code = QROAM__STATUS_CODE__UNAVAILABLE;
	} else if ((why = access_check(env, ar, &initiator)) != NULL)
		;
	else if (hin_find(env, ar->handover_id) != NULL)
		code = QROAM__STATUS_CODE__OK;	/* a repeated A2 */
	else if (env->t_hin->hl_n >= HIN_MAX) {
		why = "too many handovers under way";
		code = QROAM__STATUS_CODE__UNAVAILABLE;
	} else if ((aq = calloc(1, sizeof(*aq))) == NULL) {
		why = "out of memory";
		code = QROAM__STATUS_CODE__INTERNAL;
	} else {
		aq->ar_env = env;
		aq->ar_conn = c;
		conn_ref(c);
		aq->ar_reqid = f->f_request_id;
		aq->ar_initiator = initiator;
		memcpy(aq->ar_hid, ar->handover_id, sizeof(aq->ar_hid));
		tspdb_req_init(&aq->ar_rq, access_known, aq);
		tspdb_ho_known(env->t_db, aq->ar_hid, &aq->ar_rq);
		qroam__access_request__free_unpacked(ar, NULL);
		return;
	}
	if (why != NULL)
		log_warnx("access request refused from %s: %s",
		    conn_peer_cn(c), why);
	conn_send_status(c, f->f_request_id, code, why);
	if (ar != NULL)
		qroam__access_request__free_unpacked(ar, NULL);
}

/* The store bound CK2: serve a waiting M8, the handover is through here. */
static void
hin_bound(struct tspdb_req *rq)
{
	struct hin	*h = rq->rq_arg;
	struct tspd	*env = h->hi_env;
	Qroam__M8	*m8;

	h->hi_storing = 0;
	if (h->hi_closed) {
		free(h);
		return;
	}
	switch (rq->rq_result) {
	case TSPDB_OK:
		break;
	case TSPDB_REPLAY:
		hin_fail(h, "CK2 bound before");
		return;
	default:
		hin_fail(h, "store error");
		return;
	}
	log_info("handover in id=%s from=%s: ck2 bound for %" PRIu64 "ms",
	    h->hi_id, h->hi_initiator->tt_id, env->t_conf.tc_ck2_lifetime_ms);
	if ((m8 = h->hi_m8) != NULL) {
		h->hi_m8 = NULL;
		m8_process(env, h->hi_m8_conn, h->hi_m8_reqid, m8);
	}
	hin_close(h, NULL);
}

/* CK2 arrived from the KME: bind it, then serve a waiting M8. */
static void
hin_ck2(struct tspd *env, const char *hid, enum keysrc_result res,
    const uint8_t *key, const char *why)
{
	struct hin	*h;
	uint64_t	 now = store_now_ms();

	if ((h = hin_find(env, hid)) == NULL || h->hi_state != HIN_CK2 ||
	    h->hi_storing)
		return;
	if (res != KEYSRC_OK || key == NULL) {
		hin_fail(h, "CK2 from the KME: %s", why);
		return;
	}
	tspdb_req_init(&h->hi_rq, hin_bound, h);
	h->hi_storing = 1;
	tspdb_ck2_bind(env->t_db, h->hi_initiator->tt_id, hid, key,
	    now + env->t_conf.tc_ck2_lifetime_ms, now, &h->hi_rq);
}

/* schedd's answer to A3: its KeyReply, a refusal, or why there is none. */
static void
hin_reply(void *arg, const struct frame *f, const char *lost)
{
	struct hin		*h = arg;
	Qroam__KeyReply		*kr = NULL;
	const char		*why = NULL;
	char			 status[200];

	h->hi_req = 0;
	if (f == NULL) {
		hin_fail(h, "scheduler: %s", lost);
		return;
	}
	if (f->f_type == QROAM__MSG_TYPE__MT_STATUS) {
		tspd_handover_status_text(f, status, sizeof(status));
		hin_fail(h, "scheduler: %s", status);
		return;
	}
	if (h->hi_state != HIN_A3 || f->f_type != QROAM__MSG_TYPE__MT_KEY_REPLY)
		why = "unexpected message from the scheduler";
	else if ((kr = (Qroam__KeyReply *)frame_unpack(f,
	    &qroam__key_reply__descriptor)) == NULL) {
		why = "malformed KeyReply";
		metrics_refusal("key_reply_invalid");
	} else if ((why = tspd_handover_key_reply_check(kr,
	    h->hi_id)) != NULL)
		metrics_refusal("key_reply_invalid");
	else {
		hin_set_state(h, HIN_CK2);
		if (tspd_handover_fetch_key(h->hi_env, kr->master_sae,
		    kr->key_id, h->hi_id, hin_ck2) == -1)
			why = "cannot ask the KME for CK2";
	}
	if (kr != NULL)
		qroam__key_reply__free_unpacked(kr, NULL);
	if (why != NULL)
		hin_fail(h, "%s", why);
}

/* ---- M8 ---- */

/* One M8 from its arrival at a bound CK2 until it is answered. */
struct m8_req {
	struct tspdb_req	 mq_rq;
	struct tspd		*mq_env;
	struct conn		*mq_conn;	/* referenced */
	uint64_t		 mq_reqid;
	Qroam__M8		*mq_m8;
	Qroam__RD1		*mq_rd1;
	uint8_t			 mq_ck2[CRYPTO_KEYLEN];
	uint64_t		 mq_expires;
	struct tspdb_reg	 mq_reg;
	struct tspdb_fill	 mq_fill;
	struct tspdb_origin	*mq_origin;
	Qroam__M8Ack		 mq_ack;
	uint64_t		 mq_since_ms;	/* arrival */
	struct event		*mq_timer;	/* the binding is looked for again */
	TAILQ_ENTRY(m8_req)	 mq_entry;	/* while the timer runs */
};

static void
m8_req_free(struct m8_req *mq)
{
	crypto_wipe(mq->mq_ck2, sizeof(mq->mq_ck2));
	tspdb_reg_clear(&mq->mq_reg);
	if (mq->mq_rd1 != NULL)
		qroam__rd1__free_unpacked(mq->mq_rd1, NULL);
	qroam__m8__free_unpacked(mq->mq_m8, NULL);
	free(mq->mq_origin);
	free(mq->mq_ack.nonce.data);
	free(mq->mq_ack.ct.data);
	if (mq->mq_timer != NULL)
		event_free(mq->mq_timer);
	conn_unref(mq->mq_conn);
	free(mq);
}

/* Refuse the M8 with code and why, and free it. */
static void
m8_refuse(struct m8_req *mq, int code, const char *why)
{
	log_warnx("m8 refused id=%s from=%s reason=%s (%s)",
	    mq->mq_m8->handover_id, mq->mq_m8->initiator,
	    msg_status_name(code), why);
	conn_send_status(mq->mq_conn, mq->mq_reqid, code, why);
	m8_req_free(mq);
}

const char *
tspd_rd1_check(const Qroam__RD1 *rd1, const char *reg_chip_id, uint32_t fill_m,
    const char *initiator, struct tspdb_origin *origin)
{
	const char	*why = NULL;
	size_t		 i;

	if (strcmp(reg_chip_id, rd1->chip_id) != 0)
		return "chip does not match the registration";
	if (rd1->next_index > fill_m || rd1->n_used > fill_m)
		return "key position out of range";
	for (i = 0; i < rd1->n_used; i++)
		if (rd1->used[i] >= fill_m)
			return "used key out of range";
	if (rd1->authed_ms > INT64_MAX)
		return "bad authed_ms";
	if (rd1->n_history > TSPDB_RD1_HISTORY)
		return "history too long";
	for (i = 0; i < rd1->n_history && why == NULL; i++)
		why = tspd_telemetry_check(rd1->history[i]);
	if (why != NULL)
		return why;
	if (rd1->service != NULL)
		return tspd_origins_decode(rd1->service, rd1->n_history,
		    origin) == -1 ? "bad origin list" : NULL;
	for (i = 0; i < rd1->n_history; i++) {
		snprintf(origin[i].o_tsp, sizeof(origin[i].o_tsp), "%s",
		    initiator);
		origin[i].o_seq = 0;
	}
	return NULL;
}

/* The store applied RD1: acknowledge it under CK2. */
static void
m8_applied(struct tspdb_req *rq)
{
	struct m8_req		*mq = rq->rq_arg;
	const Qroam__RD1	*rd1 = mq->mq_rd1;

	switch (rq->rq_result) {
	case TSPDB_OK:
		conn_send(mq->mq_conn, QROAM__MSG_TYPE__MT_M8_ACK,
		    mq->mq_reqid, &mq->mq_ack.base);
		tspd_metric_handover(TSPD_HO_TARGET, "ok", 0);
		log_info("handover in id=%s from=%s vehicle=%s: context stored "
		    "next_index=%u used=%zu history=%zu",
		    mq->mq_m8->handover_id, mq->mq_m8->initiator,
		    rd1->vehicle_id, rd1->next_index, rd1->n_used,
		    rd1->n_history);
		m8_req_free(mq);
		break;
	case TSPDB_UNKNOWN:
		m8_refuse(mq, QROAM__STATUS_CODE__AUTH_FAILED,
		    "no key bound for this handover");
		break;
	default:
		m8_refuse(mq, QROAM__STATUS_CODE__INTERNAL, "store error");
		break;
	}
}

/* The chip's fill record came: check RD1 and store it. */
static void
m8_fill_read(struct tspdb_req *rq)
{
	struct m8_req	*mq = rq->rq_arg;
	const char	*why;

	if (rq->rq_result != TSPDB_OK) {
		m8_refuse(mq, rq->rq_result == TSPDB_UNKNOWN ?
		    QROAM__STATUS_CODE__BAD_REQUEST :
		    QROAM__STATUS_CODE__INTERNAL,
		    rq->rq_result == TSPDB_UNKNOWN ?
		    "no fill record for the chip" : "store error");
		return;
	}
	if ((why = tspd_rd1_check(mq->mq_rd1, mq->mq_reg.r_chip_id,
	    mq->mq_fill.f_m, mq->mq_m8->initiator, mq->mq_origin)) != NULL) {
		m8_refuse(mq, QROAM__STATUS_CODE__BAD_REQUEST, why);
		return;
	}
	if (tspd_m8ack_seal(mq->mq_ck2, mq->mq_m8->initiator,
	    mq->mq_m8->target, mq->mq_m8->handover_id, &mq->mq_ack) == -1) {
		m8_refuse(mq, QROAM__STATUS_CODE__INTERNAL,
		    "sealing the acknowledgement failed");
		return;
	}
	tspdb_req_init(&mq->mq_rq, m8_applied, mq);
	tspdb_m8_apply(mq->mq_env->t_db, mq->mq_m8->initiator,
	    mq->mq_m8->handover_id, mq->mq_rd1, mq->mq_origin, store_now_ms(),
	    &mq->mq_rq);
}

/* The vehicle's registration came: read its chip's fill record. */
static void
m8_reg_read(struct tspdb_req *rq)
{
	struct m8_req	*mq = rq->rq_arg;

	if (rq->rq_result != TSPDB_OK) {
		m8_refuse(mq, rq->rq_result == TSPDB_UNKNOWN ?
		    QROAM__STATUS_CODE__BAD_REQUEST :
		    QROAM__STATUS_CODE__INTERNAL,
		    rq->rq_result == TSPDB_UNKNOWN ? "unknown vehicle" :
		    "store error");
		return;
	}
	tspdb_req_init(&mq->mq_rq, m8_fill_read, mq);
	tspdb_fill_get(mq->mq_env->t_db, mq->mq_rd1->chip_id, &mq->mq_fill,
	    &mq->mq_rq);
}

#define M8_RETRY_MS	20	/* looking for a binding made elsewhere */

static void	m8_ck2_read(struct tspdb_req *);

static void
m8_retry(evutil_socket_t fd, short ev, void *arg)
{
	struct m8_req	*mq = arg;

	(void)fd;
	(void)ev;
	TAILQ_REMOVE(&mq->mq_env->t_hin->hl_m8wait, mq, mq_entry);
	tspdb_req_init(&mq->mq_rq, m8_ck2_read, mq);
	tspdb_ck2_get(mq->mq_env->t_db, mq->mq_m8->initiator,
	    mq->mq_m8->handover_id, mq->mq_ck2, &mq->mq_expires, &mq->mq_rq);
}

/*
 * No binding for the M8's initiator: if the region has the handover under
 * way with no CK2 bound yet (another instance took its A2 and fetches
 * CK2), the M8 waits for the binding, as long as a handover may take;
 * else it is refused.
 */
static void
m8_ho_checked(struct tspdb_req *rq)
{
	struct m8_req	*mq = rq->rq_arg;
	struct tspd	*env = mq->mq_env;
	struct timeval	 tv = { 0, M8_RETRY_MS * 1000 };

	if (rq->rq_result != TSPDB_OK || !conn_is_open(mq->mq_conn) ||
	    store_now_ms() - mq->mq_since_ms >
	    env->t_conf.tc_handover_timeout_ms ||
	    (mq->mq_timer == NULL && (mq->mq_timer = evtimer_new(env->t_base,
	    m8_retry, mq)) == NULL)) {
		m8_refuse(mq, rq->rq_result == TSPDB_ERROR ?
		    QROAM__STATUS_CODE__INTERNAL :
		    QROAM__STATUS_CODE__AUTH_FAILED,
		    rq->rq_result == TSPDB_ERROR ? "store error" :
		    "no key bound for this handover");
		return;
	}
	evtimer_add(mq->mq_timer, &tv);
	TAILQ_INSERT_TAIL(&env->t_hin->hl_m8wait, mq, mq_entry);
}

/* At shutdown: the M8s still looking for their binding are refused. */
static void
m8_stop_waiting(struct tspd *env)
{
	struct m8_req	*mq;

	while ((mq = TAILQ_FIRST(&env->t_hin->hl_m8wait)) != NULL) {
		TAILQ_REMOVE(&env->t_hin->hl_m8wait, mq, mq_entry);
		evtimer_del(mq->mq_timer);
		m8_refuse(mq, QROAM__STATUS_CODE__UNAVAILABLE, "tspd stopping");
	}
}

/* CK2 bound to the handover came: open RD1 with it. */
static void
m8_ck2_read(struct tspdb_req *rq)
{
	struct m8_req	*mq = rq->rq_arg;
	struct tspd	*env = mq->mq_env;
	const Qroam__RD1 *rd1;
	uint64_t	 now = store_now_ms();

	if (rq->rq_result == TSPDB_UNKNOWN) {
		tspdb_req_init(&mq->mq_rq, m8_ho_checked, mq);
		tspdb_ho_known(env->t_db, mq->mq_m8->handover_id, &mq->mq_rq);
		return;
	}
	if (rq->rq_result != TSPDB_OK) {
		m8_refuse(mq, rq->rq_result == TSPDB_UNKNOWN ?
		    QROAM__STATUS_CODE__AUTH_FAILED :
		    QROAM__STATUS_CODE__INTERNAL,
		    rq->rq_result == TSPDB_UNKNOWN ?
		    "no key bound for this handover" : "store error");
		return;
	}
	if (mq->mq_expires < now) {
		tspdb_ck2_purge(env->t_db, now, NULL);
		m8_refuse(mq, QROAM__STATUS_CODE__AUTH_FAILED, "key expired");
		return;
	}
	if ((mq->mq_rd1 = tspd_m8_open(mq->mq_ck2, mq->mq_m8)) == NULL) {
		m8_refuse(mq, QROAM__STATUS_CODE__DECRYPT_FAILED,
		    "does not decrypt");
		return;
	}
	rd1 = mq->mq_rd1;
	if (!id_valid_vin(rd1->vehicle_id) ||
	    !id_valid_hex(rd1->chip_id, CHIP_ID_LEN)) {
		m8_refuse(mq, QROAM__STATUS_CODE__BAD_REQUEST,
		    "bad vehicle_id or chip_id");
		return;
	}
	if ((mq->mq_origin = calloc(rd1->n_history + 1,
	    sizeof(*mq->mq_origin))) == NULL) {
		m8_refuse(mq, QROAM__STATUS_CODE__INTERNAL, "out of memory");
		return;
	}
	tspdb_req_init(&mq->mq_rq, m8_reg_read, mq);
	tspdb_reg_get(env->t_db, rd1->vehicle_id, &mq->mq_reg, &mq->mq_rq);
}

/*
 * Open an M8 (taken over) with its bound CK2 and store it; answered in
 * every case.
 */
static void
m8_process(struct tspd *env, struct conn *c, uint64_t reqid, Qroam__M8 *m8)
{
	struct m8_req	*mq;

	if ((mq = calloc(1, sizeof(*mq))) == NULL) {
		log_warn("m8 id=%s", m8->handover_id);
		conn_send_status(c, reqid, QROAM__STATUS_CODE__INTERNAL, NULL);
		qroam__m8__free_unpacked(m8, NULL);
		return;
	}
	mq->mq_env = env;
	mq->mq_conn = c;
	conn_ref(c);
	mq->mq_reqid = reqid;
	mq->mq_m8 = m8;
	mq->mq_since_ms = store_now_ms();
	qroam__m8_ack__init(&mq->mq_ack);
	tspdb_req_init(&mq->mq_rq, m8_ck2_read, mq);
	tspdb_ck2_get(env->t_db, m8->initiator, m8->handover_id, mq->mq_ck2,
	    &mq->mq_expires, &mq->mq_rq);
}

void
tspd_handover_m8(struct tspd *env, struct conn *c, const struct frame *f)
{
	Qroam__M8	*m8;
	struct hin	*h;
	const char	*why = NULL;
	int		 code = QROAM__STATUS_CODE__BAD_REQUEST;

	if ((m8 = (Qroam__M8 *)frame_unpack(f, &qroam__m8__descriptor)) == NULL)
		why = "malformed M8";
	else if (strcmp(conn_peer_cn(c), m8->initiator) != 0) {
		why = "initiator is not the peer";
		code = QROAM__STATUS_CODE__AUTH_FAILED;
	} else if (strcmp(m8->target, env->t_id) != 0)
		why = "target is another TSP";
	else if (!id_valid_hex(m8->handover_id, TSPD_HO_IDLEN))
		why = "bad handover_id";
	if (why != NULL) {
		log_warnx("m8 refused from %s: %s", conn_peer_cn(c), why);
		conn_send_status(c, f->f_request_id, code, why);
		if (code == QROAM__STATUS_CODE__AUTH_FAILED)
			conn_close(c, why);
		if (m8 != NULL)
			qroam__m8__free_unpacked(m8, NULL);
	} else if ((h = hin_find(env, m8->handover_id)) != NULL &&
	    strcmp(h->hi_initiator->tt_id, m8->initiator) == 0 &&
	    h->hi_m8 == NULL) {
		log_debug("m8 id=%s waits for its key", m8->handover_id);
		h->hi_m8 = m8;
		h->hi_m8_conn = c;
		h->hi_m8_reqid = f->f_request_id;
	} else
		m8_process(env, c, f->f_request_id, m8);
}

void
tspd_handover_in_conn_closed(struct tspd *env, struct conn *c)
{
	struct hin	*h;

	if (env->t_hin == NULL)
		return;
	TAILQ_FOREACH(h, &env->t_hin->hl_list, hi_entry) {
		if (h->hi_m8 == NULL || h->hi_m8_conn != c)
			continue;
		qroam__m8__free_unpacked(h->hi_m8, NULL);
		h->hi_m8 = NULL;
		h->hi_m8_conn = NULL;
	}
}
