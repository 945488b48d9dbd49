/*
 * Codecs of the cloud-to-cloud handover messages (F6 steps 6 and 7): M7
 * opened under CK1, M8 (RD1 under CK2) and its acknowledgement, and the
 * origin list RD1 carries in its service field.  Pure functions: no
 * sockets, no store, no logging; plaintexts are wiped before release.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ids.h"
#include "msg.h"
#include "rand.h"

#include "handover.h"

#define HO_ORIGIN_TAG	"origin/1"

/*
 * Decrypt ct under key with AAD aad into a malloc'd buffer; NULL on any
 * failure.  *ptlen receives the plaintext length.
 */
static uint8_t *
ho_open(const uint8_t key[CRYPTO_KEYLEN], const ProtobufCBinaryData *nonce,
    const ProtobufCBinaryData *ct, const char *aad, size_t *ptlen)
{
	uint8_t	*pt;

	if (nonce->len != CRYPTO_NONCELEN || ct->len < CRYPTO_TAGLEN ||
	    ct->len > TSPD_HO_MAXCT)
		return NULL;
	*ptlen = ct->len - CRYPTO_TAGLEN;
	if ((pt = malloc(*ptlen + 1)) == NULL)
		return NULL;
	if (crypto_aead_open(key, nonce->data, aad, ct->data, ct->len,
	    pt) == -1) {
		free(pt);
		return NULL;
	}
	return pt;
}

/* Wipe and free a plaintext of len bytes. */
static void
ho_free_pt(uint8_t *pt, size_t len)
{
	crypto_wipe(pt, len);
	free(pt);
}

/*
 * Seal msg (packed) under key with a fresh random nonce into *nonce and
 * *ct (both malloc'd; the caller frees them).  0 or -1.
 */
static int
ho_seal(const uint8_t key[CRYPTO_KEYLEN], const char *aad,
    const ProtobufCMessage *msg, const void *raw, size_t rawlen,
    ProtobufCBinaryData *nonce, ProtobufCBinaryData *ct)
{
	uint8_t	*pt = NULL;
	size_t	 ptlen;
	int	 rc = -1;

	if (msg != NULL) {
		ptlen = protobuf_c_message_get_packed_size(msg);
		if ((pt = malloc(ptlen + 1)) == NULL)
			return -1;
		protobuf_c_message_pack(msg, pt);
		raw = pt;
		rawlen = ptlen;
	}
	nonce->data = malloc(CRYPTO_NONCELEN);
	ct->data = malloc(rawlen + CRYPTO_TAGLEN);
	if (nonce->data != NULL && ct->data != NULL) {
		qrand_bytes(nonce->data, CRYPTO_NONCELEN);
		nonce->len = CRYPTO_NONCELEN;
		ct->len = rawlen + CRYPTO_TAGLEN;
		rc = crypto_aead_seal(key, nonce->data, aad, raw, rawlen,
		    ct->data);
	}
	if (pt != NULL)
		ho_free_pt(pt, ptlen);
	if (rc == -1) {
		free(nonce->data);
		free(ct->data);
		nonce->data = ct->data = NULL;
		nonce->len = ct->len = 0;
	}
	return rc;
}

Qroam__M7Inner *
tspd_m7_open(const uint8_t ck1[CRYPTO_KEYLEN], const char *self,
    const Qroam__M7 *m7)
{
	Qroam__M7Inner	*in;
	char		 aad[MSG_AAD_MAX];
	uint8_t		*pt;
	size_t		 ptlen;

	if (msg_aad(aad, sizeof(aad), "M7", self, m7->handover_id,
	    (char *)NULL) == -1 ||
	    (pt = ho_open(ck1, &m7->nonce, &m7->ct, aad, &ptlen)) == NULL)
		return NULL;
	in = qroam__m7_inner__unpack(NULL, ptlen, pt);
	ho_free_pt(pt, ptlen);
	if (in != NULL && (in->base.n_unknown_fields > 0 ||
	    in->ck2.len != CRYPTO_KEYLEN)) {
		tspd_m7_inner_free(in);
		return NULL;
	}
	return in;
}

void
tspd_m7_inner_free(Qroam__M7Inner *in)
{
	if (in == NULL)
		return;
	crypto_wipe(in->ck2.data, in->ck2.len);
	qroam__m7_inner__free_unpacked(in, NULL);
}

int
tspd_m8_seal(const uint8_t ck2[CRYPTO_KEYLEN], const Qroam__RD1 *rd1,
    Qroam__M8 *m8)
{
	char	 aad[MSG_AAD_MAX];

	if (msg_aad(aad, sizeof(aad), "M8", m8->initiator, m8->target,
	    m8->handover_id, (char *)NULL) == -1)
		return -1;
	return ho_seal(ck2, aad, &rd1->base, NULL, 0, &m8->nonce, &m8->ct);
}

Qroam__RD1 *
tspd_m8_open(const uint8_t ck2[CRYPTO_KEYLEN], const Qroam__M8 *m8)
{
	Qroam__RD1	*rd1;
	char		 aad[MSG_AAD_MAX];
	uint8_t		*pt;
	size_t		 ptlen;

	if (msg_aad(aad, sizeof(aad), "M8", m8->initiator, m8->target,
	    m8->handover_id, (char *)NULL) == -1 ||
	    (pt = ho_open(ck2, &m8->nonce, &m8->ct, aad, &ptlen)) == NULL)
		return NULL;
	rd1 = qroam__rd1__unpack(NULL, ptlen, pt);
	ho_free_pt(pt, ptlen);
	if (rd1 != NULL && rd1->base.n_unknown_fields > 0) {
		qroam__rd1__free_unpacked(rd1, NULL);
		return NULL;
	}
	return rd1;
}

int
tspd_m8ack_seal(const uint8_t ck2[CRYPTO_KEYLEN], const char *initiator,
    const char *target, const char *hid, Qroam__M8Ack *ack)
{
	char	 aad[MSG_AAD_MAX];

	if (msg_aad(aad, sizeof(aad), "M8-ACK", initiator, target, hid,
	    (char *)NULL) == -1)
		return -1;
	ack->handover_id = (char *)hid;
	return ho_seal(ck2, aad, NULL, hid, strlen(hid), &ack->nonce,
	    &ack->ct);
}

int
tspd_m8ack_check(const uint8_t ck2[CRYPTO_KEYLEN], const char *initiator,
    const char *target, const char *hid, const Qroam__M8Ack *ack)
{
	char	 aad[MSG_AAD_MAX];
	uint8_t	*pt;
	size_t	 ptlen;
	int	 ok;

	if (strcmp(ack->handover_id, hid) != 0 ||
	    msg_aad(aad, sizeof(aad), "M8-ACK", initiator, target, hid,
	    (char *)NULL) == -1 ||
	    (pt = ho_open(ck2, &ack->nonce, &ack->ct, aad, &ptlen)) == NULL)
		return -1;
	ok = ptlen == strlen(hid) && memcmp(pt, hid, ptlen) == 0;
	ho_free_pt(pt, ptlen);
	return ok ? 0 : -1;
}

char *
tspd_origins_encode(const struct tspdb_origin *o, size_t n)
{
	char	*s, *p;
	size_t	 i, len, room;
	int	 w;

	room = sizeof(HO_ORIGIN_TAG) + n * (NAME_MAXLEN + 2 + 20);
	if ((s = malloc(room)) == NULL)
		return NULL;
	len = strlen(HO_ORIGIN_TAG);
	memcpy(s, HO_ORIGIN_TAG, len + 1);
	for (i = 0; i < n; i++) {
		p = s + len;
		w = snprintf(p, room - len, " %s:%" PRIu64, o[i].o_tsp,
		    o[i].o_seq);
		if (w < 0 || (size_t)w >= room - len) {
			free(s);
			return NULL;
		}
		len += (size_t)w;
	}
	return s;
}

/* Parse one "tsp_id:seq" token of len bytes at s into *o; 0 or -1. */
static int
ho_origin_token(const char *s, size_t len, struct tspdb_origin *o)
{
	const char	*colon;
	char		 num[21];
	size_t		 idlen, i;
	uint64_t	 v = 0;

	if ((colon = memchr(s, ':', len)) == NULL)
		return -1;
	idlen = (size_t)(colon - s);
	if (idlen == 0 || idlen > NAME_MAXLEN || len - idlen - 1 == 0 ||
	    len - idlen - 1 >= sizeof(num))
		return -1;
	memcpy(o->o_tsp, s, idlen);
	o->o_tsp[idlen] = '\0';
	memcpy(num, colon + 1, len - idlen - 1);
	num[len - idlen - 1] = '\0';
	for (i = 0; num[i] != '\0'; i++) {
		if (num[i] < '0' || num[i] > '9' || v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(num[i] - '0');
	}
	o->o_seq = v;
	return id_valid_name(o->o_tsp) ? 0 : -1;
}

int
tspd_origins_decode(const char *s, size_t n, struct tspdb_origin *o)
{
	const char	*p, *end;
	size_t		 i;

	if (strncmp(s, HO_ORIGIN_TAG, strlen(HO_ORIGIN_TAG)) != 0)
		return -1;
	p = s + strlen(HO_ORIGIN_TAG);
	for (i = 0; i < n; i++) {
		if (*p++ != ' ')
			return -1;
		end = p + strcspn(p, " ");
		if (ho_origin_token(p, (size_t)(end - p), &o[i]) == -1)
			return -1;
		p = end;
	}
	return *p == '\0' ? 0 : -1;
}
