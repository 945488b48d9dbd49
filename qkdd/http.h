/*
 * qkdd's HTTPS server: libevent's evhttp over OpenSSL bufferevents with
 * mutual TLS; every request goes to kme_handle() with the caller's
 * certificate identity.  The replies of enc_keys and dec_keys leave only
 * once the key store commit they report is durable.
 */
#ifndef QKDD_HTTP_H
#define QKDD_HTTP_H

#include <stdint.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "kme.h"

struct qkd_http;

/* Listen on host:port with the server context tls; NULL on failure, logged. */
struct qkd_http *qkd_http_new(struct event_base *, SSL_CTX *tls,
	    const char *host, uint16_t port, struct kme *);
/*
 * The key store reports its first durable commits on disk: the held
 * replies that wait for no more go out, in order.
 */
void	qkd_http_durable(struct qkd_http *, uint64_t durable);
/* Stop: held replies not yet durable are answered 503, then all is freed. */
void	qkd_http_free(struct qkd_http *);

#endif
