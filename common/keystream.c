/*
 * Seed 003's synchronised key stream r(Kp, Kn, Tc) between the instances of
 * one cloud (PROTOCOL section 12); see keystream.h for the message format,
 * the key lifetimes, checkpoints and replay memory.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "ids.h"
#include "keystream.h"
#include "log.h"
#include "msg.h"
#include "rand.h"

#define KS_TCLEN	8
#define KS_NONCELEN	CRYPTO_NONCELEN
#define KS_LOG_HASHES	(1 << 20)	/* say so before hashing this many */

/* The nonces opened at one step: open addressing, at most half full. */
struct ks_seen {
	uint8_t		(*sn_slot)[KS_NONCELEN];
	uint8_t		*sn_used;
	size_t		 sn_nslots;	/* a power of two >= 2 * max */
	size_t		 sn_count;
};

struct keystream {
	int64_t		 ks_t0;
	int64_t		 ks_dt;
	char		 ks_tsp[NAME_MAXLEN + 1];
	int64_t		 ks_n;		/* -1 before the first step */
	uint8_t		 ks_kn[KS_KEYLEN];
	uint8_t		 ks_kp[KS_KEYLEN];
	int		 ks_has_kp;
	/* Held until the first step only. */
	uint8_t		 ks_k0[KS_KEYLEN];
	int		 ks_has_ckpt;
	int64_t		 ks_ckpt_n;
	uint8_t		 ks_ckpt_kn[KS_KEYLEN];
	struct ks_seen	 ks_seen_n;	/* nonces opened under Kn */
	struct ks_seen	 ks_seen_p;	/* under Kp */
	size_t		 ks_replay_max;
	EVP_MD		*ks_md;
	EVP_MD_CTX	*ks_mdctx;
};

static int	ks_seen_alloc(struct ks_seen *, size_t);
static void	ks_seen_free(struct ks_seen *);

/* Allocate the set for max nonces, empty. */
static int
ks_seen_alloc(struct ks_seen *s, size_t max)
{
	size_t	 n = 2;

	while (n < 2 * max) {
		if (n > SIZE_MAX / 4 / KS_NONCELEN)
			return -1;
		n *= 2;
	}
	if ((s->sn_slot = calloc(n, KS_NONCELEN)) == NULL ||
	    (s->sn_used = calloc(n, 1)) == NULL) {
		ks_seen_free(s);
		return -1;
	}
	s->sn_nslots = n;
	s->sn_count = 0;
	return 0;
}

static void
ks_seen_free(struct ks_seen *s)
{
	free(s->sn_slot);
	free(s->sn_used);
	memset(s, 0, sizeof(*s));
}

static void
ks_seen_clear(struct ks_seen *s)
{
	if (s->sn_count == 0)
		return;
	memset(s->sn_used, 0, s->sn_nslots);
	memset(s->sn_slot, 0, s->sn_nslots * KS_NONCELEN);
	s->sn_count = 0;
}

/*
 * The slot holding nonce, or the empty slot where it would go.  Nonces are
 * random and only those of messages that opened are stored, so a plain
 * FNV-1a of the nonce spreads them.
 */
static size_t
ks_seen_slot(const struct ks_seen *s, const uint8_t nonce[KS_NONCELEN])
{
	uint64_t	 h = 14695981039346656037ULL;
	size_t		 i, mask = s->sn_nslots - 1;

	for (i = 0; i < KS_NONCELEN; i++)
		h = (h ^ nonce[i]) * 1099511628211ULL;
	for (i = (size_t)h & mask; s->sn_used[i]; i = (i + 1) & mask)
		if (memcmp(s->sn_slot[i], nonce, KS_NONCELEN) == 0)
			break;
	return i;
}

/* Check the names, copy the parameters; the keys are filled by the caller. */
static struct keystream *
ks_alloc(int64_t t0_ms, int64_t dt_ms, const char *tsp_id)
{
	struct keystream	*ks;

	if (dt_ms <= 0 || tsp_id == NULL || !id_valid_name(tsp_id))
		return NULL;
	if ((ks = calloc(1, sizeof(*ks))) == NULL)
		return NULL;
	ks->ks_t0 = t0_ms;
	ks->ks_dt = dt_ms;
	snprintf(ks->ks_tsp, sizeof(ks->ks_tsp), "%s", tsp_id);
	ks->ks_n = -1;
	ks->ks_replay_max = KS_REPLAY_MAX;
	if ((ks->ks_md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (ks->ks_mdctx = EVP_MD_CTX_new()) == NULL ||
	    ks_seen_alloc(&ks->ks_seen_n, ks->ks_replay_max) == -1 ||
	    ks_seen_alloc(&ks->ks_seen_p, ks->ks_replay_max) == -1) {
		keystream_free(ks);
		return NULL;
	}
	return ks;
}

struct keystream *
keystream_new(const uint8_t k0[KS_KEYLEN], int64_t t0_ms, int64_t dt_ms,
    const char *tsp_id)
{
	struct keystream	*ks;

	if (k0 == NULL || (ks = ks_alloc(t0_ms, dt_ms, tsp_id)) == NULL)
		return NULL;
	memcpy(ks->ks_k0, k0, KS_KEYLEN);
	return ks;
}

struct keystream *
keystream_resume(const uint8_t k0[KS_KEYLEN], int64_t t0_ms, int64_t dt_ms,
    const char *tsp_id, int64_t n, const uint8_t kn[KS_KEYLEN])
{
	struct keystream	*ks;

	if (k0 == NULL || kn == NULL || n < 0 ||
	    (n == 0 && CRYPTO_memcmp(k0, kn, KS_KEYLEN) != 0))
		return NULL;
	if ((ks = ks_alloc(t0_ms, dt_ms, tsp_id)) == NULL)
		return NULL;
	memcpy(ks->ks_k0, k0, KS_KEYLEN);
	memcpy(ks->ks_ckpt_kn, kn, KS_KEYLEN);
	ks->ks_ckpt_n = n;
	ks->ks_has_ckpt = 1;
	return ks;
}

void
keystream_free(struct keystream *ks)
{
	if (ks == NULL)
		return;
	ks_seen_free(&ks->ks_seen_n);
	ks_seen_free(&ks->ks_seen_p);
	EVP_MD_CTX_free(ks->ks_mdctx);
	EVP_MD_free(ks->ks_md);
	OPENSSL_cleanse(ks, sizeof(*ks));
	free(ks);
}

/* k = SHA-256(k), in place; a digest that fails is a broken library. */
static void
ks_hash(struct keystream *ks, uint8_t k[KS_KEYLEN])
{
	unsigned int	 len = 0;

	if (EVP_DigestInit_ex2(ks->ks_mdctx, ks->ks_md, NULL) != 1 ||
	    EVP_DigestUpdate(ks->ks_mdctx, k, KS_KEYLEN) != 1 ||
	    EVP_DigestFinal_ex(ks->ks_mdctx, k, &len) != 1 ||
	    len != KS_KEYLEN)
		fatalx("keystream: SHA-256 failed");
}

/* The step of now, or -1 before t0 (or beyond the range of N). */
static int64_t
ks_clock_step(const struct keystream *ks, int64_t now_ms)
{
	uint64_t	 q;

	if (now_ms < ks->ks_t0)
		return -1;
	/* now >= t0, so the difference fits in 64 unsigned bits. */
	q = ((uint64_t)now_ms - (uint64_t)ks->ks_t0) / (uint64_t)ks->ks_dt;
	return q > (uint64_t)INT64_MAX ? -1 : (int64_t)q;
}

/*
 * Move from the key k of step from to step to > from: Kp = the key of to - 1,
 * Kn = SHA-256(Kp).  k is wiped; the keys overwritten are those of steps
 * left behind.
 */
static void
ks_advance(struct keystream *ks, int64_t from, uint8_t k[KS_KEYLEN],
    int64_t to)
{
	int64_t	 i;

	if (to - from >= KS_LOG_HASHES)
		log_info("keystream: hashing %" PRId64 " steps to step %" PRId64,
		    to - from, to);
	for (i = from; i < to - 1; i++)
		ks_hash(ks, k);
	memcpy(ks->ks_kp, k, KS_KEYLEN);
	ks_hash(ks, k);
	memcpy(ks->ks_kn, k, KS_KEYLEN);
	OPENSSL_cleanse(k, KS_KEYLEN);
	ks->ks_has_kp = 1;
	ks->ks_n = to;
}

/* The first step: from the checkpoint if not ahead of the clock, else K0. */
static void
ks_first_step(struct keystream *ks, int64_t target)
{
	uint8_t	 k[KS_KEYLEN];
	int64_t	 from = 0;

	if (ks->ks_has_ckpt && ks->ks_ckpt_n > target)
		log_warnx("keystream: checkpoint at step %" PRId64 " is ahead "
		    "of the clock's step %" PRId64 "; recomputed from K0",
		    ks->ks_ckpt_n, target);
	if (ks->ks_has_ckpt && ks->ks_ckpt_n <= target) {
		from = ks->ks_ckpt_n;
		memcpy(k, ks->ks_ckpt_kn, KS_KEYLEN);
	} else
		memcpy(k, ks->ks_k0, KS_KEYLEN);
	OPENSSL_cleanse(ks->ks_k0, KS_KEYLEN);
	OPENSSL_cleanse(ks->ks_ckpt_kn, KS_KEYLEN);
	ks->ks_has_ckpt = 0;
	if (target == from) {
		/* No key of the step before: none exists, or the checkpoint lacks it. */
		memcpy(ks->ks_kn, k, KS_KEYLEN);
		OPENSSL_cleanse(k, KS_KEYLEN);
		ks->ks_n = target;
		return;
	}
	ks_advance(ks, from, k, target);
}

int64_t
keystream_step(struct keystream *ks, int64_t now_ms)
{
	struct ks_seen	 t;
	uint8_t		 k[KS_KEYLEN];
	int64_t		 target;

	if (ks == NULL || (target = ks_clock_step(ks, now_ms)) == -1)
		return -1;
	if (ks->ks_n < 0) {
		ks_first_step(ks, target);
		return ks->ks_n;
	}
	if (target <= ks->ks_n)
		return ks->ks_n;
	if (target == ks->ks_n + 1) {
		/* Kn's nonces become Kp's; Kp's leave with Kp. */
		t = ks->ks_seen_p;
		ks->ks_seen_p = ks->ks_seen_n;
		ks->ks_seen_n = t;
	} else
		ks_seen_clear(&ks->ks_seen_p);
	ks_seen_clear(&ks->ks_seen_n);
	memcpy(k, ks->ks_kn, KS_KEYLEN);
	ks_advance(ks, ks->ks_n, k, target);
	return ks->ks_n;
}

int
keystream_checkpoint(const struct keystream *ks, int64_t *n,
    uint8_t kn[KS_KEYLEN])
{
	if (ks == NULL || n == NULL || kn == NULL || ks->ks_n < 0)
		return -1;
	*n = ks->ks_n;
	memcpy(kn, ks->ks_kn, KS_KEYLEN);
	return 0;
}

int
keystream_set_replay_max(struct keystream *ks, size_t max)
{
	struct ks_seen	 n, p;

	if (ks == NULL || max == 0 || ks->ks_seen_n.sn_count != 0 ||
	    ks->ks_seen_p.sn_count != 0)
		return -1;
	if (ks_seen_alloc(&n, max) == -1)
		return -1;
	if (ks_seen_alloc(&p, max) == -1) {
		ks_seen_free(&n);
		return -1;
	}
	ks_seen_free(&ks->ks_seen_n);
	ks_seen_free(&ks->ks_seen_p);
	ks->ks_seen_n = n;
	ks->ks_seen_p = p;
	ks->ks_replay_max = max;
	return 0;
}

/*
 * "qroam/1|CLOUD|<tsp_id>|<from>|<to>|<tc>"; -1 on a bad name.  to may be
 * KS_TO_ALL, a message to every instance of the cloud.
 */
static int
ks_aad(const struct keystream *ks, const char *from, const char *to,
    int64_t tc, char aad[MSG_AAD_MAX])
{
	char	 tcs[24];

	if (from == NULL || to == NULL || !id_valid_name(from) ||
	    (!id_valid_name(to) && strcmp(to, KS_TO_ALL) != 0))
		return -1;
	snprintf(tcs, sizeof(tcs), "%" PRId64, tc);
	return msg_aad(aad, MSG_AAD_MAX, "CLOUD", ks->ks_tsp, from, to, tcs,
	    (char *)NULL);
}

int
keystream_seal(struct keystream *ks, int64_t now_ms, const char *from,
    const char *to, const uint8_t *pt, size_t ptlen, uint8_t *out,
    size_t outsize, size_t *outlen)
{
	char	 aad[MSG_AAD_MAX];
	int64_t	 n;
	int	 i;

	if (ks == NULL || out == NULL || outlen == NULL ||
	    (pt == NULL && ptlen > 0) || ptlen > SIZE_MAX - KS_OVERHEAD ||
	    outsize < ptlen + KS_OVERHEAD)
		return -1;
	if ((n = keystream_step(ks, now_ms)) == -1 ||
	    ks_aad(ks, from, to, n, aad) == -1)
		return -1;
	for (i = 0; i < KS_TCLEN; i++)
		out[i] = (uint8_t)((uint64_t)n >> (8 * (KS_TCLEN - 1 - i)));
	qrand_bytes(out + KS_TCLEN, KS_NONCELEN);
	if (crypto_aead_seal(ks->ks_kn, out + KS_TCLEN, aad, pt, ptlen,
	    out + KS_TCLEN + KS_NONCELEN) == -1)
		return -1;
	*outlen = ptlen + KS_OVERHEAD;
	return 0;
}

/* Tc of a message, or -1 if it is beyond the range of N. */
static int64_t
ks_read_tc(const uint8_t *in)
{
	uint64_t	 tc = 0;
	int		 i;

	for (i = 0; i < KS_TCLEN; i++)
		tc = tc << 8 | in[i];
	return tc > (uint64_t)INT64_MAX ? -1 : (int64_t)tc;
}

/* The key and nonce set for Tc at the current step, or why there is none. */
static const char *
ks_key_for(struct keystream *ks, int64_t tc, const uint8_t **key,
    struct ks_seen **seen)
{
	if (tc == -1 || tc > ks->ks_n)
		return "future step";
	if (tc == ks->ks_n) {
		*key = ks->ks_kn;
		*seen = &ks->ks_seen_n;
		return NULL;
	}
	if (tc == ks->ks_n - 1 && ks->ks_has_kp) {
		*key = ks->ks_kp;
		*seen = &ks->ks_seen_p;
		return NULL;
	}
	return "stale step";
}

/* Open in at the current step into pt; NULL, or the reason it does not open. */
static const char *
ks_open(struct keystream *ks, int64_t now_ms, const char *from,
    const char *to, const uint8_t *in, size_t inlen, uint8_t *pt,
    size_t ptsize)
{
	const char	*reason;
	const uint8_t	*key = NULL, *nonce = in + KS_TCLEN;
	struct ks_seen	*seen = NULL;
	char		 aad[MSG_AAD_MAX];
	int64_t		 tc;
	size_t		 slot;

	if (keystream_step(ks, now_ms) == -1)
		return "before epoch";
	if (inlen < KS_OVERHEAD)
		return "short";
	if (ptsize < inlen - KS_OVERHEAD)
		return "buffer too small";
	tc = ks_read_tc(in);
	if ((reason = ks_key_for(ks, tc, &key, &seen)) != NULL)
		return reason;
	if (ks_aad(ks, from, to, tc, aad) == -1)
		return "bad name";
	slot = ks_seen_slot(seen, nonce);
	if (seen->sn_used[slot])
		return "replayed";
	if (seen->sn_count >= ks->ks_replay_max)
		return "replay window full";
	if (crypto_aead_open(key, nonce, aad, in + KS_TCLEN + KS_NONCELEN,
	    inlen - KS_TCLEN - KS_NONCELEN, pt) == -1)
		return "does not open";
	memcpy(seen->sn_slot[slot], nonce, KS_NONCELEN);
	seen->sn_used[slot] = 1;
	seen->sn_count++;
	return NULL;
}

int
keystream_open(struct keystream *ks, int64_t now_ms, const char *from,
    const char *to, const uint8_t *in, size_t inlen, uint8_t *pt,
    size_t ptsize, size_t *ptlen, const char **why)
{
	const char	*reason;
	uint8_t		 none[1];

	if (ks == NULL || in == NULL || ptlen == NULL ||
	    (pt == NULL && ptsize > 0))
		reason = "bad arguments";
	else
		reason = ks_open(ks, now_ms, from, to, in, inlen,
		    pt != NULL ? pt : none, ptsize);
	if (why != NULL)
		*why = reason;
	if (reason != NULL)
		return -1;
	*ptlen = inlen - KS_OVERHEAD;
	return 0;
}
