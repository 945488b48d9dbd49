/*
 * The crypto suite of PROTOCOL section 4 over OpenSSL 3 EVP.  Failures
 * return -1 (or NULL) and clear OpenSSL's error queue, so that a rejected
 * input from the network never leaves stale errors for the TLS layer.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "log.h"

#define CRYPTO_PSS_SALTLEN	32
#define CRYPTO_RSA_MINBITS	2048

/* SHA-256 of fixed-size data only fails on memory exhaustion: fatal. */
void
crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_HASHLEN])
{
	if (EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) != 1)
		fatalx("SHA-256 failed");
}

void
crypto_hex(const void *data, size_t len, char *out)
{
	static const char	 digits[] = "0123456789abcdef";
	const uint8_t		*p = data;
	size_t			 i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

/* Value of one hex digit of either case, -1 if it is not one. */
static int
crypto_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The whole string is checked first, so bad input writes nothing to out. */
int
crypto_unhex(const char *s, uint8_t *out, size_t outlen)
{
	size_t	 i;

	if (s == NULL)
		return -1;
	for (i = 0; i < 2 * outlen; i++)
		if (crypto_hexval(s[i]) == -1)
			return -1;
	if (s[2 * outlen] != '\0')
		return -1;
	for (i = 0; i < outlen; i++)
		out[i] = (uint8_t)(crypto_hexval(s[2 * i]) << 4 |
		    crypto_hexval(s[2 * i + 1]));
	return 0;
}

void
crypto_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

/* Common failure exit: forget OpenSSL's queued errors. */
static int
crypto_fail(void)
{
	ERR_clear_error();
	return -1;
}

/* Set up an AES-256-GCM context for key and nonce and feed it the AAD. */
static EVP_CIPHER_CTX *
crypto_gcm_init(int enc, const uint8_t key[CRYPTO_KEYLEN],
    const uint8_t nonce[CRYPTO_NONCELEN], const char *aad)
{
	EVP_CIPHER_CTX	*ctx;
	size_t		 aadlen = aad != NULL ? strlen(aad) : 0;
	int		 outl;

	if (aadlen > INT_MAX || (ctx = EVP_CIPHER_CTX_new()) == NULL)
		return NULL;
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL,
	    enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CRYPTO_NONCELEN,
	    NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1 ||
	    (aadlen > 0 && EVP_CipherUpdate(ctx, NULL, &outl,
	    (const unsigned char *)aad, (int)aadlen) != 1)) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* ciphertext || tag under a fresh context; nothing is kept between calls. */
int
crypto_aead_seal(const uint8_t key[CRYPTO_KEYLEN],
    const uint8_t nonce[CRYPTO_NONCELEN], const char *aad,
    const void *pt, size_t ptlen, uint8_t *out)
{
	EVP_CIPHER_CTX	*ctx;
	int		 outl, finl, rc = -1;

	if (ptlen > INT_MAX - CRYPTO_TAGLEN || (ptlen > 0 && pt == NULL))
		return crypto_fail();
	if ((ctx = crypto_gcm_init(1, key, nonce, aad)) == NULL)
		return crypto_fail();
	outl = 0;
	if ((ptlen == 0 || EVP_EncryptUpdate(ctx, out, &outl, pt,
	    (int)ptlen) == 1) &&
	    EVP_EncryptFinal_ex(ctx, out + outl, &finl) == 1 &&
	    (size_t)outl + (size_t)finl == ptlen &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_TAGLEN,
	    out + ptlen) == 1)
		rc = 0;
	EVP_CIPHER_CTX_free(ctx);
	if (rc == -1) {
		crypto_wipe(out, ptlen + CRYPTO_TAGLEN);
		return crypto_fail();
	}
	return 0;
}

/* On failure nothing of the plaintext is left in out. */
int
crypto_aead_open(const uint8_t key[CRYPTO_KEYLEN],
    const uint8_t nonce[CRYPTO_NONCELEN], const char *aad,
    const uint8_t *ct, size_t ctlen, uint8_t *out)
{
	EVP_CIPHER_CTX	*ctx;
	uint8_t		 tag[CRYPTO_TAGLEN];
	size_t		 ptlen;
	int		 outl, finl, rc = -1;

	if (ct == NULL || ctlen < CRYPTO_TAGLEN || ctlen > INT_MAX)
		return crypto_fail();
	ptlen = ctlen - CRYPTO_TAGLEN;
	memcpy(tag, ct + ptlen, sizeof(tag));
	if ((ctx = crypto_gcm_init(0, key, nonce, aad)) == NULL)
		return crypto_fail();
	outl = 0;
	if ((ptlen == 0 || EVP_DecryptUpdate(ctx, out, &outl, ct,
	    (int)ptlen) == 1) &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_TAGLEN,
	    tag) == 1 &&
	    EVP_DecryptFinal_ex(ctx, out + outl, &finl) == 1 &&
	    (size_t)outl + (size_t)finl == ptlen)
		rc = 0;
	EVP_CIPHER_CTX_free(ctx);
	if (rc == -1) {
		crypto_wipe(out, ptlen);
		return crypto_fail();
	}
	return 0;
}

struct crypto_aead {
	EVP_CIPHER_CTX	*ca_ctx;
};

/* The key schedule is made here once; the nonce comes with each message. */
struct crypto_aead *
crypto_aead_new(const uint8_t key[CRYPTO_KEYLEN])
{
	struct crypto_aead	*ca;

	if ((ca = calloc(1, sizeof(*ca))) == NULL)
		return NULL;
	if ((ca->ca_ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_CipherInit_ex(ca->ca_ctx, EVP_aes_256_gcm(), NULL, NULL, NULL,
	    1) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ca->ca_ctx, EVP_CTRL_GCM_SET_IVLEN,
	    CRYPTO_NONCELEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ca->ca_ctx, NULL, NULL, key, NULL, 1) != 1) {
		crypto_aead_free(ca);
		crypto_fail();
		return NULL;
	}
	return ca;
}

/* A new key for the context: its schedule replaces the old one's. */
int
crypto_aead_rekey(struct crypto_aead *ca, const uint8_t key[CRYPTO_KEYLEN])
{
	if (EVP_CipherInit_ex(ca->ca_ctx, NULL, NULL, key, NULL, 1) != 1)
		return crypto_fail();
	return 0;
}

/* EVP_CIPHER_CTX_free clears the provider's copy of the key schedule. */
void
crypto_aead_free(struct crypto_aead *ca)
{
	if (ca == NULL)
		return;
	EVP_CIPHER_CTX_free(ca->ca_ctx);
	free(ca);
}

/* Start a message in direction enc: the nonce, then the AAD. */
static int
crypto_aead_start(struct crypto_aead *ca, int enc,
    const uint8_t nonce[CRYPTO_NONCELEN], const void *aad, size_t aadlen)
{
	int	 outl;

	if (aadlen > INT_MAX || (aadlen > 0 && aad == NULL))
		return -1;
	if (EVP_CipherInit_ex(ca->ca_ctx, NULL, NULL, NULL, nonce, enc) != 1 ||
	    (aadlen > 0 && EVP_CipherUpdate(ca->ca_ctx, NULL, &outl, aad,
	    (int)aadlen) != 1))
		return -1;
	return 0;
}

int
crypto_aead_seal_with(struct crypto_aead *ca,
    const uint8_t nonce[CRYPTO_NONCELEN], const void *aad, size_t aadlen,
    const void *pt, size_t ptlen, uint8_t *out)
{
	int	 outl = 0, finl;

	if (ca == NULL || ptlen > INT_MAX - CRYPTO_TAGLEN ||
	    (ptlen > 0 && pt == NULL))
		return crypto_fail();
	if (crypto_aead_start(ca, 1, nonce, aad, aadlen) == -1 ||
	    (ptlen > 0 && EVP_EncryptUpdate(ca->ca_ctx, out, &outl, pt,
	    (int)ptlen) != 1) ||
	    EVP_EncryptFinal_ex(ca->ca_ctx, out + outl, &finl) != 1 ||
	    (size_t)outl + (size_t)finl != ptlen ||
	    EVP_CIPHER_CTX_ctrl(ca->ca_ctx, EVP_CTRL_GCM_GET_TAG,
	    CRYPTO_TAGLEN, out + ptlen) != 1) {
		crypto_wipe(out, ptlen + CRYPTO_TAGLEN);
		return crypto_fail();
	}
	return 0;
}

/* As crypto_aead_open: on failure nothing of the plaintext is left. */
int
crypto_aead_open_with(struct crypto_aead *ca,
    const uint8_t nonce[CRYPTO_NONCELEN], const void *aad, size_t aadlen,
    const uint8_t *ct, size_t ctlen, uint8_t *out)
{
	uint8_t		 tag[CRYPTO_TAGLEN];
	size_t		 ptlen;
	int		 outl = 0, finl;

	if (ca == NULL || ct == NULL || ctlen < CRYPTO_TAGLEN ||
	    ctlen > INT_MAX)
		return crypto_fail();
	ptlen = ctlen - CRYPTO_TAGLEN;
	memcpy(tag, ct + ptlen, sizeof(tag));
	if (crypto_aead_start(ca, 0, nonce, aad, aadlen) == -1 ||
	    (ptlen > 0 && EVP_DecryptUpdate(ca->ca_ctx, out, &outl, ct,
	    (int)ptlen) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ca->ca_ctx, EVP_CTRL_GCM_SET_TAG,
	    CRYPTO_TAGLEN, tag) != 1 ||
	    EVP_DecryptFinal_ex(ca->ca_ctx, out + outl, &finl) != 1 ||
	    (size_t)outl + (size_t)finl != ptlen) {
		crypto_wipe(out, ptlen);
		return crypto_fail();
	}
	return 0;
}

/* Only the suite's sizes are generated. */
EVP_PKEY *
crypto_rsa_generate(int bits)
{
	return crypto_rsa_generate_primes(bits, 2);
}

EVP_PKEY *
crypto_rsa_generate_primes(int bits, int primes)
{
	EVP_PKEY_CTX	*ctx;
	EVP_PKEY	*pkey = NULL;

	if ((bits != 2048 && bits != 3072) || (primes != 2 && primes != 3))
		return NULL;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL) {
		crypto_fail();
		return NULL;
	}
	if (EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) != 1 ||
	    EVP_PKEY_CTX_set_rsa_keygen_primes(ctx, primes) != 1 ||
	    EVP_PKEY_generate(ctx, &pkey) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
		crypto_fail();
	}
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/* DER SubjectPublicKeyInfo into a malloc'd buffer. */
int
crypto_pub_to_der(EVP_PKEY *pkey, uint8_t **der, size_t *len)
{
	uint8_t	*buf, *p;
	int	 n;

	if (pkey == NULL || (n = i2d_PUBKEY(pkey, NULL)) <= 0)
		return crypto_fail();
	if ((buf = malloc((size_t)n)) == NULL)
		return crypto_fail();
	p = buf;
	if (i2d_PUBKEY(pkey, &p) != n) {
		free(buf);
		return crypto_fail();
	}
	*der = buf;
	*len = (size_t)n;
	return 0;
}

/* PKCS#8 PrivateKeyInfo through an OSSL_ENCODER; OpenSSL's copy is wiped. */
int
crypto_priv_to_der(EVP_PKEY *pkey, uint8_t **der, size_t *len)
{
	OSSL_ENCODER_CTX	*ectx;
	unsigned char		*data = NULL;
	size_t			 dlen = 0;
	uint8_t			*buf = NULL;

	if (pkey == NULL)
		return crypto_fail();
	ectx = OSSL_ENCODER_CTX_new_for_pkey(pkey, EVP_PKEY_KEYPAIR, "DER",
	    "PrivateKeyInfo", NULL);
	if (ectx == NULL)
		return crypto_fail();
	if (OSSL_ENCODER_CTX_get_num_encoders(ectx) > 0 &&
	    OSSL_ENCODER_to_data(ectx, &data, &dlen) == 1 && dlen > 0 &&
	    (buf = malloc(dlen)) != NULL)
		memcpy(buf, data, dlen);
	OSSL_ENCODER_CTX_free(ectx);
	if (data != NULL)
		OPENSSL_clear_free(data, dlen);
	if (buf == NULL)
		return crypto_fail();
	*der = buf;
	*len = dlen;
	return 0;
}

/* Keys of the suite are RSA of at least 2048 bits. */
static EVP_PKEY *
crypto_check_rsa(EVP_PKEY *pkey, const unsigned char *end,
    const unsigned char *want)
{
	if (pkey != NULL && end == want && EVP_PKEY_is_a(pkey, "RSA") &&
	    EVP_PKEY_get_bits(pkey) >= CRYPTO_RSA_MINBITS)
		return pkey;
	EVP_PKEY_free(pkey);
	crypto_fail();
	return NULL;
}

/* DER SubjectPublicKeyInfo of an RSA key, with no trailing bytes. */
EVP_PKEY *
crypto_pub_from_der(const uint8_t *der, size_t len)
{
	const unsigned char	*p = der;
	EVP_PKEY		*pkey;

	if (der == NULL || len == 0 || len > LONG_MAX)
		return NULL;
	pkey = d2i_PUBKEY(NULL, &p, (long)len);
	return crypto_check_rsa(pkey, p, der + len);
}

/* DER PKCS#8 (or traditional) RSA private key, with no trailing bytes. */
EVP_PKEY *
crypto_priv_from_der(const uint8_t *der, size_t len)
{
	const unsigned char	*p = der;
	EVP_PKEY		*pkey;

	if (der == NULL || len == 0 || len > LONG_MAX)
		return NULL;
	pkey = d2i_AutoPrivateKey(NULL, &p, (long)len);
	return crypto_check_rsa(pkey, p, der + len);
}

/* Context for RSA-OAEP with SHA-256, MGF1-SHA-256 and an empty label. */
static EVP_PKEY_CTX *
crypto_oaep_ctx(EVP_PKEY *pkey, int enc)
{
	EVP_PKEY_CTX	*ctx;
	OSSL_PARAM	 params[4];
	int		 rc;

	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_OAEP, 0);
	params[1] = OSSL_PARAM_construct_utf8_string(
	    OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, "SHA256", 0);
	params[2] = OSSL_PARAM_construct_utf8_string(
	    OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, "SHA256", 0);
	params[3] = OSSL_PARAM_construct_end();
	if (pkey == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL)
		return NULL;
	if (enc)
		rc = EVP_PKEY_encrypt_init_ex(ctx, params);
	else
		rc = EVP_PKEY_decrypt_init_ex(ctx, params);
	if (rc != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Randomised: two encryptions of one plaintext differ. */
int
crypto_oaep_encrypt(EVP_PKEY *pub, const void *pt, size_t ptlen,
    uint8_t **out, size_t *outlen)
{
	EVP_PKEY_CTX	*ctx;
	uint8_t		*buf = NULL;
	size_t		 len = 0;

	if (pt == NULL || (ctx = crypto_oaep_ctx(pub, 1)) == NULL)
		return crypto_fail();
	if (EVP_PKEY_encrypt(ctx, NULL, &len, pt, ptlen) != 1 || len == 0 ||
	    (buf = malloc(len)) == NULL ||
	    EVP_PKEY_encrypt(ctx, buf, &len, pt, ptlen) != 1) {
		free(buf);
		EVP_PKEY_CTX_free(ctx);
		return crypto_fail();
	}
	EVP_PKEY_CTX_free(ctx);
	*out = buf;
	*outlen = len;
	return 0;
}

/* The plaintext buffer is wiped before it is released on failure. */
int
crypto_oaep_decrypt(EVP_PKEY *priv, const uint8_t *ct, size_t ctlen,
    uint8_t **out, size_t *outlen)
{
	EVP_PKEY_CTX	*ctx;
	uint8_t		*buf = NULL;
	size_t		 len = 0, cap = 0;

	if (ct == NULL || (ctx = crypto_oaep_ctx(priv, 0)) == NULL)
		return crypto_fail();
	if (EVP_PKEY_decrypt(ctx, NULL, &cap, ct, ctlen) != 1 || cap == 0 ||
	    (buf = malloc(cap)) == NULL) {
		free(buf);
		EVP_PKEY_CTX_free(ctx);
		return crypto_fail();
	}
	len = cap;
	if (EVP_PKEY_decrypt(ctx, buf, &len, ct, ctlen) != 1) {
		crypto_wipe(buf, cap);
		free(buf);
		EVP_PKEY_CTX_free(ctx);
		return crypto_fail();
	}
	EVP_PKEY_CTX_free(ctx);
	*out = buf;
	*outlen = len;
	return 0;
}

/* Digest context for RSA-PSS-SHA256 with MGF1-SHA256 and a 32-byte salt. */
static EVP_MD_CTX *
crypto_pss_ctx(EVP_PKEY *pkey, int sign)
{
	EVP_MD_CTX	*mctx;
	OSSL_PARAM	 params[4];
	int		 saltlen = CRYPTO_PSS_SALTLEN, rc;

	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_SIGNATURE_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_PSS, 0);
	params[1] = OSSL_PARAM_construct_utf8_string(
	    OSSL_SIGNATURE_PARAM_MGF1_DIGEST, "SHA256", 0);
	params[2] = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN,
	    &saltlen);
	params[3] = OSSL_PARAM_construct_end();
	if (pkey == NULL || (mctx = EVP_MD_CTX_new()) == NULL)
		return NULL;
	if (sign)
		rc = EVP_DigestSignInit_ex(mctx, NULL, "SHA256", NULL, NULL,
		    pkey, params);
	else
		rc = EVP_DigestVerifyInit_ex(mctx, NULL, "SHA256", NULL, NULL,
		    pkey, params);
	if (rc != 1) {
		EVP_MD_CTX_free(mctx);
		return NULL;
	}
	return mctx;
}

/* Randomised salt: two signatures of one message differ. */
int
crypto_pss_sign(EVP_PKEY *priv, const void *msg, size_t len,
    uint8_t **sig, size_t *siglen)
{
	EVP_MD_CTX	*mctx;
	uint8_t		*buf = NULL;
	size_t		 slen = 0;

	if ((msg == NULL && len > 0) ||
	    (mctx = crypto_pss_ctx(priv, 1)) == NULL)
		return crypto_fail();
	if (EVP_DigestSign(mctx, NULL, &slen, msg, len) != 1 || slen == 0 ||
	    (buf = malloc(slen)) == NULL ||
	    EVP_DigestSign(mctx, buf, &slen, msg, len) != 1) {
		free(buf);
		EVP_MD_CTX_free(mctx);
		return crypto_fail();
	}
	EVP_MD_CTX_free(mctx);
	*sig = buf;
	*siglen = slen;
	return 0;
}

/* Only PSS-SHA256 with MGF1-SHA256 and a 32-byte salt verifies. */
int
crypto_pss_verify(EVP_PKEY *pub, const void *msg, size_t len,
    const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX	*mctx;
	int		 rc;

	if ((msg == NULL && len > 0) || sig == NULL || siglen == 0 ||
	    (mctx = crypto_pss_ctx(pub, 0)) == NULL)
		return crypto_fail();
	rc = EVP_DigestVerify(mctx, sig, siglen, msg, len);
	EVP_MD_CTX_free(mctx);
	return rc == 1 ? 0 : crypto_fail();
}
