/*
 * Unit tests of the protocol codecs: exact AAD and signed-text strings,
 * session nonces, status names, M4 sealing, M3 wrapping with tampering and
 * session traffic with wrong directions and sequence numbers.  Where it
 * matters the ciphertexts are opened again with crypto_aead_open and the
 * literal AAD of PROTOCOL sections 4 and 6, not with msg.c itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto.h"
#include "msg.h"
#include "rand.h"

#include "testutil.h"

#define VID	"1HGCM82633A004352"
#define TSP	"tsp-a"

static EVP_PKEY	*prv_a, *prv_b, *pbv_a;

/* A source of consecutive byte values, so draws are recognisable. */
static int
counter_source(void *ctx, uint8_t *buf, size_t len)
{
	uint8_t	*next = ctx;
	size_t	 i;

	for (i = 0; i < len; i++)
		buf[i] = (*next)++;
	return 0;
}

static int
group_setup(void **state)
{
	uint8_t	*der;
	size_t	 len;

	(void)state;
	prv_a = crypto_rsa_generate(2048);
	prv_b = crypto_rsa_generate(2048);
	if (prv_a == NULL || prv_b == NULL ||
	    crypto_pub_to_der(prv_a, &der, &len) == -1)
		return -1;
	pbv_a = crypto_pub_from_der(der, len);
	free(der);
	return pbv_a != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(prv_a);
	EVP_PKEY_free(prv_b);
	EVP_PKEY_free(pbv_a);
	qrand_set_source(NULL, NULL);
	return 0;
}

static void
fill_bytes(uint8_t *p, size_t len, uint8_t first)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(first + i);
}

static void
telemetry_example(Qroam__Telemetry *t)
{
	qroam__telemetry__init(t);
	t->unix_ms = 1700000000123ULL;
	t->lat = 30.05;
	t->lon = 120.07;
	t->speed = 27.5;
	t->heading = 91.25;
	t->has_fuel = 1;
	t->fuel = 0.5;
}

static void
test_aad(void **state)
{
	char	 buf[MSG_AAD_MAX];
	char	 small[25];

	(void)state;
	assert_int_equal(msg_aad(buf, sizeof(buf), "M3-CEK", VID, TSP,
	    (char *)NULL), 0);
	assert_string_equal(buf, "qroam/1|M3-CEK|" VID "|" TSP);
	assert_int_equal(msg_aad(buf, sizeof(buf), "M3-DATA", VID, TSP,
	    (char *)NULL), 0);
	assert_string_equal(buf, "qroam/1|M3-DATA|" VID "|" TSP);
	assert_int_equal(msg_aad(buf, sizeof(buf), "DATA", VID, TSP, "42",
	    (char *)NULL), 0);
	assert_string_equal(buf, "qroam/1|DATA|" VID "|" TSP "|42");
	assert_int_equal(msg_aad(buf, sizeof(buf), "M8", "tsp-a", "tsp-b",
	    "h1", (char *)NULL), 0);
	assert_string_equal(buf, "qroam/1|M8|tsp-a|tsp-b|h1");
	assert_int_equal(msg_aad(buf, sizeof(buf), "X", (char *)NULL), 0);
	assert_string_equal(buf, "qroam/1|X");
	assert_int_equal(msg_aad(buf, sizeof(buf), "X", "", (char *)NULL), 0);
	assert_string_equal(buf, "qroam/1|X|");

	/* "qroam/1|M3-CEK|tsp-a" is 20 chars: 21 bytes fit, 20 do not. */
	assert_int_equal(msg_aad(small, 21, "M3-CEK", TSP, (char *)NULL), 0);
	assert_string_equal(small, "qroam/1|M3-CEK|tsp-a");
	assert_int_equal(msg_aad(small, 20, "M3-CEK", TSP, (char *)NULL), -1);
	assert_string_equal(small, "");
	assert_int_equal(msg_aad(small, 9, "M3-CEK", (char *)NULL), -1);
	assert_int_equal(msg_aad(small, 0, "M3-CEK", (char *)NULL), -1);

	/* A field may not carry the separator. */
	assert_int_equal(msg_aad(buf, sizeof(buf), "DATA", "a|b", TSP,
	    (char *)NULL), -1);
	assert_int_equal(msg_aad(buf, sizeof(buf), "DA|TA", (char *)NULL), -1);
	assert_int_equal(msg_aad(buf, sizeof(buf), NULL, (char *)NULL), -1);
}

static void
test_auth_text(void **state)
{
	uint8_t	 nonce[MSG_AUTH_NONCELEN];
	char	 buf[128];
	const char *want = "qroam/1|AUTH-OK|" VID "|" TSP
	    "|000102030405060708090a0b0c0d0e0f";

	(void)state;
	fill_bytes(nonce, sizeof(nonce), 0);
	assert_int_equal(msg_auth_text(buf, sizeof(buf), VID, TSP, nonce), 0);
	assert_string_equal(buf, want);
	assert_int_equal(msg_auth_text(buf, strlen(want) + 1, VID, TSP, nonce),
	    0);
	assert_int_equal(msg_auth_text(buf, strlen(want), VID, TSP, nonce), -1);
}

static void
test_session_nonce(void **state)
{
	const uint8_t	 want1[12] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1 };
	const uint8_t	 want2[12] = { 0, 0, 0, 2,
	    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };
	const uint8_t	 want3[12] = { 0, 0, 0, 2,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t		 nonce[12];

	(void)state;
	msg_session_nonce(MSG_DIR_V2C, 1, nonce);
	assert_memory_equal(nonce, want1, 12);
	msg_session_nonce(MSG_DIR_C2V, 0x0102030405060708ULL, nonce);
	assert_memory_equal(nonce, want2, 12);
	msg_session_nonce(MSG_DIR_C2V, UINT64_MAX, nonce);
	assert_memory_equal(nonce, want3, 12);
}

static void
test_status_name(void **state)
{
	(void)state;
	assert_string_equal(msg_status_name(QROAM__STATUS_CODE__OK), "OK");
	assert_string_equal(msg_status_name(QROAM__STATUS_CODE__KEY_REUSED),
	    "KEY_REUSED");
	assert_string_equal(msg_status_name(1), "DUPLICATE_REGISTRATION");
	assert_string_equal(msg_status_name(8), "DECRYPT_FAILED");
	assert_string_equal(msg_status_name(12), "INTERNAL");
	assert_string_equal(msg_status_name(13), "?");
	assert_string_equal(msg_status_name(-1), "?");
}

static void
test_m4_roundtrip(void **state)
{
	Qroam__AuthInner	*in;
	uint8_t			 nonce[MSG_AUTH_NONCELEN], *ct;
	size_t			 ctlen;
	const char		*chip =
	    "ce055a97e79cbc8df07f12c729f2f8433cf27fe8310ecbfae1f974715c63d92d";

	(void)state;
	fill_bytes(nonce, sizeof(nonce), 0x40);
	assert_int_equal(msg_m4_seal(pbv_a, chip, TSP, nonce, 1700000000123ULL,
	    &ct, &ctlen), 0);
	assert_int_equal(ctlen, 256);
	in = msg_m4_open(prv_a, ct, ctlen, NULL);
	assert_non_null(in);
	assert_string_equal(in->chip_id, chip);
	assert_string_equal(in->tsp_id, TSP);
	assert_int_equal(in->nonce.len, MSG_AUTH_NONCELEN);
	assert_memory_equal(in->nonce.data, nonce, MSG_AUTH_NONCELEN);
	assert_int_equal(in->unix_ms, 1700000000123ULL);
	qroam__auth_inner__free_unpacked(in, NULL);

	/* Another vehicle's key, the public key, tampering, truncation. */
	assert_null(msg_m4_open(prv_b, ct, ctlen, NULL));
	assert_null(msg_m4_open(pbv_a, ct, ctlen, NULL));
	ct[17] ^= 0x20;
	assert_null(msg_m4_open(prv_a, ct, ctlen, NULL));
	ct[17] ^= 0x20;
	assert_null(msg_m4_open(prv_a, ct, ctlen - 1, NULL));
	assert_null(msg_m4_open(prv_a, NULL, ctlen, NULL));
	free(ct);
	assert_int_equal(msg_m4_seal(NULL, chip, TSP, nonce, 1, &ct, &ctlen),
	    -1);
}

/* OAEP-encrypt a packed AuthInner whose nonce is nlen bytes long. */
static uint8_t *
m4_with_nonce_len(size_t nlen, size_t *ctlen)
{
	Qroam__AuthInner	 in = QROAM__AUTH_INNER__INIT;
	uint8_t			 nonce[32], buf[256], *ct;
	size_t			 len;

	fill_bytes(nonce, sizeof(nonce), 1);
	in.chip_id = (char *)"00";
	in.tsp_id = (char *)TSP;
	in.nonce.data = nonce;
	in.nonce.len = nlen;
	in.unix_ms = 5;
	len = qroam__auth_inner__pack(&in, buf);
	assert_int_equal(crypto_oaep_encrypt(pbv_a, buf, len, &ct, ctlen), 0);
	return ct;
}

static void
test_m4_bad_inner(void **state)
{
	Qroam__AuthInner	*in;
	uint8_t			*ct;
	size_t			 ctlen;

	(void)state;
	ct = m4_with_nonce_len(16, &ctlen);
	in = msg_m4_open(prv_a, ct, ctlen, NULL);
	assert_non_null(in);
	qroam__auth_inner__free_unpacked(in, NULL);
	free(ct);

	/* Each refusal says why: the nonce, not the decryption, is wrong. */
	for (size_t i = 0; i < 3; i++) {
		const size_t	 lens[] = { 15, 17, 8 };
		const char	*why = NULL;

		ct = m4_with_nonce_len(lens[i], &ctlen);
		assert_null(msg_m4_open(prv_a, ct, ctlen, &why));
		assert_string_equal(why, "AuthInner nonce is not 16 bytes");
		free(ct);
	}
	ct = m4_with_nonce_len(0, &ctlen);
	assert_null(msg_m4_open(prv_a, ct, ctlen, NULL));
	free(ct);
	{
		const char	*why = NULL;

		ct = m4_with_nonce_len(16, &ctlen);
		assert_null(msg_m4_open(prv_b, ct, ctlen, &why));
		assert_string_equal(why, "does not decrypt");
		free(ct);
	}

	/* Decrypts, but is no AuthInner. */
	assert_int_equal(crypto_oaep_encrypt(pbv_a, "\xff\xff\xff", 3, &ct,
	    &ctlen), 0);
	{
		const char	*why = NULL;

		assert_null(msg_m4_open(prv_a, ct, ctlen, &why));
		assert_string_equal(why, "decrypts but is no AuthInner");
	}
	free(ct);
}

/* Seal a standard M3 for the tests below, with pfk and k1 patterns. */
static void
m3_example(Qroam__M3 *m3, uint8_t pfk[32], uint8_t k1[32])
{
	Qroam__Telemetry	 d1;

	fill_bytes(pfk, 32, 0x10);
	fill_bytes(k1, 32, 0x90);
	telemetry_example(&d1);
	qroam__m3__init(m3);
	m3->vehicle_id = (char *)VID;
	m3->has_key_index = 1;
	m3->key_index = 7;
	assert_int_equal(msg_m3_seal(m3, TSP, pfk, k1, &d1), 0);
}

static void
test_m3_roundtrip(void **state)
{
	Qroam__M3		 m3;
	Qroam__Telemetry	 d1, *got;
	uint8_t			 pfk[32], k1[32], k1b[32], seen[48];
	uint8_t			 next = 0x00, chunk[12];
	uint8_t			*pt;

	(void)state;
	qrand_set_source(counter_source, &next);
	m3_example(&m3, pfk, k1);
	qrand_set_source(NULL, NULL);
	telemetry_example(&d1);

	assert_int_equal(m3.cek_nonce.len, 12);
	assert_int_equal(m3.g_nonce.len, 12);
	assert_int_equal(m3.cek1.len, 48);
	assert_int_equal(m3.g1.len,
	    qroam__telemetry__get_packed_size(&d1) + 16);
	/* Both nonces come from the random source, and they differ. */
	assert_int_equal(next, 24);
	assert_memory_not_equal(m3.cek_nonce.data, m3.g_nonce.data, 12);
	fill_bytes(chunk, 12, 0);
	assert_true(memcmp(m3.cek_nonce.data, chunk, 12) == 0 ||
	    memcmp(m3.g_nonce.data, chunk, 12) == 0);
	fill_bytes(chunk, 12, 12);
	assert_true(memcmp(m3.cek_nonce.data, chunk, 12) == 0 ||
	    memcmp(m3.g_nonce.data, chunk, 12) == 0);

	/* The literal AADs of PROTOCOL section 6, F4 steps 1 and 2. */
	assert_int_equal(crypto_aead_open(pfk, m3.cek_nonce.data,
	    "qroam/1|M3-CEK|" VID "|" TSP, m3.cek1.data, m3.cek1.len, seen), 0);
	assert_memory_equal(seen, k1, 32);
	pt = malloc(m3.g1.len);
	assert_non_null(pt);
	assert_int_equal(crypto_aead_open(k1, m3.g_nonce.data,
	    "qroam/1|M3-DATA|" VID "|" TSP, m3.g1.data, m3.g1.len, pt), 0);
	got = qroam__telemetry__unpack(NULL, m3.g1.len - 16, pt);
	assert_non_null(got);
	assert_int_equal(got->unix_ms, d1.unix_ms);
	qroam__telemetry__free_unpacked(got, NULL);
	free(pt);

	memset(k1b, 0, sizeof(k1b));
	assert_int_equal(msg_m3_open(&m3, TSP, pfk, k1b, &got), 0);
	assert_memory_equal(k1b, k1, 32);
	assert_int_equal(got->unix_ms, d1.unix_ms);
	assert_true(got->lat == d1.lat && got->lon == d1.lon);
	assert_true(got->speed == d1.speed && got->heading == d1.heading);
	assert_true(got->has_fuel && got->fuel == d1.fuel);
	assert_false(got->has_odometer);
	qroam__telemetry__free_unpacked(got, NULL);

	msg_m3_clear(&m3);
	assert_null(m3.cek1.data);
	assert_null(m3.g1.data);
	assert_int_equal(m3.cek1.len, 0);
	assert_string_equal(m3.vehicle_id, VID);
}

/* msg_m3_open of m3 fails and leaves k1 zeroed. */
static void
assert_m3_refused(const Qroam__M3 *m3, const char *tsp, const uint8_t pfk[32])
{
	Qroam__Telemetry	*got = NULL;
	uint8_t			 k1[32];

	memset(k1, 0xaa, sizeof(k1));
	assert_int_equal(msg_m3_open(m3, tsp, pfk, k1, &got), -1);
	assert_true(tu_all_zero(k1, sizeof(k1)));
	assert_null(got);
}

static void
test_m3_tamper(void **state)
{
	Qroam__M3		 m3, bad;
	Qroam__Telemetry	*got;
	uint8_t			 pfk[32], k1[32], pfk2[32];
	size_t			 i;

	(void)state;
	m3_example(&m3, pfk, k1);

	for (i = 0; i < m3.cek1.len; i += 7) {
		m3.cek1.data[i] ^= 0x01;
		assert_m3_refused(&m3, TSP, pfk);
		m3.cek1.data[i] ^= 0x01;
	}
	for (i = 0; i < m3.g1.len; i += 5) {
		m3.g1.data[i] ^= 0x80;
		assert_m3_refused(&m3, TSP, pfk);
		m3.g1.data[i] ^= 0x80;
	}
	m3.cek_nonce.data[0] ^= 1;
	assert_m3_refused(&m3, TSP, pfk);
	m3.cek_nonce.data[0] ^= 1;
	m3.g_nonce.data[11] ^= 1;
	assert_m3_refused(&m3, TSP, pfk);
	m3.g_nonce.data[11] ^= 1;

	/* Bound to one TSP, one vehicle and one chip key. */
	assert_m3_refused(&m3, "tsp-b", pfk);
	memcpy(pfk2, pfk, sizeof(pfk2));
	pfk2[31] ^= 0x01;
	assert_m3_refused(&m3, TSP, pfk2);
	bad = m3;
	bad.vehicle_id = (char *)"1HGCM82633A004353";
	assert_m3_refused(&bad, TSP, pfk);

	/* Wrong sizes are refused before any decryption. */
	bad = m3;
	bad.cek_nonce.len = 11;
	assert_m3_refused(&bad, TSP, pfk);
	bad = m3;
	bad.g_nonce.len = 13;
	assert_m3_refused(&bad, TSP, pfk);
	bad = m3;
	bad.cek1.len = 47;
	assert_m3_refused(&bad, TSP, pfk);
	bad = m3;
	bad.g1.len = 15;
	assert_m3_refused(&bad, TSP, pfk);
	bad = m3;
	bad.cek_nonce = m3.g_nonce;
	bad.g_nonce = m3.cek_nonce;
	assert_m3_refused(&bad, TSP, pfk);
	bad = m3;
	bad.vehicle_id = NULL;
	assert_m3_refused(&bad, TSP, pfk);

	/* Untouched, it still opens. */
	memset(k1, 0, sizeof(k1));
	assert_int_equal(msg_m3_open(&m3, TSP, pfk, k1, &got), 0);
	qroam__telemetry__free_unpacked(got, NULL);
	msg_m3_clear(&m3);
}

/* G1 that opens under K1 but holds no Telemetry is refused too. */
static void
test_m3_bad_data(void **state)
{
	Qroam__M3		 m3;
	Qroam__Telemetry	 d1;
	uint8_t			 pfk[32], k1[32];
	const uint8_t		 junk[4] = { 0xff, 0xff, 0xff, 0xff };

	(void)state;
	m3_example(&m3, pfk, k1);
	free(m3.g1.data);
	m3.g1.len = sizeof(junk) + 16;
	m3.g1.data = malloc(m3.g1.len);
	assert_non_null(m3.g1.data);
	assert_int_equal(crypto_aead_seal(k1, m3.g_nonce.data,
	    "qroam/1|M3-DATA|" VID "|" TSP, junk, sizeof(junk), m3.g1.data), 0);
	assert_m3_refused(&m3, TSP, pfk);
	msg_m3_clear(&m3);

	/* Seal refuses what it cannot bind: no vehicle, separator in ids. */
	telemetry_example(&d1);
	qroam__m3__init(&m3);
	assert_int_equal(msg_m3_seal(&m3, TSP, pfk, k1, &d1), -1);
	m3.vehicle_id = (char *)VID;
	assert_int_equal(msg_m3_seal(&m3, "a|b", pfk, k1, &d1), -1);
	assert_null(m3.cek1.data);
	assert_null(m3.g1.data);
}

/* A Telemetry SessionInner sealed vehicle->cloud with seq. */
static void
session_example(Qroam__SessionMsg *sm, const uint8_t k1[32], uint64_t seq)
{
	Qroam__SessionInner	 in = QROAM__SESSION_INNER__INIT;
	Qroam__Telemetry	 t;

	telemetry_example(&t);
	in.body_case = QROAM__SESSION_INNER__BODY_TELEMETRY;
	in.telemetry = &t;
	qroam__session_msg__init(sm);
	assert_int_equal(msg_session_seal(k1, VID, TSP, MSG_DIR_V2C, seq, &in,
	    sm), 0);
}

static void
test_session_roundtrip(void **state)
{
	Qroam__SessionMsg	 sm;
	Qroam__SessionInner	*got;
	uint8_t			 k1[32], nonce[12], *pt;
	const uint64_t		 seq = 1234567890123ULL;

	(void)state;
	fill_bytes(k1, sizeof(k1), 0x33);
	session_example(&sm, k1, seq);
	assert_string_equal(sm.vehicle_id, VID);
	assert_int_equal(sm.seq, seq);
	assert_true(sm.ct.len > 16);

	/* Nonce direction||seq and AAD qroam/1|DATA|vid|tsp|seq, literally. */
	memcpy(nonce, "\x00\x00\x00\x01\x00\x00\x01\x1f\x71\xfb\x04\xcb", 12);
	pt = malloc(sm.ct.len);
	assert_non_null(pt);
	assert_int_equal(crypto_aead_open(k1, nonce,
	    "qroam/1|DATA|" VID "|" TSP "|1234567890123", sm.ct.data,
	    sm.ct.len, pt), 0);
	free(pt);

	got = msg_session_open(k1, TSP, MSG_DIR_V2C, &sm);
	assert_non_null(got);
	assert_int_equal(got->body_case, QROAM__SESSION_INNER__BODY_TELEMETRY);
	assert_int_equal(got->telemetry->unix_ms, 1700000000123ULL);
	assert_true(got->telemetry->lat == 30.05);
	qroam__session_inner__free_unpacked(got, NULL);
	free(sm.ct.data);
}

static void
test_session_refused(void **state)
{
	Qroam__SessionMsg	 sm, bad;
	Qroam__SessionInner	*got;
	uint8_t			 k1[32], k2[32];

	(void)state;
	fill_bytes(k1, sizeof(k1), 0x33);
	session_example(&sm, k1, 5);

	/* Reflected back as cloud->vehicle traffic. */
	assert_null(msg_session_open(k1, TSP, MSG_DIR_C2V, &sm));
	/* Replayed under another sequence number. */
	bad = sm;
	bad.seq = 6;
	assert_null(msg_session_open(k1, TSP, MSG_DIR_V2C, &bad));
	bad.seq = 4;
	assert_null(msg_session_open(k1, TSP, MSG_DIR_V2C, &bad));
	bad.seq = 0;
	assert_null(msg_session_open(k1, TSP, MSG_DIR_V2C, &bad));
	/* Another TSP, vehicle or key. */
	assert_null(msg_session_open(k1, "tsp-b", MSG_DIR_V2C, &sm));
	bad = sm;
	bad.vehicle_id = (char *)"1HGCM82633A004353";
	assert_null(msg_session_open(k1, TSP, MSG_DIR_V2C, &bad));
	memcpy(k2, k1, sizeof(k2));
	k2[0] ^= 1;
	assert_null(msg_session_open(k2, TSP, MSG_DIR_V2C, &sm));
	/* Tampered or truncated ciphertext, bad direction values. */
	sm.ct.data[0] ^= 1;
	assert_null(msg_session_open(k1, TSP, MSG_DIR_V2C, &sm));
	sm.ct.data[0] ^= 1;
	bad = sm;
	bad.ct.len = 15;
	assert_null(msg_session_open(k1, TSP, MSG_DIR_V2C, &bad));
	bad.ct.len = sm.ct.len - 1;
	assert_null(msg_session_open(k1, TSP, MSG_DIR_V2C, &bad));
	assert_null(msg_session_open(k1, TSP, 3, &sm));
	assert_null(msg_session_open(k1, TSP, 0, &sm));

	got = msg_session_open(k1, TSP, MSG_DIR_V2C, &sm);
	assert_non_null(got);
	qroam__session_inner__free_unpacked(got, NULL);
	free(sm.ct.data);
}

static void
test_session_seal_checks(void **state)
{
	Qroam__SessionInner	 empty = QROAM__SESSION_INNER__INIT;
	Qroam__ServiceResponse	 resp = QROAM__SERVICE_RESPONSE__INIT;
	Qroam__SessionInner	 in = QROAM__SESSION_INNER__INIT;
	Qroam__SessionMsg	 sm;
	Qroam__SessionInner	*got;
	uint8_t			 k1[32];

	(void)state;
	fill_bytes(k1, sizeof(k1), 0x50);
	resp.ack_seq = 9;
	resp.region = (char *)TSP;
	in.body_case = QROAM__SESSION_INNER__BODY_RESPONSE;
	in.response = &resp;
	qroam__session_msg__init(&sm);
	assert_int_equal(msg_session_seal(k1, VID, TSP, MSG_DIR_C2V, 0, &in,
	    &sm), -1);
	assert_int_equal(msg_session_seal(k1, VID, TSP, 7, 1, &in, &sm), -1);
	assert_int_equal(msg_session_seal(k1, "a|b", TSP, MSG_DIR_C2V, 1, &in,
	    &sm), -1);
	assert_null(sm.ct.data);

	assert_int_equal(msg_session_seal(k1, VID, TSP, MSG_DIR_C2V, 1, &in,
	    &sm), 0);
	got = msg_session_open(k1, TSP, MSG_DIR_C2V, &sm);
	assert_non_null(got);
	assert_int_equal(got->body_case, QROAM__SESSION_INNER__BODY_RESPONSE);
	assert_int_equal(got->response->ack_seq, 9);
	assert_string_equal(got->response->region, TSP);
	qroam__session_inner__free_unpacked(got, NULL);
	free(sm.ct.data);

	/* An inner message without a body is never accepted. */
	qroam__session_msg__init(&sm);
	assert_int_equal(msg_session_seal(k1, VID, TSP, MSG_DIR_C2V, 2, &empty,
	    &sm), 0);
	assert_null(msg_session_open(k1, TSP, MSG_DIR_C2V, &sm));
	free(sm.ct.data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aad),
		cmocka_unit_test(test_auth_text),
		cmocka_unit_test(test_session_nonce),
		cmocka_unit_test(test_status_name),
		cmocka_unit_test(test_m4_roundtrip),
		cmocka_unit_test(test_m4_bad_inner),
		cmocka_unit_test(test_m3_roundtrip),
		cmocka_unit_test(test_m3_tamper),
		cmocka_unit_test(test_m3_bad_data),
		cmocka_unit_test(test_session_roundtrip),
		cmocka_unit_test(test_session_refused),
		cmocka_unit_test(test_session_seal_checks),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
