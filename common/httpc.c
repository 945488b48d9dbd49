/*
 * Shared pieces of the evhttp clients: HTTPS connections, close_notify,
 * and why a request failed.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "httpc.h"

int
httpc_failure_text(struct evhttp_connection *evcon, int httperr, char *buf,
    size_t len)
{
	struct bufferevent	*bev;
	unsigned long		 e = 0;
	char			 tls[128];

	if (evcon != NULL &&
	    (bev = evhttp_connection_get_bufferevent(evcon)) != NULL)
		e = bufferevent_get_openssl_error(bev);
	if (e != 0 && ERR_GET_LIB(e) != 0) {
		ERR_error_string_n(e, tls, sizeof(tls));
		snprintf(buf, len, "tls: %s", tls);
		return 1;
	}
	switch (httperr) {
	case EVREQ_HTTP_TIMEOUT:
		snprintf(buf, len, "timeout");
		break;
	case EVREQ_HTTP_EOF:
		snprintf(buf, len, "connection closed");
		break;
	case EVREQ_HTTP_INVALID_HEADER:
		snprintf(buf, len, "malformed HTTP answer");
		break;
	case EVREQ_HTTP_DATA_TOO_LONG:
		snprintf(buf, len, "answer too long");
		break;
	default:
		snprintf(buf, len, "cannot connect (refused or unreachable)");
		break;
	}
	return 0;
}

/* 1 if host is a numeric IPv4 or IPv6 address (no SNI for those). */
static int
httpc_numeric_host(const char *host)
{
	unsigned char	buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

struct evhttp_connection *
httpc_connect(struct event_base *base, SSL_CTX *tls, const char *host,
    uint16_t port)
{
	struct evhttp_connection	*evcon;
	struct bufferevent		*bev;
	SSL				*ssl;

	if (tls == NULL)
		return evhttp_connection_base_new(base, NULL, host, port);
	if ((ssl = SSL_new(tls)) == NULL)
		return NULL;
	if (!httpc_numeric_host(host))
		SSL_set_tlsext_host_name(ssl, host);
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* Many HTTP servers close without a TLS close_notify. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	evcon = evhttp_connection_base_bufferevent_new(base, NULL, bev, host,
	    port);
	if (evcon == NULL)
		bufferevent_free(bev);
	return evcon;
}

void
httpc_close_notify(struct evhttp_connection *evcon)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	bev = evhttp_connection_get_bufferevent(evcon);
	if (bev != NULL && bufferevent_getfd(bev) >= 0 &&
	    (ssl = bufferevent_openssl_get_ssl(bev)) != NULL &&
	    SSL_is_init_finished(ssl))
		(void)SSL_shutdown(ssl);
	ERR_clear_error();
}
