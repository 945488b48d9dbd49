/*
 * Where schedd gets its quantum keys (CK1, CK2): a small backend chosen
 * once at start.  Today's backend is an ETSI GS QKD 014 KME at the
 * topology's qkd endpoint (common/keysrc.h), the qkdd emulator or a real
 * KME alike; another key source plugs in behind the same two calls.
 */
#ifndef SCHEDD_KEYS_H
#define SCHEDD_KEYS_H

#include <event2/event.h>
#include <openssl/ssl.h>

#include "keysrc.h"
#include "topo.h"

struct sched_keys {
	const char	*sk_name;
	/* Master side: one key shared with slave; 0 and cb runs once later. */
	int		(*sk_enc_key)(struct sched_keys *, const char *slave,
			    keysrc_cb cb, void *arg);
	/* Pending callbacks never run. */
	void		(*sk_free)(struct sched_keys *);
	void		*sk_ctx;
};

/* The KME at ep over mutual TLS (client context tls); NULL on failure. */
struct sched_keys *sched_keys_kme(struct event_base *,
	    const struct endpoint *ep, SSL_CTX *tls, int timeout_ms);

#endif
