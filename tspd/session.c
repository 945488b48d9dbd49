/*
 * F4 and F5: session establishment with an M3 (K1 wrapped under a one-time
 * chip key) and the session traffic under K1, which also carries the
 * vehicle's side of a handover (M5 out, M6 in).  The store is the durable
 * session state: each accepted message is committed before its answer
 * leaves (telemetry in groups, batch.c), and nothing changes for a
 * refused one.  A session message is checked against the session as the
 * store holds it in memory (db_live.c) and opened and answered with K1's
 * cipher context, in scratch memory of the loop thread: the hot path
 * makes no store query, no allocation and no formatting of its own.
 */
#include <sys/queue.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "crypto.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "store.h"

#include "tspd.h"

#define SESSION_ARENA	8192	/* unpacked session messages, usually */
#define SESSION_SEQLEN	21	/* UINT64_MAX in decimal and a NUL */

/*
 * Scratch memory of the loop thread: a bump arena that protobuf-c unpacks
 * one session message into (larger ones fall back to malloc), and the
 * buffer its plaintext is decrypted into.
 */
static struct {
	_Alignas(max_align_t) uint8_t a_buf[SESSION_ARENA];
	size_t		 a_used;
	uint8_t		*a_pt;
	size_t		 a_ptcap;
} scratch;

static void *
arena_alloc(void *data, size_t size)
{
	void	*p;

	(void)data;
	size = (size + _Alignof(max_align_t) - 1) &
	    ~(_Alignof(max_align_t) - 1);
	if (size > SESSION_ARENA - scratch.a_used)
		return malloc(size);
	p = scratch.a_buf + scratch.a_used;
	scratch.a_used += size;
	return p;
}

static void
arena_free(void *data, void *p)
{
	(void)data;
	if ((uint8_t *)p < scratch.a_buf ||
	    (uint8_t *)p >= scratch.a_buf + SESSION_ARENA)
		free(p);
}

static ProtobufCAllocator arena = { arena_alloc, arena_free, NULL };

/*
 * One M3 from its arrival until it is answered: the store is asked in
 * turn for the vehicle's authentication, registration, fill record and
 * the selected key, then the session joins the group commit.
 */
struct m3_req {
	struct tspdb_req	 mr_rq;
	struct tspd		*mr_env;
	struct conn		*mr_conn;	/* referenced */
	uint64_t		 mr_request_id;
	Qroam__M3		*mr_m3;
	struct tspdb_session	 mr_sess;	/* vid, chip, K1, key index */
	char			 mr_authchip[CHIP_ID_LEN + 1];
	struct tspdb_reg	 mr_reg;
	struct tspdb_fill	 mr_fill;
	struct tspdb_key	 mr_key;
	int			 mr_sequential;
	Qroam__Telemetry	*mr_d1;
	Qroam__SessionMsg	 mr_reply;	/* ServiceResponse, sealed */
};

const char *
tspd_telemetry_check(const Qroam__Telemetry *t)
{
	if (t->unix_ms > INT64_MAX)
		return "bad telemetry time";
	if (!isfinite(t->lat) || t->lat < -90.0 || t->lat > 90.0)
		return "bad latitude";
	if (!isfinite(t->lon) || t->lon < -180.0 || t->lon > 180.0)
		return "bad longitude";
	if (!isfinite(t->speed) || t->speed < 0.0)
		return "bad speed";
	if (!isfinite(t->heading) || t->heading < 0.0 || t->heading > 360.0)
		return "bad heading";
	if (t->has_fuel && !isfinite(t->fuel))
		return "bad fuel";
	if (t->has_odometer && !isfinite(t->odometer))
		return "bad odometer";
	return NULL;
}

/*
 * The AAD of session message seq of vid: msg_aad's "qroam/1|DATA|vid|
 * tsp|seq" as msg_session_seal and msg_session_open make it, with seq
 * written without printf.  Its length, or 0 if buf is too small.
 */
static size_t
session_aad(char buf[MSG_AAD_MAX], const char *vid, const char *tsp_id,
    uint64_t seq)
{
	char	 digits[SESSION_SEQLEN], *p = digits + sizeof(digits) - 1;

	*p = '\0';
	do {
		*--p = (char)('0' + seq % 10);
		seq /= 10;
	} while (seq != 0);
	if (msg_aad(buf, MSG_AAD_MAX, "DATA", vid, tsp_id, p,
	    (char *)NULL) == -1)
		return 0;
	return strlen(buf);
}

/* ServiceResponse{ack_seq, region, stored_seq if not 0} as a SessionInner. */
static void
session_response_inner(struct tspd *env, uint64_t ack_seq, uint64_t stored,
    Qroam__SessionInner *inner, Qroam__ServiceResponse *resp)
{
	qroam__service_response__init(resp);
	qroam__session_inner__init(inner);
	resp->ack_seq = ack_seq;
	resp->has_stored_seq = stored != 0;
	resp->stored_seq = stored;
	resp->region = (char *)env->t_id;
	inner->body_case = QROAM__SESSION_INNER__BODY_RESPONSE;
	inner->response = resp;
}

/*
 * Seal ServiceResponse{ack_seq, region} to vid under k1 as the TSP's
 * message tx_seq (the M3's answer, before the session is stored).
 * out->ct.data is malloc'd; 0 or -1.
 */
static int
session_seal_response(struct tspd *env, const uint8_t k1[CRYPTO_KEYLEN],
    const char *vid, uint64_t tx_seq, uint64_t ack_seq, Qroam__SessionMsg *out)
{
	Qroam__SessionInner	 inner;
	Qroam__ServiceResponse	 resp;

	session_response_inner(env, ack_seq, 0, &inner, &resp);
	qroam__session_msg__init(out);
	if (msg_session_seal(k1, vid, env->t_id, MSG_DIR_C2V, tx_seq, &inner,
	    out) == -1)
		return -1;
	out->vehicle_id = (char *)vid;
	out->seq = tx_seq;
	return 0;
}

/*
 * The same for telemetry of session s, with K1's context and stored_seq
 * stored (0: none), into ct (TSPD_ACK_MAX bytes), which out->ct.data then
 * points at; 0 or -1.
 */
static int
session_seal_ack(struct tspd *env, const struct tspdb_session *s,
    uint64_t tx_seq, uint64_t ack_seq, uint64_t stored,
    uint8_t ct[TSPD_ACK_MAX], Qroam__SessionMsg *out)
{
	Qroam__SessionInner	 inner;
	Qroam__ServiceResponse	 resp;
	uint8_t			 pt[TSPD_ACK_MAX - CRYPTO_TAGLEN];
	uint8_t			 nonce[CRYPTO_NONCELEN];
	char			 aad[MSG_AAD_MAX];
	size_t			 ptlen, aadlen;
	int			 rc;

	session_response_inner(env, ack_seq, stored, &inner, &resp);
	qroam__session_msg__init(out);
	if (s->s_aead == NULL ||
	    (ptlen = qroam__session_inner__get_packed_size(&inner)) >
	    sizeof(pt) ||
	    (aadlen = session_aad(aad, s->s_vid, env->t_id, tx_seq)) == 0 ||
	    qroam__session_inner__pack(&inner, pt) != ptlen)
		return -1;
	msg_session_nonce(MSG_DIR_C2V, tx_seq, nonce);
	rc = crypto_aead_seal_with(s->s_aead, nonce, aad, aadlen, pt, ptlen,
	    ct);
	if (rc == -1)
		return -1;
	out->vehicle_id = (char *)s->s_vid;
	out->seq = tx_seq;
	out->ct.data = ct;
	out->ct.len = ptlen + CRYPTO_TAGLEN;
	return 0;
}

/*
 * Decrypt session message sm of session s with K1's context and unpack
 * its body into the arena, checked as msg_session_open checks it; NULL if
 * it does not decrypt or decode.
 */
static Qroam__SessionInner *
session_open_inner(struct tspd *env, const struct tspdb_session *s,
    const Qroam__SessionMsg *sm)
{
	Qroam__SessionInner	*in;
	uint8_t			 nonce[CRYPTO_NONCELEN], *pt;
	char			 aad[MSG_AAD_MAX];
	size_t			 ptlen, aadlen;

	if (s->s_aead == NULL || sm->ct.len < CRYPTO_TAGLEN ||
	    (aadlen = session_aad(aad, sm->vehicle_id, env->t_id,
	    sm->seq)) == 0)
		return NULL;
	ptlen = sm->ct.len - CRYPTO_TAGLEN;
	if (ptlen > scratch.a_ptcap) {
		if ((pt = realloc(scratch.a_pt, ptlen)) == NULL)
			return NULL;
		scratch.a_pt = pt;
		scratch.a_ptcap = ptlen;
	}
	msg_session_nonce(MSG_DIR_V2C, sm->seq, nonce);
	if (crypto_aead_open_with(s->s_aead, nonce, aad, aadlen, sm->ct.data,
	    sm->ct.len, scratch.a_pt) == -1)
		return NULL;
	in = qroam__session_inner__unpack(&arena, ptlen, scratch.a_pt);
	crypto_wipe(scratch.a_pt, ptlen);
	if (in != NULL && (in->base.n_unknown_fields > 0 ||
	    in->body_case == QROAM__SESSION_INNER__BODY__NOT_SET)) {
		qroam__session_inner__free_unpacked(in, &arena);
		in = NULL;
	}
	return in;
}

/* Check the fields of an M3 that need no store; NULL if fine. */
static const char *
m3_check_fields(const Qroam__M3 *m3)
{
	if (!id_valid_vin(m3->vehicle_id))
		return "bad vehicle_id";
	if (m3->has_key_index == (m3->code != NULL))
		return "needs exactly one of key_index and code";
	if (m3->cek_nonce.len != CRYPTO_NONCELEN ||
	    m3->g_nonce.len != CRYPTO_NONCELEN)
		return "bad nonce length";
	if (m3->cek1.len != CRYPTO_KEYLEN + CRYPTO_TAGLEN)
		return "bad cek1 length";
	if (m3->g1.len < CRYPTO_TAGLEN)
		return "bad g1 length";
	return NULL;
}

static void
m3_free(struct m3_req *mr)
{
	crypto_wipe(&mr->mr_key, sizeof(mr->mr_key));
	crypto_wipe(mr->mr_sess.s_k1, sizeof(mr->mr_sess.s_k1));
	tspdb_reg_clear(&mr->mr_reg);
	if (mr->mr_d1 != NULL)
		qroam__telemetry__free_unpacked(mr->mr_d1, NULL);
	free(mr->mr_reply.ct.data);
	qroam__m3__free_unpacked(mr->mr_m3, NULL);
	conn_unref(mr->mr_conn);
	free(mr);
}

/* Refuse the M3 with code and why, and free it. */
static void
m3_refuse(struct m3_req *mr, int code, const char *why)
{
	log_warnx("m3 refused vehicle=%s addr=%s reason=%s (%s)",
	    mr->mr_sess.s_vid, conn_peer_addr(mr->mr_conn),
	    msg_status_name(code), why);
	conn_send_status(mr->mr_conn, mr->mr_request_id, code, why);
	m3_free(mr);
}

/* A lookup of the M3's came back other than TSPDB_OK: refuse it; 1 if so. */
static int
m3_missing(struct m3_req *mr, enum tspdb_result r, int code, const char *why)
{
	if (r == TSPDB_OK)
		return 0;
	if (r == TSPDB_UNKNOWN)
		m3_refuse(mr, code, why);
	else
		m3_refuse(mr, QROAM__STATUS_CODE__INTERNAL, "store error");
	return 1;
}

/* The group holding the session committed (or not): answer the M3. */
static void
m3_stored(struct tspdb_req *rq)
{
	struct m3_req	*mr = rq->rq_arg;
	const char	*vid = mr->mr_sess.s_vid;

	switch (rq->rq_result) {
	case TSPDB_OK:
		if (conn_is_open(mr->mr_conn))
			tspd_vehicle_bind(mr->mr_env, vid, mr->mr_conn);
		conn_send(mr->mr_conn, QROAM__MSG_TYPE__MT_SESSION_MSG,
		    mr->mr_request_id, &mr->mr_reply.base);
		log_info("session open vehicle=%s key_index=%u mode=%s",
		    vid, mr->mr_sess.s_key_index,
		    mr->mr_sequential ? "sequential" : "arbitrary");
		m3_free(mr);
		break;
	case TSPDB_REUSED:
		m3_refuse(mr, QROAM__STATUS_CODE__KEY_REUSED,
		    "key used before");
		break;
	default:
		m3_refuse(mr, QROAM__STATUS_CODE__INTERNAL, "store error");
		break;
	}
}

/*
 * The selected key came: unwrap K1 and D1 with it, seal the answer and
 * store the session in the open group commit; the answer leaves once the
 * group is durable.
 */
static void
m3_key_selected(struct tspdb_req *rq)
{
	struct m3_req	*mr = rq->rq_arg;
	struct tspd	*env = mr->mr_env;
	const char	*why;
	int		 r;

	switch (rq->rq_result) {
	case TSPDB_OK:
		break;
	case TSPDB_REUSED:
		m3_refuse(mr, QROAM__STATUS_CODE__KEY_REUSED,
		    "key used before");
		return;
	case TSPDB_UNKNOWN:
		m3_refuse(mr, QROAM__STATUS_CODE__BAD_REQUEST, "no such key");
		return;
	default:
		m3_refuse(mr, QROAM__STATUS_CODE__INTERNAL, "store error");
		return;
	}
	r = msg_m3_open(mr->mr_m3, env->t_id, mr->mr_key.k_key,
	    mr->mr_sess.s_k1, &mr->mr_d1);
	crypto_wipe(mr->mr_key.k_key, sizeof(mr->mr_key.k_key));
	if (r == -1) {
		mr->mr_d1 = NULL;
		m3_refuse(mr, QROAM__STATUS_CODE__DECRYPT_FAILED,
		    "does not decrypt");
		return;
	}
	if ((why = tspd_telemetry_check(mr->mr_d1)) != NULL) {
		m3_refuse(mr, QROAM__STATUS_CODE__BAD_REQUEST, why);
		return;
	}
	mr->mr_sess.s_key_index = mr->mr_key.k_index;
	if (session_seal_response(env, mr->mr_sess.s_k1, mr->mr_sess.s_vid, 1,
	    0, &mr->mr_reply) == -1) {
		m3_refuse(mr, QROAM__STATUS_CODE__INTERNAL,
		    "sealing the response failed");
		return;
	}
	tspdb_req_init(&mr->mr_rq, m3_stored, mr);
	tspd_batch_m3(env, &mr->mr_sess, mr->mr_sequential, mr->mr_d1,
	    &mr->mr_rq);
}

/* The chip's fill record came: check the named key's range, select it. */
static void
m3_fill_read(struct tspdb_req *rq)
{
	struct m3_req	*mr = rq->rq_arg;
	const Qroam__M3	*m3 = mr->mr_m3;

	if (m3_missing(mr, rq->rq_result, QROAM__STATUS_CODE__UNKNOWN_CHIP,
	    "no fill record for the chip"))
		return;
	mr->mr_sequential = m3->has_key_index;
	if (mr->mr_sequential && m3->key_index >= mr->mr_fill.f_m) {
		m3_refuse(mr, QROAM__STATUS_CODE__BAD_REQUEST,
		    "key_index out of range");
		return;
	}
	if (!mr->mr_sequential && !id_valid_hex(m3->code, mr->mr_fill.f_k)) {
		m3_refuse(mr, QROAM__STATUS_CODE__BAD_REQUEST, "bad code");
		return;
	}
	tspdb_req_init(&mr->mr_rq, m3_key_selected, mr);
	tspdb_key_select(mr->mr_env->t_db, mr->mr_sess.s_chip_id,
	    m3->key_index, mr->mr_sequential ? NULL : m3->code, &mr->mr_key,
	    &mr->mr_rq);
}

/* The registration came: its chip must be the authenticated one. */
static void
m3_reg_read(struct tspdb_req *rq)
{
	struct m3_req	*mr = rq->rq_arg;

	if (m3_missing(mr, rq->rq_result, QROAM__STATUS_CODE__UNKNOWN_VEHICLE,
	    "unknown vehicle"))
		return;
	memcpy(mr->mr_sess.s_chip_id, mr->mr_reg.r_chip_id,
	    sizeof(mr->mr_reg.r_chip_id));
	tspdb_reg_clear(&mr->mr_reg);
	if (strcmp(mr->mr_authchip, mr->mr_sess.s_chip_id) != 0) {
		m3_refuse(mr, QROAM__STATUS_CODE__AUTH_REQUIRED,
		    "authenticated under another chip");
		return;
	}
	tspdb_req_init(&mr->mr_rq, m3_fill_read, mr);
	tspdb_fill_get(mr->mr_env->t_db, mr->mr_sess.s_chip_id, &mr->mr_fill,
	    &mr->mr_rq);
}

/* The vehicle's authentication came: read its registration. */
static void
m3_auth_read(struct tspdb_req *rq)
{
	struct m3_req	*mr = rq->rq_arg;

	if (m3_missing(mr, rq->rq_result, QROAM__STATUS_CODE__AUTH_REQUIRED,
	    "not authenticated"))
		return;
	tspdb_req_init(&mr->mr_rq, m3_reg_read, mr);
	tspdb_reg_get(mr->mr_env->t_db, mr->mr_sess.s_vid, &mr->mr_reg,
	    &mr->mr_rq);
}

void
tspd_session_m3(struct tspd *env, struct conn *c, const struct frame *f)
{
	Qroam__M3	*m3;
	struct m3_req	*mr;
	const char	*why;

	if ((m3 = (Qroam__M3 *)frame_unpack(f, &qroam__m3__descriptor)) == NULL ||
	    (why = m3_check_fields(m3)) != NULL) {
		why = m3 == NULL ? "malformed M3" : why;
		log_warnx("m3 refused vehicle=%s addr=%s reason=BAD_REQUEST (%s)",
		    m3 != NULL && id_valid_vin(m3->vehicle_id) ?
		    m3->vehicle_id : "(invalid)", conn_peer_addr(c), why);
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__BAD_REQUEST, why);
		if (m3 != NULL)
			qroam__m3__free_unpacked(m3, NULL);
		return;
	}
	if ((mr = calloc(1, sizeof(*mr))) == NULL) {
		log_warn("m3 vehicle=%s", m3->vehicle_id);
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__INTERNAL, NULL);
		qroam__m3__free_unpacked(m3, NULL);
		return;
	}
	mr->mr_env = env;
	mr->mr_conn = c;
	conn_ref(c);
	mr->mr_request_id = f->f_request_id;
	mr->mr_m3 = m3;
	qroam__session_msg__init(&mr->mr_reply);
	memcpy(mr->mr_sess.s_vid, m3->vehicle_id, VIN_LEN + 1);
	tspdb_req_init(&mr->mr_rq, m3_auth_read, mr);
	tspdb_auth_get(env->t_db, m3->vehicle_id,
	    tspd_auth_since(env, store_now_ms()), mr->mr_authchip, &mr->mr_rq);
}

/*
 * F5 telemetry: store it in the open batch, advance the sequence numbers
 * and queue the acknowledgement for after the batch's commit; when its
 * look-ahead leaves the region, an M5 follows the acknowledgement under
 * the next sequence number, committed in the same transaction.
 */
static void
session_telemetry(struct tspd *env, struct conn *c, const struct frame *f,
    const struct tspdb_session *s, uint64_t seq, const Qroam__Telemetry *t)
{
	Qroam__SessionMsg	 reply, m5;
	uint8_t			 ct[TSPD_ACK_MAX];
	const char		*why;
	uint64_t		 tx_seq = s->s_tx_seq + 1;
	int			 offer;

	if ((why = tspd_telemetry_check(t)) != NULL) {
		log_warnx("telemetry refused vehicle=%s seq=%" PRIu64
		    " reason=%s", s->s_vid, seq, why);
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__BAD_REQUEST, why);
		return;
	}
	if (session_seal_ack(env, s, tx_seq, seq,
	    tspdb_session_tell(env->t_db, s->s_vid), ct, &reply) == -1) {
		log_warnx("telemetry vehicle=%s seq=%" PRIu64 ": sealing the "
		    "response failed", s->s_vid, seq);
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__INTERNAL, NULL);
		return;
	}
	qroam__session_msg__init(&m5);
	offer = tspd_handover_offer(env, s, t, tx_seq + 1, &m5);
	switch (tspd_batch_telemetry(env, c, f->f_request_id, s, seq,
	    offer ? tx_seq + 1 : tx_seq, t, &reply, offer ? &m5 : NULL)) {
	case TSPDB_OK:
		offer = 0;
		break;
	case TSPDB_REPLAY:
		log_warnx("session message dropped vehicle=%s seq=%" PRIu64
		    " reason=replay", s->s_vid, seq);
		metrics_refusal("seq_replay");
		break;
	case TSPDB_UNKNOWN:
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__AUTH_REQUIRED, "no session");
		break;
	default:
		log_warnx("telemetry vehicle=%s seq=%" PRIu64 ": store failed",
		    s->s_vid, seq);
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__INTERNAL, NULL);
		break;
	}
	if (offer)
		tspd_handover_offer_cancel(env, s->s_vid);
	free(m5.ct.data);
}

void
tspd_session_tell_stored(struct tspd *env, const char *vid)
{
	const struct tspdb_session	*s;
	Qroam__SessionMsg		 msg;
	struct conn			*c;
	uint8_t				 ct[TSPD_ACK_MAX];
	uint64_t			 stored, tx_seq;

	if ((c = tspd_vehicle_conn(env, vid)) == NULL ||
	    tspdb_session_next_tx(env->t_db, vid, &tx_seq, &s) != 1)
		return;		/* the next answer carries it */
	if ((stored = tspdb_session_tell(env->t_db, vid)) == 0)
		return;
	/* ack_seq 0: it answers no message (the M3's data is long answered). */
	if (session_seal_ack(env, s, tx_seq, 0, stored, ct, &msg) == -1) {
		log_warnx("stored_seq vehicle=%s: sealing failed", vid);
		return;
	}
	conn_send_now(c, QROAM__MSG_TYPE__MT_SESSION_MSG, 0, &msg.base);
}

/* An M6 (copied out of the arena) waiting for its seq to be stored. */
struct m6_req {
	struct tspdb_req	 m6_rq;
	struct tspd		*m6_env;
	struct conn		*m6_conn;	/* referenced */
	uint64_t		 m6_request_id;
	uint64_t		 m6_seq;
	struct tspdb_session	 m6_sess;	/* without K1 */
	Qroam__M6		 m6_msg;
	char			 m6_next[NAME_MAXLEN + 1];
};

/* The M6's seq is stored: answer the handover offer. */
static void
session_m6_done(struct tspdb_req *rq)
{
	struct m6_req	*mq = rq->rq_arg;

	switch (rq->rq_result) {
	case TSPDB_OK:
		tspd_handover_m6(mq->m6_env, mq->m6_conn, mq->m6_request_id,
		    &mq->m6_sess, &mq->m6_msg);
		break;
	case TSPDB_REPLAY:
		log_warnx("session message dropped vehicle=%s seq=%" PRIu64
		    " reason=replay", mq->m6_sess.s_vid, mq->m6_seq);
		metrics_refusal("seq_replay");
		break;
	case TSPDB_UNKNOWN:
		conn_send_status(mq->m6_conn, mq->m6_request_id,
		    QROAM__STATUS_CODE__AUTH_REQUIRED, "no session");
		break;
	default:
		conn_send_status(mq->m6_conn, mq->m6_request_id,
		    QROAM__STATUS_CODE__INTERNAL, NULL);
		break;
	}
	conn_unref(mq->m6_conn);
	free(mq);
}

/* M6: accept its sequence number, then answer the handover offer. */
static void
session_m6(struct tspd *env, struct conn *c, const struct frame *f,
    const struct tspdb_session *s, uint64_t seq, const Qroam__M6 *m6)
{
	struct m6_req	*mq;

	if (m6->next_tsp_id != NULL && strlen(m6->next_tsp_id) > NAME_MAXLEN) {
		log_warnx("m6 refused vehicle=%s reason=next_tsp_id too long",
		    s->s_vid);
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__BAD_REQUEST, "bad next_tsp_id");
		return;
	}
	if ((mq = calloc(1, sizeof(*mq))) == NULL) {
		log_warn("m6 vehicle=%s", s->s_vid);
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__INTERNAL, NULL);
		return;
	}
	mq->m6_env = env;
	mq->m6_conn = c;
	conn_ref(c);
	mq->m6_request_id = f->f_request_id;
	mq->m6_seq = seq;
	mq->m6_sess = *s;
	crypto_wipe(mq->m6_sess.s_k1, sizeof(mq->m6_sess.s_k1));
	mq->m6_sess.s_aead = NULL;
	qroam__m6__init(&mq->m6_msg);
	mq->m6_msg.continue_service = m6->continue_service;
	if (m6->next_tsp_id != NULL) {
		memcpy(mq->m6_next, m6->next_tsp_id, strlen(m6->next_tsp_id));
		mq->m6_msg.next_tsp_id = mq->m6_next;
	}
	tspdb_req_init(&mq->m6_rq, session_m6_done, mq);
	tspdb_session_seq(env->t_db, s->s_vid, seq, &mq->m6_rq);
}

/* A session being ended for a message. */
struct close_req {
	struct tspdb_req	 cr_rq;
	struct tspd		*cr_env;
	struct conn		*cr_conn;	/* referenced */
	uint64_t		 cr_request_id;
	char			 cr_vid[VIN_LEN + 1];
	int			 cr_power_off;
	const char		*cr_why;
};

static void
session_closed(struct tspdb_req *rq)
{
	struct close_req	*cr = rq->rq_arg;

	if (rq->rq_result == TSPDB_ERROR)
		conn_send_status(cr->cr_conn, cr->cr_request_id,
		    QROAM__STATUS_CODE__INTERNAL, NULL);
	else {
		tspd_handover_session_end(cr->cr_env, cr->cr_vid);
		log_info("session closed vehicle=%s reason=%s%s", cr->cr_vid,
		    cr->cr_why, cr->cr_power_off ?
		    " (power off: authentication ended)" : "");
	}
	conn_unref(cr->cr_conn);
	free(cr);
}

void
tspd_session_close(struct tspd *env, struct conn *c, uint64_t request_id,
    const char *vid, int power_off, const char *why)
{
	struct close_req	*cr;

	if ((cr = calloc(1, sizeof(*cr))) == NULL) {
		log_warn("session close vehicle=%s", vid);
		conn_send_status(c, request_id, QROAM__STATUS_CODE__INTERNAL,
		    NULL);
		return;
	}
	cr->cr_env = env;
	cr->cr_conn = c;
	conn_ref(c);
	cr->cr_request_id = request_id;
	memcpy(cr->cr_vid, vid, sizeof(cr->cr_vid));
	cr->cr_power_off = power_off;
	cr->cr_why = why;
	tspdb_req_init(&cr->cr_rq, session_closed, cr);
	tspdb_session_end(env->t_db, vid, power_off, &cr->cr_rq);
}

/* Act on the decrypted body of a session message. */
static void
session_inner(struct tspd *env, struct conn *c, const struct frame *f,
    const struct tspdb_session *s, uint64_t seq, const Qroam__SessionInner *in)
{
	switch (in->body_case) {
	case QROAM__SESSION_INNER__BODY_TELEMETRY:
		session_telemetry(env, c, f, s, seq, in->telemetry);
		break;
	case QROAM__SESSION_INNER__BODY_M6:
		session_m6(env, c, f, s, seq, in->m6);
		break;
	case QROAM__SESSION_INNER__BODY_BYE:
		tspd_session_close(env, c, f->f_request_id, s->s_vid,
		    in->bye->has_power_off && in->bye->power_off, "bye");
		break;
	default:
		log_warnx("session message refused vehicle=%s seq=%" PRIu64
		    " reason=unexpected body %d", s->s_vid, seq,
		    (int)in->body_case);
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__BAD_REQUEST, "unexpected body");
		break;
	}
}

/*
 * A dropped message may have brought vid's session into memory; unless
 * the vehicle is connected, it goes again, so that messages naming other
 * vehicles fill no memory.
 */
static void
session_unheld(struct tspd *env, const char *vid)
{
	if (tspd_vehicle_conn(env, vid) == NULL)
		tspdb_session_release(env->t_db, vid);
}

/*
 * A SessionMsg (its frame copied) that waits on its connection: for its
 * session to be read from the store (lr_asked), or behind one that does,
 * so that a connection's messages are handled in the order they came.
 */
struct load_req {
	struct tspdb_req	 lr_rq;
	struct tspd		*lr_env;
	struct conn		*lr_conn;	/* referenced */
	int			 lr_asked;	/* the store read is out */
	int			 lr_answered;
	struct frame		 lr_frame;
	char			 lr_vid[VIN_LEN + 1];
	TAILQ_ENTRY(load_req)	 lr_entry;
	uint8_t			 lr_payload[];
};

/* Every waiting message, oldest first; loop thread only. */
static TAILQ_HEAD(, load_req) loads = TAILQ_HEAD_INITIALIZER(loads);

static int	session_msg(struct tspd *, struct conn *, const struct frame *,
		    int, char vid[VIN_LEN + 1]);

/* The oldest message waiting on c, or NULL. */
static struct load_req *
load_first(const struct conn *c)
{
	struct load_req	*lr;

	TAILQ_FOREACH(lr, &loads, lr_entry)
		if (lr->lr_conn == c)
			return lr;
	return NULL;
}

static void
load_free(struct load_req *lr)
{
	TAILQ_REMOVE(&loads, lr, lr_entry);
	conn_unref(lr->lr_conn);
	free(lr);
}

static void	session_loaded(struct tspdb_req *);

/* Read vid's session for the waiting message lr. */
static void
load_ask(struct load_req *lr, const char *vid)
{
	memcpy(lr->lr_vid, vid, sizeof(lr->lr_vid));
	lr->lr_asked = 1;
	tspdb_req_init(&lr->lr_rq, session_loaded, lr);
	tspdb_session_load(lr->lr_env->t_db, vid, &lr->lr_rq);
}

/*
 * Handle the messages waiting on c from the oldest on, until one has to
 * wait for the store.
 */
static void
load_run(struct conn *c)
{
	struct load_req	*lr;
	enum tspdb_result res;
	char		 vid[VIN_LEN + 1];

	while ((lr = load_first(c)) != NULL) {
		if (lr->lr_asked && !lr->lr_answered)
			return;
		if (!conn_is_open(c)) {
			load_free(lr);
			continue;
		}
		if (!lr->lr_asked) {
			if (session_msg(lr->lr_env, c, &lr->lr_frame, 0,
			    vid) == 1) {
				load_ask(lr, vid);
				return;
			}
			load_free(lr);
			continue;
		}
		res = lr->lr_rq.rq_result;
		if (res == TSPDB_OK)
			session_msg(lr->lr_env, c, &lr->lr_frame, 1, vid);
		else {
			log_warnx("session message refused vehicle=%s "
			    "reason=%s", lr->lr_vid, res == TSPDB_UNKNOWN ?
			    "no session" : "store error");
			conn_send_status(c, lr->lr_frame.f_request_id,
			    res == TSPDB_UNKNOWN ?
			    QROAM__STATUS_CODE__AUTH_REQUIRED :
			    QROAM__STATUS_CODE__INTERNAL,
			    res == TSPDB_UNKNOWN ? "no session" : NULL);
		}
		load_free(lr);
	}
}

/* The session came into memory (or there is none): go on with c. */
static void
session_loaded(struct tspdb_req *rq)
{
	struct load_req	*lr = rq->rq_arg;
	struct conn	*c = lr->lr_conn;

	lr->lr_answered = 1;
	conn_ref(c);
	load_run(c);
	conn_unref(c);
}

/* Keep a copy of f waiting on c; NULL (answered) if out of memory. */
static struct load_req *
load_wait(struct tspd *env, struct conn *c, const struct frame *f)
{
	struct load_req	*lr;

	if ((lr = malloc(sizeof(*lr) + f->f_payload_len)) == NULL) {
		log_warn("session message from %s", conn_peer_addr(c));
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__INTERNAL, NULL);
		return NULL;
	}
	memset(lr, 0, sizeof(*lr));
	lr->lr_env = env;
	lr->lr_conn = c;
	conn_ref(c);
	lr->lr_frame.f_type = f->f_type;
	lr->lr_frame.f_request_id = f->f_request_id;
	lr->lr_frame.f_payload_len = f->f_payload_len;
	if (f->f_payload_len > 0)
		memcpy(lr->lr_payload, f->f_payload, f->f_payload_len);
	lr->lr_frame.f_payload = lr->lr_payload;
	TAILQ_INSERT_TAIL(&loads, lr, lr_entry);
	return lr;
}

void
tspd_session_msg(struct tspd *env, struct conn *c, const struct frame *f)
{
	struct load_req	*lr;
	char		 vid[VIN_LEN + 1];

	if (!TAILQ_EMPTY(&loads) && load_first(c) != NULL) {
		load_wait(env, c, f);
		return;
	}
	if (session_msg(env, c, f, 0, vid) == 1 &&
	    (lr = load_wait(env, c, f)) != NULL)
		load_ask(lr, vid);
}

/*
 * A SessionMsg: checked against the session in memory, opened with K1's
 * context; the body is acted on with a copy of the session, which stays
 * valid whatever the body does to the stored one.  Both messages live in
 * the arena, reset when they are freed.  Returns 1 with vid set, having
 * done nothing, if the session is not in memory and loaded is 0: it must
 * be read first.  Else 0.
 */
static int
session_msg(struct tspd *env, struct conn *c, const struct frame *f,
    int loaded, char vid[VIN_LEN + 1])
{
	Qroam__SessionMsg		*sm;
	Qroam__SessionInner		*in = NULL;
	const struct tspdb_session	*live;
	struct tspdb_session		 s;
	int				 r, rc = 0;

	sm = qroam__session_msg__unpack(&arena, f->f_payload_len,
	    f->f_payload != NULL ? f->f_payload : (const uint8_t *)"");
	if (sm != NULL && sm->base.n_unknown_fields != 0) {
		qroam__session_msg__free_unpacked(sm, &arena);
		sm = NULL;
	}
	if (sm == NULL || !id_valid_vin(sm->vehicle_id)) {
		log_warnx("session message refused addr=%s reason=%s",
		    conn_peer_addr(c), sm == NULL ? "malformed" :
		    "bad vehicle_id");
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__BAD_REQUEST,
		    sm == NULL ? "malformed SessionMsg" : "bad vehicle_id");
		goto done;
	}
	if ((r = tspdb_session_find(env->t_db, sm->vehicle_id, &live)) == 0 &&
	    !loaded) {
		memcpy(vid, sm->vehicle_id, VIN_LEN + 1);
		rc = 1;
		goto done;
	}
	if (r != 1) {
		log_warnx("session message refused vehicle=%s reason=%s",
		    sm->vehicle_id, r == 0 ? "no session" : "store error");
		conn_send_status(c, f->f_request_id, r == 0 ?
		    QROAM__STATUS_CODE__AUTH_REQUIRED :
		    QROAM__STATUS_CODE__INTERNAL, r == 0 ? "no session" : NULL);
		goto done;
	}
	if (sm->seq <= live->s_rx_seq || sm->seq > INT64_MAX) {
		log_warnx("session message dropped vehicle=%s seq=%" PRIu64
		    " reason=%s", sm->vehicle_id, sm->seq,
		    sm->seq <= live->s_rx_seq ? "replay" : "bad seq");
		metrics_refusal(sm->seq <= live->s_rx_seq ? "seq_replay" :
		    "bad_seq");
		session_unheld(env, sm->vehicle_id);
	} else if ((in = session_open_inner(env, live, sm)) == NULL) {
		log_warnx("session message dropped vehicle=%s seq=%" PRIu64
		    " reason=does not decrypt", sm->vehicle_id, sm->seq);
		metrics_refusal("session_decrypt_failed");
		session_unheld(env, sm->vehicle_id);
	} else {
		s = *live;
		tspd_vehicle_bind(env, sm->vehicle_id, c);
		session_inner(env, c, f, &s, sm->seq, in);
		crypto_wipe(&s, sizeof(s));
	}
 done:
	if (in != NULL)
		qroam__session_inner__free_unpacked(in, &arena);
	if (sm != NULL)
		qroam__session_msg__free_unpacked(sm, &arena);
	scratch.a_used = 0;
	return rc;
}
