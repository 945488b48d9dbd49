/*
 * The crypto suite of PROTOCOL section 4: SHA-256, AES-256-GCM with AAD
 * strings, RSA-OAEP-SHA256 and RSA-PSS-SHA256 (salt 32).  Thin wrappers over
 * OpenSSL 3 EVP; every function returns 0 on success and -1 on failure
 * (malformed input, authentication failure) and never logs key material.
 */
#ifndef QROAM_CRYPTO_H
#define QROAM_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#define CRYPTO_KEYLEN	32
#define CRYPTO_NONCELEN	12
#define CRYPTO_TAGLEN	16
#define CRYPTO_HASHLEN	32

void	crypto_sha256(const void *, size_t, uint8_t out[CRYPTO_HASHLEN]);
/* out holds 2*len+1 bytes; lowercase. */
void	crypto_hex(const void *, size_t len, char *out);
/* Exactly 2*outlen hex digits (either case) into out. */
int	crypto_unhex(const char *, uint8_t *out, size_t outlen);
void	crypto_wipe(void *, size_t);

/*
 * AES-256-GCM.  seal writes ptlen + CRYPTO_TAGLEN bytes to out; open reads
 * ctlen >= CRYPTO_TAGLEN bytes and writes ctlen - CRYPTO_TAGLEN bytes.
 * aad is a NUL-terminated string (see msg_aad()).
 */
int	crypto_aead_seal(const uint8_t key[CRYPTO_KEYLEN],
	    const uint8_t nonce[CRYPTO_NONCELEN], const char *aad,
	    const void *pt, size_t ptlen, uint8_t *out);
int	crypto_aead_open(const uint8_t key[CRYPTO_KEYLEN],
	    const uint8_t nonce[CRYPTO_NONCELEN], const char *aad,
	    const uint8_t *ct, size_t ctlen, uint8_t *out);

/*
 * AES-256-GCM under one key for many messages: crypto_aead_new expands the
 * key once; each seal or open then sets only the nonce and the AAD (aadlen
 * bytes, no NUL needed), with the sizes and results of crypto_aead_seal
 * and crypto_aead_open.  One context serves both directions, one thread at
 * a time.  crypto_aead_free wipes the expanded key.  new returns NULL on
 * failure.
 */
struct crypto_aead;

struct crypto_aead *crypto_aead_new(const uint8_t key[CRYPTO_KEYLEN]);
void	crypto_aead_free(struct crypto_aead *);
/* Use the context for another key from now on; 0 or -1. */
int	crypto_aead_rekey(struct crypto_aead *, const uint8_t key[CRYPTO_KEYLEN]);
int	crypto_aead_seal_with(struct crypto_aead *,
	    const uint8_t nonce[CRYPTO_NONCELEN], const void *aad, size_t aadlen,
	    const void *pt, size_t ptlen, uint8_t *out);
int	crypto_aead_open_with(struct crypto_aead *,
	    const uint8_t nonce[CRYPTO_NONCELEN], const void *aad, size_t aadlen,
	    const uint8_t *ct, size_t ctlen, uint8_t *out);

/* RSA key pairs; bits is 2048 or 3072.  NULL on failure. */
EVP_PKEY *crypto_rsa_generate(int bits);
/*
 * The same with primes prime factors (2, or 3: multi-prime RSA of RFC
 * 8017, the same public key and operations, quicker to generate); NULL on
 * a bad argument or failure.
 */
EVP_PKEY *crypto_rsa_generate_primes(int bits, int primes);
/* DER encodings; *der is malloc'd (private key buffers are wiped by caller). */
int	crypto_pub_to_der(EVP_PKEY *, uint8_t **der, size_t *len);
int	crypto_priv_to_der(EVP_PKEY *, uint8_t **der, size_t *len);
EVP_PKEY *crypto_pub_from_der(const uint8_t *, size_t);
EVP_PKEY *crypto_priv_from_der(const uint8_t *, size_t);

/* RSA-OAEP, SHA-256 and MGF1-SHA-256, empty label.  *out malloc'd. */
int	crypto_oaep_encrypt(EVP_PKEY *pub, const void *pt, size_t ptlen,
	    uint8_t **out, size_t *outlen);
int	crypto_oaep_decrypt(EVP_PKEY *priv, const uint8_t *ct, size_t ctlen,
	    uint8_t **out, size_t *outlen);
/* RSA-PSS-SHA256, salt length 32.  *sig malloc'd. */
int	crypto_pss_sign(EVP_PKEY *priv, const void *msg, size_t len,
	    uint8_t **sig, size_t *siglen);
int	crypto_pss_verify(EVP_PKEY *pub, const void *msg, size_t len,
	    const uint8_t *sig, size_t siglen);

#endif
