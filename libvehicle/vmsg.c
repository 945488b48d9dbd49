/*
 * Vehicle-side message construction and reply checks for F3, F4 and F5.
 * Everything received is fully decoded and checked here before the state
 * machine or the test tool acts on it.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "rand.h"
#include "vmsg.h"

#define VMSG_FUEL_KM	800.0	/* range on a full tank */

int
vmsg_m4(Qroam__M4 *m4, EVP_PKEY *pbv, const char *vid, const char *chip_id,
    const char *tsp_id, uint64_t unix_ms, uint8_t nonce[MSG_AUTH_NONCELEN])
{
	uint8_t	*ct = NULL;
	size_t	 ctlen = 0;

	qroam__m4__init(m4);
	qrand_bytes(nonce, MSG_AUTH_NONCELEN);
	if (msg_m4_seal(pbv, chip_id, tsp_id, nonce, unix_ms, &ct, &ctlen) == -1)
		return -1;
	m4->vehicle_id = (char *)vid;
	m4->ct.data = ct;
	m4->ct.len = ctlen;
	return 0;
}

void
vmsg_m4_clear(Qroam__M4 *m4)
{
	free(m4->ct.data);
	m4->ct.data = NULL;
	m4->ct.len = 0;
}

/* Verify the PSS signature of an OK AuthResult for our nonce. */
static int
vmsg_auth_sig(const Qroam__AuthResult *ar, EVP_PKEY *pbv, const char *vid,
    const char *tsp_id, const uint8_t nonce[MSG_AUTH_NONCELEN])
{
	char	text[MSG_AAD_MAX];

	if (!ar->has_sig || ar->sig.len == 0)
		return -1;
	if (msg_auth_text(text, sizeof(text), vid, tsp_id, nonce) == -1)
		return -1;
	return crypto_pss_verify(pbv, text, strlen(text), ar->sig.data,
	    ar->sig.len);
}

enum vmsg_auth
vmsg_auth_check(const struct frame *f, EVP_PKEY *pbv, const char *vid,
    const char *tsp_id, const uint8_t nonce[MSG_AUTH_NONCELEN], int *code)
{
	Qroam__AuthResult	*ar;
	enum vmsg_auth		 r;

	*code = QROAM__STATUS_CODE__BAD_REQUEST;
	if (f->f_type == QROAM__MSG_TYPE__MT_STATUS)
		return vmsg_status(f, code) == 0 ? VMSG_AUTH_REFUSED :
		    VMSG_AUTH_MALFORMED;
	if (f->f_type != QROAM__MSG_TYPE__MT_AUTH_RESULT)
		return VMSG_AUTH_MALFORMED;
	ar = (Qroam__AuthResult *)frame_unpack(f,
	    &qroam__auth_result__descriptor);
	if (ar == NULL)
		return VMSG_AUTH_MALFORMED;
	*code = ar->code;
	if (ar->code != QROAM__STATUS_CODE__OK)
		r = VMSG_AUTH_REFUSED;
	else if (!ar->has_nonce || ar->nonce.len != MSG_AUTH_NONCELEN)
		r = VMSG_AUTH_MALFORMED;
	else if (memcmp(ar->nonce.data, nonce, MSG_AUTH_NONCELEN) != 0)
		r = VMSG_AUTH_OTHER;
	else if (vmsg_auth_sig(ar, pbv, vid, tsp_id, nonce) == -1)
		r = VMSG_AUTH_BAD_SIG;
	else
		r = VMSG_AUTH_OK;
	qroam__auth_result__free_unpacked(ar, NULL);
	return r;
}

int
vmsg_m3(Qroam__M3 *m3, const char *vid, const char *tsp_id,
    const struct chip_key *ck, enum chip_mode mode, const uint8_t k1[32],
    const Qroam__Telemetry *d1)
{
	qroam__m3__init(m3);
	m3->vehicle_id = (char *)vid;
	if (mode == CHIP_SEQUENTIAL) {
		m3->has_key_index = 1;
		m3->key_index = ck->ck_index;
	} else
		m3->code = (char *)ck->ck_code;
	return msg_m3_seal(m3, tsp_id, ck->ck_key, k1, d1);
}

int
vmsg_m3_wrap(struct vmsg_wrap *vw, const char *vid, const char *tsp_id,
    const uint8_t pfk[32], const uint8_t k1[32])
{
	char	aad[MSG_AAD_MAX];

	if (msg_aad(aad, sizeof(aad), "M3-CEK", vid, tsp_id,
	    (char *)NULL) == -1)
		return -1;
	qrand_bytes(vw->vw_nonce, sizeof(vw->vw_nonce));
	return crypto_aead_seal(pfk, vw->vw_nonce, aad, k1, CRYPTO_KEYLEN,
	    vw->vw_cek1);
}

/* A malloc'd copy of len bytes into b; 0 or -1. */
static int
vmsg_copy(ProtobufCBinaryData *b, const uint8_t *p, size_t len)
{
	if ((b->data = malloc(len)) == NULL)
		return -1;
	memcpy(b->data, p, len);
	b->len = len;
	return 0;
}

/* G1 = AEAD_k1(d1) with a fresh nonce into m3; 0 or -1. */
static int
vmsg_m3_data(Qroam__M3 *m3, const char *tsp_id, const uint8_t k1[32],
    const Qroam__Telemetry *d1)
{
	char	 aad[MSG_AAD_MAX];
	uint8_t	*pt, nonce[CRYPTO_NONCELEN];
	size_t	 ptlen;
	int	 rc = -1;

	if (msg_aad(aad, sizeof(aad), "M3-DATA", m3->vehicle_id, tsp_id,
	    (char *)NULL) == -1)
		return -1;
	ptlen = qroam__telemetry__get_packed_size(d1);
	if ((pt = malloc(ptlen + 1)) == NULL)
		return -1;
	qroam__telemetry__pack(d1, pt);
	qrand_bytes(nonce, sizeof(nonce));
	if (vmsg_copy(&m3->g_nonce, nonce, sizeof(nonce)) == 0 &&
	    (m3->g1.data = malloc(ptlen + CRYPTO_TAGLEN)) != NULL) {
		m3->g1.len = ptlen + CRYPTO_TAGLEN;
		rc = crypto_aead_seal(k1, nonce, aad, pt, ptlen, m3->g1.data);
	}
	crypto_wipe(pt, ptlen);
	free(pt);
	return rc;
}

int
vmsg_m3_wrapped(Qroam__M3 *m3, const char *vid, const char *tsp_id,
    uint32_t index, const char *code, enum chip_mode mode,
    const uint8_t k1[32], const struct vmsg_wrap *vw,
    const Qroam__Telemetry *d1)
{
	qroam__m3__init(m3);
	m3->vehicle_id = (char *)vid;
	if (mode == CHIP_SEQUENTIAL) {
		m3->has_key_index = 1;
		m3->key_index = index;
	} else
		m3->code = (char *)code;
	if (vmsg_copy(&m3->cek_nonce, vw->vw_nonce, sizeof(vw->vw_nonce)) ==
	    -1 || vmsg_copy(&m3->cek1, vw->vw_cek1, sizeof(vw->vw_cek1)) ==
	    -1 || vmsg_m3_data(m3, tsp_id, k1, d1) == -1) {
		msg_m3_clear(m3);
		return -1;
	}
	return 0;
}

Qroam__SessionInner *
vmsg_session_in(const struct frame *f, const uint8_t k1[32], const char *vid,
    const char *tsp_id, uint64_t *rx_seq, const char **why)
{
	Qroam__SessionMsg	*sm;
	Qroam__SessionInner	*in = NULL;

	sm = (Qroam__SessionMsg *)frame_unpack(f,
	    &qroam__session_msg__descriptor);
	if (sm == NULL) {
		*why = "SessionMsg does not decode";
		return NULL;
	}
	if (strcmp(sm->vehicle_id, vid) != 0)
		*why = "SessionMsg for another vehicle";
	else if (sm->seq <= *rx_seq)
		*why = "SessionMsg replayed or out of order";
	else if ((in = msg_session_open(k1, tsp_id, MSG_DIR_C2V, sm)) == NULL)
		*why = "SessionMsg does not decrypt under the session key";
	else if (in->body_case == QROAM__SESSION_INNER__BODY__NOT_SET) {
		*why = "SessionMsg carries no message";
		qroam__session_inner__free_unpacked(in, NULL);
		in = NULL;
	} else
		*rx_seq = sm->seq;
	qroam__session_msg__free_unpacked(sm, NULL);
	return in;
}

int
vmsg_session_out(Qroam__SessionMsg *out, const uint8_t k1[32], const char *vid,
    const char *tsp_id, uint64_t seq, const Qroam__SessionInner *inner)
{
	qroam__session_msg__init(out);
	if (msg_session_seal(k1, vid, tsp_id, MSG_DIR_V2C, seq, inner,
	    out) == -1)
		return -1;
	if (out->vehicle_id == NULL)
		out->vehicle_id = (char *)vid;
	out->seq = seq;
	return 0;
}

int
vmsg_status(const struct frame *f, int *code)
{
	Qroam__Status	*st;

	if (f->f_type != QROAM__MSG_TYPE__MT_STATUS)
		return -1;
	st = (Qroam__Status *)frame_unpack(f, &qroam__status__descriptor);
	if (st == NULL)
		return -1;
	*code = st->code;
	qroam__status__free_unpacked(st, NULL);
	return 0;
}

void
vmsg_telemetry(Qroam__Telemetry *t, const struct route_pos *rp,
    uint64_t unix_ms)
{
	double	km = rp->rp_odometer_m / 1000.0;

	qroam__telemetry__init(t);
	t->unix_ms = unix_ms;
	t->lat = rp->rp_point.gp_lat;
	t->lon = rp->rp_point.gp_lon;
	t->speed = rp->rp_speed;
	t->heading = rp->rp_heading;
	t->has_fuel = 1;
	t->fuel = km >= VMSG_FUEL_KM ? 0 : 1.0 - km / VMSG_FUEL_KM;
	t->has_odometer = 1;
	t->odometer = km;
}
