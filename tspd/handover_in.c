/*
 * F6 as TSPB, the cloud a vehicle is about to enter.  schedd forwards A2
 * on the provisioning listener; this TSP acknowledges it, sends A3 on its
 * long-lived channel to schedd (handover_chan.c), fetches CK2 from the KME by the key_ID of the
 * KeyReply and binds it to (initiator, handover_id) in the store with an
 * expiry.  TSPA then sends M8 (RD1 under CK2): a valid one is stored in
 * one transaction and acknowledged under CK2, which is deleted with it.
 * An M8 that overtakes the binding waits for it in memory.  One state
 * enum, one timer and one teardown (hin_close) per incoming handover.
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
	TAILQ_ENTRY(hin)	 hi_entry;
};

struct tspd_hin {
	TAILQ_HEAD(, hin)	 hl_list;
	size_t			 hl_n;
};

static void	hin_close(struct hin *, const char *reason);
static void	m8_process(struct tspd *, struct conn *, uint64_t reqid,
		    const Qroam__M8 *);
static void	hin_reply(void *, const struct frame *, const char *);

void
tspd_handover_in_init(struct tspd *env)
{
	env->t_hin = xcalloc(1, sizeof(*env->t_hin));
	TAILQ_INIT(&env->t_hin->hl_list);
}

void
tspd_handover_in_shutdown(struct tspd *env)
{
	struct hin	*h;

	while (env->t_hin != NULL &&
	    (h = TAILQ_FIRST(&env->t_hin->hl_list)) != NULL)
		hin_close(h, "tspd stopping");
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
		if (tspdb_ho_record(env->t_db, h->hi_id, NULL, "in",
		    h->hi_initiator->tt_id, "failed", reason,
		    store_now_ms()) == -1)
			log_warnx("handover in id=%s: recording the failure "
			    "failed", h->hi_id);
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

void
tspd_handover_access(struct tspd *env, struct conn *c, const struct frame *f)
{
	Qroam__AccessRequest	*ar;
	const struct topo_tsp	*initiator = NULL;
	const char		*why = NULL;
	int			 code = QROAM__STATUS_CODE__BAD_REQUEST, r;

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
	else if ((r = tspdb_ho_known(env->t_db, ar->handover_id)) != 0) {
		why = r == 1 ? "handover_id used before" : "store error";
		code = r == 1 ? code : QROAM__STATUS_CODE__INTERNAL;
	} else if (env->t_hin->hl_n >= HIN_MAX) {
		why = "too many handovers under way";
		code = QROAM__STATUS_CODE__UNAVAILABLE;
	} else {
		code = QROAM__STATUS_CODE__OK;
		log_info("handover in id=%s from=%s: access request accepted",
		    ar->handover_id, initiator->tt_id);
		hin_start(env, initiator, ar->handover_id);
	}
	if (why != NULL)
		log_warnx("access request refused from %s: %s",
		    conn_peer_cn(c), why);
	conn_send_status(c, f->f_request_id, code, why);
	if (ar != NULL)
		qroam__access_request__free_unpacked(ar, NULL);
}

/* CK2 arrived from the KME: bind it, then serve a waiting M8. */
static void
hin_ck2(struct tspd *env, const char *hid, enum keysrc_result res,
    const uint8_t *key, const char *why)
{
	struct hin	*h;
	uint64_t	 now = store_now_ms();

	if ((h = hin_find(env, hid)) == NULL || h->hi_state != HIN_CK2)
		return;
	if (res != KEYSRC_OK || key == NULL) {
		hin_fail(h, "CK2 from the KME: %s", why);
		return;
	}
	switch (tspdb_ck2_bind(env->t_db, h->hi_initiator->tt_id, hid, key,
	    now + env->t_conf.tc_ck2_lifetime_ms, now)) {
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
	    hid, h->hi_initiator->tt_id, env->t_conf.tc_ck2_lifetime_ms);
	if (h->hi_m8 != NULL)
		m8_process(env, h->hi_m8_conn, h->hi_m8_reqid, h->hi_m8);
	hin_close(h, NULL);
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

/*
 * Check a decrypted RD1 against this store and fill origin (one per
 * history row).  NULL if it may be applied, else the reason.
 */
static const char *
rd1_check(struct tspd *env, const Qroam__RD1 *rd1, const char *initiator,
    struct tspdb_origin *origin)
{
	struct tspdb_reg	 reg;
	struct tspdb_fill	 fill;
	const char		*why = NULL;
	size_t			 i;
	int			 r;

	if (!id_valid_vin(rd1->vehicle_id) ||
	    !id_valid_hex(rd1->chip_id, CHIP_ID_LEN))
		return "bad vehicle_id or chip_id";
	if ((r = tspdb_reg_get(env->t_db, rd1->vehicle_id, &reg)) != 1)
		return r == 0 ? "unknown vehicle" : "store error";
	r = strcmp(reg.r_chip_id, rd1->chip_id);
	tspdb_reg_clear(&reg);
	if (r != 0)
		return "chip does not match the registration";
	if (tspdb_fill_get(env->t_db, rd1->chip_id, &fill) != 1)
		return "no fill record for the chip";
	if (rd1->next_index > fill.f_m || rd1->n_used > fill.f_m)
		return "key position out of range";
	for (i = 0; i < rd1->n_used; i++)
		if (rd1->used[i] >= fill.f_m)
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

/* Store a decrypted RD1 and acknowledge it under CK2. */
static int
m8_apply(struct tspd *env, struct conn *c, uint64_t reqid,
    const Qroam__M8 *m8, const uint8_t ck2[CRYPTO_KEYLEN],
    const Qroam__RD1 *rd1, const char **why)
{
	Qroam__M8Ack		 ack = QROAM__M8_ACK__INIT;
	struct tspdb_origin	*origin;
	int			 code = QROAM__STATUS_CODE__BAD_REQUEST;

	if ((origin = calloc(rd1->n_history + 1, sizeof(*origin))) == NULL) {
		*why = "out of memory";
		return QROAM__STATUS_CODE__INTERNAL;
	}
	if ((*why = rd1_check(env, rd1, m8->initiator, origin)) != NULL)
		goto done;
	if (tspd_m8ack_seal(ck2, m8->initiator, m8->target, m8->handover_id,
	    &ack) == -1) {
		*why = "sealing the acknowledgement failed";
		code = QROAM__STATUS_CODE__INTERNAL;
		goto done;
	}
	switch (tspdb_m8_apply(env->t_db, m8->initiator, m8->handover_id, rd1,
	    origin, store_now_ms())) {
	case TSPDB_OK:
		conn_send(c, QROAM__MSG_TYPE__MT_M8_ACK, reqid, &ack.base);
		tspd_metric_handover(TSPD_HO_TARGET, "ok", 0);
		log_info("handover in id=%s from=%s vehicle=%s: context stored "
		    "next_index=%u used=%zu history=%zu", m8->handover_id,
		    m8->initiator, rd1->vehicle_id, rd1->next_index,
		    rd1->n_used, rd1->n_history);
		code = QROAM__STATUS_CODE__OK;
		break;
	case TSPDB_UNKNOWN:
		*why = "no key bound for this handover";
		code = QROAM__STATUS_CODE__AUTH_FAILED;
		break;
	default:
		*why = "store error";
		code = QROAM__STATUS_CODE__INTERNAL;
		break;
	}
	free(ack.nonce.data);
	free(ack.ct.data);
 done:
	free(origin);
	return code;
}

/* Open an M8 with its bound CK2 and store it; answer in every case. */
static void
m8_process(struct tspd *env, struct conn *c, uint64_t reqid,
    const Qroam__M8 *m8)
{
	uint8_t		 ck2[CRYPTO_KEYLEN];
	uint64_t	 expires, now = store_now_ms();
	Qroam__RD1	*rd1 = NULL;
	const char	*why = NULL;
	int		 r, code = QROAM__STATUS_CODE__AUTH_FAILED;

	if ((r = tspdb_ck2_get(env->t_db, m8->initiator, m8->handover_id, ck2,
	    &expires)) != 1) {
		why = r == 0 ? "no key bound for this handover" : "store error";
		code = r == 0 ? code : QROAM__STATUS_CODE__INTERNAL;
	} else if (expires < now) {
		why = "key expired";
		tspdb_ck2_purge(env->t_db, now);
	} else if ((rd1 = tspd_m8_open(ck2, m8)) == NULL) {
		why = "does not decrypt";
		code = QROAM__STATUS_CODE__DECRYPT_FAILED;
	} else
		code = m8_apply(env, c, reqid, m8, ck2, rd1, &why);
	crypto_wipe(ck2, sizeof(ck2));
	if (rd1 != NULL)
		qroam__rd1__free_unpacked(rd1, NULL);
	if (code == QROAM__STATUS_CODE__OK)
		return;
	log_warnx("m8 refused id=%s from=%s reason=%s (%s)", m8->handover_id,
	    m8->initiator, msg_status_name(code), why);
	conn_send_status(c, reqid, code, why);
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
	} else if ((h = hin_find(env, m8->handover_id)) != NULL &&
	    strcmp(h->hi_initiator->tt_id, m8->initiator) == 0 &&
	    h->hi_m8 == NULL) {
		log_debug("m8 id=%s waits for its key", m8->handover_id);
		h->hi_m8 = m8;
		h->hi_m8_conn = c;
		h->hi_m8_reqid = f->f_request_id;
		return;
	} else
		m8_process(env, c, f->f_request_id, m8);
	if (m8 != NULL)
		qroam__m8__free_unpacked(m8, NULL);
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
