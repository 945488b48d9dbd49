/* schedd's key source backends. */
#include <stdlib.h>

#include "keys.h"
#include "log.h"

static int
sched_kme_enc_key(struct sched_keys *sk, const char *slave, keysrc_cb cb,
    void *arg)
{
	return keysrc_enc_key(sk->sk_ctx, slave, cb, arg);
}

static void
sched_kme_free(struct sched_keys *sk)
{
	keysrc_free(sk->sk_ctx);
	free(sk);
}

struct sched_keys *
sched_keys_kme(struct event_base *base, const struct endpoint *ep,
    SSL_CTX *tls, int timeout_ms)
{
	struct sched_keys	*sk;

	sk = xcalloc(1, sizeof(*sk));
	sk->sk_name = "ETSI GS QKD 014 KME";
	sk->sk_enc_key = sched_kme_enc_key;
	sk->sk_free = sched_kme_free;
	sk->sk_ctx = keysrc_new(base, ep->ep_host, ep->ep_port, tls, timeout_ms);
	if (sk->sk_ctx == NULL) {
		free(sk);
		return NULL;
	}
	return sk;
}
