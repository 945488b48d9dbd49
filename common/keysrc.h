/*
 * Quantum key source: a client of the ETSI GS QKD 014 v1.1.1 REST interface
 * (HTTPS with mutual TLS) on libevent, so schedd and tspd work with any KME,
 * the qkdd emulator or a real one.  The calling SAE is identified by its
 * client certificate (CN = SAE id).  Requests are asynchronous: the callback
 * runs once from the event loop with the key or the reason it failed.
 */
#ifndef QROAM_KEYSRC_H
#define QROAM_KEYSRC_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#define KEYSRC_KEYLEN	32	/* 256-bit keys */
#define KEYSRC_IDMAX	64	/* key_ID (a UUID is 36 chars) */

enum keysrc_result {
	KEYSRC_OK,
	KEYSRC_UNAVAILABLE,	/* 503: no key can be supplied (empty pool, QBER) */
	KEYSRC_REFUSED,		/* 400/401: bad request or not authorised */
	KEYSRC_ERROR,		/* transport failure, timeout, malformed answer */
};

/*
 * key_id and key are valid only during the call (key is wiped after it);
 * on failure both are NULL and why says what went wrong (never key bytes).
 */
typedef void (*keysrc_cb)(void *arg, enum keysrc_result, const char *key_id,
	    const uint8_t *key, const char *why);

struct keysrc;

/* A client of the KME at host:port; tls is a client context (mTLS). */
struct keysrc *keysrc_new(struct event_base *, const char *host, uint16_t port,
	    SSL_CTX *tls, int timeout_ms);
void	keysrc_free(struct keysrc *);

/* Master side: POST /api/v1/keys/{slave}/enc_keys for one 256-bit key. */
int	keysrc_enc_key(struct keysrc *, const char *slave_sae, keysrc_cb, void *);
/* Slave side: POST /api/v1/keys/{master}/dec_keys for key_id. */
int	keysrc_dec_key(struct keysrc *, const char *master_sae, const char *key_id,
	    keysrc_cb, void *);

#endif
