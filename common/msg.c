/*
 * Protocol codecs of PROTOCOL sections 4 and 6: AAD strings, the M4
 * authentication blob, M3 key wrapping and session traffic.  No sockets, no
 * storage, no logging; every temporary holding key material or plaintext is
 * wiped before it is released.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "crypto.h"
#include "msg.h"
#include "rand.h"

#define MSG_AAD_PREFIX	"qroam/1|"

/*
 * Fields may not contain '|', so that no two field lists give the same AAD
 * string.
 */
int
msg_aad(char *buf, size_t len, const char *label, ...)
{
	va_list		 ap;
	const char	*f;
	size_t		 off, flen;
	int		 rc = 0;

	if (buf == NULL || label == NULL || strchr(label, '|') != NULL)
		return -1;
	off = strlen(MSG_AAD_PREFIX) + strlen(label);
	if (off >= len)
		return -1;
	memcpy(buf, MSG_AAD_PREFIX, strlen(MSG_AAD_PREFIX));
	memcpy(buf + strlen(MSG_AAD_PREFIX), label, strlen(label));
	va_start(ap, label);
	while ((f = va_arg(ap, const char *)) != NULL) {
		flen = strlen(f);
		if (strchr(f, '|') != NULL || flen + 1 >= len - off) {
			rc = -1;
			break;
		}
		buf[off++] = '|';
		memcpy(buf + off, f, flen);
		off += flen;
	}
	va_end(ap);
	buf[rc == 0 ? off : 0] = '\0';
	return rc;
}

/* Big-endian direction then sequence number, as PROTOCOL section 4 fixes. */
void
msg_session_nonce(uint32_t dir, uint64_t seq, uint8_t nonce[12])
{
	int	 i;

	for (i = 0; i < 4; i++)
		nonce[i] = (uint8_t)(dir >> (8 * (3 - i)));
	for (i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(seq >> (8 * (7 - i)));
}

/* The StatusCode's name from the generated enum descriptor. */
const char *
msg_status_name(int code)
{
	const ProtobufCEnumValue	*v;

	v = protobuf_c_enum_descriptor_get_value(
	    &qroam__status_code__descriptor, code);
	return v != NULL ? v->name : "?";
}

/* Pack msg into a malloc'd buffer (at least one byte long). */
static uint8_t *
msg_pack(const ProtobufCMessage *msg, size_t *len)
{
	uint8_t	*buf;

	*len = protobuf_c_message_get_packed_size(msg);
	if ((buf = malloc(*len > 0 ? *len : 1)) == NULL)
		return NULL;
	if (protobuf_c_message_pack(msg, buf) != *len) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Wipe and free a plaintext buffer. */
static void
msg_free_secret(uint8_t *buf, size_t len)
{
	if (buf == NULL)
		return;
	crypto_wipe(buf, len);
	free(buf);
}

/* Pack AuthInner and encrypt it to Pbv; the packed copy is wiped. */
int
msg_m4_seal(EVP_PKEY *pbv, const char *chip_id, const char *tsp_id,
    const uint8_t nonce[MSG_AUTH_NONCELEN], uint64_t unix_ms,
    uint8_t **ct, size_t *ctlen)
{
	Qroam__AuthInner	 in = QROAM__AUTH_INNER__INIT;
	uint8_t			*pt;
	size_t			 ptlen;
	int			 rc;

	if (pbv == NULL || chip_id == NULL || tsp_id == NULL || nonce == NULL)
		return -1;
	in.chip_id = (char *)chip_id;
	in.tsp_id = (char *)tsp_id;
	in.nonce.data = (uint8_t *)nonce;
	in.nonce.len = MSG_AUTH_NONCELEN;
	in.unix_ms = unix_ms;
	if ((pt = msg_pack(&in.base, &ptlen)) == NULL)
		return -1;
	rc = crypto_oaep_encrypt(pbv, pt, ptlen, ct, ctlen);
	msg_free_secret(pt, ptlen);
	return rc;
}

/*
 * Decrypt with Prv and decode strictly: unknown fields or a bad nonce fail,
 * with *why (when why is not NULL) saying which.
 */
Qroam__AuthInner *
msg_m4_open(EVP_PKEY *prv, const uint8_t *ct, size_t ctlen, const char **why)
{
	Qroam__AuthInner	*in;
	uint8_t			*pt;
	size_t			 ptlen;
	const char		*dummy;

	if (why == NULL)
		why = &dummy;
	*why = "does not decrypt";
	if (prv == NULL || ct == NULL ||
	    crypto_oaep_decrypt(prv, ct, ctlen, &pt, &ptlen) == -1)
		return NULL;
	in = qroam__auth_inner__unpack(NULL, ptlen, pt);
	msg_free_secret(pt, ptlen);
	if (in == NULL) {
		*why = "decrypts but is no AuthInner";
		return NULL;
	}
	if (in->nonce.len != MSG_AUTH_NONCELEN ||
	    in->base.n_unknown_fields > 0) {
		*why = in->nonce.len != MSG_AUTH_NONCELEN ?
		    "AuthInner nonce is not 16 bytes" :
		    "AuthInner has unknown fields";
		qroam__auth_inner__free_unpacked(in, NULL);
		return NULL;
	}
	*why = NULL;
	return in;
}

/* The text the TSP signs with Prv to prove itself to the vehicle. */
int
msg_auth_text(char *buf, size_t len, const char *vid, const char *tsp_id,
    const uint8_t nonce[MSG_AUTH_NONCELEN])
{
	char	 hex[2 * MSG_AUTH_NONCELEN + 1];
	int	 n;

	if (buf == NULL || vid == NULL || tsp_id == NULL || nonce == NULL)
		return -1;
	crypto_hex(nonce, MSG_AUTH_NONCELEN, hex);
	n = snprintf(buf, len, "qroam/1|AUTH-OK|%s|%s|%s", vid, tsp_id, hex);
	if (n < 0 || (size_t)n >= len) {
		if (len > 0)
			buf[0] = '\0';
		return -1;
	}
	return 0;
}

/* malloc'd buffer of len fresh random bytes. */
static uint8_t *
msg_random(size_t len)
{
	uint8_t	*buf;

	if ((buf = malloc(len)) != NULL)
		qrand_bytes(buf, len);
	return buf;
}

/*
 * Draw both nonces, wrap K1 under the chip key and encrypt D1 under K1.  On
 * failure m3 holds no buffers.
 */
int
msg_m3_seal(Qroam__M3 *m3, const char *tsp_id, const uint8_t pfk[32],
    const uint8_t k1[32], const Qroam__Telemetry *d1)
{
	char	 aad_cek[MSG_AAD_MAX], aad_data[MSG_AAD_MAX];
	uint8_t	*pt = NULL;
	size_t	 ptlen = 0;

	if (m3 == NULL || m3->vehicle_id == NULL || tsp_id == NULL ||
	    pfk == NULL || k1 == NULL || d1 == NULL)
		return -1;
	if (msg_aad(aad_cek, sizeof(aad_cek), "M3-CEK", m3->vehicle_id, tsp_id,
	    (char *)NULL) == -1 ||
	    msg_aad(aad_data, sizeof(aad_data), "M3-DATA", m3->vehicle_id,
	    tsp_id, (char *)NULL) == -1)
		return -1;
	m3->cek_nonce.data = msg_random(CRYPTO_NONCELEN);
	m3->cek_nonce.len = CRYPTO_NONCELEN;
	m3->g_nonce.data = msg_random(CRYPTO_NONCELEN);
	m3->g_nonce.len = CRYPTO_NONCELEN;
	m3->cek1.len = CRYPTO_KEYLEN + CRYPTO_TAGLEN;
	m3->cek1.data = malloc(m3->cek1.len);
	if ((pt = msg_pack(&d1->base, &ptlen)) != NULL) {
		m3->g1.len = ptlen + CRYPTO_TAGLEN;
		m3->g1.data = malloc(m3->g1.len);
	}
	if (pt == NULL || m3->cek_nonce.data == NULL ||
	    m3->g_nonce.data == NULL || m3->cek1.data == NULL ||
	    m3->g1.data == NULL ||
	    crypto_aead_seal(pfk, m3->cek_nonce.data, aad_cek, k1,
	    CRYPTO_KEYLEN, m3->cek1.data) == -1 ||
	    crypto_aead_seal(k1, m3->g_nonce.data, aad_data, pt, ptlen,
	    m3->g1.data) == -1) {
		msg_free_secret(pt, ptlen);
		msg_m3_clear(m3);
		return -1;
	}
	msg_free_secret(pt, ptlen);
	return 0;
}

/* Release what msg_m3_seal allocated; the caller's fields are left alone. */
void
msg_m3_clear(Qroam__M3 *m3)
{
	if (m3 == NULL)
		return;
	free(m3->cek_nonce.data);
	free(m3->cek1.data);
	free(m3->g_nonce.data);
	free(m3->g1.data);
	m3->cek_nonce.data = m3->cek1.data = NULL;
	m3->g_nonce.data = m3->g1.data = NULL;
	m3->cek_nonce.len = m3->cek1.len = 0;
	m3->g_nonce.len = m3->g1.len = 0;
}

/* Decrypt G1 under k1 and decode the Telemetry it holds. */
static Qroam__Telemetry *
msg_m3_data(const Qroam__M3 *m3, const char *tsp_id, const uint8_t k1[32])
{
	Qroam__Telemetry	*d1;
	char			 aad[MSG_AAD_MAX];
	uint8_t			*pt;
	size_t			 ptlen = m3->g1.len - CRYPTO_TAGLEN;

	if (msg_aad(aad, sizeof(aad), "M3-DATA", m3->vehicle_id, tsp_id,
	    (char *)NULL) == -1)
		return NULL;
	if ((pt = malloc(ptlen > 0 ? ptlen : 1)) == NULL)
		return NULL;
	if (crypto_aead_open(k1, m3->g_nonce.data, aad, m3->g1.data,
	    m3->g1.len, pt) == -1) {
		free(pt);
		return NULL;
	}
	d1 = qroam__telemetry__unpack(NULL, ptlen, pt);
	msg_free_secret(pt, ptlen);
	if (d1 != NULL && d1->base.n_unknown_fields > 0) {
		qroam__telemetry__free_unpacked(d1, NULL);
		d1 = NULL;
	}
	return d1;
}

/* Sizes are checked before any decryption; k1 holds K1 only on success. */
int
msg_m3_open(const Qroam__M3 *m3, const char *tsp_id, const uint8_t pfk[32],
    uint8_t k1[32], Qroam__Telemetry **d1)
{
	char	 aad[MSG_AAD_MAX];

	if (d1 != NULL)
		*d1 = NULL;
	if (k1 == NULL)
		return -1;
	crypto_wipe(k1, CRYPTO_KEYLEN);
	if (m3 == NULL || m3->vehicle_id == NULL || tsp_id == NULL ||
	    pfk == NULL || d1 == NULL ||
	    m3->cek_nonce.len != CRYPTO_NONCELEN ||
	    m3->g_nonce.len != CRYPTO_NONCELEN ||
	    m3->cek1.len != CRYPTO_KEYLEN + CRYPTO_TAGLEN ||
	    m3->g1.len < CRYPTO_TAGLEN)
		return -1;
	if (msg_aad(aad, sizeof(aad), "M3-CEK", m3->vehicle_id, tsp_id,
	    (char *)NULL) == -1 ||
	    crypto_aead_open(pfk, m3->cek_nonce.data, aad, m3->cek1.data,
	    m3->cek1.len, k1) == -1)
		return -1;
	if ((*d1 = msg_m3_data(m3, tsp_id, k1)) == NULL) {
		crypto_wipe(k1, CRYPTO_KEYLEN);
		return -1;
	}
	return 0;
}

/* "qroam/1|DATA|vid|tsp|seq" with seq in decimal. */
static int
msg_session_aad(char *buf, size_t len, const char *vid, const char *tsp_id,
    uint64_t seq)
{
	char	 s[24];

	snprintf(s, sizeof(s), "%" PRIu64, seq);
	return msg_aad(buf, len, "DATA", vid, tsp_id, s, (char *)NULL);
}

/* Sequence numbers start at 1 in each direction; 0 is never sent. */
int
msg_session_seal(const uint8_t k1[32], const char *vid, const char *tsp_id,
    uint32_t dir, uint64_t seq, const Qroam__SessionInner *inner,
    Qroam__SessionMsg *out)
{
	char	 aad[MSG_AAD_MAX];
	uint8_t	 nonce[CRYPTO_NONCELEN], *pt, *ct;
	size_t	 ptlen;

	if (k1 == NULL || vid == NULL || tsp_id == NULL || inner == NULL ||
	    out == NULL || (dir != MSG_DIR_V2C && dir != MSG_DIR_C2V) ||
	    seq == 0 ||
	    msg_session_aad(aad, sizeof(aad), vid, tsp_id, seq) == -1)
		return -1;
	msg_session_nonce(dir, seq, nonce);
	if ((pt = msg_pack(&inner->base, &ptlen)) == NULL)
		return -1;
	if ((ct = malloc(ptlen + CRYPTO_TAGLEN)) == NULL ||
	    crypto_aead_seal(k1, nonce, aad, pt, ptlen, ct) == -1) {
		free(ct);
		msg_free_secret(pt, ptlen);
		return -1;
	}
	msg_free_secret(pt, ptlen);
	out->vehicle_id = (char *)vid;
	out->seq = seq;
	out->ct.data = ct;
	out->ct.len = ptlen + CRYPTO_TAGLEN;
	return 0;
}

/* Decrypt under the nonce and AAD the receiver expects; NULL on mismatch. */
Qroam__SessionInner *
msg_session_open(const uint8_t k1[32], const char *tsp_id, uint32_t dir,
    const Qroam__SessionMsg *m)
{
	Qroam__SessionInner	*in;
	char			 aad[MSG_AAD_MAX];
	uint8_t			 nonce[CRYPTO_NONCELEN], *pt;
	size_t			 ptlen;

	if (k1 == NULL || tsp_id == NULL || m == NULL ||
	    m->vehicle_id == NULL || m->ct.len < CRYPTO_TAGLEN ||
	    (dir != MSG_DIR_V2C && dir != MSG_DIR_C2V) || m->seq == 0 ||
	    msg_session_aad(aad, sizeof(aad), m->vehicle_id, tsp_id,
	    m->seq) == -1)
		return NULL;
	msg_session_nonce(dir, m->seq, nonce);
	ptlen = m->ct.len - CRYPTO_TAGLEN;
	if ((pt = malloc(ptlen > 0 ? ptlen : 1)) == NULL)
		return NULL;
	if (crypto_aead_open(k1, nonce, aad, m->ct.data, m->ct.len, pt) == -1) {
		free(pt);
		return NULL;
	}
	in = qroam__session_inner__unpack(NULL, ptlen, pt);
	msg_free_secret(pt, ptlen);
	if (in != NULL && (in->base.n_unknown_fields > 0 ||
	    in->body_case == QROAM__SESSION_INNER__BODY__NOT_SET)) {
		qroam__session_inner__free_unpacked(in, NULL);
		in = NULL;
	}
	return in;
}

/* ---- KMP (PROTOCOL 11.1) ---- */

/*
 * Seal msg under ik with a fresh 12-byte IV and the AAD
 * "qroam/1|label|identity|session_id"; *iv and *ct are malloc'd.
 */
static int
msg_kmp_seal(const uint8_t ik[32], const char *label, const char *identity,
    const char *session_id, const ProtobufCMessage *msg,
    ProtobufCBinaryData *iv, ProtobufCBinaryData *ct)
{
	char	 aad[MSG_AAD_MAX];
	uint8_t	*pt;
	size_t	 ptlen;

	iv->data = ct->data = NULL;
	if (msg_aad(aad, sizeof(aad), label, identity, session_id,
	    (char *)NULL) == -1 || (pt = msg_pack(msg, &ptlen)) == NULL)
		return -1;
	iv->data = malloc(CRYPTO_NONCELEN);
	ct->data = malloc(ptlen + CRYPTO_TAGLEN);
	if (iv->data != NULL && ct->data != NULL) {
		qrand_bytes(iv->data, CRYPTO_NONCELEN);
		if (crypto_aead_seal(ik, iv->data, aad, pt, ptlen,
		    ct->data) == 0) {
			msg_free_secret(pt, ptlen);
			iv->len = CRYPTO_NONCELEN;
			ct->len = ptlen + CRYPTO_TAGLEN;
			return 0;
		}
	}
	msg_free_secret(pt, ptlen);
	free(iv->data);
	free(ct->data);
	iv->data = ct->data = NULL;
	return -1;
}

/* Open (iv, ct) under ik and the AAD of msg_kmp_seal; the plaintext or NULL. */
static uint8_t *
msg_kmp_open(const uint8_t ik[32], const char *label, const char *identity,
    const char *session_id, const ProtobufCBinaryData *iv,
    const ProtobufCBinaryData *ct, size_t *ptlen)
{
	char	 aad[MSG_AAD_MAX];
	uint8_t	*pt;

	if (identity == NULL || session_id == NULL ||
	    iv->len != CRYPTO_NONCELEN || ct->len < CRYPTO_TAGLEN ||
	    msg_aad(aad, sizeof(aad), label, identity, session_id,
	    (char *)NULL) == -1)
		return NULL;
	*ptlen = ct->len - CRYPTO_TAGLEN;
	if ((pt = malloc(*ptlen > 0 ? *ptlen : 1)) == NULL)
		return NULL;
	if (crypto_aead_open(ik, iv->data, aad, ct->data, ct->len, pt) == -1) {
		free(pt);
		return NULL;
	}
	return pt;
}

int
msg_kmp_apply_seal(const uint8_t ik[32], const char *identity,
    const char *session_id, const uint8_t nonce[MSG_KMP_NONCELEN],
    uint64_t time_ms, Qroam__KmpApply *out)
{
	Qroam__KmpApplyInner	in = QROAM__KMP_APPLY_INNER__INIT;

	if (ik == NULL || identity == NULL || session_id == NULL ||
	    nonce == NULL || out == NULL)
		return -1;
	in.identity = (char *)identity;
	in.session_id = (char *)session_id;
	in.nonce.data = (uint8_t *)nonce;
	in.nonce.len = MSG_KMP_NONCELEN;
	in.time_ms = time_ms;
	out->identity = (char *)identity;
	out->session_id = (char *)session_id;
	return msg_kmp_seal(ik, "KMP-APPLY", identity, session_id, &in.base,
	    &out->iv, &out->ct);
}

Qroam__KmpApplyInner *
msg_kmp_apply_open(const uint8_t ik[32], const Qroam__KmpApply *a)
{
	Qroam__KmpApplyInner	*in;
	uint8_t			*pt;
	size_t			 ptlen;

	if (ik == NULL || a == NULL || (pt = msg_kmp_open(ik, "KMP-APPLY",
	    a->identity, a->session_id, &a->iv, &a->ct, &ptlen)) == NULL)
		return NULL;
	in = qroam__kmp_apply_inner__unpack(NULL, ptlen, pt);
	msg_free_secret(pt, ptlen);
	if (in != NULL && (in->base.n_unknown_fields > 0 ||
	    in->nonce.len != MSG_KMP_NONCELEN ||
	    strcmp(in->identity, a->identity) != 0 ||
	    strcmp(in->session_id, a->session_id) != 0)) {
		qroam__kmp_apply_inner__free_unpacked(in, NULL);
		in = NULL;
	}
	return in;
}

int
msg_kmp_key_seal(const uint8_t ik[32], const char *identity,
    const char *session_id, const uint8_t key[32],
    const uint8_t nonce[MSG_KMP_NONCELEN], Qroam__KmpKey *out)
{
	Qroam__KmpKeyInner	in = QROAM__KMP_KEY_INNER__INIT;

	if (ik == NULL || identity == NULL || session_id == NULL ||
	    key == NULL || nonce == NULL || out == NULL)
		return -1;
	in.key.data = (uint8_t *)key;
	in.key.len = CRYPTO_KEYLEN;
	in.nonce.data = (uint8_t *)nonce;
	in.nonce.len = MSG_KMP_NONCELEN;
	out->identity = (char *)identity;
	out->session_id = (char *)session_id;
	return msg_kmp_seal(ik, "KMP-KEY", identity, session_id, &in.base,
	    &out->iv, &out->ct);
}

int
msg_kmp_key_open(const uint8_t ik[32], const Qroam__KmpKey *k,
    const uint8_t nonce[MSG_KMP_NONCELEN], uint8_t key[32])
{
	Qroam__KmpKeyInner	*in;
	uint8_t			*pt;
	size_t			 ptlen;
	int			 rc = -1;

	if (ik == NULL || k == NULL || nonce == NULL || (pt = msg_kmp_open(ik,
	    "KMP-KEY", k->identity, k->session_id, &k->iv, &k->ct,
	    &ptlen)) == NULL)
		return -1;
	in = qroam__kmp_key_inner__unpack(NULL, ptlen, pt);
	msg_free_secret(pt, ptlen);
	if (in != NULL && in->base.n_unknown_fields == 0 &&
	    in->key.len == CRYPTO_KEYLEN &&
	    in->nonce.len == MSG_KMP_NONCELEN &&
	    memcmp(in->nonce.data, nonce, MSG_KMP_NONCELEN) == 0) {
		memcpy(key, in->key.data, CRYPTO_KEYLEN);
		rc = 0;
	}
	if (in != NULL) {
		crypto_wipe(in->key.data, in->key.len);
		qroam__kmp_key_inner__free_unpacked(in, NULL);
	}
	return rc;
}

void
msg_kmp_clear(ProtobufCBinaryData *iv, ProtobufCBinaryData *ct)
{
	free(iv->data);
	free(ct->data);
	iv->data = ct->data = NULL;
	iv->len = ct->len = 0;
}
