/*
 * qkdd's HTTPS server: libevent's evhttp over OpenSSL bufferevents with
 * mutual TLS; every request goes to kme_handle() with the caller's
 * certificate identity.
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
void	qkd_http_free(struct qkd_http *);

#endif
