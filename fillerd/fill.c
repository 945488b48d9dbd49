/*
 * The F1 fill algorithm of PROTOCOL section 6.  Codes are the first k hex
 * characters of SHA-256(key); while two or more keys share a code, characters
 * n..k of each of those codes are replaced with random hex digits, the first
 * n-1 never change.  Keys are then ordered by code and the chip_id computed.
 *
 * Collisions are found by sorting, never by comparing all pairs.  Since the
 * first n-1 characters are fixed, codes that start differently never
 * collide: after one sort the keys fall into contiguous groups of equal
 * prefix, and each group is resolved on its own.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "fill.h"
#include "keyseq.h"
#include "rand.h"

/*
 * Work budget for collision resolution, in keys re-sorted.  Resolution
 * converges in a round or two with usual parameters.  When a group of equal
 * prefix almost fills its 16^(k-n+1) codes the expected number of rounds
 * explodes (a full group of 16 needs about 23,000 rounds, one of 256 more
 * than anyone can wait); the budget turns that into an error after a few
 * seconds, yet is over twenty times what a full group of 16 needs on
 * average.
 */
#define FILL_BUDGET	(1UL << 23)
#define FILL_DIGITBATCH	256	/* random bytes drawn at once for digits */

struct fill_ent {
	char		fe_code[KEYSEQ_MAXK + 1];
	uint32_t	fe_idx;		/* index into the caller's keys */
	int		fe_dup;		/* shares its code this round */
};

static const char fill_hexdigits[] = "0123456789abcdef";

/* Order by code (byte order, all codes have k chars), then by key index. */
static int
fill_ent_cmp(const void *a, const void *b)
{
	const struct fill_ent	*ea = a, *eb = b;
	int			 c;

	if ((c = strcmp(ea->fe_code, eb->fe_code)) != 0)
		return c;
	return (ea->fe_idx > eb->fe_idx) - (ea->fe_idx < eb->fe_idx);
}

/* Parameter ranges of PROTOCOL section 6, F1. */
static int
fill_check_params(unsigned m, unsigned k, unsigned n, const char **why)
{
	if (m < 2 || m > KEYSEQ_MAXM) {
		*why = "m must be between 2 and 65536";
		return -1;
	}
	if (k < KEYSEQ_MINK || k > KEYSEQ_MAXK) {
		*why = "k must be between 2 and 64";
		return -1;
	}
	if (n < 1 || n > k) {
		*why = "n must be between 1 and k";
		return -1;
	}
	return 0;
}

/* Number of distinct codes sharing one prefix: 16^(k-n+1), capped. */
static uint64_t
fill_capacity(unsigned k, unsigned n)
{
	unsigned	 nfree = k - n + 1;

	return nfree >= 16 ? UINT64_MAX : (uint64_t)1 << (4 * nfree);
}

/*
 * Length of the group of equal first n-1 characters that starts at e[0];
 * the entries are sorted by code.
 */
static size_t
fill_group_len(const struct fill_ent *e, size_t left, unsigned n)
{
	size_t	 g;

	for (g = 1; g < left; g++)
		if (memcmp(e[0].fe_code, e[g].fe_code, n - 1) != 0)
			break;
	return g;
}

/* Flag the entries of sorted e that share their code; return how many. */
static size_t
fill_mark_dups(struct fill_ent *e, size_t g)
{
	size_t	 i, ndup = 0;

	for (i = 0; i < g; i++) {
		e[i].fe_dup = (i > 0 &&
		    strcmp(e[i].fe_code, e[i - 1].fe_code) == 0) ||
		    (i + 1 < g && strcmp(e[i].fe_code, e[i + 1].fe_code) == 0);
		ndup += e[i].fe_dup;
	}
	return ndup;
}

/*
 * Replace characters n..k of the ndup flagged codes.  Digits are the low
 * nibbles of bytes drawn in batches: one draw per round rather than one per
 * digit keeps a slow or remote random source usable.
 */
static void
fill_redraw(struct fill_ent *e, size_t g, size_t ndup, unsigned k,
    unsigned n)
{
	uint8_t		 buf[FILL_DIGITBATCH];
	size_t		 i, left, avail = 0, off = 0;
	unsigned	 j;

	left = ndup * (k - n + 1);
	for (i = 0; i < g; i++) {
		if (!e[i].fe_dup)
			continue;
		for (j = n - 1; j < k; j++) {
			if (off == avail) {
				avail = left < sizeof(buf) ? left : sizeof(buf);
				qrand_bytes(buf, avail);
				left -= avail;
				off = 0;
			}
			e[i].fe_code[j] = fill_hexdigits[buf[off++] & 0x0f];
		}
	}
}

/*
 * Resolve the collisions of one sorted group of equal prefix: replace
 * characters n..k of every colliding code, re-sort, repeat.  -1 when the
 * work budget runs out.
 */
static int
fill_resolve_group(struct fill_ent *e, size_t g, unsigned k, unsigned n,
    size_t *budget)
{
	size_t	 ndup;

	while ((ndup = fill_mark_dups(e, g)) > 0) {
		if (*budget < g)
			return -1;
		*budget -= g;
		fill_redraw(e, g, ndup, k, n);
		qsort(e, g, sizeof(*e), fill_ent_cmp);
	}
	return 0;
}

/* Make all m codes unique, group by group; e is sorted by code. */
static int
fill_resolve(struct fill_ent *e, size_t m, unsigned k, unsigned n,
    const char **why)
{
	uint64_t	 cap = fill_capacity(k, n);
	size_t		 off, g, budget = FILL_BUDGET;

	for (off = 0; off < m; off += g) {
		g = fill_group_len(e + off, m - off, n);
		if (g > cap) {
			*why = "too few codes: more keys share their first "
			    "n-1 code characters than 16^(k-n+1)";
			return -1;
		}
	}
	for (off = 0; off < m; off += g) {
		g = fill_group_len(e + off, m - off, n);
		if (fill_resolve_group(e + off, g, k, n, &budget) == -1) {
			*why = "code collisions do not resolve: k-n+1 is too "
			    "small for m";
			return -1;
		}
	}
	return 0;
}

/* Wall-clock time of the fill, in milliseconds since the epoch. */
static uint64_t
fill_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Allocate the record in the layout fill_record_free releases. */
static Qroam__FillRecord *
fill_record_new(unsigned m, unsigned k, unsigned n)
{
	Qroam__FillRecord	*fr;
	size_t			 i;

	if ((fr = malloc(sizeof(*fr))) == NULL)
		return NULL;
	qroam__fill_record__init(fr);
	fr->m = m;
	fr->k = k;
	fr->n = n;
	fr->chip_id = malloc(2 * CRYPTO_HASHLEN + 1);
	fr->keys = calloc(m, sizeof(*fr->keys));
	if (fr->chip_id == NULL || fr->keys == NULL) {
		fill_record_free(fr);
		return NULL;
	}
	fr->n_keys = m;
	for (i = 0; i < m; i++) {
		if ((fr->keys[i] = malloc(sizeof(*fr->keys[i]))) == NULL) {
			fill_record_free(fr);
			return NULL;
		}
		qroam__chip_key__init(fr->keys[i]);
		fr->keys[i]->key.data = malloc(KEYSEQ_KEYLEN);
		fr->keys[i]->code = malloc(k + 1);
		if (fr->keys[i]->key.data == NULL ||
		    fr->keys[i]->code == NULL) {
			fill_record_free(fr);
			return NULL;
		}
		fr->keys[i]->key.len = KEYSEQ_KEYLEN;
	}
	return fr;
}

/* Copy the ordered keys and codes into a new record and compute chip_id. */
static Qroam__FillRecord *
fill_record_build(const struct fill_ent *e,
    const uint8_t (*keys)[KEYSEQ_KEYLEN], unsigned m, unsigned k, unsigned n)
{
	Qroam__FillRecord	*fr;
	uint8_t			(*seq)[KEYSEQ_KEYLEN];
	size_t			 i;

	if ((seq = calloc(m, sizeof(*seq))) == NULL)
		return NULL;
	if ((fr = fill_record_new(m, k, n)) != NULL) {
		for (i = 0; i < m; i++) {
			memcpy(seq[i], keys[e[i].fe_idx], KEYSEQ_KEYLEN);
			memcpy(fr->keys[i]->key.data, seq[i], KEYSEQ_KEYLEN);
			memcpy(fr->keys[i]->code, e[i].fe_code, k + 1);
		}
		keyseq_chip_id((const uint8_t (*)[KEYSEQ_KEYLEN])seq, m,
		    fr->chip_id);
		fr->created_ms = fill_now_ms();
	}
	crypto_wipe(seq, (size_t)m * sizeof(*seq));
	free(seq);
	return fr;
}

/*
 * The finished record passes the same checks a TSP applies; this also
 * refuses a key that appears twice, which collision resolution would
 * otherwise hide behind two different codes.
 */
int
fill_from_keys(const uint8_t (*keys)[KEYSEQ_KEYLEN], unsigned m, unsigned k,
    unsigned n, Qroam__FillRecord **out, const char **why)
{
	Qroam__FillRecord	*fr = NULL;
	struct fill_ent		*e;
	const char		*dummy;
	size_t			 i;

	if (why == NULL)
		why = &dummy;
	if (out == NULL || keys == NULL) {
		*why = "no keys or no output";
		return -1;
	}
	*out = NULL;
	if (fill_check_params(m, k, n, why) == -1)
		return -1;
	if ((e = calloc(m, sizeof(*e))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (i = 0; i < m; i++) {
		keyseq_code(keys[i], k, e[i].fe_code);
		e[i].fe_idx = (uint32_t)i;
	}
	qsort(e, m, sizeof(*e), fill_ent_cmp);
	if (fill_resolve(e, m, k, n, why) == 0) {
		if ((fr = fill_record_build(e, keys, m, k, n)) == NULL)
			*why = "out of memory";
		else if (keyseq_validate(fr, why) == -1) {
			fill_record_free(fr);
			fr = NULL;
		}
	}
	free(e);
	if (fr == NULL)
		return -1;
	*out = fr;
	return 0;
}

/* Draw the keys, then take fill_from_keys' path; the draws are wiped. */
int
fill_generate(unsigned m, unsigned k, unsigned n, Qroam__FillRecord **out,
    const char **why)
{
	uint8_t		(*keys)[KEYSEQ_KEYLEN];
	const char	*dummy;
	size_t		 i;
	int		 rc;

	if (why == NULL)
		why = &dummy;
	if (out == NULL) {
		*why = "no output";
		return -1;
	}
	*out = NULL;
	if (fill_check_params(m, k, n, why) == -1)
		return -1;
	if ((keys = calloc(m, sizeof(*keys))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (i = 0; i < m; i++)
		qrand_bytes(keys[i], KEYSEQ_KEYLEN);
	rc = fill_from_keys((const uint8_t (*)[KEYSEQ_KEYLEN])keys, m, k, n,
	    out, why);
	crypto_wipe(keys, (size_t)m * sizeof(*keys));
	free(keys);
	return rc;
}

/* Keys are wiped before their memory is returned. */
void
fill_record_free(Qroam__FillRecord *fr)
{
	Qroam__ChipKey	*ck;
	size_t		 i;

	if (fr == NULL)
		return;
	for (i = 0; fr->keys != NULL && i < fr->n_keys; i++) {
		if ((ck = fr->keys[i]) == NULL)
			continue;
		crypto_wipe(ck->key.data, ck->key.len);
		free(ck->key.data);
		free(ck->code);
		free(ck);
	}
	free(fr->keys);
	free(fr->chip_id);
	free(fr);
}
