/*
 * The random key source backend (keysrc.h): new keys drawn from the
 * process's random source (rand.h: OpenSSL's DRBG, or a QRNG plugged in
 * with qrand_set_source) instead of a KME.  It serves the master side
 * only, for a daemon that hands the keys out itself (kmpd); a slave SAE
 * could not fetch them by key_ID, so keysrc_get_keys_by_id is refused.
 * As every backend, it answers from the event loop, never from inside
 * the call that queued the request.
 */
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>

#include "crypto.h"
#include "keysrc.h"
#include "rand.h"

struct kr_req {
	TAILQ_ENTRY(kr_req)	 kq_entry;
	size_t			 kq_n;		/* 0: a refused request */
	keysrc_cb		 kq_cb;
	void			*kq_arg;
};
TAILQ_HEAD(kr_reqs, kr_req);

struct kr_ctx {
	struct event		*kr_ev;
	struct kr_reqs		 kr_reqs;
	uint64_t		 kr_serial;	/* key_IDs "rand-N" */
	int			 kr_running;	/* inside kr_run */
	int			 kr_closed;	/* closed from a callback */
};

static void
kr_free(struct kr_ctx *kr)
{
	struct kr_req	*q;

	while ((q = TAILQ_FIRST(&kr->kr_reqs)) != NULL) {
		TAILQ_REMOVE(&kr->kr_reqs, q, kq_entry);
		free(q);
	}
	event_free(kr->kr_ev);
	free(kr);
}

/* One request's answer: n fresh keys, wiped after the callback. */
static void
kr_answer(struct kr_ctx *kr, struct kr_req *q)
{
	struct keysrc_key	keys[KEYSRC_BATCH_MAX];
	size_t			i;

	if (q->kq_n == 0) {
		q->kq_cb(q->kq_arg, KEYSRC_REFUSED, NULL, 0,
		    "the random source hands out new keys only");
		return;
	}
	for (i = 0; i < q->kq_n; i++) {
		snprintf(keys[i].kk_id, sizeof(keys[i].kk_id), "rand-%llu",
		    (unsigned long long)++kr->kr_serial);
		qrand_bytes(keys[i].kk_key, KEYSRC_KEYLEN);
	}
	q->kq_cb(q->kq_arg, KEYSRC_OK, keys, q->kq_n, NULL);
	crypto_wipe(keys, sizeof(keys));
}

/* The loop's turn: answer every queued request, in order. */
static void
kr_run(evutil_socket_t fd, short what, void *arg)
{
	struct kr_ctx	*kr = arg;
	struct kr_req	*q;

	(void)fd;
	(void)what;
	kr->kr_running = 1;
	while (!kr->kr_closed && (q = TAILQ_FIRST(&kr->kr_reqs)) != NULL) {
		TAILQ_REMOVE(&kr->kr_reqs, q, kq_entry);
		kr_answer(kr, q);
		free(q);
	}
	kr->kr_running = 0;
	if (kr->kr_closed)
		kr_free(kr);
}

static void *
kr_open(struct event_base *base, const char *host, uint16_t port,
    SSL_CTX *tls, int timeout_ms)
{
	struct kr_ctx	*kr;

	(void)host;
	(void)port;
	(void)tls;
	(void)timeout_ms;
	if ((kr = calloc(1, sizeof(*kr))) == NULL)
		return NULL;
	TAILQ_INIT(&kr->kr_reqs);
	if ((kr->kr_ev = event_new(base, -1, 0, kr_run, kr)) == NULL) {
		free(kr);
		return NULL;
	}
	return kr;
}

static int
kr_queue(struct kr_ctx *kr, size_t n, keysrc_cb cb, void *arg)
{
	struct kr_req	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -1;
	q->kq_n = n;
	q->kq_cb = cb;
	q->kq_arg = arg;
	TAILQ_INSERT_TAIL(&kr->kr_reqs, q, kq_entry);
	event_active(kr->kr_ev, 0, 0);
	return 0;
}

static int
kr_get_keys(void *ctx, const char *slave_sae, size_t number, keysrc_cb cb,
    void *arg)
{
	(void)slave_sae;
	return kr_queue(ctx, number, cb, arg);
}

static int
kr_get_keys_by_id(void *ctx, const char *master_sae,
    const char *const *key_ids, size_t n, keysrc_cb cb, void *arg)
{
	(void)master_sae;
	(void)key_ids;
	(void)n;
	return kr_queue(ctx, 0, cb, arg);
}

static void
kr_cancel(void *ctx, keysrc_cb cb, void *arg)
{
	struct kr_ctx	*kr = ctx;
	struct kr_req	*q, *next;

	for (q = TAILQ_FIRST(&kr->kr_reqs); q != NULL; q = next) {
		next = TAILQ_NEXT(q, kq_entry);
		if (q->kq_cb == cb && q->kq_arg == arg) {
			TAILQ_REMOVE(&kr->kr_reqs, q, kq_entry);
			free(q);
		}
	}
}

static void
kr_close(void *ctx)
{
	struct kr_ctx	*kr = ctx;

	if (kr->kr_running)
		kr->kr_closed = 1;
	else
		kr_free(kr);
}

const struct keysrc_backend keysrc_random = {
	.kb_name = "random",
	.kb_desc = "random source",
	.kb_open = kr_open,
	.kb_get_keys = kr_get_keys,
	.kb_get_keys_by_id = kr_get_keys_by_id,
	.kb_cancel = kr_cancel,
	.kb_close = kr_close,
};
