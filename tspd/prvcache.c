/*
 * The vehicles' decoded private keys (Prv of M2), kept in memory so that
 * F3 does not decode the DER of the registration for every M4.  An entry
 * is valid for one registration epoch; an M2 with a higher epoch drops it.
 * The cache is bounded and evicts the least recently used key.
 */
#include <sys/queue.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "ids.h"
#include "log.h"

#include "tspd.h"

#define PRV_BUCKETS	1024

/* One vehicle's decoded Prv under one registration epoch. */
struct prv_entry {
	char			 pe_vid[VIN_LEN + 1];
	uint64_t		 pe_epoch;
	EVP_PKEY		*pe_key;
	TAILQ_ENTRY(prv_entry)	 pe_bucket;
	TAILQ_ENTRY(prv_entry)	 pe_lru;	/* most recent first */
};

TAILQ_HEAD(prv_list, prv_entry);

struct tspd_prvcache {
	struct prv_list	 pc_bucket[PRV_BUCKETS];
	struct prv_list	 pc_lru;
	size_t		 pc_count;
	size_t		 pc_max;
};

void
tspd_prv_init(struct tspd *env, size_t max)
{
	struct tspd_prvcache	*pc;
	size_t			 i;

	pc = xcalloc(1, sizeof(*pc));
	for (i = 0; i < PRV_BUCKETS; i++)
		TAILQ_INIT(&pc->pc_bucket[i]);
	TAILQ_INIT(&pc->pc_lru);
	pc->pc_max = max > 0 ? max : 1;
	env->t_prv = pc;
}

/* The bucket of vid (FNV-1a). */
static struct prv_list *
prv_bucket(struct tspd_prvcache *pc, const char *vid)
{
	uint32_t	 h = 2166136261u;

	while (*vid != '\0')
		h = (h ^ (uint8_t)*vid++) * 16777619u;
	return &pc->pc_bucket[h % PRV_BUCKETS];
}

/* Unlink and free one entry with its key. */
static void
prv_drop(struct tspd_prvcache *pc, struct prv_entry *pe)
{
	TAILQ_REMOVE(prv_bucket(pc, pe->pe_vid), pe, pe_bucket);
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
	free(pc);
	env->t_prv = NULL;
}

/* The entry of vid whatever its epoch, or NULL. */
static struct prv_entry *
prv_find(struct tspd_prvcache *pc, const char *vid)
{
	struct prv_entry	*pe;

	TAILQ_FOREACH(pe, prv_bucket(pc, vid), pe_bucket)
		if (strcmp(pe->pe_vid, vid) == 0)
			return pe;
	return NULL;
}

void
tspd_prv_forget(struct tspd *env, const char *vid)
{
	struct prv_entry	*pe;

	if (env->t_prv != NULL && (pe = prv_find(env->t_prv, vid)) != NULL)
		prv_drop(env->t_prv, pe);
}

/* Remember key as vid's Prv under epoch, evicting the oldest if full. */
static void
prv_insert(struct tspd_prvcache *pc, const char *vid, uint64_t epoch,
    EVP_PKEY *key)
{
	struct prv_entry	*pe;

	if (strlen(vid) > VIN_LEN || EVP_PKEY_up_ref(key) != 1)
		return;
	if ((pe = calloc(1, sizeof(*pe))) == NULL) {
		log_warn("vehicle %s: caching its private key", vid);
		EVP_PKEY_free(key);
		return;
	}
	while (pc->pc_count >= pc->pc_max)
		prv_drop(pc, TAILQ_LAST(&pc->pc_lru, prv_list));
	memcpy(pe->pe_vid, vid, strlen(vid) + 1);
	pe->pe_epoch = epoch;
	pe->pe_key = key;
	TAILQ_INSERT_HEAD(prv_bucket(pc, vid), pe, pe_bucket);
	TAILQ_INSERT_HEAD(&pc->pc_lru, pe, pe_lru);
	pc->pc_count++;
}

EVP_PKEY *
tspd_prv_get(struct tspd *env, const char *vid, const struct tspdb_reg *reg)
{
	struct tspd_prvcache	*pc = env->t_prv;
	struct prv_entry	*pe;
	EVP_PKEY		*key;

	if (pc != NULL && (pe = prv_find(pc, vid)) != NULL) {
		if (pe->pe_epoch == reg->r_epoch &&
		    EVP_PKEY_up_ref(pe->pe_key) == 1) {
			TAILQ_REMOVE(&pc->pc_lru, pe, pe_lru);
			TAILQ_INSERT_HEAD(&pc->pc_lru, pe, pe_lru);
			return pe->pe_key;
		}
		prv_drop(pc, pe);
	}
	if ((key = crypto_priv_from_der(reg->r_prv, reg->r_prvlen)) == NULL)
		return NULL;
	if (pc != NULL)
		prv_insert(pc, vid, reg->r_epoch, key);
	return key;
}
