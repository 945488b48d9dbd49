/*
 * Quantum key source: the SAE side of the ETSI GS QKD 014 v1.1.1 REST
 * interface, on libevent's HTTP client over OpenSSL, JSON through jansson.
 * Only what the standard fixes is used (paths, field names, status codes),
 * so any KME serves, the qkdd emulator or a real one.  The KME is
 * authenticated by the deployment's CA like every other qroam channel, and
 * it knows the caller from the client certificate.
 *
 * This file is the one exception to "only conn.c touches bufferevents":
 * evhttp needs a bufferevent of its own, so the TLS bufferevent of the HTTPS
 * connection is made here and handed to evhttp, which owns it from then on.
 *
 * Requests wait in one queue and go out one at a time on one keep-alive
 * connection.  A connection that failed, timed out or was closed by the KME
 * is never reused, since its TLS session is spent; the next request opens
 * a fresh one.  Results are handed over from a deferred event, never from
 * inside evhttp, so a callback may queue new requests or free the source.
 * Key bytes are never logged, and every buffer that held them is wiped.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "ids.h"
#include "keysrc.h"
#include "log.h"

#define KS_BODY_MAX	65536		/* largest KME answer accepted */
#define KS_HEADERS_MAX	16384
#define KS_B64_MAX	64		/* longest base64 text of one key */
#define KS_MSG_MAX	160		/* longest KME message quoted in why */
#define KS_KEY_BITS	(KEYSRC_KEYLEN * 8)

enum ks_op {
	KS_ENC,			/* master: enc_keys */
	KS_DEC,			/* slave: dec_keys */
};

enum ks_state {
	KS_QUEUED,		/* waiting for its turn on the connection */
	KS_SENT,		/* on the wire; evhttp holds kr_http */
	KS_DONE,		/* result known, waiting to be handed over */
};

struct ks_req {
	TAILQ_ENTRY(ks_req)	 kr_entry;
	struct keysrc		*kr_ks;
	enum ks_op		 kr_op;
	enum ks_state		 kr_state;
	char			 kr_sae[NAME_MAXLEN + 1];
	char			 kr_want[KEYSRC_IDMAX + 1];	/* dec: key_ID asked for */
	keysrc_cb		 kr_cb;
	void			*kr_arg;
	struct evhttp_request	*kr_http;
	struct event		*kr_timer;
	int			 kr_httperr;	/* evhttp_request_error, -1: none */
	enum keysrc_result	 kr_result;
	char			 kr_key_id[KEYSRC_IDMAX + 1];
	uint8_t			 kr_key[KEYSRC_KEYLEN];
	char			 kr_why[256];
};

TAILQ_HEAD(ks_reqs, ks_req);

struct keysrc {
	struct event_base	*ks_base;
	char			 ks_host[256];
	uint16_t		 ks_port;
	SSL_CTX			*ks_tls;
	int			 ks_timeout_ms;
	struct evhttp_connection *ks_conn;	/* current connection, or NULL */
	struct evhttp_connection *ks_spent;	/* discarded, freed by the kick */
	struct ks_reqs		 ks_queue;	/* queued and sent, oldest first */
	struct ks_reqs		 ks_done;	/* results to hand over */
	struct event		*ks_kick;
	int			 ks_delivering;
	int			 ks_dying;
};

static void	ks_destroy(struct keysrc *);

static void
ks_ms_to_tv(int ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/* Run the kick from the event loop soon. */
static void
ks_schedule(struct keysrc *ks)
{
	event_active(ks->ks_kick, EV_TIMEOUT, 1);
}

/* Retire the current connection; it is freed outside evhttp's callbacks. */
static void
ks_discard(struct keysrc *ks)
{
	if (ks->ks_conn == NULL)
		return;
	/* One connection is made per kick and each kick frees the spent one. */
	if (ks->ks_spent != NULL)
		fatalx("keysrc: two connections discarded between kicks");
	evhttp_connection_set_closecb(ks->ks_conn, NULL, NULL);
	ks->ks_spent = ks->ks_conn;
	ks->ks_conn = NULL;
	ks_schedule(ks);
}

/* Record the outcome of kr and queue it for delivery. */
static void
ks_finish(struct ks_req *kr, enum keysrc_result res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ks_finish(struct ks_req *kr, enum keysrc_result res, const char *fmt, ...)
{
	struct keysrc	*ks = kr->kr_ks;
	va_list		 ap;

	if (kr->kr_state == KS_DONE)
		return;
	TAILQ_REMOVE(&ks->ks_queue, kr, kr_entry);
	kr->kr_state = KS_DONE;
	kr->kr_http = NULL;
	kr->kr_result = res;
	kr->kr_why[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(kr->kr_why, sizeof(kr->kr_why), fmt, ap);
		va_end(ap);
	}
	if (res != KEYSRC_OK)
		crypto_wipe(kr->kr_key, sizeof(kr->kr_key));
	evtimer_del(kr->kr_timer);
	TAILQ_INSERT_TAIL(&ks->ks_done, kr, kr_entry);
	ks_schedule(ks);
}

/* Copy the printable ASCII of s (at most KS_MSG_MAX chars) into buf. */
static void
ks_clean_text(const char *s, char *buf, size_t len)
{
	size_t	i, n = 0;

	for (i = 0; s[i] != '\0' && n + 1 < len && n < KS_MSG_MAX; i++)
		buf[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[n] = '\0';
}

/* A key_ID we can pass on: 1..KEYSRC_IDMAX printable ASCII characters. */
static int
ks_valid_key_id(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= KEYSRC_IDMAX || s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return i > 0;
}

/* Decode the base64 text of one key; exactly KEYSRC_KEYLEN bytes or -1. */
static int
ks_b64_key(const char *s, size_t len, uint8_t key[KEYSRC_KEYLEN])
{
	uint8_t	buf[KS_B64_MAX / 4 * 3];
	size_t	pad = 0;
	int	n, rc = -1;

	if (len == 0 || len > KS_B64_MAX || len % 4 != 0)
		return -1;
	if (s[len - 1] == '=')
		pad++;
	if (s[len - 2] == '=')
		pad++;
	n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len);
	if (n >= 0 && (size_t)n - pad == KEYSRC_KEYLEN) {
		memcpy(key, buf, KEYSRC_KEYLEN);
		rc = 0;
	}
	crypto_wipe(buf, sizeof(buf));
	return rc;
}

/* A 200 answer: the key container with exactly the one key asked for. */
static void
ks_parse_keys(struct ks_req *kr, json_t *root)
{
	json_t		*keys, *k, *id, *b64;
	const char	*ids;
	int		 ok;

	keys = json_object_get(root, "keys");
	if (!json_is_array(keys) || json_array_size(keys) != 1) {
		ks_finish(kr, KEYSRC_ERROR, "KME answer holds no key container "
		    "with one key");
		return;
	}
	k = json_array_get(keys, 0);
	id = json_object_get(k, "key_ID");
	b64 = json_object_get(k, "key");
	if (!json_is_string(id) || !ks_valid_key_id(json_string_value(id))) {
		ks_finish(kr, KEYSRC_ERROR, "KME answer has no valid key_ID");
		return;
	}
	ids = json_string_value(id);
	if (kr->kr_op == KS_DEC && strcmp(ids, kr->kr_want) != 0) {
		ks_finish(kr, KEYSRC_ERROR, "KME answered key_ID %s for %s",
		    ids, kr->kr_want);
		return;
	}
	if (!json_is_string(b64)) {
		ks_finish(kr, KEYSRC_ERROR, "KME answer for key_ID %s has no key",
		    ids);
		return;
	}
	ok = ks_b64_key(json_string_value(b64), json_string_length(b64),
	    kr->kr_key) == 0;
	/* The JSON string is ours to wipe before jansson frees it. */
	crypto_wipe((char *)json_string_value(b64), json_string_length(b64));
	if (!ok) {
		ks_finish(kr, KEYSRC_ERROR, "key %s from the KME is not %d bits "
		    "of base64", ids, KS_KEY_BITS);
		return;
	}
	snprintf(kr->kr_key_id, sizeof(kr->kr_key_id), "%s", ids);
	ks_finish(kr, KEYSRC_OK, NULL);
}

/* An error answer: 503, 400/401 or anything else, with the KME's message. */
static void
ks_parse_error(struct ks_req *kr, int code, json_t *root)
{
	json_t			*m = json_object_get(root, "message");
	enum keysrc_result	 res;
	char			 msg[KS_MSG_MAX + 1];

	if (json_is_string(m))
		ks_clean_text(json_string_value(m), msg, sizeof(msg));
	else
		snprintf(msg, sizeof(msg), "no message");
	if (code == 503)
		res = KEYSRC_UNAVAILABLE;
	else if (code == 400 || code == 401)
		res = KEYSRC_REFUSED;
	else
		res = KEYSRC_ERROR;
	ks_finish(kr, res, "KME answered %d: %s", code, msg);
}

/* Parse an HTTP answer, then wipe its body where it lies. */
static void
ks_answer(struct ks_req *kr, int code, struct evbuffer *body)
{
	json_error_t	 jerr;
	json_t		*root = NULL;
	size_t		 len = evbuffer_get_length(body);
	unsigned char	*p = NULL;

	if (len > 0 && len <= KS_BODY_MAX &&
	    (p = evbuffer_pullup(body, (ev_ssize_t)len)) != NULL) {
		root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES,
		    &jerr);
		crypto_wipe(p, len);
	}
	evbuffer_drain(body, len);
	if (code == 200) {
		if (root == NULL)
			ks_finish(kr, KEYSRC_ERROR, "KME answer is not JSON "
			    "(%zu bytes)", len);
		else
			ks_parse_keys(kr, root);
	} else
		ks_parse_error(kr, code, root);
	json_decref(root);
}

/* Why a request got no answer, from evhttp's error or the TLS layer. */
static void
ks_failure_text(struct evhttp_connection *evcon, int httperr, char *buf,
    size_t len)
{
	struct bufferevent	*bev;
	unsigned long		 e = 0;

	if (evcon != NULL && (bev = evhttp_connection_get_bufferevent(evcon)) != NULL)
		e = bufferevent_get_openssl_error(bev);
	if (e != 0 && ERR_GET_LIB(e) != 0) {
		snprintf(buf, len, "tls: ");
		ERR_error_string_n(e, buf + 5, len - 5);
		return;
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
		snprintf(buf, len, "cannot connect");
		break;
	}
}

/* evhttp's error callback: remember why, the request callback follows. */
static void
ks_http_error(enum evhttp_request_error err, void *arg)
{
	struct ks_req	*kr = arg;

	kr->kr_httperr = (int)err;
}

/* evhttp's request callback: an answer, or NULL / code 0 on failure. */
static void
ks_http_done(struct evhttp_request *r, void *arg)
{
	struct ks_req		*kr = arg;
	struct keysrc		*ks = kr->kr_ks;
	char			 why[160];
	int			 code = 0;

	if (kr->kr_state != KS_SENT)
		return;
	kr->kr_http = NULL;
	if (r != NULL)
		code = evhttp_request_get_response_code(r);
	if (code == 0) {
		ks_failure_text(ks->ks_conn != NULL ? ks->ks_conn : ks->ks_spent,
		    kr->kr_httperr, why, sizeof(why));
		ks_discard(ks);
		ks_finish(kr, KEYSRC_ERROR, "KME %s:%u: %s", ks->ks_host,
		    ks->ks_port, why);
		return;
	}
	ks_answer(kr, code, evhttp_request_get_input_buffer(r));
}

/* The KME closed the connection: never send on it again. */
static void
ks_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct keysrc	*ks = arg;

	if (evcon == ks->ks_conn)
		ks_discard(ks);
}

/* 1 if host is a numeric IPv4 or IPv6 address (no SNI for those). */
static int
ks_numeric_host(const char *host)
{
	unsigned char	buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

/* A new HTTPS connection to the KME; the TLS handshake runs on first use. */
static int
ks_connect(struct keysrc *ks)
{
	struct bufferevent	*bev;
	struct timeval		 tv;
	SSL			*ssl;

	if ((ssl = SSL_new(ks->ks_tls)) == NULL)
		return -1;
	if (!ks_numeric_host(ks->ks_host))
		SSL_set_tlsext_host_name(ssl, ks->ks_host);
	bev = bufferevent_openssl_socket_new(ks->ks_base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	/* Many HTTP servers close without a TLS close_notify. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	ks->ks_conn = evhttp_connection_base_bufferevent_new(ks->ks_base, NULL,
	    bev, ks->ks_host, ks->ks_port);
	if (ks->ks_conn == NULL) {
		bufferevent_free(bev);
		return -1;
	}
	evhttp_connection_set_retries(ks->ks_conn, 0);
	evhttp_connection_set_max_body_size(ks->ks_conn, KS_BODY_MAX);
	evhttp_connection_set_max_headers_size(ks->ks_conn, KS_HEADERS_MAX);
	ks_ms_to_tv(ks->ks_timeout_ms, &tv);
	evhttp_connection_set_timeout_tv(ks->ks_conn, &tv);
	evhttp_connection_set_closecb(ks->ks_conn, ks_conn_closed, ks);
	return 0;
}

/*
 * Headers and body leave in separate TLS records: without TCP_NODELAY the
 * second waits for the KME's delayed ACK.  The socket exists once
 * evhttp_make_request() started connecting.
 */
static void
ks_nodelay(struct evhttp_connection *evcon)
{
	evutil_socket_t	fd;
	int		one = 1;

	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* The JSON body of kr: the ETSI 014 request for one 256-bit key. */
static char *
ks_body(const struct ks_req *kr)
{
	json_t	*j;
	char	*s;

	if (kr->kr_op == KS_ENC)
		j = json_pack("{s:i, s:i}", "number", 1, "size", KS_KEY_BITS);
	else
		j = json_pack("{s:[{s:s}]}", "key_IDs", "key_ID", kr->kr_want);
	if (j == NULL)
		return NULL;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

/* Put kr on the wire: POST .../{SAE}/enc_keys or .../{SAE}/dec_keys. */
static void
ks_send(struct keysrc *ks, struct ks_req *kr)
{
	struct evhttp_request	*r;
	struct evkeyvalq	*h;
	char			 uri[128], *body;

	if (ks->ks_conn == NULL && ks_connect(ks) == -1) {
		ks_finish(kr, KEYSRC_ERROR, "cannot open a connection to the KME");
		return;
	}
	snprintf(uri, sizeof(uri), "/api/v1/keys/%s/%s", kr->kr_sae,
	    kr->kr_op == KS_ENC ? "enc_keys" : "dec_keys");
	if ((body = ks_body(kr)) == NULL ||
	    (r = evhttp_request_new(ks_http_done, kr)) == NULL) {
		free(body);
		ks_finish(kr, KEYSRC_ERROR, "out of memory");
		return;
	}
	evhttp_request_set_error_cb(r, ks_http_error);
	h = evhttp_request_get_output_headers(r);
	evhttp_add_header(h, "Host", ks->ks_host);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Accept", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(r), body, strlen(body));
	free(body);
	kr->kr_state = KS_SENT;
	kr->kr_http = r;
	kr->kr_httperr = -1;
	log_debug("keysrc: POST %s", uri);
	/* On failure evhttp has released r. */
	if (evhttp_make_request(ks->ks_conn, r, EVHTTP_REQ_POST, uri) == -1) {
		kr->kr_http = NULL;
		ks_discard(ks);
		ks_finish(kr, KEYSRC_ERROR, "cannot send a request to the KME");
		return;
	}
	ks_nodelay(ks->ks_conn);
}

/* Hand a result to its owner, then forget the request and its key. */
static void
ks_deliver(struct ks_req *kr)
{
	if (kr->kr_result == KEYSRC_OK) {
		log_debug("keysrc: %s for %s: key_ID %s",
		    kr->kr_op == KS_ENC ? "enc_keys" : "dec_keys", kr->kr_sae,
		    kr->kr_key_id);
		kr->kr_cb(kr->kr_arg, KEYSRC_OK, kr->kr_key_id, kr->kr_key, NULL);
	} else {
		log_debug("keysrc: %s for %s failed: %s",
		    kr->kr_op == KS_ENC ? "enc_keys" : "dec_keys", kr->kr_sae,
		    kr->kr_why);
		kr->kr_cb(kr->kr_arg, kr->kr_result, NULL, NULL, kr->kr_why);
	}
}

/* Free a request, wiping whatever key it held. */
static void
ks_req_free(struct ks_req *kr)
{
	if (kr->kr_timer != NULL)
		event_free(kr->kr_timer);
	crypto_wipe(kr, sizeof(*kr));
	free(kr);
}

/* Free spent connections, hand results over, send the next request. */
static void
ks_kick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct keysrc	*ks = arg;
	struct ks_req	*kr;

	(void)fd;
	(void)ev;
	if (ks->ks_spent != NULL) {
		evhttp_connection_free(ks->ks_spent);
		ks->ks_spent = NULL;
	}
	ks->ks_delivering = 1;
	while (!ks->ks_dying && (kr = TAILQ_FIRST(&ks->ks_done)) != NULL) {
		TAILQ_REMOVE(&ks->ks_done, kr, kr_entry);
		ks_deliver(kr);
		ks_req_free(kr);
	}
	ks->ks_delivering = 0;
	if (ks->ks_dying) {
		ks_destroy(ks);
		return;
	}
	kr = TAILQ_FIRST(&ks->ks_queue);
	if (kr != NULL && kr->kr_state == KS_QUEUED)
		ks_send(ks, kr);
}

/* The deadline of a request passed, queued or on the wire. */
static void
ks_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ks_req		*kr = arg;
	struct keysrc		*ks = kr->kr_ks;
	struct evhttp_request	*r = kr->kr_http;

	(void)fd;
	(void)ev;
	if (kr->kr_state == KS_SENT) {
		/* No longer on the wire: a late evhttp callback ignores it. */
		kr->kr_http = NULL;
		kr->kr_state = KS_QUEUED;
		ks_discard(ks);
		/* Frees r and resets the spent connection; no request callback. */
		if (r != NULL)
			evhttp_cancel_request(r);
	}
	ks_finish(kr, KEYSRC_ERROR, "no answer from the KME %s:%u within %d ms",
	    ks->ks_host, ks->ks_port, ks->ks_timeout_ms);
}

struct keysrc *
keysrc_new(struct event_base *base, const char *host, uint16_t port,
    SSL_CTX *tls, int timeout_ms)
{
	struct keysrc	*ks;

	if (host == NULL || strlen(host) >= sizeof(ks->ks_host) || port == 0 ||
	    tls == NULL)
		return NULL;
	if ((ks = calloc(1, sizeof(*ks))) == NULL)
		return NULL;
	ks->ks_base = base;
	snprintf(ks->ks_host, sizeof(ks->ks_host), "%s", host);
	ks->ks_port = port;
	ks->ks_tls = tls;
	ks->ks_timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	TAILQ_INIT(&ks->ks_queue);
	TAILQ_INIT(&ks->ks_done);
	if ((ks->ks_kick = event_new(base, -1, 0, ks_kick_cb, ks)) == NULL) {
		free(ks);
		return NULL;
	}
	return ks;
}

/* Free everything now; pending requests are dropped without callbacks. */
static void
ks_destroy(struct keysrc *ks)
{
	struct ks_req	*kr;

	while ((kr = TAILQ_FIRST(&ks->ks_queue)) != NULL) {
		TAILQ_REMOVE(&ks->ks_queue, kr, kr_entry);
		ks_req_free(kr);
	}
	while ((kr = TAILQ_FIRST(&ks->ks_done)) != NULL) {
		TAILQ_REMOVE(&ks->ks_done, kr, kr_entry);
		ks_req_free(kr);
	}
	/* Frees the evhttp requests still on them, without callbacks. */
	if (ks->ks_conn != NULL) {
		evhttp_connection_set_closecb(ks->ks_conn, NULL, NULL);
		evhttp_connection_free(ks->ks_conn);
	}
	if (ks->ks_spent != NULL)
		evhttp_connection_free(ks->ks_spent);
	event_free(ks->ks_kick);
	free(ks);
}

/*
 * Requests not answered yet are dropped and their callbacks never run.  A
 * callback may free its key source; the rest is freed once it returns.
 */
void
keysrc_free(struct keysrc *ks)
{
	if (ks == NULL)
		return;
	if (ks->ks_delivering) {
		ks->ks_dying = 1;
		return;
	}
	ks_destroy(ks);
}

/* Queue one request; its callback runs later from the event loop. */
static int
ks_queue(struct keysrc *ks, enum ks_op op, const char *sae, const char *want,
    keysrc_cb cb, void *arg)
{
	struct ks_req	*kr;
	struct timeval	 tv;

	if (ks == NULL || ks->ks_dying || cb == NULL || !id_valid_name(sae))
		return -1;
	if ((kr = calloc(1, sizeof(*kr))) == NULL)
		return -1;
	kr->kr_ks = ks;
	kr->kr_op = op;
	kr->kr_state = KS_QUEUED;
	snprintf(kr->kr_sae, sizeof(kr->kr_sae), "%s", sae);
	if (want != NULL)
		snprintf(kr->kr_want, sizeof(kr->kr_want), "%s", want);
	kr->kr_cb = cb;
	kr->kr_arg = arg;
	kr->kr_httperr = -1;
	if ((kr->kr_timer = evtimer_new(ks->ks_base, ks_timeout_cb, kr)) == NULL) {
		free(kr);
		return -1;
	}
	ks_ms_to_tv(ks->ks_timeout_ms, &tv);
	evtimer_add(kr->kr_timer, &tv);
	TAILQ_INSERT_TAIL(&ks->ks_queue, kr, kr_entry);
	ks_schedule(ks);
	return 0;
}

/* 0: the callback will run once; -1: nothing queued (bad SAE id, memory). */
int
keysrc_enc_key(struct keysrc *ks, const char *slave_sae, keysrc_cb cb,
    void *arg)
{
	return ks_queue(ks, KS_ENC, slave_sae, NULL, cb, arg);
}

/* As keysrc_enc_key; key_id must be a key_ID a KME could have issued. */
int
keysrc_dec_key(struct keysrc *ks, const char *master_sae, const char *key_id,
    keysrc_cb cb, void *arg)
{
	if (key_id == NULL || !ks_valid_key_id(key_id))
		return -1;
	return ks_queue(ks, KS_DEC, master_sae, key_id, cb, arg);
}
