/*
 * Chip key sequences (PROTOCOL sections 3 and 10): key codes, chip_id and
 * the checks applied to a fill record before it is stored.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "ids.h"
#include "keyseq.h"
#include "log.h"

/* k is at most 64, the length of a SHA-256 in hex. */
void
keyseq_code(const uint8_t key[KEYSEQ_KEYLEN], unsigned k, char *code)
{
	uint8_t	 h[CRYPTO_HASHLEN];
	char	 hex[2 * CRYPTO_HASHLEN + 1];

	if (k > KEYSEQ_MAXK)
		k = KEYSEQ_MAXK;
	crypto_sha256(key, KEYSEQ_KEYLEN, h);
	crypto_hex(h, sizeof(h), hex);
	memcpy(code, hex, k);
	code[k] = '\0';
}

/* Key i of a sequence held in some container. */
typedef const uint8_t *(*keyseq_key_at)(const void *, size_t);

/*
 * chip_id of m keys.  The hashed text is streamed key by key, so a
 * 65536-key sequence needs no 4 MiB buffer; the hex of each key is wiped.
 */
static void
keyseq_hash_keys(keyseq_key_at key_at, const void *arg, size_t m,
    char out[65])
{
	EVP_MD_CTX	*ctx;
	char		 hex[2 * KEYSEQ_KEYLEN + 1];
	uint8_t		 h[CRYPTO_HASHLEN];
	unsigned int	 hlen = 0;
	size_t		 i;
	int		 ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		fatalx("chip_id: out of memory");
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	for (i = 0; ok && i < m; i++) {
		crypto_hex(key_at(arg, i), KEYSEQ_KEYLEN, hex);
		if (i > 0)
			ok = EVP_DigestUpdate(ctx, "-", 1) == 1;
		ok = ok && EVP_DigestUpdate(ctx, hex, 2 * KEYSEQ_KEYLEN) == 1;
	}
	crypto_wipe(hex, sizeof(hex));
	ok = ok && EVP_DigestFinal_ex(ctx, h, &hlen) == 1 &&
	    hlen == CRYPTO_HASHLEN;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		fatalx("chip_id: SHA-256 failed");
	crypto_hex(h, sizeof(h), out);
}

static const uint8_t *
keyseq_array_key(const void *arg, size_t i)
{
	const uint8_t	(*keys)[KEYSEQ_KEYLEN] = arg;

	return keys[i];
}

static const uint8_t *
keyseq_record_key(const void *arg, size_t i)
{
	const Qroam__FillRecord	*fr = arg;

	return fr->keys[i]->key.data;
}

void
keyseq_chip_id(const uint8_t (*keys)[KEYSEQ_KEYLEN], size_t m, char out[65])
{
	keyseq_hash_keys(keyseq_array_key, keys, m, out);
}

/* Order of two 32-byte keys, for finding duplicates. */
static int
keyseq_keycmp(const void *a, const void *b)
{
	const uint8_t	*ka = *(const uint8_t *const *)a;
	const uint8_t	*kb = *(const uint8_t *const *)b;

	return memcmp(ka, kb, KEYSEQ_KEYLEN);
}

/* A one-time key appears once: two equal keys in a record are refused. */
static int
keyseq_unique_keys(const Qroam__FillRecord *fr, const char **why)
{
	const uint8_t	**p;
	size_t		  i;
	int		  rc = 0;

	if ((p = calloc(fr->n_keys, sizeof(*p))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (i = 0; i < fr->n_keys; i++)
		p[i] = fr->keys[i]->key.data;
	qsort(p, fr->n_keys, sizeof(*p), keyseq_keycmp);
	for (i = 1; i < fr->n_keys; i++)
		if (memcmp(p[i - 1], p[i], KEYSEQ_KEYLEN) == 0) {
			*why = "duplicate key";
			rc = -1;
			break;
		}
	free(p);
	return rc;
}

/* Per-key checks: size, code syntax, fixed code prefix and ascending order. */
static int
keyseq_check_keys(const Qroam__FillRecord *fr, const char **why)
{
	const Qroam__ChipKey	*ck, *prev = NULL;
	char			 code[KEYSEQ_MAXK + 1];
	size_t			 i;

	for (i = 0; i < fr->n_keys; i++, prev = ck) {
		ck = fr->keys[i];
		if (ck == NULL || ck->key.len != KEYSEQ_KEYLEN ||
		    ck->key.data == NULL) {
			*why = "key is not 32 bytes";
			return -1;
		}
		if (!id_valid_hex(ck->code, fr->k)) {
			*why = "code is not k lowercase hex characters";
			return -1;
		}
		keyseq_code(ck->key.data, fr->k, code);
		if (memcmp(code, ck->code, fr->n - 1) != 0) {
			*why = "code does not match the key's hash";
			return -1;
		}
		if (prev != NULL && strcmp(prev->code, ck->code) >= 0) {
			*why = "codes do not strictly ascend";
			return -1;
		}
	}
	return 0;
}

/* Cheap syntax checks first, then the hash checks over every key. */
int
keyseq_validate(const Qroam__FillRecord *fr, const char **why)
{
	const char	*dummy;
	char		 id[2 * CRYPTO_HASHLEN + 1];

	if (why == NULL)
		why = &dummy;
	if (fr == NULL) {
		*why = "no fill record";
		return -1;
	}
	if (fr->m < 2 || fr->m > KEYSEQ_MAXM) {
		*why = "m out of range";
		return -1;
	}
	if (fr->k < KEYSEQ_MINK || fr->k > KEYSEQ_MAXK) {
		*why = "k out of range";
		return -1;
	}
	if (fr->n < 1 || fr->n > fr->k) {
		*why = "n out of range";
		return -1;
	}
	if (fr->n_keys != fr->m || fr->keys == NULL) {
		*why = "number of keys differs from m";
		return -1;
	}
	if (!id_valid_hex(fr->chip_id, 2 * CRYPTO_HASHLEN)) {
		*why = "chip_id is not 64 lowercase hex characters";
		return -1;
	}
	if (keyseq_check_keys(fr, why) == -1 ||
	    keyseq_unique_keys(fr, why) == -1)
		return -1;
	keyseq_hash_keys(keyseq_record_key, fr, fr->n_keys, id);
	if (strcmp(id, fr->chip_id) != 0) {
		*why = "chip_id does not match the keys";
		return -1;
	}
	return 0;
}
