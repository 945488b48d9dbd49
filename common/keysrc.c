/*
 * The key source in front of its backend: the backend is looked up by name
 * once, when the source is made, and every call goes through its table.
 * What holds for every backend is checked here, once: SAE names, key
 * counts, key_IDs and callbacks, so that no backend passes an unchecked
 * name into a path.
 */
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "keysrc.h"

struct keysrc {
	const struct keysrc_backend	*ks_backend;
	void				*ks_ctx;
};

static const struct keysrc_backend *const keysrc_backends[] = {
	&keysrc_etsi014,
	&keysrc_random,
};

struct keysrc *
keysrc_new(const char *backend, struct event_base *base, const char *host,
    uint16_t port, SSL_CTX *tls, int timeout_ms)
{
	const struct keysrc_backend	*kb = NULL;
	size_t				 i;

	for (i = 0; backend != NULL &&
	    i < sizeof(keysrc_backends) / sizeof(keysrc_backends[0]); i++)
		if (strcmp(keysrc_backends[i]->kb_name, backend) == 0)
			kb = keysrc_backends[i];
	return keysrc_open(kb, base, host, port, tls, timeout_ms);
}

struct keysrc *
keysrc_open(const struct keysrc_backend *kb, struct event_base *base,
    const char *host, uint16_t port, SSL_CTX *tls, int timeout_ms)
{
	struct keysrc	*ks;

	if (kb == NULL || (ks = calloc(1, sizeof(*ks))) == NULL)
		return NULL;
	ks->ks_backend = kb;
	if ((ks->ks_ctx = kb->kb_open(base, host, port, tls,
	    timeout_ms)) == NULL) {
		free(ks);
		return NULL;
	}
	return ks;
}

/* The backend may outlive this while one of its callbacks runs. */
void
keysrc_free(struct keysrc *ks)
{
	if (ks == NULL)
		return;
	ks->ks_backend->kb_close(ks->ks_ctx);
	free(ks);
}

const char *
keysrc_name(const struct keysrc *ks)
{
	return ks->ks_backend->kb_desc;
}

int
keysrc_get_keys(struct keysrc *ks, const char *slave_sae, size_t number,
    keysrc_cb cb, void *arg)
{
	if (ks == NULL || cb == NULL || !id_valid_name(slave_sae) ||
	    number < 1 || number > KEYSRC_BATCH_MAX)
		return -1;
	return ks->ks_backend->kb_get_keys(ks->ks_ctx, slave_sae, number, cb,
	    arg);
}

/* 1..KEYSRC_BATCH_MAX valid key_IDs, no two the same. */
static int
keysrc_valid_key_ids(const char *const *ids, size_t n)
{
	size_t	i, j;

	if (ids == NULL || n < 1 || n > KEYSRC_BATCH_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (ids[i] == NULL || !keysrc_valid_key_id(ids[i]))
			return 0;
		for (j = 0; j < i; j++)
			if (strcmp(ids[i], ids[j]) == 0)
				return 0;
	}
	return 1;
}

int
keysrc_get_keys_by_id(struct keysrc *ks, const char *master_sae,
    const char *const *key_ids, size_t n, keysrc_cb cb, void *arg)
{
	if (ks == NULL || cb == NULL || !id_valid_name(master_sae) ||
	    !keysrc_valid_key_ids(key_ids, n))
		return -1;
	return ks->ks_backend->kb_get_keys_by_id(ks->ks_ctx, master_sae,
	    key_ids, n, cb, arg);
}

void
keysrc_cancel(struct keysrc *ks, keysrc_cb cb, void *arg)
{
	if (ks != NULL && cb != NULL)
		ks->ks_backend->kb_cancel(ks->ks_ctx, cb, arg);
}

int
keysrc_valid_key_id(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= KEYSRC_IDMAX || s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return i > 0;
}
