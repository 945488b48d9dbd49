/*
 * Secrets at rest (atrest.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atrest.h"
#include "crypto.h"
#include "rand.h"

#define ATREST_MAGIC0	'Q'
#define ATREST_MAGIC1	'S'
#define ATREST_VERSION	1
#define ATREST_IDLEN	4
#define ATREST_HDRLEN	(3 + ATREST_IDLEN + CRYPTO_NONCELEN)

struct atrest_key {
	uint8_t		 k_key[CRYPTO_KEYLEN];
	uint8_t		 k_id[ATREST_IDLEN];
	int		 k_set;
};

struct atrest {
	struct atrest_key	 ar_cur;
	struct atrest_key	 ar_old;
};

/* Read the key file path: 32 raw bytes, or 64 hex digits; 0 or -1. */
static int
atrest_read_key(const char *path, struct atrest_key *k)
{
	uint8_t		 buf[130], h[CRYPTO_HASHLEN];
	FILE		*f;
	size_t		 n;
	int		 rc = -1;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "store key %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (n == CRYPTO_KEYLEN) {
		memcpy(k->k_key, buf, CRYPTO_KEYLEN);
		rc = 0;
	} else if (n == 2 * CRYPTO_KEYLEN &&
	    crypto_unhex((char *)buf, k->k_key, CRYPTO_KEYLEN) == 0)
		rc = 0;
	crypto_wipe(buf, sizeof(buf));
	if (rc == -1) {
		fprintf(stderr, "store key %s: want 32 bytes or 64 hex "
		    "digits\n", path);
		return -1;
	}
	crypto_sha256(k->k_key, CRYPTO_KEYLEN, h);
	memcpy(k->k_id, h, ATREST_IDLEN);
	k->k_set = 1;
	return 0;
}

int
atrest_load(const char *path, const char *old_path, struct atrest **out)
{
	struct atrest	*ar;
	const char	*dir;
	char		 cred[4096];

	*out = NULL;
	if (path == NULL) {
		if ((dir = getenv("CREDENTIALS_DIRECTORY")) == NULL)
			return 0;
		snprintf(cred, sizeof(cred), "%s/%s", dir, ATREST_CREDENTIAL);
		if (access(cred, R_OK) == -1)
			return 0;
		path = cred;
	}
	if ((ar = calloc(1, sizeof(*ar))) == NULL) {
		fprintf(stderr, "store key: out of memory\n");
		return -1;
	}
	if (atrest_read_key(path, &ar->ar_cur) == -1 || (old_path != NULL &&
	    atrest_read_key(old_path, &ar->ar_old) == -1)) {
		atrest_free(ar);
		return -1;
	}
	*out = ar;
	return 0;
}

void
atrest_free(struct atrest *ar)
{
	if (ar == NULL)
		return;
	crypto_wipe(ar, sizeof(*ar));
	free(ar);
}

int
atrest_seal(const struct atrest *ar, const char *aad, const void *pt,
    size_t len, uint8_t **out, size_t *outlen)
{
	uint8_t	*b;

	if ((b = malloc(ATREST_HDRLEN + len + CRYPTO_TAGLEN)) == NULL)
		return -1;
	b[0] = ATREST_MAGIC0;
	b[1] = ATREST_MAGIC1;
	b[2] = ATREST_VERSION;
	memcpy(b + 3, ar->ar_cur.k_id, ATREST_IDLEN);
	qrand_bytes(b + 3 + ATREST_IDLEN, CRYPTO_NONCELEN);
	if (crypto_aead_seal(ar->ar_cur.k_key, b + 3 + ATREST_IDLEN, aad, pt,
	    len, b + ATREST_HDRLEN) == -1) {
		free(b);
		return -1;
	}
	*out = b;
	*outlen = ATREST_HDRLEN + len + CRYPTO_TAGLEN;
	return 0;
}

int
atrest_is_sealed(const uint8_t *in, size_t len)
{
	return len >= ATREST_OVERHEAD && in[0] == ATREST_MAGIC0 &&
	    in[1] == ATREST_MAGIC1 && in[2] == ATREST_VERSION;
}

int
atrest_open(const struct atrest *ar, const char *aad, const uint8_t *in,
    size_t len, uint8_t **out, size_t *outlen)
{
	const struct atrest_key	*k;
	uint8_t			*b;
	size_t			 n;

	if (!atrest_is_sealed(in, len))
		return -1;
	if (memcmp(in + 3, ar->ar_cur.k_id, ATREST_IDLEN) == 0)
		k = &ar->ar_cur;
	else if (ar->ar_old.k_set &&
	    memcmp(in + 3, ar->ar_old.k_id, ATREST_IDLEN) == 0)
		k = &ar->ar_old;
	else
		return -1;
	n = len - ATREST_HDRLEN - CRYPTO_TAGLEN;
	if ((b = malloc(n > 0 ? n : 1)) == NULL)
		return -1;
	if (crypto_aead_open(k->k_key, in + 3 + ATREST_IDLEN, aad,
	    in + ATREST_HDRLEN, len - ATREST_HDRLEN, b) == -1) {
		free(b);
		return -1;
	}
	*out = b;
	*outlen = n;
	return k == &ar->ar_old;
}
