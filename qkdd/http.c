/*
 * HTTPS for the ETSI GS QKD 014 interface.  This file is the one place in
 * qroam where protocol-facing code touches bufferevent_* and SSL directly:
 * ETSI 014 is HTTP, so qkdd serves it with libevent's evhttp, which needs
 * an OpenSSL bufferevent per connection (evhttp_set_bevcb) and gives the
 * caller's certificate only through that bufferevent's SSL.  Everything
 * past the transport lives in kme.c and admin.c.
 *
 * The server context demands a client certificate, so a client without
 * one fails the TLS handshake and never reaches a handler.
 *
 * Replies that wait for the key store's group commit (kme.h) are held
 * here in two queues.  Those of the open group wait for a deferred event,
 * which runs once the requests read in the same pass of the event loop
 * were handled: it commits their group with one transaction and settles
 * each reply by the outcome.  Then they wait, in the order they came, for
 * the store's committer to report every commit made until then durable
 * (qkd_http_durable): an answer never gets ahead of the disk, so no key
 * is handed out whose reservation or delivery a crash could undo.
 */
#include <sys/queue.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "crypto.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "tls.h"

#define HTTP_MAX_BODY		65536
#define HTTP_MAX_HEADERS	8192
#define HTTP_TIMEOUT_S		30
#define ACCEPT_PAUSE_S		1	/* after running out of descriptors */

/*
 * A request's reply, held until its group is committed and that commit
 * is durable.  Allocated before the request is handled, so that a reply
 * that must wait can always be held.
 */
struct qkd_http_held {
	TAILQ_ENTRY(qkd_http_held)	 hh_entry;
	struct evhttp_request		*hh_req;
	struct kme_reply		 hh_rep;
	uint64_t			 hh_commits;	/* to be durable */
	char				 hh_path[];	/* for the counters */
};

TAILQ_HEAD(qkd_http_queue, qkd_http_held);

struct qkd_http {
	struct evhttp		*h_http;
	SSL_CTX			*h_tls;
	struct kme		*h_kme;
	struct qkd_http_queue	 h_group;	/* in the open group */
	struct qkd_http_queue	 h_durable;	/* settled, until durable */
	struct event		*h_flush;
	int			 h_ops;		/* its metrics set up */
};

/*
 * Log the fatal alerts this server sends.  Before the client is
 * authenticated they refuse it (a missing or unverifiable certificate, a
 * connection closed before its hello) and count as refusals; once it is,
 * they only end a connection the client dropped without close_notify,
 * which is routine and logged for debugging.
 */
static void
qkd_http_tls_info(const SSL *ssl, int where, int ret)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);
	char			host[NI_MAXHOST], serv[NI_MAXSERV];

	if ((where & SSL_CB_ALERT) == 0 || (where & SSL_CB_WRITE) == 0 ||
	    (ret >> 8) != SSL3_AL_FATAL)
		return;
	if (getpeername(SSL_get_fd(ssl), (struct sockaddr *)&ss, &len) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), serv,
	    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(host, sizeof(host), "?");
	else
		snprintf(host + strlen(host), sizeof(host) - strlen(host),
		    ":%s", serv);
	if (SSL_get0_peer_certificate(ssl) != NULL &&
	    SSL_get_verify_result(ssl) == X509_V_OK) {
		log_debug("TLS connection from %s ended: %s", host,
		    SSL_alert_desc_string_long(ret));
		return;
	}
	metrics_refusal("tls_handshake");
	/* OpenSSL 3.0 has no text for TLS 1.3's certificate_required (116). */
	log_warnx("TLS connection from %s refused: %s", host,
	    (ret & 0xff) == 116 ? "certificate required" :
	    SSL_alert_desc_string_long(ret));
}

/*
 * evhttp's connection factory: a TLS server bufferevent.  Returning NULL
 * would make evhttp fall back to plain TCP, so a failure here is fatal.
 */
static struct bufferevent *
qkd_http_bev(struct event_base *base, void *arg)
{
	struct qkd_http		*h = arg;
	struct bufferevent	*bev;
	SSL			*ssl;

	if ((ssl = SSL_new(h->h_tls)) == NULL)
		fatalx("SSL_new: out of memory");
	SSL_set_info_callback(ssl, qkd_http_tls_info);
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		fatalx("bufferevent_openssl_socket_new: out of memory");
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* Reason phrase of the statuses the KME answers with. */
static const char *
qkd_http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

/* evbuffer cleanup of a reply holding keys: wipe, then free. */
static void
qkd_http_wipe(const void *data, size_t len, void *arg)
{
	(void)arg;
	crypto_wipe((void *)(uintptr_t)data, len);
	free((void *)(uintptr_t)data);
}

/* Send rep on req; the body buffer passes to libevent. */
static void
qkd_http_send(struct evhttp_request *req, struct kme_reply *rep)
{
	struct evbuffer	*out;
	int		 status = rep->kp_status;

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	if ((out = evbuffer_new()) == NULL) {
		kme_reply_free(rep);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (rep->kp_body != NULL) {
		if (rep->kp_secret) {
			if (evbuffer_add_reference(out, rep->kp_body,
			    rep->kp_len, qkd_http_wipe, NULL) == 0)
				rep->kp_body = NULL;
		} else
			evbuffer_add(out, rep->kp_body, rep->kp_len);
	}
	kme_reply_free(rep);
	evhttp_send_reply(req, status, qkd_http_reason(status), out);
	evbuffer_free(out);
}

/* Count and send a held reply, and free it. */
static void
qkd_http_send_held(struct qkd_http_held *hh)
{
	qkd_ops_request(hh->hh_path, hh->hh_rep.kp_status);
	qkd_http_send(hh->hh_req, &hh->hh_rep);
	free(hh);
}

/* Send, in order, the settled replies that need no more than durable. */
static void
qkd_http_release(struct qkd_http *h, uint64_t durable)
{
	struct qkd_http_held	*hh;

	while ((hh = TAILQ_FIRST(&h->h_durable)) != NULL &&
	    hh->hh_commits <= durable) {
		TAILQ_REMOVE(&h->h_durable, hh, hh_entry);
		qkd_http_send_held(hh);
	}
}

/*
 * Commit the key store's group and settle each of its replies by the
 * outcome.  They then wait for every commit written so far, the group's
 * and any before it that they may report on, to be durable; a group that
 * stored nothing needs no more than what came before it.
 */
static void
qkd_http_flush(struct qkd_http *h)
{
	struct qkd_pool		*pool = h->h_kme->k_pool;
	struct qkd_http_held	*hh;
	uint64_t		 need;
	int			 rc;

	rc = kme_commit(h->h_kme);
	need = qkd_pool_written(pool);
	while ((hh = TAILQ_FIRST(&h->h_group)) != NULL) {
		TAILQ_REMOVE(&h->h_group, hh, hh_entry);
		kme_reply_settle(&hh->hh_rep, rc == 0);
		hh->hh_commits = need;
		TAILQ_INSERT_TAIL(&h->h_durable, hh, hh_entry);
	}
	qkd_http_release(h, qkd_pool_durable(pool));
}

static void
qkd_http_flush_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	qkd_http_flush(arg);
}

void
qkd_http_durable(struct qkd_http *h, uint64_t durable)
{
	qkd_http_release(h, durable);
}

/* A 503 for a request that cannot be held: the store is not touched. */
static void
qkd_http_unavailable(struct evhttp_request *req, const char *path)
{
	struct kme_reply	rep;

	log_warnx("request for %.128s: out of memory", path);
	memset(&rep, 0, sizeof(rep));
	kme_json(&rep, 503, json_pack("{s:s}", "message", "out of memory"));
	qkd_ops_request(path, rep.kp_status);
	qkd_http_send(req, &rep);
}

/* One request: the caller's identity from its TLS session, then the KME. */
static void
qkd_http_request(struct evhttp_request *req, void *arg)
{
	struct qkd_http			*h = arg;
	struct evhttp_connection	*conn;
	struct bufferevent		*bev;
	const struct evhttp_uri		*uri;
	struct evbuffer			*in;
	struct kme_request		 kr;
	struct qkd_http_held		*hh;
	char				 cn[64], role[64], peer[300], *addr;
	ev_uint16_t			 port;

	conn = evhttp_request_get_connection(req);
	evhttp_connection_get_peer(conn, &addr, &port);
	snprintf(peer, sizeof(peer), "%s:%u", addr ? addr : "?", port);
	bev = evhttp_connection_get_bufferevent(conn);
	if (tls_peer_identity(bev ? bufferevent_openssl_get_ssl(bev) : NULL,
	    cn, sizeof(cn), role, sizeof(role)) == -1) {
		log_warnx("request from %s without a verified certificate",
		    peer);
		qkd_ops_request(evhttp_uri_get_path(
		    evhttp_request_get_evhttp_uri(req)), 401);
		evhttp_send_error(req, 401, "Unauthorized");
		return;
	}
	memset(&kr, 0, sizeof(kr));
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		kr.kr_method = KME_GET;
		break;
	case EVHTTP_REQ_POST:
		kr.kr_method = KME_POST;
		break;
	default:
		kr.kr_method = KME_OTHER;
		break;
	}
	uri = evhttp_request_get_evhttp_uri(req);
	if ((kr.kr_path = evhttp_uri_get_path(uri)) == NULL)
		kr.kr_path = "";
	kr.kr_query = evhttp_uri_get_query(uri);
	in = evhttp_request_get_input_buffer(req);
	kr.kr_bodylen = evbuffer_get_length(in);
	kr.kr_body = kr.kr_bodylen ? (const char *)evbuffer_pullup(in, -1) : "";
	kr.kr_cn = cn;
	kr.kr_role = role;
	kr.kr_peer = peer;
	log_debug("%s %.128s from %s (%s, role %s)",
	    kr.kr_method == KME_GET ? "GET" : "POST",
	    kr.kr_path, cn, peer, role);
	if ((hh = calloc(1, sizeof(*hh) + strlen(kr.kr_path) + 1)) == NULL) {
		qkd_http_unavailable(req, kr.kr_path);
		return;
	}
	hh->hh_req = req;
	memcpy(hh->hh_path, kr.kr_path, strlen(kr.kr_path) + 1);
	kme_handle(h->h_kme, &kr, &hh->hh_rep);
	if (!hh->hh_rep.kp_commit) {
		qkd_http_send_held(hh);
		return;
	}
	TAILQ_INSERT_TAIL(&h->h_group, hh, hh_entry);
	event_active(h->h_flush, EV_TIMEOUT, 1);
}

/* One-shot timer: accept connections again after a pause. */
static void
qkd_http_resume(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	evconnlistener_enable(arg);
}

/*
 * Accept failed: running out of descriptors pauses accepting for a
 * moment instead of spinning on the listening socket.  (The callback's
 * argument is evhttp's, so the listener itself is passed on.)
 */
static void
qkd_http_accept_error(struct evconnlistener *lis, void *arg)
{
	struct timeval	 tv = { ACCEPT_PAUSE_S, 0 };
	int		 err = EVUTIL_SOCKET_ERROR();

	(void)arg;
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
		log_warnx("accept: %s", evutil_socket_error_to_string(err));
		return;
	}
	log_warnx("accept: %s: pausing for %d s",
	    evutil_socket_error_to_string(err), ACCEPT_PAUSE_S);
	evconnlistener_disable(lis);
	if (event_base_once(evconnlistener_get_base(lis), -1, EV_TIMEOUT,
	    qkd_http_resume, lis, &tv) == -1)
		evconnlistener_enable(lis);
}

/* Set up evhttp with TLS bufferevents and listen on host:port. */
struct qkd_http *
qkd_http_new(struct event_base *base, SSL_CTX *tls, const char *host,
    uint16_t port, struct kme *k)
{
	struct qkd_http			*h;
	struct evhttp_bound_socket	*bound;
	struct evconnlistener		*lis;
	int				 one = 1;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->h_tls = tls;
	h->h_kme = k;
	/*
	 * The metrics the handlers count in exist before anything listens,
	 * and as long as the server: no request can reach them unset.
	 */
	qkd_ops_init(k);
	h->h_ops = 1;
	TAILQ_INIT(&h->h_group);
	TAILQ_INIT(&h->h_durable);
	if ((h->h_flush = event_new(base, -1, 0, qkd_http_flush_cb, h)) == NULL ||
	    (h->h_http = evhttp_new(base)) == NULL)
		goto fail;
	evhttp_set_bevcb(h->h_http, qkd_http_bev, h);
	evhttp_set_gencb(h->h_http, qkd_http_request, h);
	evhttp_set_max_body_size(h->h_http, HTTP_MAX_BODY);
	evhttp_set_max_headers_size(h->h_http, HTTP_MAX_HEADERS);
	evhttp_set_timeout(h->h_http, HTTP_TIMEOUT_S);
	if ((bound = evhttp_bind_socket_with_handle(h->h_http, host,
	    port)) == NULL) {
		log_warnx("cannot listen on %s:%u", host, port);
		goto fail;
	}
	lis = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(lis, qkd_http_accept_error);
	/* Accepted sockets inherit it: replies leave without Nagle delays. */
	if (setsockopt(evconnlistener_get_fd(lis), IPPROTO_TCP, TCP_NODELAY,
	    &one, sizeof(one)) == -1)
		log_warn("TCP_NODELAY");
	return h;
 fail:
	qkd_http_free(h);
	return NULL;
}

void
qkd_http_free(struct qkd_http *h)
{
	struct qkd_http_held	*hh;

	if (h == NULL)
		return;
	/*
	 * Held replies go before evhttp frees their requests: those durable
	 * as they are, the others as a refusal (the loop has ended, and the
	 * store syncs their commits only as it closes).
	 */
	qkd_http_flush(h);
	while ((hh = TAILQ_FIRST(&h->h_durable)) != NULL) {
		TAILQ_REMOVE(&h->h_durable, hh, hh_entry);
		kme_reply_free(&hh->hh_rep);
		kme_json(&hh->hh_rep, 503, json_pack("{s:s}", "message",
		    "KME stopping"));
		qkd_http_send_held(hh);
	}
	if (h->h_http != NULL)
		evhttp_free(h->h_http);
	if (h->h_flush != NULL)
		event_free(h->h_flush);
	if (h->h_ops)
		qkd_ops_free(h->h_kme);
	free(h);
}
