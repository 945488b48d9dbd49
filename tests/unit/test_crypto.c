/*
 * Unit tests of the crypto suite: SHA-256 and AES-256-GCM known answers,
 * AEAD tampering, the reusable AEAD context against the one-shot calls,
 * RSA-OAEP and RSA-PSS parameters checked against independently
 * configured OpenSSL contexts, DER round trips and hex.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto.h"

#include "testutil.h"

static EVP_PKEY	*key_a, *key_b;

static int
group_setup(void **state)
{
	(void)state;
	key_a = crypto_rsa_generate(2048);
	key_b = crypto_rsa_generate(2048);
	return key_a != NULL && key_b != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key_a);
	EVP_PKEY_free(key_b);
	return 0;
}

/* Decode a hex literal of the test into buf; returns its length. */
static size_t
unhex(const char *s, uint8_t *buf)
{
	size_t	 n = strlen(s) / 2;

	assert_int_equal(crypto_unhex(s, buf, n), 0);
	return n;
}

/* A public-only copy of k, as a vehicle holds it. */
static EVP_PKEY *
public_copy(EVP_PKEY *k)
{
	EVP_PKEY	*pub;
	uint8_t		*der;
	size_t		 len;

	assert_int_equal(crypto_pub_to_der(k, &der, &len), 0);
	pub = crypto_pub_from_der(der, len);
	assert_non_null(pub);
	free(der);
	return pub;
}

static void
test_sha256_known(void **state)
{
	uint8_t	 h[CRYPTO_HASHLEN];
	char	 hex[2 * CRYPTO_HASHLEN + 1];

	(void)state;
	crypto_sha256("abc", 3, h);
	crypto_hex(h, sizeof(h), hex);
	assert_string_equal(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	crypto_sha256(NULL, 0, h);
	crypto_hex(h, sizeof(h), hex);
	assert_string_equal(hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void
test_hex(void **state)
{
	const uint8_t	 in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	uint8_t		 out[6], keep[6];
	char		 hex[13];

	(void)state;
	crypto_hex(in, sizeof(in), hex);
	assert_string_equal(hex, "00017f80abff");
	crypto_hex(in, 0, hex);
	assert_string_equal(hex, "");

	assert_int_equal(crypto_unhex("00017f80abff", out, 6), 0);
	assert_memory_equal(out, in, 6);
	assert_int_equal(crypto_unhex("00017F80ABFF", out, 6), 0);
	assert_memory_equal(out, in, 6);

	/* Bad input is refused and writes nothing. */
	memset(out, 0x5a, sizeof(out));
	memcpy(keep, out, sizeof(keep));
	assert_int_equal(crypto_unhex("00017f80abf", out, 6), -1);
	assert_int_equal(crypto_unhex("00017f80abff0", out, 6), -1);
	assert_int_equal(crypto_unhex("00017f80abfg", out, 6), -1);
	assert_int_equal(crypto_unhex(" 0017f80abff", out, 6), -1);
	assert_int_equal(crypto_unhex("", out, 6), -1);
	assert_int_equal(crypto_unhex(NULL, out, 6), -1);
	assert_memory_equal(out, keep, sizeof(out));
	assert_int_equal(crypto_unhex("", out, 0), 0);
}

static void
test_wipe(void **state)
{
	uint8_t	 buf[40];

	(void)state;
	memset(buf, 0xa5, sizeof(buf));
	crypto_wipe(buf + 4, 32);
	assert_true(tu_all_zero(buf + 4, 32));
	assert_int_equal(buf[3], 0xa5);
	assert_int_equal(buf[36], 0xa5);
	crypto_wipe(NULL, 10);
}

/* McGrew-Viega GCM test cases 13 and 14 (AES-256, zero key and IV). */
static void
test_aead_known_answer(void **state)
{
	uint8_t	 key[32] = { 0 }, nonce[12] = { 0 }, pt[16] = { 0 };
	uint8_t	 out[32], want[32], back[16];

	(void)state;
	assert_int_equal(crypto_aead_seal(key, nonce, NULL, NULL, 0, out), 0);
	unhex("530f8afbc74536b9a963b4f1c4cb738b", want);
	assert_memory_equal(out, want, 16);
	assert_int_equal(crypto_aead_open(key, nonce, "", out, 16, back), 0);

	assert_int_equal(crypto_aead_seal(key, nonce, "", pt, 16, out), 0);
	unhex("cea7403d4d606b6e074ec5d3baf39d18"
	    "d0d1c8a799996bf0265b98b5d48ab919", want);
	assert_memory_equal(out, want, 32);
	assert_int_equal(crypto_aead_open(key, nonce, NULL, out, 32, back), 0);
	assert_memory_equal(back, pt, 16);
}

static void
test_aead_roundtrip(void **state)
{
	uint8_t		 key[32], nonce[12], pt[300], ct[316], back[300];
	const size_t	 lens[] = { 0, 1, 15, 16, 17, 300 };
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(0xc0 + i);
	for (i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)i;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memset(ct, 0, sizeof(ct));
		assert_int_equal(crypto_aead_seal(key, nonce, "qroam/1|T|a",
		    pt, lens[i], ct), 0);
		if (lens[i] >= 16)
			assert_memory_not_equal(ct, pt, 16);
		memset(back, 0xee, sizeof(back));
		assert_int_equal(crypto_aead_open(key, nonce, "qroam/1|T|a",
		    ct, lens[i] + CRYPTO_TAGLEN, back), 0);
		assert_memory_equal(back, pt, lens[i]);
	}
}

static void
test_aead_tamper(void **state)
{
	uint8_t		 key[32], key2[32], nonce[12], nonce2[12];
	uint8_t		 pt[40], ct[56], bad[56], back[40];
	size_t		 i;

	(void)state;
	memset(key, 0x11, sizeof(key));
	memset(nonce, 0x22, sizeof(nonce));
	memset(pt, 0x33, sizeof(pt));
	assert_int_equal(crypto_aead_seal(key, nonce, "qroam/1|X|v|t", pt,
	    sizeof(pt), ct), 0);

	/* Every single-bit change of ciphertext or tag is refused. */
	for (i = 0; i < sizeof(ct); i++) {
		memcpy(bad, ct, sizeof(ct));
		bad[i] ^= 0x01;
		memset(back, 0x77, sizeof(back));
		assert_int_equal(crypto_aead_open(key, nonce, "qroam/1|X|v|t",
		    bad, sizeof(bad), back), -1);
		/* No unauthenticated plaintext is left behind. */
		assert_true(tu_all_zero(back, sizeof(back)));
		assert_int_equal(ERR_peek_error(), 0);
	}
	assert_int_equal(crypto_aead_open(key, nonce, "qroam/1|X|v|u", ct,
	    sizeof(ct), back), -1);
	assert_int_equal(crypto_aead_open(key, nonce, "qroam/1|X|v|t|", ct,
	    sizeof(ct), back), -1);
	assert_int_equal(crypto_aead_open(key, nonce, NULL, ct, sizeof(ct),
	    back), -1);
	memcpy(nonce2, nonce, sizeof(nonce));
	nonce2[11] ^= 0x80;
	assert_int_equal(crypto_aead_open(key, nonce2, "qroam/1|X|v|t", ct,
	    sizeof(ct), back), -1);
	memcpy(key2, key, sizeof(key));
	key2[0] ^= 0x01;
	assert_int_equal(crypto_aead_open(key2, nonce, "qroam/1|X|v|t", ct,
	    sizeof(ct), back), -1);
	/* Truncated, too short for a tag. */
	assert_int_equal(crypto_aead_open(key, nonce, "qroam/1|X|v|t", ct,
	    sizeof(ct) - 1, back), -1);
	assert_int_equal(crypto_aead_open(key, nonce, "qroam/1|X|v|t", ct,
	    CRYPTO_TAGLEN - 1, back), -1);
	assert_int_equal(crypto_aead_open(key, nonce, "qroam/1|X|v|t", NULL,
	    sizeof(ct), back), -1);
	/* The untouched message still opens. */
	assert_int_equal(crypto_aead_open(key, nonce, "qroam/1|X|v|t", ct,
	    sizeof(ct), back), 0);
	assert_memory_equal(back, pt, sizeof(pt));
}

/*
 * A context kept across messages gives the ciphertexts of the one-shot
 * functions, for every length, nonce and AAD, in both directions and with
 * seal and open interleaved; a refused message does not spoil the next.
 */
static void
test_aead_context(void **state)
{
	struct crypto_aead	*ca;
	uint8_t			 key[32], nonce[12], pt[300];
	uint8_t			 ct1[316], ct2[316], back[300];
	const size_t		 lens[] = { 0, 1, 15, 16, 17, 64, 300 };
	const char		*aads[] = { "", "qroam/1|DATA|v|t|1",
				    "qroam/1|DATA|LSVAU2180N2000001|tsp-a|"
				    "18446744073709551615" };
	size_t			 i, j, n;

	(void)state;
	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 13 + 5);
	for (i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(i ^ 0x5a);
	assert_non_null(ca = crypto_aead_new(key));
	for (n = 0; n < 3; n++) {
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			for (j = 0; j < sizeof(nonce); j++)
				nonce[j] = (uint8_t)(n * 31 + i * 7 + j);
			assert_int_equal(crypto_aead_seal(key, nonce, aads[n],
			    pt, lens[i], ct1), 0);
			memset(ct2, 0, sizeof(ct2));
			assert_int_equal(crypto_aead_seal_with(ca, nonce,
			    aads[n], strlen(aads[n]), pt, lens[i], ct2), 0);
			assert_memory_equal(ct1, ct2, lens[i] + CRYPTO_TAGLEN);
			memset(back, 0xee, sizeof(back));
			assert_int_equal(crypto_aead_open_with(ca, nonce,
			    aads[n], strlen(aads[n]), ct1,
			    lens[i] + CRYPTO_TAGLEN, back), 0);
			assert_memory_equal(back, pt, lens[i]);
			/* A forged tag is refused, plaintext wiped... */
			ct2[lens[i]] ^= 0x01;
			memset(back, 0x77, sizeof(back));
			assert_int_equal(crypto_aead_open_with(ca, nonce,
			    aads[n], strlen(aads[n]), ct2,
			    lens[i] + CRYPTO_TAGLEN, back), -1);
			assert_true(tu_all_zero(back, lens[i]));
			assert_int_equal(ERR_peek_error(), 0);
			/* ...a wrong AAD too, and the context goes on. */
			assert_int_equal(crypto_aead_open_with(ca, nonce,
			    "x", 1, ct1, lens[i] + CRYPTO_TAGLEN, back), -1);
			assert_int_equal(crypto_aead_open(key, nonce, aads[n],
			    ct1, lens[i] + CRYPTO_TAGLEN, back), 0);
			assert_memory_equal(back, pt, lens[i]);
		}
	}
	/* Sizes the one-shot functions refuse are refused here as well. */
	assert_int_equal(crypto_aead_open_with(ca, nonce, "", 0, ct1,
	    CRYPTO_TAGLEN - 1, back), -1);
	assert_int_equal(crypto_aead_open_with(ca, nonce, "", 0, NULL,
	    CRYPTO_TAGLEN, back), -1);
	assert_int_equal(crypto_aead_seal_with(NULL, nonce, "", 0, pt, 1,
	    ct1), -1);
	crypto_aead_free(ca);
	crypto_aead_free(NULL);
}

static void
test_rsa_generate(void **state)
{
	EVP_PKEY	*k;

	(void)state;
	assert_null(crypto_rsa_generate(1024));
	assert_null(crypto_rsa_generate(4096));
	assert_null(crypto_rsa_generate(0));
	assert_true(EVP_PKEY_is_a(key_a, "RSA"));
	assert_int_equal(EVP_PKEY_get_bits(key_a), 2048);
	assert_int_not_equal(EVP_PKEY_eq(key_a, key_b), 1);
	k = crypto_rsa_generate(3072);
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_bits(k), 3072);
	EVP_PKEY_free(k);
}

static void
test_der_roundtrip(void **state)
{
	EVP_PKEY		*k;
	PKCS8_PRIV_KEY_INFO	*p8;
	const unsigned char	*p;
	uint8_t			*der, *pder, *big;
	size_t			 len, plen;

	(void)state;
	assert_int_equal(crypto_pub_to_der(key_a, &der, &len), 0);
	assert_true(len > 256 && der[0] == 0x30);
	k = crypto_pub_from_der(der, len);
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_eq(k, key_a), 1);
	assert_int_not_equal(EVP_PKEY_eq(k, key_b), 1);
	EVP_PKEY_free(k);

	assert_int_equal(crypto_priv_to_der(key_a, &pder, &plen), 0);
	/* It is PKCS#8 PrivateKeyInfo. */
	p = pder;
	p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)plen);
	assert_non_null(p8);
	assert_ptr_equal(p, pder + plen);
	PKCS8_PRIV_KEY_INFO_free(p8);
	k = crypto_priv_from_der(pder, plen);
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_eq(k, key_a), 1);
	EVP_PKEY_free(k);

	/* Trailing bytes, truncation, emptiness and the wrong kind fail. */
	big = malloc(plen + 1);
	assert_non_null(big);
	memcpy(big, pder, plen);
	big[plen] = 0;
	assert_null(crypto_priv_from_der(big, plen + 1));
	assert_null(crypto_priv_from_der(pder, plen - 1));
	assert_null(crypto_priv_from_der(pder, 0));
	assert_null(crypto_priv_from_der(NULL, plen));
	assert_null(crypto_priv_from_der(der, len));
	memcpy(big, der, len);
	big[len] = 0;
	assert_null(crypto_pub_from_der(big, len + 1));
	assert_null(crypto_pub_from_der(der, len - 1));
	assert_null(crypto_pub_from_der(der, 0));
	assert_null(crypto_pub_from_der(pder, plen));
	assert_int_equal(ERR_peek_error(), 0);
	crypto_wipe(pder, plen);
	free(pder);
	free(der);
	free(big);

	/* A public-only key has no private encoding. */
	k = public_copy(key_a);
	assert_int_equal(crypto_priv_to_der(k, &pder, &plen), -1);
	EVP_PKEY_free(k);
}

/* OpenSSL itself decodes der as a public (priv = 0) or private key. */
static int
openssl_decodes(const uint8_t *der, size_t len, int priv)
{
	const unsigned char	*p = der;
	EVP_PKEY		*k;

	if (priv)
		k = d2i_AutoPrivateKey(NULL, &p, (long)len);
	else
		k = d2i_PUBKEY(NULL, &p, (long)len);
	EVP_PKEY_free(k);
	return k != NULL;
}

/* OpenSSL encodes k both ways, and the suite refuses both encodings. */
static void
assert_der_refused(EVP_PKEY *k)
{
	uint8_t	*der;
	size_t	 len;

	assert_non_null(k);
	assert_int_equal(crypto_pub_to_der(k, &der, &len), 0);
	assert_true(openssl_decodes(der, len, 0));
	assert_null(crypto_pub_from_der(der, len));
	free(der);
	assert_int_equal(crypto_priv_to_der(k, &der, &len), 0);
	assert_true(openssl_decodes(der, len, 1));
	assert_null(crypto_priv_from_der(der, len));
	crypto_wipe(der, len);
	free(der);
	EVP_PKEY_free(k);
}

/* Well-formed keys outside the suite (EC, short RSA) are refused. */
static void
test_der_wrong_keys(void **state)
{
	(void)state;
	assert_der_refused(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	assert_der_refused(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024));
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_oaep_roundtrip(void **state)
{
	EVP_PKEY	*pub;
	const char	 msg[] = "chip_id and tsp_id";
	uint8_t		*ct, *pt, big[191];
	size_t		 ctlen, ptlen;

	(void)state;
	pub = public_copy(key_a);
	assert_int_equal(crypto_oaep_encrypt(pub, msg, sizeof(msg), &ct,
	    &ctlen), 0);
	assert_int_equal(ctlen, 256);
	assert_int_equal(crypto_oaep_decrypt(key_a, ct, ctlen, &pt, &ptlen), 0);
	assert_int_equal(ptlen, sizeof(msg));
	assert_memory_equal(pt, msg, sizeof(msg));
	free(pt);

	/* Wrong key, public-only key, tampering and truncation fail. */
	assert_int_equal(crypto_oaep_decrypt(key_b, ct, ctlen, &pt, &ptlen),
	    -1);
	assert_int_equal(crypto_oaep_decrypt(pub, ct, ctlen, &pt, &ptlen), -1);
	ct[100] ^= 0x04;
	assert_int_equal(crypto_oaep_decrypt(key_a, ct, ctlen, &pt, &ptlen),
	    -1);
	ct[100] ^= 0x04;
	assert_int_equal(crypto_oaep_decrypt(key_a, ct, ctlen - 1, &pt,
	    &ptlen), -1);
	assert_int_equal(ERR_peek_error(), 0);
	free(ct);

	/* Two encryptions of one message differ (OAEP is randomised). */
	assert_int_equal(crypto_oaep_encrypt(pub, msg, sizeof(msg), &ct,
	    &ctlen), 0);
	assert_int_equal(crypto_oaep_encrypt(pub, msg, sizeof(msg), &pt,
	    &ptlen), 0);
	assert_memory_not_equal(ct, pt, ctlen);
	free(ct);
	free(pt);

	/* 2048-bit OAEP-SHA256 holds at most 256 - 66 = 190 bytes. */
	memset(big, 1, sizeof(big));
	assert_int_equal(crypto_oaep_encrypt(pub, big, 190, &ct, &ctlen), 0);
	free(ct);
	assert_int_equal(crypto_oaep_encrypt(pub, big, 191, &ct, &ctlen), -1);
	EVP_PKEY_free(pub);
}

/* Encrypt with OAEP and the given digests through a plain EVP context. */
static size_t
oaep_encrypt_with(EVP_PKEY *pub, const EVP_MD *md, const EVP_MD *mgf1,
    const void *pt, size_t ptlen, uint8_t *ct)
{
	EVP_PKEY_CTX	*ctx;
	size_t		 len = 512;

	ctx = EVP_PKEY_CTX_new(pub, NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx,
	    RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf1), 1);
	assert_int_equal(EVP_PKEY_encrypt(ctx, ct, &len, pt, ptlen), 1);
	EVP_PKEY_CTX_free(ctx);
	return len;
}

/* OAEP uses SHA-256 for both the label hash and MGF1. */
static void
test_oaep_parameters(void **state)
{
	uint8_t		 ct[512], *pt;
	size_t		 ctlen, ptlen;

	(void)state;
	ctlen = oaep_encrypt_with(key_a, EVP_sha256(), EVP_sha256(), "abc", 3,
	    ct);
	assert_int_equal(crypto_oaep_decrypt(key_a, ct, ctlen, &pt, &ptlen), 0);
	assert_int_equal(ptlen, 3);
	assert_memory_equal(pt, "abc", 3);
	free(pt);
	ctlen = oaep_encrypt_with(key_a, EVP_sha1(), EVP_sha1(), "abc", 3, ct);
	assert_int_equal(crypto_oaep_decrypt(key_a, ct, ctlen, &pt, &ptlen),
	    -1);
	ctlen = oaep_encrypt_with(key_a, EVP_sha256(), EVP_sha1(), "abc", 3,
	    ct);
	assert_int_equal(crypto_oaep_decrypt(key_a, ct, ctlen, &pt, &ptlen),
	    -1);
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_pss_roundtrip(void **state)
{
	EVP_PKEY	*pub;
	const char	 msg[] = "qroam/1|AUTH-OK|VIN|tsp-a|00";
	uint8_t		*sig, *sig2;
	size_t		 siglen, siglen2;

	(void)state;
	pub = public_copy(key_a);
	assert_int_equal(crypto_pss_sign(key_a, msg, strlen(msg), &sig,
	    &siglen), 0);
	assert_int_equal(siglen, 256);
	assert_int_equal(crypto_pss_verify(pub, msg, strlen(msg), sig, siglen),
	    0);
	assert_int_equal(crypto_pss_verify(key_a, msg, strlen(msg), sig,
	    siglen), 0);
	/* Randomised salt: a second signature differs but verifies. */
	assert_int_equal(crypto_pss_sign(key_a, msg, strlen(msg), &sig2,
	    &siglen2), 0);
	assert_memory_not_equal(sig, sig2, siglen);
	assert_int_equal(crypto_pss_verify(pub, msg, strlen(msg), sig2,
	    siglen2), 0);

	assert_int_equal(crypto_pss_verify(pub, msg, strlen(msg) - 1, sig,
	    siglen), -1);
	assert_int_equal(crypto_pss_verify(key_b, msg, strlen(msg), sig,
	    siglen), -1);
	sig[10] ^= 0x01;
	assert_int_equal(crypto_pss_verify(pub, msg, strlen(msg), sig, siglen),
	    -1);
	sig[10] ^= 0x01;
	assert_int_equal(crypto_pss_verify(pub, msg, strlen(msg), sig,
	    siglen - 1), -1);
	assert_int_equal(crypto_pss_verify(pub, msg, strlen(msg), NULL, 0), -1);
	/* A public key cannot sign. */
	assert_int_equal(crypto_pss_sign(pub, msg, strlen(msg), &sig2,
	    &siglen2), -1);
	assert_int_equal(ERR_peek_error(), 0);
	free(sig);
	free(sig2);
	EVP_PKEY_free(pub);
}

/* Verify through a plain EVP context: PSS-SHA256 or PKCS#1 v1.5. */
static int
verify_with(EVP_PKEY *pub, int pad, int saltlen, const char *msg,
    const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX	*mctx;
	EVP_PKEY_CTX	*pctx;
	int		 rc;

	mctx = EVP_MD_CTX_new();
	assert_non_null(mctx);
	assert_int_equal(EVP_DigestVerifyInit(mctx, &pctx, EVP_sha256(), NULL,
	    pub), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, pad), 1);
	if (pad == RSA_PKCS1_PSS_PADDING)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
		    saltlen), 1);
	rc = EVP_DigestVerify(mctx, sig, siglen, (const uint8_t *)msg,
	    strlen(msg));
	EVP_MD_CTX_free(mctx);
	ERR_clear_error();
	return rc;
}

/* Sign through a plain EVP context with PSS-SHA256 and a given salt length. */
static size_t
pss_sign_with(EVP_PKEY *priv, int saltlen, const char *msg, uint8_t *sig)
{
	EVP_MD_CTX	*mctx;
	EVP_PKEY_CTX	*pctx;
	size_t		 len = 512;

	mctx = EVP_MD_CTX_new();
	assert_non_null(mctx);
	assert_int_equal(EVP_DigestSignInit(mctx, &pctx, EVP_sha256(), NULL,
	    priv), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx,
	    RSA_PKCS1_PSS_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen), 1);
	assert_int_equal(EVP_DigestSign(mctx, sig, &len, (const uint8_t *)msg,
	    strlen(msg)), 1);
	EVP_MD_CTX_free(mctx);
	return len;
}

/* Signatures are PSS-SHA256 with a 32-byte salt, and only those verify. */
static void
test_pss_parameters(void **state)
{
	const char	*msg = "signed text";
	uint8_t		*sig, other[512];
	size_t		 siglen, olen;

	(void)state;
	assert_int_equal(crypto_pss_sign(key_a, msg, strlen(msg), &sig,
	    &siglen), 0);
	assert_int_equal(verify_with(key_a, RSA_PKCS1_PSS_PADDING, 32, msg,
	    sig, siglen), 1);
	assert_int_not_equal(verify_with(key_a, RSA_PKCS1_PSS_PADDING, 20, msg,
	    sig, siglen), 1);
	assert_int_not_equal(verify_with(key_a, RSA_PKCS1_PADDING, 0, msg,
	    sig, siglen), 1);
	free(sig);

	olen = pss_sign_with(key_a, 32, msg, other);
	assert_int_equal(crypto_pss_verify(key_a, msg, strlen(msg), other,
	    olen), 0);
	olen = pss_sign_with(key_a, 20, msg, other);
	assert_int_equal(crypto_pss_verify(key_a, msg, strlen(msg), other,
	    olen), -1);
	assert_int_equal(ERR_peek_error(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_known),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_aead_known_answer),
		cmocka_unit_test(test_aead_roundtrip),
		cmocka_unit_test(test_aead_tamper),
		cmocka_unit_test(test_aead_context),
		cmocka_unit_test(test_rsa_generate),
		cmocka_unit_test(test_der_roundtrip),
		cmocka_unit_test(test_der_wrong_keys),
		cmocka_unit_test(test_oaep_roundtrip),
		cmocka_unit_test(test_oaep_parameters),
		cmocka_unit_test(test_pss_roundtrip),
		cmocka_unit_test(test_pss_parameters),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
