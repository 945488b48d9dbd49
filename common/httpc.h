/*
 * What the HTTP clients on libevent's evhttp share: the ETSI GS QKD 014
 * key source (keysrc_etsi014.c) and qroamctl.
 */
#ifndef QROAM_HTTPC_H
#define QROAM_HTTPC_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

/*
 * A connection to host:port: plain HTTP with tls NULL, else HTTPS on a
 * bufferevent_openssl of its own (SNI for a host name, a close without
 * close_notify tolerated), the handshake running on first use.  NULL if
 * it cannot be set up.
 */
struct evhttp_connection *httpc_connect(struct event_base *, SSL_CTX *tls,
	    const char *host, uint16_t port);

/*
 * End the TLS session of an HTTPS connection with a close_notify while its
 * socket is still open (nothing if the handshake never finished).  Without
 * it the server reads a bare EOF, which OpenSSL 3 reports as a fatal
 * decode_error.
 */
void	httpc_close_notify(struct evhttp_connection *);

/*
 * Why a request on evcon (may be NULL) got no answer, into buf: the TLS
 * layer's error when there is one, else evhttp's error httperr as its
 * error callback reported it (-1: none reported, which is how a failed
 * connect shows).  Returns 1 if it was the TLS layer's error, else 0.
 */
int	httpc_failure_text(struct evhttp_connection *evcon, int httperr,
	    char *buf, size_t len);

#endif
