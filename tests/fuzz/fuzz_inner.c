/*
 * Each inner message opened under a known key.  The fuzzed bytes are the
 * plaintext: the target seals them as the sender would (same key, nonce
 * rules and AAD) and hands the result to the receiver's open function and
 * then to the checks that follow it, so the fuzzer explores the decoders
 * behind the AEAD tags and RSA-OAEP.  Byte 0 picks the message:
 * SessionInner both ways, M3's Telemetry D1, M4's AuthInner, M7Inner,
 * RD1 (M8) and M8Ack's handover_id.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "frame.h"
#include "msg.h"
#include "fuzz.h"
#include "../../libvehicle/vmsg.h"
#include "../../tspd/handover.h"
#include "../../tspd/tspd.h"

static EVP_PKEY	*prv;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	prv = fuzz_rsa();
	return 0;
}

/* AEAD-seal pt under key with a zero nonce into b (malloc'd); 0 or -1. */
static int
fuzz_seal(int which, const char *aad, const uint8_t *pt, size_t len,
    ProtobufCBinaryData *nonce, ProtobufCBinaryData *b)
{
	static uint8_t	 zero[CRYPTO_NONCELEN];
	uint8_t		 key[CRYPTO_KEYLEN];

	fuzz_key(which, key);
	nonce->data = zero;
	nonce->len = sizeof(zero);
	if ((b->data = malloc(len + CRYPTO_TAGLEN)) == NULL ||
	    crypto_aead_seal(key, zero, aad, pt, len, b->data) == -1)
		abort();
	b->len = len + CRYPTO_TAGLEN;
	return 0;
}

/* F5: a SessionMsg to tspd (v2c) or to the vehicle (c2v). */
static void
fuzz_session(int c2v, const uint8_t *pt, size_t len)
{
	Qroam__SessionMsg	 m = QROAM__SESSION_MSG__INIT;
	Qroam__SessionInner	*in;
	struct frame		 f;
	uint8_t			 nonce[CRYPTO_NONCELEN], k1[32], *buf;
	char			 aad[MSG_AAD_MAX];
	uint64_t		 rx = 0;
	const char		*why;

	fuzz_key(FUZZ_K_K1, k1);
	m.vehicle_id = FUZZ_VID;
	m.seq = 1;
	msg_aad(aad, sizeof(aad), "DATA", FUZZ_VID, FUZZ_TSP, "1",
	    (char *)NULL);
	msg_session_nonce(c2v ? MSG_DIR_C2V : MSG_DIR_V2C, 1, nonce);
	if ((m.ct.data = malloc(len + CRYPTO_TAGLEN)) == NULL ||
	    crypto_aead_seal(k1, nonce, aad, pt, len, m.ct.data) == -1)
		abort();
	m.ct.len = len + CRYPTO_TAGLEN;
	if (!c2v) {
		in = msg_session_open(k1, FUZZ_TSP, MSG_DIR_V2C, &m);
		if (in != NULL && in->body_case ==
		    QROAM__SESSION_INNER__BODY_TELEMETRY)
			(void)tspd_telemetry_check(in->telemetry);
	} else {
		if ((buf = malloc(qroam__session_msg__get_packed_size(&m))) ==
		    NULL)
			abort();
		memset(&f, 0, sizeof(f));
		f.f_type = QROAM__MSG_TYPE__MT_SESSION_MSG;
		f.f_payload = buf;
		f.f_payload_len = qroam__session_msg__pack(&m, buf);
		in = vmsg_session_in(&f, k1, FUZZ_VID, FUZZ_TSP, &rx, &why);
		free(buf);
	}
	if (in != NULL)
		qroam__session_inner__free_unpacked(in, NULL);
	free(m.ct.data);
}

/* F4: M3 whose G1 holds pt, K1 wrapped under the fill's key. */
static void
fuzz_m3(const uint8_t *pt, size_t len)
{
	Qroam__M3		 m3 = QROAM__M3__INIT;
	Qroam__Telemetry	*d1;
	uint8_t			 pfk[32], k1[32];
	char			 aad[MSG_AAD_MAX];

	fuzz_key(FUZZ_K_K1, k1);
	m3.vehicle_id = FUZZ_VID;
	m3.has_key_index = 1;
	msg_aad(aad, sizeof(aad), "M3-CEK", FUZZ_VID, FUZZ_TSP, (char *)NULL);
	fuzz_seal(FUZZ_K_PFK, aad, k1, sizeof(k1), &m3.cek_nonce, &m3.cek1);
	msg_aad(aad, sizeof(aad), "M3-DATA", FUZZ_VID, FUZZ_TSP, (char *)NULL);
	fuzz_seal(FUZZ_K_K1, aad, pt, len, &m3.g_nonce, &m3.g1);
	fuzz_key(FUZZ_K_PFK, pfk);
	if (msg_m3_open(&m3, FUZZ_TSP, pfk, k1, &d1) == 0) {
		(void)tspd_telemetry_check(d1);
		qroam__telemetry__free_unpacked(d1, NULL);
	}
	free(m3.cek1.data);
	free(m3.g1.data);
}

/* F3: M4's RSA-OAEP part (at most 190 bytes under a 2048-bit key). */
static void
fuzz_m4(const uint8_t *pt, size_t len)
{
	Qroam__AuthInner	*in;
	uint8_t			*ct;
	size_t			 ctlen;
	const char		*why;

	if (len > 190 || crypto_oaep_encrypt(prv, pt, len, &ct, &ctlen) == -1)
		return;
	in = msg_m4_open(prv, ct, ctlen, &why);
	if ((in == NULL) != (why != NULL))
		abort();
	if (in != NULL)
		qroam__auth_inner__free_unpacked(in, NULL);
	free(ct);
}

/* F6/F7: M7 (schedd to TSPA), M8 (TSPA to TSPB), M8Ack (back). */
static void
fuzz_handover(int which, const uint8_t *pt, size_t len)
{
	static struct tspdb_origin origin[TSPDB_RD1_HISTORY];
	Qroam__M7	 m7 = QROAM__M7__INIT;
	Qroam__M8	 m8 = QROAM__M8__INIT;
	Qroam__M8Ack	 ack = QROAM__M8_ACK__INIT;
	Qroam__M7Inner	*in;
	Qroam__RD1	*rd1;
	uint8_t		 key[32];
	char		 aad[MSG_AAD_MAX];

	if (which == 0) {
		m7.handover_id = FUZZ_HID;
		msg_aad(aad, sizeof(aad), "M7", FUZZ_TSP, FUZZ_HID,
		    (char *)NULL);
		fuzz_seal(FUZZ_K_CK1, aad, pt, len, &m7.nonce, &m7.ct);
		fuzz_key(FUZZ_K_CK1, key);
		if ((in = tspd_m7_open(key, FUZZ_TSP, &m7)) != NULL)
			tspd_m7_inner_free(in);
		free(m7.ct.data);
		return;
	}
	fuzz_key(FUZZ_K_CK2, key);
	if (which == 1) {
		m8.initiator = FUZZ_TSP;
		m8.target = FUZZ_PEER;
		m8.handover_id = FUZZ_HID;
		msg_aad(aad, sizeof(aad), "M8", FUZZ_TSP, FUZZ_PEER, FUZZ_HID,
		    (char *)NULL);
		fuzz_seal(FUZZ_K_CK2, aad, pt, len, &m8.nonce, &m8.ct);
		if ((rd1 = tspd_m8_open(key, &m8)) != NULL) {
			(void)tspd_rd1_check(rd1, FUZZ_CHIP, FUZZ_FILL_M,
			    m8.initiator, origin);
			qroam__rd1__free_unpacked(rd1, NULL);
		}
		free(m8.ct.data);
		return;
	}
	ack.handover_id = FUZZ_HID;
	msg_aad(aad, sizeof(aad), "M8-ACK", FUZZ_TSP, FUZZ_PEER, FUZZ_HID,
	    (char *)NULL);
	fuzz_seal(FUZZ_K_CK2, aad, pt, len, &ack.nonce, &ack.ct);
	if (tspd_m8ack_check(key, FUZZ_TSP, FUZZ_PEER, FUZZ_HID, &ack) == 0 &&
	    (len != strlen(FUZZ_HID) || memcmp(pt, FUZZ_HID, len) != 0))
		abort();	/* acknowledges another handover */
	free(ack.ct.data);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 1)
		return 0;
	fuzz_quiet(1);
	switch (data[0] % 7) {
	case 0:
	case 1:
		fuzz_session(data[0] % 7, data + 1, len - 1);
		break;
	case 2:
		fuzz_m3(data + 1, len - 1);
		break;
	case 3:
		fuzz_m4(data + 1, len - 1);
		break;
	default:
		fuzz_handover(data[0] % 7 - 4, data + 1, len - 1);
		break;
	}
	fuzz_quiet(0);
	return 0;
}
