/*
 * The vehicles' decoded private keys (Prv of M2), kept in memory so that
 * F3 does not decode the DER of the registration for every M4.  An entry
 * is valid for one registration epoch; an M2 with a higher epoch drops it.
 * The cache holds at most prv_cache keys (a decoded RSA-2048 key costs
 * about 5 KiB of heap once it has been used), evicts the least recently
 * used one, and doubles its hash table as it fills so that a lookup stays
 * a short chain walk at any capacity.  Loop thread only; the keys it hands
 * out are references that the workers may use concurrently.
 */
#include <sys/queue.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ids.h"
#include "log.h"

#include "tspd.h"

#define PRV_BUCKETS_MIN	1024
#define PRV_LOAD	2	/* entries per bucket before the table doubles */

/* One vehicle's decoded Prv under one registration epoch. */
struct prv_entry {
	char			 pe_vid[VIN_LEN + 1];
	uint32_t		 pe_hash;
	uint64_t		 pe_epoch;
	EVP_PKEY		*pe_key;
	TAILQ_ENTRY(prv_entry)	 pe_bucket;
	TAILQ_ENTRY(prv_entry)	 pe_lru;	/* most recent first */
};

TAILQ_HEAD(prv_list, prv_entry);

struct tspd_prvcache {
	struct prv_list	*pc_bucket;
	size_t		 pc_nbuckets;	/* a power of two */
	struct prv_list	 pc_lru;
	size_t		 pc_count;
	size_t		 pc_max;	/* 0: nothing is kept */
};

/* A table of n empty buckets, or NULL. */
static struct prv_list *
prv_table(size_t n)
{
	struct prv_list	*b;
	size_t		 i;

	if ((b = calloc(n, sizeof(*b))) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		TAILQ_INIT(&b[i]);
	return b;
}

void
tspd_prv_init(struct tspd *env, size_t max)
{
	struct tspd_prvcache	*pc;

	pc = xcalloc(1, sizeof(*pc));
	pc->pc_nbuckets = PRV_BUCKETS_MIN;
	if ((pc->pc_bucket = prv_table(pc->pc_nbuckets)) == NULL)
		fatal("private key cache");
	TAILQ_INIT(&pc->pc_lru);
	pc->pc_max = max;
	env->t_prv = pc;
}

/* FNV-1a of vid. */
static uint32_t
prv_hash(const char *vid)
{
	uint32_t	 h = 2166136261u;

	while (*vid != '\0')
		h = (h ^ (uint8_t)*vid++) * 16777619u;
	return h;
}

static struct prv_list *
prv_bucket(struct tspd_prvcache *pc, uint32_t hash)
{
	return &pc->pc_bucket[hash & (pc->pc_nbuckets - 1)];
}

/* Unlink and free one entry with its key. */
static void
prv_drop(struct tspd_prvcache *pc, struct prv_entry *pe)
{
	TAILQ_REMOVE(prv_bucket(pc, pe->pe_hash), pe, pe_bucket);
	TAILQ_REMOVE(&pc->pc_lru, pe, pe_lru);
	EVP_PKEY_free(pe->pe_key);
	free(pe);
	pc->pc_count--;
}

void
tspd_prv_free(struct tspd *env)
{
	struct tspd_prvcache	*pc = env->t_prv;
	struct prv_entry	*pe;

	if (pc == NULL)
		return;
	while ((pe = TAILQ_FIRST(&pc->pc_lru)) != NULL)
		prv_drop(pc, pe);
	free(pc->pc_bucket);
	free(pc);
	env->t_prv = NULL;
}

/* The entry of vid whatever its epoch, or NULL. */
static struct prv_entry *
prv_find(struct tspd_prvcache *pc, const char *vid)
{
	struct prv_entry	*pe;
	uint32_t		 h = prv_hash(vid);

	TAILQ_FOREACH(pe, prv_bucket(pc, h), pe_bucket)
		if (pe->pe_hash == h && strcmp(pe->pe_vid, vid) == 0)
			return pe;
	return NULL;
}

/*
 * Double the hash table once the chains average PRV_LOAD entries; if the
 * memory is not there the old table stays, with longer chains.
 */
static void
prv_grow(struct tspd_prvcache *pc)
{
	struct prv_list		*old = pc->pc_bucket, *b;
	struct prv_entry	*pe;
	size_t			 n = pc->pc_nbuckets * 2;

	if (pc->pc_count <= PRV_LOAD * pc->pc_nbuckets ||
	    n > SIZE_MAX / sizeof(*b) || (b = prv_table(n)) == NULL)
		return;
	pc->pc_bucket = b;
	pc->pc_nbuckets = n;
	TAILQ_FOREACH(pe, &pc->pc_lru, pe_lru)
		TAILQ_INSERT_TAIL(prv_bucket(pc, pe->pe_hash), pe, pe_bucket);
	free(old);
}

void
tspd_prv_forget(struct tspd *env, const char *vid)
{
	struct prv_entry	*pe;

	if (env->t_prv != NULL && (pe = prv_find(env->t_prv, vid)) != NULL)
		prv_drop(env->t_prv, pe);
}

EVP_PKEY *
tspd_prv_lookup(struct tspd *env, const char *vid, uint64_t epoch)
{
	struct tspd_prvcache	*pc = env->t_prv;
	struct prv_entry	*pe;

	if (pc == NULL || (pe = prv_find(pc, vid)) == NULL)
		return NULL;
	if (pe->pe_epoch != epoch) {
		prv_drop(pc, pe);
		return NULL;
	}
	if (EVP_PKEY_up_ref(pe->pe_key) != 1)
		return NULL;
	TAILQ_REMOVE(&pc->pc_lru, pe, pe_lru);
	TAILQ_INSERT_HEAD(&pc->pc_lru, pe, pe_lru);
	return pe->pe_key;
}

void
tspd_prv_put(struct tspd *env, const char *vid, uint64_t epoch,
    EVP_PKEY *key)
{
	struct tspd_prvcache	*pc = env->t_prv;
	struct prv_entry	*pe;
	size_t			 len = strlen(vid);

	if (pc == NULL || pc->pc_max == 0 || len > VIN_LEN)
		return;
	if ((pe = prv_find(pc, vid)) != NULL) {
		/* Another M4 decoded it first, or a newer epoch is kept. */
		if (pe->pe_epoch >= epoch)
			return;
		prv_drop(pc, pe);
	}
	if (EVP_PKEY_up_ref(key) != 1)
		return;
	if ((pe = calloc(1, sizeof(*pe))) == NULL) {
		log_warn("vehicle %s: caching its private key", vid);
		EVP_PKEY_free(key);
		return;
	}
	while (pc->pc_count >= pc->pc_max)
		prv_drop(pc, TAILQ_LAST(&pc->pc_lru, prv_list));
	memcpy(pe->pe_vid, vid, len + 1);
	pe->pe_hash = prv_hash(vid);
	pe->pe_epoch = epoch;
	pe->pe_key = key;
	TAILQ_INSERT_HEAD(prv_bucket(pc, pe->pe_hash), pe, pe_bucket);
	TAILQ_INSERT_HEAD(&pc->pc_lru, pe, pe_lru);
	pc->pc_count++;
	prv_grow(pc);
}

size_t
tspd_prv_count(const struct tspd *env)
{
	return env->t_prv != NULL ? env->t_prv->pc_count : 0;
}
