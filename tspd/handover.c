/*
 * F6 as TSPA, the cloud a vehicle is leaving.  The vehicle's M6 (see
 * handover_offer.c) starts a handover: A1 to schedd; on its KeyReply CK1
 * from the KME and A2 at once, so that the KME round trip overlaps the
 * exchanges that lead to M7 (an M7 that comes first waits for CK1); M7
 * opened under CK1 to learn CK2, RD1 from the store sent to TSPB in M8,
 * and on a valid M8Ack one transaction that ends this TSP's
 * authentication of the vehicle, then HandoverReady to the vehicle.
 * The exchanges are requests on the long-lived cloud channels
 * (handover_chan.c), one outstanding per handover; a channel lost under
 * one fails it like any other failure.  One state enum, one timer and
 * one teardown (hout_close) per handover; CK1 and CK2 only ever live in
 * memory and are wiped on every path.  The store steps (RD1 read, the end)
 * are requests; a handover closed while one is out is freed by its answer.
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
#include "rand.h"
#include "store.h"

#include "tspd.h"

enum hout_state {
	HOUT_A1,		/* A1 sent, waiting for KeyReply */
	HOUT_A2,		/* A2 sent, waiting for M7 and CK1 */
	HOUT_M8,		/* M8 sent, waiting for M8Ack */
};

static const char *const hout_state_names[] = {
	"A1", "A2", "M8",
};

/* One outgoing handover. */
struct hout {
	struct tspd		*ho_env;
	char			 ho_id[TSPD_HO_IDLEN + 1];
	char			 ho_vid[VIN_LEN + 1];
	const struct topo_tsp	*ho_target;
	enum hout_state		 ho_state;	/* set by hout_set_state only */
	struct chan		*ho_chan;	/* of the request in flight */
	uint64_t		 ho_req;	/* its id; 0: none */
	struct event		*ho_timer;
	uint8_t			 ho_ck1[CRYPTO_KEYLEN];
	int			 ho_ck1_ready;	/* CK1 came from the KME */
	Qroam__M7		*ho_m7;		/* an M7 waiting for CK1 */
	uint8_t			 ho_ck2[CRYPTO_KEYLEN];
	Qroam__M8		 ho_m8;
	uint64_t		 ho_started_ms;
	char			 ho_peer_host[NAME_MAXLEN + 1];	/* TSPB's, M7 */
	uint16_t		 ho_peer_port;
	struct tspdb_req	 ho_rq;
	int			 ho_storing;	/* ho_rq is out */
	int			 ho_closed;	/* free once it is answered */
	struct tspdb_rd1	 ho_rd;
	struct tspdb_ready	 ho_rr;
	TAILQ_ENTRY(hout)	 ho_entry;
};

/* A key fetch under way; its callback finds the handover by id. */
struct keyreq {
	struct tspd		*kr_env;
	char			 kr_hid[TSPD_HO_IDLEN + 1];
	tspd_key_done		 kr_done;
	TAILQ_ENTRY(keyreq)	 kr_entry;
};

struct tspd_ho {
	TAILQ_HEAD(, hout)	 h_out;
	TAILQ_HEAD(, keyreq)	 h_keyreqs;
};

static void	hout_close(struct hout *, const char *reason);
static void	hout_fail(struct hout *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

void
tspd_handover_init(struct tspd *env)
{
	env->t_ho = xcalloc(1, sizeof(*env->t_ho));
	TAILQ_INIT(&env->t_ho->h_out);
	TAILQ_INIT(&env->t_ho->h_keyreqs);
}

void
tspd_handover_shutdown(struct tspd *env)
{
	struct hout	*h;

	while (env->t_ho != NULL &&
	    (h = TAILQ_FIRST(&env->t_ho->h_out)) != NULL)
		hout_close(h, "tspd stopping");
}

void
tspd_handover_free(struct tspd *env)
{
	struct keyreq	*kr;

	if (env->t_ho == NULL)
		return;
	tspd_handover_shutdown(env);
	while ((kr = TAILQ_FIRST(&env->t_ho->h_keyreqs)) != NULL) {
		TAILQ_REMOVE(&env->t_ho->h_keyreqs, kr, kr_entry);
		free(kr);
	}
	free(env->t_ho);
	env->t_ho = NULL;
}

/* ---- key fetches ---- */

/* The KME answered: hand the key (or failure) to the fetch's owner. */
static void
keyreq_cb(void *arg, enum keysrc_result res, const struct keysrc_key *keys,
    size_t n, const char *why)
{
	struct keyreq	*kr = arg;
	struct tspd	*env = kr->kr_env;
	char		 hid[TSPD_HO_IDLEN + 1];
	tspd_key_done	 done = kr->kr_done;

	memcpy(hid, kr->kr_hid, sizeof(hid));
	if (env->t_ho != NULL)
		TAILQ_REMOVE(&env->t_ho->h_keyreqs, kr, kr_entry);
	free(kr);
	done(env, hid, res, res == KEYSRC_OK && n == 1 ? keys[0].kk_key : NULL,
	    why != NULL ? why : "no reason given");
}

int
tspd_handover_fetch_key(struct tspd *env, const char *master,
    const char *key_id, const char *hid, tspd_key_done done)
{
	struct keyreq	*kr;

	if (env->t_keysrc == NULL || (kr = calloc(1, sizeof(*kr))) == NULL)
		return -1;
	kr->kr_env = env;
	kr->kr_done = done;
	snprintf(kr->kr_hid, sizeof(kr->kr_hid), "%s", hid);
	TAILQ_INSERT_TAIL(&env->t_ho->h_keyreqs, kr, kr_entry);
	if (keysrc_get_keys_by_id(env->t_keysrc, master, &key_id, 1, keyreq_cb,
	    kr) == -1) {
		TAILQ_REMOVE(&env->t_ho->h_keyreqs, kr, kr_entry);
		free(kr);
		return -1;
	}
	return 0;
}

const char *
tspd_handover_key_reply_check(const Qroam__KeyReply *kr, const char *hid)
{
	size_t	 i, len = strlen(kr->key_id);

	if (strcmp(kr->handover_id, hid) != 0)
		return "KeyReply for another handover";
	if (!id_valid_name(kr->master_sae))
		return "KeyReply with a bad master_sae";
	if (len == 0 || len > KEYSRC_IDMAX)
		return "KeyReply with a bad key_id";
	for (i = 0; i < len; i++)
		if (!((kr->key_id[i] >= '0' && kr->key_id[i] <= '9') ||
		    (kr->key_id[i] >= 'a' && kr->key_id[i] <= 'z') ||
		    (kr->key_id[i] >= 'A' && kr->key_id[i] <= 'Z') ||
		    kr->key_id[i] == '-'))
			return "KeyReply with a bad key_id";
	return NULL;
}

/* ---- the handover ---- */

static struct hout *
hout_find(struct tspd *env, const char *hid)
{
	struct hout	*h;

	if (env->t_ho == NULL)
		return NULL;
	TAILQ_FOREACH(h, &env->t_ho->h_out, ho_entry)
		if (strcmp(h->ho_id, hid) == 0)
			return h;
	return NULL;
}

/*
 * The one place the state of h changes, each change logged at debug
 * level.  A handover starts zeroed, in HOUT_A1, so setting that first
 * state logs its name only.
 */
static void
hout_set_state(struct hout *h, enum hout_state to)
{
	if (h->ho_state != to)
		log_debug("handover id=%s: %s -> %s", h->ho_id,
		    hout_state_names[h->ho_state], hout_state_names[to]);
	else
		log_debug("handover id=%s: %s", h->ho_id, hout_state_names[to]);
	h->ho_state = to;
}

/*
 * The one teardown of a handover: reason NULL after success, else record
 * and log the failure; forget its request, wipe its keys, free it.
 */
static void
hout_close(struct hout *h, const char *reason)
{
	struct tspd	*env = h->ho_env;

	tspd_metric_handover(TSPD_HO_SOURCE, reason != NULL ? "failed" : "ok",
	    h->ho_started_ms);
	tspd_horing_add(h->ho_id, h->ho_vid, h->ho_target->tt_id, reason,
	    h->ho_started_ms);
	if (reason != NULL) {
		log_warnx("handover failed id=%s vehicle=%s to=%s state=%s "
		    "reason=%s", h->ho_id, h->ho_vid, h->ho_target->tt_id,
		    hout_state_names[h->ho_state], reason);
		tspdb_ho_record(env->t_db, h->ho_id, h->ho_vid, "out",
		    h->ho_target->tt_id, "failed", reason, store_now_ms(),
		    NULL);
	}
	if (h->ho_req != 0)
		chan_cancel(h->ho_chan, h->ho_req);
	if (h->ho_timer != NULL)
		event_free(h->ho_timer);
	crypto_wipe(h->ho_ck1, sizeof(h->ho_ck1));
	crypto_wipe(h->ho_ck2, sizeof(h->ho_ck2));
	if (h->ho_m7 != NULL)
		qroam__m7__free_unpacked(h->ho_m7, NULL);
	free(h->ho_m8.nonce.data);
	free(h->ho_m8.ct.data);
	h->ho_m8.nonce.data = NULL;
	h->ho_m8.ct.data = NULL;
	TAILQ_REMOVE(&env->t_ho->h_out, h, ho_entry);
	h->ho_closed = 1;
	if (!h->ho_storing)
		free(h);
}

/* Make h's one store request; its answer goes to done. */
static struct tspdb_req *
hout_store(struct hout *h, void (*done)(struct tspdb_req *))
{
	tspdb_req_init(&h->ho_rq, done, h);
	h->ho_storing = 1;
	return &h->ho_rq;
}

/* The store answered h: 1 if h goes on, 0 if it closed meanwhile (freed). */
static int
hout_answered(struct hout *h)
{
	h->ho_storing = 0;
	if (!h->ho_closed)
		return 1;
	crypto_wipe(&h->ho_rr, sizeof(h->ho_rr));
	free(h);
	return 0;
}

static void
hout_fail(struct hout *h, const char *fmt, ...)
{
	char	 reason[256];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	hout_close(h, reason);
}

static void
hout_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	hout_fail(arg, "timeout");
}

void
tspd_handover_status_text(const struct frame *f, char *buf, size_t len)
{
	Qroam__Status	*st;

	st = (Qroam__Status *)frame_unpack(f, &qroam__status__descriptor);
	if (st == NULL) {
		snprintf(buf, len, "malformed status");
		return;
	}
	snprintf(buf, len, "%s%s%s", msg_status_name(st->code),
	    st->detail != NULL && st->detail[0] != '\0' ? ": " : "",
	    st->detail != NULL ? st->detail : "");
	qroam__status__free_unpacked(st, NULL);
}

static void	hout_reply(void *, const struct frame *, const char *);

/* Send msg to the peer of ch as h's one request, to enter state to. */
static int
hout_request(struct hout *h, struct chan *ch, uint32_t type,
    const ProtobufCMessage *msg, enum hout_state to)
{
	hout_set_state(h, to);
	h->ho_chan = ch;
	if (ch == NULL || chan_request(ch, type, msg,
	    (int)h->ho_env->t_conf.tc_handover_timeout_ms, hout_reply, h,
	    &h->ho_req) == -1) {
		h->ho_req = 0;
		return -1;
	}
	return 0;
}

int
tspd_handover_running(struct tspd *env, const char *vid)
{
	struct hout	*h;

	if (env->t_ho == NULL)
		return 0;
	TAILQ_FOREACH(h, &env->t_ho->h_out, ho_entry)
		if (strcmp(h->ho_vid, vid) == 0)
			return 1;
	return 0;
}

void
tspd_handover_start(struct tspd *env, const char *vid,
    const struct topo_tsp *target)
{
	Qroam__KeyRequest	 a1 = QROAM__KEY_REQUEST__INIT;
	struct hout		*h;
	struct timeval		 tv;
	uint8_t			 rnd[TSPD_HO_IDLEN / 2];

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		log_warn("handover vehicle=%s", vid);
		return;
	}
	h->ho_env = env;
	qrand_bytes(rnd, sizeof(rnd));
	crypto_hex(rnd, sizeof(rnd), h->ho_id);
	memcpy(h->ho_vid, vid, sizeof(h->ho_vid));
	h->ho_target = target;
	h->ho_started_ms = store_now_ms();
	qroam__m8__init(&h->ho_m8);
	TAILQ_INSERT_TAIL(&env->t_ho->h_out, h, ho_entry);
	log_info("handover start id=%s vehicle=%s to=%s", h->ho_id, vid,
	    target->tt_id);
	if ((h->ho_timer = evtimer_new(env->t_base, hout_timeout, h)) == NULL) {
		hout_fail(h, "no timer");
		return;
	}
	tv.tv_sec = env->t_conf.tc_handover_timeout_ms / 1000;
	tv.tv_usec = (env->t_conf.tc_handover_timeout_ms % 1000) * 1000;
	evtimer_add(h->ho_timer, &tv);
	tspdb_ho_record(env->t_db, h->ho_id, vid, "out", target->tt_id,
	    "started", NULL, h->ho_started_ms, NULL);
	a1.type = 1;
	a1.from = (char *)env->t_id;
	a1.handover_id = h->ho_id;
	if (hout_request(h, tspd_handover_chan_sched(env),
	    QROAM__MSG_TYPE__MT_KEY_REQUEST, &a1.base, HOUT_A1) == -1)
		hout_fail(h, "cannot send A1");
}

static void	hout_m7_open(struct hout *, Qroam__M7 *);

/* CK1 arrived from the KME: keep it, and open an M7 that waited for it. */
static void
hout_ck1(struct tspd *env, const char *hid, enum keysrc_result res,
    const uint8_t *key, const char *why)
{
	struct hout	*h;
	Qroam__M7	*m7;

	if ((h = hout_find(env, hid)) == NULL || h->ho_state != HOUT_A2 ||
	    h->ho_ck1_ready)
		return;
	if (res != KEYSRC_OK || key == NULL) {
		hout_fail(h, "CK1 from the KME: %s", why);
		return;
	}
	memcpy(h->ho_ck1, key, sizeof(h->ho_ck1));
	h->ho_ck1_ready = 1;
	if ((m7 = h->ho_m7) != NULL) {
		h->ho_m7 = NULL;
		hout_m7_open(h, m7);
	}
}

/* A1 answered: fetch CK1 by its key_ID, and send A2 meanwhile. */
static void
hout_key_reply(struct hout *h, const struct frame *f)
{
	Qroam__AccessRequest	 a2 = QROAM__ACCESS_REQUEST__INIT;
	Qroam__KeyReply		*kr;
	const char		*why;

	kr = (Qroam__KeyReply *)frame_unpack(f, &qroam__key_reply__descriptor);
	if (kr == NULL) {
		metrics_refusal("key_reply_invalid");
		hout_fail(h, "malformed KeyReply");
		return;
	}
	if ((why = tspd_handover_key_reply_check(kr, h->ho_id)) != NULL) {
		qroam__key_reply__free_unpacked(kr, NULL);
		metrics_refusal("key_reply_invalid");
		hout_fail(h, "%s", why);
		return;
	}
	if (tspd_handover_fetch_key(h->ho_env, kr->master_sae, kr->key_id,
	    h->ho_id, hout_ck1) == -1) {
		qroam__key_reply__free_unpacked(kr, NULL);
		hout_fail(h, "cannot ask the KME for CK1");
		return;
	}
	qroam__key_reply__free_unpacked(kr, NULL);
	a2.type = 2;
	a2.target = (char *)h->ho_target->tt_id;
	a2.initiator = (char *)h->ho_env->t_id;
	a2.handover_id = h->ho_id;
	if (hout_request(h, tspd_handover_chan_sched(h->ho_env),
	    QROAM__MSG_TYPE__MT_ACCESS_REQUEST, &a2.base, HOUT_A2) == -1)
		hout_fail(h, "cannot send A2");
}

/* Check the M7Inner of h: NULL if usable, else the reason. */
static const char *
hout_m7_check(const struct hout *h, const Qroam__M7Inner *in)
{
	if (strcmp(in->tsp_id, h->ho_target->tt_id) != 0)
		return "M7 names another target";
	if (in->host[0] == '\0' ||
	    strlen(in->host) >= sizeof(h->ho_target->tt_vehicle.ep_host) ||
	    in->port == 0 || in->port > UINT16_MAX)
		return "M7 with a bad target address";
	if (in->expiry_ms <= store_now_ms())
		return "M7 expired";
	return NULL;
}

static void	hout_m8_build(struct hout *);

/* An M7 TSPA cannot use: count the refusal, fail the handover. */
static void
hout_m7_refuse(struct hout *h, const char *why)
{
	metrics_refusal("m7_invalid");
	hout_fail(h, "%s", why);
}

/* The answer to A2: an M7 for this handover, opened once CK1 is here. */
static void
hout_m7(struct hout *h, const struct frame *f)
{
	Qroam__M7	*m7;

	if ((m7 = (Qroam__M7 *)frame_unpack(f, &qroam__m7__descriptor)) == NULL) {
		hout_m7_refuse(h, "malformed M7");
		return;
	}
	if (strcmp(m7->handover_id, h->ho_id) != 0) {
		qroam__m7__free_unpacked(m7, NULL);
		hout_m7_refuse(h, "M7 for another handover");
		return;
	}
	if (!h->ho_ck1_ready) {
		log_debug("handover id=%s: M7 waits for CK1", h->ho_id);
		h->ho_m7 = m7;
		return;
	}
	hout_m7_open(h, m7);
}

/*
 * M7 under CK1 (m7 is freed here): learn CK2 and TSPB's address, then
 * send M8 to TSPB.
 */
static void
hout_m7_open(struct hout *h, Qroam__M7 *m7)
{
	struct tspd	*env = h->ho_env;
	Qroam__M7Inner	*in;
	const char	*why;

	if ((in = tspd_m7_open(h->ho_ck1, env->t_id, m7)) == NULL)
		why = "M7 does not decrypt";
	else
		why = hout_m7_check(h, in);
	crypto_wipe(h->ho_ck1, sizeof(h->ho_ck1));
	qroam__m7__free_unpacked(m7, NULL);
	if (why != NULL) {
		tspd_m7_inner_free(in);
		hout_m7_refuse(h, why);
		return;
	}
	memcpy(h->ho_ck2, in->ck2.data, sizeof(h->ho_ck2));
	snprintf(h->ho_peer_host, sizeof(h->ho_peer_host), "%s", in->host);
	h->ho_peer_port = (uint16_t)in->port;
	tspd_m7_inner_free(in);
	hout_m8_build(h);
}

/* RD1 came from the store: seal it into M8 and send that to TSPB. */
static void
hout_rd1_loaded(struct tspdb_req *rq)
{
	struct hout	*h = rq->rq_arg;
	struct tspd	*env = h->ho_env;
	struct tspdb_rd1 *rd = &h->ho_rd;
	struct chan	*peer;
	int		 rc = -1;

	if (h->ho_closed && rq->rq_result == TSPDB_OK)
		tspdb_rd1_free(rd);
	if (!hout_answered(h))
		return;
	if (rq->rq_result == TSPDB_OK) {
		rd->rd_msg.service = tspd_origins_encode(rd->rd_origin,
		    rd->rd_msg.n_history);
		h->ho_m8.initiator = (char *)env->t_id;
		h->ho_m8.target = (char *)h->ho_target->tt_id;
		h->ho_m8.handover_id = h->ho_id;
		rc = rd->rd_msg.service == NULL ? -1 :
		    tspd_m8_seal(h->ho_ck2, &rd->rd_msg, &h->ho_m8);
		free(rd->rd_msg.service);
		log_debug("handover id=%s: RD1 next_index=%u used=%zu "
		    "history=%zu", h->ho_id, rd->rd_msg.next_index,
		    rd->rd_msg.n_used, rd->rd_msg.n_history);
		tspdb_rd1_free(rd);
	}
	if (rc == -1) {
		hout_fail(h, "cannot build M8 from the store");
		return;
	}
	peer = tspd_handover_chan_peer(env, h->ho_target->tt_id,
	    h->ho_peer_host, h->ho_peer_port);
	if (hout_request(h, peer, QROAM__MSG_TYPE__MT_M8, &h->ho_m8.base,
	    HOUT_M8) == -1)
		hout_fail(h, "cannot send M8 to %s", h->ho_target->tt_id);
}

/* Ask the store for RD1 of h's vehicle, to build M8 from. */
static void
hout_m8_build(struct hout *h)
{
	tspdb_rd1_load(h->ho_env->t_db, h->ho_vid, &h->ho_rd,
	    hout_store(h, hout_rd1_loaded));
}

/*
 * Tell the vehicle where to go next, if it has a session: on its
 * connection here, or through the instance that holds it (cloud bus).
 */
static void
hout_ready(struct hout *h, struct tspdb_ready *rr)
{
	struct tspd		*env = h->ho_env;
	Qroam__SessionInner	 inner = QROAM__SESSION_INNER__INIT;
	Qroam__HandoverReady	 ready = QROAM__HANDOVER_READY__INIT;
	Qroam__SessionMsg	 sm;

	if (!rr->rr_session) {
		log_info("handover ready vehicle=%s: no session, not told",
		    h->ho_vid);
		return;
	}
	ready.tsp_id = (char *)h->ho_target->tt_id;
	ready.host = (char *)h->ho_target->tt_vehicle.ep_host;
	ready.port = h->ho_target->tt_vehicle.ep_port;
	inner.body_case = QROAM__SESSION_INNER__BODY_READY;
	inner.ready = &ready;
	qroam__session_msg__init(&sm);
	if (msg_session_seal(rr->rr_k1, h->ho_vid, env->t_id, MSG_DIR_C2V,
	    rr->rr_tx_seq, &inner, &sm) == -1) {
		log_warnx("handover ready vehicle=%s: sealing failed",
		    h->ho_vid);
		return;
	}
	sm.vehicle_id = h->ho_vid;
	sm.seq = rr->rr_tx_seq;
	tspd_vehicle_send_session(env, h->ho_vid, &sm, "handover ready");
	free(sm.ct.data);
}

/* The store ended the handover: tell the vehicle where to go. */
static void
hout_done(struct tspdb_req *rq)
{
	struct hout	*h = rq->rq_arg;

	if (!hout_answered(h))
		return;
	if (rq->rq_result != TSPDB_OK) {
		hout_fail(h, "store error at the end");
		return;
	}
	log_info("handover done id=%s vehicle=%s to=%s ms=%" PRIu64, h->ho_id,
	    h->ho_vid, h->ho_target->tt_id, store_now_ms() - h->ho_started_ms);
	hout_ready(h, &h->ho_rr);
	crypto_wipe(&h->ho_rr, sizeof(h->ho_rr));
	hout_close(h, NULL);
}

/* M8Ack under CK2: the context is at TSPB; end ours and tell the vehicle. */
static void
hout_ack(struct hout *h, const struct frame *f)
{
	struct tspd		*env = h->ho_env;
	Qroam__M8Ack		*ack;
	int			 ok;

	ack = (Qroam__M8Ack *)frame_unpack(f, &qroam__m8_ack__descriptor);
	ok = ack != NULL && tspd_m8ack_check(h->ho_ck2, env->t_id,
	    h->ho_target->tt_id, h->ho_id, ack) == 0;
	if (ack != NULL)
		qroam__m8_ack__free_unpacked(ack, NULL);
	crypto_wipe(h->ho_ck2, sizeof(h->ho_ck2));
	if (!ok) {
		metrics_refusal("m8ack_invalid");
		hout_fail(h, "M8Ack does not verify");
		return;
	}
	tspdb_ho_out_done(env->t_db, h->ho_id, h->ho_vid, store_now_ms(),
	    &h->ho_rr, hout_store(h, hout_done));
}

/*
 * The answer to h's request, or why there is none: a refusal, the
 * expected reply of the state, or anything else fails the handover.
 */
static void
hout_reply(void *arg, const struct frame *f, const char *why)
{
	struct hout	*h = arg;
	char		 st[200];
	const char	*peer;

	h->ho_req = 0;
	peer = h->ho_state == HOUT_M8 ? h->ho_target->tt_id : "the scheduler";
	if (f == NULL && h->ho_state == HOUT_M8)
		hout_fail(h, "%s", why);
	else if (f == NULL)
		hout_fail(h, "scheduler: %s", why);
	else if (f->f_type == QROAM__MSG_TYPE__MT_STATUS) {
		tspd_handover_status_text(f, st, sizeof(st));
		if (h->ho_state == HOUT_M8)
			hout_fail(h, "%s refused M8: %s", peer, st);
		else
			hout_fail(h, "scheduler: %s", st);
	} else if (h->ho_state == HOUT_A1 &&
	    f->f_type == QROAM__MSG_TYPE__MT_KEY_REPLY)
		hout_key_reply(h, f);
	else if (h->ho_state == HOUT_A2 && f->f_type == QROAM__MSG_TYPE__MT_M7)
		hout_m7(h, f);
	else if (h->ho_state == HOUT_M8 &&
	    f->f_type == QROAM__MSG_TYPE__MT_M8_ACK)
		hout_ack(h, f);
	else
		hout_fail(h, "unexpected %s from %s",
		    frame_type_name(f->f_type), peer);
}

/* /status/handovers_out: the outgoing handovers in memory, by age. */
json_t *
tspd_handover_out_json(struct tspd *env, size_t max)
{
	struct hout	*h;
	json_t		*a;
	size_t		 n = 0;

	if ((a = json_array()) == NULL || env->t_ho == NULL)
		return a;
	TAILQ_FOREACH(h, &env->t_ho->h_out, ho_entry) {
		if (h->ho_closed)
			continue;
		if (n++ >= max)
			break;
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:I}",
		    "handover_id", h->ho_id, "vehicle_id", h->ho_vid,
		    "peer", h->ho_target->tt_id,
		    "state", hout_state_names[h->ho_state],
		    "started_ms", (json_int_t)h->ho_started_ms));
	}
	return a;
}
