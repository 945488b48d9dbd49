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

/* One M3 being checked. */
struct m3_req {
	const Qroam__M3		*mr_m3;
	struct tspdb_session	 mr_sess;	/* vid, chip, K1, key index */
	struct tspdb_fill	 mr_fill;
	int			 mr_sequential;
	Qroam__Telemetry	*mr_d1;
	const char		*mr_reason;	/* why it was refused */
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

/*
 * Find what an M3 refers to: the vehicle's authentication, registration,
 * fill record and the selected key, which must be unused.  Returns OK
 * with key filled, or the status to refuse with and mr_reason set.
 */
static int
m3_select(struct tspd *env, struct m3_req *mr, struct tspdb_key *key)
{
	const Qroam__M3		*m3 = mr->mr_m3;
	struct tspdb_reg	 reg;
	char			 authchip[CHIP_ID_LEN + 1];
	int			 r;

	mr->mr_reason = "store error";
	if ((r = tspdb_auth_get(env->t_db, m3->vehicle_id, authchip)) != 1) {
		mr->mr_reason = "not authenticated";
		return r == 0 ? QROAM__STATUS_CODE__AUTH_REQUIRED :
		    QROAM__STATUS_CODE__INTERNAL;
	}
	if ((r = tspdb_reg_get(env->t_db, m3->vehicle_id, &reg)) != 1) {
		mr->mr_reason = "unknown vehicle";
		return r == 0 ? QROAM__STATUS_CODE__UNKNOWN_VEHICLE :
		    QROAM__STATUS_CODE__INTERNAL;
	}
	memcpy(mr->mr_sess.s_chip_id, reg.r_chip_id, sizeof(reg.r_chip_id));
	tspdb_reg_clear(&reg);
	if (strcmp(authchip, mr->mr_sess.s_chip_id) != 0) {
		mr->mr_reason = "authenticated under another chip";
		return QROAM__STATUS_CODE__AUTH_REQUIRED;
	}
	if ((r = tspdb_fill_get(env->t_db, mr->mr_sess.s_chip_id,
	    &mr->mr_fill)) != 1) {
		mr->mr_reason = "no fill record for the chip";
		return r == 0 ? QROAM__STATUS_CODE__UNKNOWN_CHIP :
		    QROAM__STATUS_CODE__INTERNAL;
	}
	mr->mr_sequential = m3->has_key_index;
	if (mr->mr_sequential && m3->key_index >= mr->mr_fill.f_m) {
		mr->mr_reason = "key_index out of range";
		return QROAM__STATUS_CODE__BAD_REQUEST;
	}
	if (!mr->mr_sequential && !id_valid_hex(m3->code, mr->mr_fill.f_k)) {
		mr->mr_reason = "bad code";
		return QROAM__STATUS_CODE__BAD_REQUEST;
	}
	switch (tspdb_key_select(env->t_db, mr->mr_sess.s_chip_id,
	    m3->key_index, mr->mr_sequential ? NULL : m3->code, key)) {
	case TSPDB_OK:
		return QROAM__STATUS_CODE__OK;
	case TSPDB_REUSED:
		mr->mr_reason = "key used before";
		return QROAM__STATUS_CODE__KEY_REUSED;
	case TSPDB_UNKNOWN:
		mr->mr_reason = "no such key";
		return QROAM__STATUS_CODE__BAD_REQUEST;
	default:
		return QROAM__STATUS_CODE__INTERNAL;
	}
}

/* Unwrap K1 and D1 of an M3 with the selected key; OK or a refusal. */
static int
m3_open(struct tspd *env, struct m3_req *mr, struct tspdb_key *key)
{
	const char	*why;
	int		 r;

	r = msg_m3_open(mr->mr_m3, env->t_id, key->k_key, mr->mr_sess.s_k1,
	    &mr->mr_d1);
	crypto_wipe(key->k_key, sizeof(key->k_key));
	if (r == -1) {
		mr->mr_d1 = NULL;
		mr->mr_reason = "does not decrypt";
		return QROAM__STATUS_CODE__DECRYPT_FAILED;
	}
	if ((why = tspd_telemetry_check(mr->mr_d1)) != NULL) {
		mr->mr_reason = why;
		return QROAM__STATUS_CODE__BAD_REQUEST;
	}
	mr->mr_sess.s_key_index = key->k_index;
	return QROAM__STATUS_CODE__OK;
}

/* Commit the session of a verified M3 and answer with ServiceResponse. */
static int
m3_accept(struct tspd *env, struct conn *c, const struct frame *f,
    struct m3_req *mr)
{
	Qroam__SessionMsg	 reply;
	const char		*vid = mr->mr_sess.s_vid;
	int			 code = QROAM__STATUS_CODE__OK;

	if (session_seal_response(env, mr->mr_sess.s_k1, vid, 1, 0,
	    &reply) == -1) {
		mr->mr_reason = "sealing the response failed";
		return QROAM__STATUS_CODE__INTERNAL;
	}
	switch (tspdb_session_open(env->t_db, &mr->mr_sess, mr->mr_sequential,
	    mr->mr_d1, env->t_id, store_now_ms())) {
	case TSPDB_OK:
		conn_send(c, QROAM__MSG_TYPE__MT_SESSION_MSG, f->f_request_id,
		    &reply.base);
		tspd_vehicle_bind(env, vid, c);
		tspd_metric_telemetry(1);
		log_info("session open vehicle=%s key_index=%u mode=%s",
		    vid, mr->mr_sess.s_key_index,
		    mr->mr_sequential ? "sequential" : "arbitrary");
		break;
	case TSPDB_REUSED:
		mr->mr_reason = "key used before";
		code = QROAM__STATUS_CODE__KEY_REUSED;
		break;
	default:
		mr->mr_reason = "store error";
		code = QROAM__STATUS_CODE__INTERNAL;
		break;
	}
	free(reply.ct.data);
	return code;
}

void
tspd_session_m3(struct tspd *env, struct conn *c, const struct frame *f)
{
	Qroam__M3	*m3;
	struct m3_req	 mr;
	struct tspdb_key key;
	const char	*why;
	int		 code;

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
	memset(&mr, 0, sizeof(mr));
	memset(&key, 0, sizeof(key));
	mr.mr_m3 = m3;
	memcpy(mr.mr_sess.s_vid, m3->vehicle_id, VIN_LEN + 1);
	if ((code = m3_select(env, &mr, &key)) == QROAM__STATUS_CODE__OK &&
	    (code = m3_open(env, &mr, &key)) == QROAM__STATUS_CODE__OK)
		code = m3_accept(env, c, f, &mr);
	if (code != QROAM__STATUS_CODE__OK) {
		log_warnx("m3 refused vehicle=%s addr=%s reason=%s (%s)",
		    mr.mr_sess.s_vid, conn_peer_addr(c), msg_status_name(code),
		    mr.mr_reason);
		conn_send_status(c, f->f_request_id, code, mr.mr_reason);
	}
	crypto_wipe(&key, sizeof(key));
	crypto_wipe(mr.mr_sess.s_k1, sizeof(mr.mr_sess.s_k1));
	if (mr.mr_d1 != NULL)
		qroam__telemetry__free_unpacked(mr.mr_d1, NULL);
	qroam__m3__free_unpacked(m3, NULL);
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

/* M6: accept its sequence number, then answer the handover offer. */
static void
session_m6(struct tspd *env, struct conn *c, const struct frame *f,
    const struct tspdb_session *s, uint64_t seq, const Qroam__M6 *m6)
{
	switch (tspdb_session_seq(env->t_db, s->s_vid, seq)) {
	case TSPDB_OK:
		tspd_handover_m6(env, c, f, s, m6);
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
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__INTERNAL, NULL);
		break;
	}
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
		if (tspdb_session_end(env->t_db, s->s_vid,
		    in->bye->has_power_off && in->bye->power_off) ==
		    TSPDB_ERROR) {
			conn_send_status(c, f->f_request_id,
			    QROAM__STATUS_CODE__INTERNAL, NULL);
			break;
		}
		tspd_handover_session_end(env, s->s_vid);
		log_info("session closed vehicle=%s reason=bye%s", s->s_vid,
		    in->bye->has_power_off && in->bye->power_off ?
		    " (power off: authentication ended)" : "");
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
 * A SessionMsg: checked against the session in memory, opened with K1's
 * context; the body is acted on with a copy of the session, which stays
 * valid whatever the body does to the stored one.  Both messages live in
 * the arena, reset when they are freed.
 */
void
tspd_session_msg(struct tspd *env, struct conn *c, const struct frame *f)
{
	Qroam__SessionMsg		*sm;
	Qroam__SessionInner		*in = NULL;
	const struct tspdb_session	*live;
	struct tspdb_session		 s;
	int				 r;

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
	if ((r = tspdb_session_find(env->t_db, sm->vehicle_id, &live)) != 1) {
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
		crypto_wipe(s.s_k1, sizeof(s.s_k1));
	}
 done:
	if (in != NULL)
		qroam__session_inner__free_unpacked(in, &arena);
	if (sm != NULL)
		qroam__session_msg__free_unpacked(sm, &arena);
	scratch.a_used = 0;
}
