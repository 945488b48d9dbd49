/*
 * The ETSI GS QKD 014 v1.1.1 key source backend (keysrc.h): the SAE side
 * of the REST interface, on libevent's HTTP client over OpenSSL; the JSON
 * is read and written by keysrc_json.c.
 * Only what the standard fixes is used (paths, field names, status codes),
 * so any KME serves, the qkdd emulator or a real one.  The KME is
 * authenticated by the deployment's CA like every other qroam channel, and
 * it knows the caller from the client certificate.
 *
 * This file is the one exception to "only conn.c touches bufferevents":
 * evhttp needs a bufferevent of its own, so the TLS bufferevent of the HTTPS
 * connection is made here and handed to evhttp, which owns it from then on.
 *
 * One request asks for several keys at once (enc_keys `number`, a list
 * of key_IDs in dec_keys) and gets them all or none.  Requests wait in
 * one queue and go out on a small pool of keep-alive
 * connections, one request per connection at a time: an idle connection is
 * reused, another is opened while fewer than KS_CONNS_MAX are open, and
 * otherwise the request waits for the first connection to become free.  A
 * connection that failed, timed out or was closed by the KME is never
 * reused, since its TLS session is spent; the requests on the others go on.
 * A connection we close first sends a TLS close_notify, so the KME sees an
 * orderly end rather than a truncated stream.  Results are handed over from
 * a deferred event, never from inside evhttp, so a callback may queue new
 * requests or free the source.  Key bytes are never logged, and every
 * buffer that held them is wiped.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

#include "crypto.h"
#include "httpc.h"
#include "ids.h"
#include "keysrc.h"
#include "keysrc_json.h"
#include "log.h"

#define KS_HEADERS_MAX	16384
#define KS_CONNS_MAX	4		/* KME connections open at once */

enum ks_op {
	KS_ENC,			/* master: enc_keys */
	KS_DEC,			/* slave: dec_keys */
};

enum ks_state {
	KS_QUEUED,		/* in ks_queue, waiting for a free connection */
	KS_SENT,		/* in ks_sent, on kr_conn; evhttp holds kr_http */
	KS_DONE,		/* in ks_done, waiting to be handed over */
};

/* One HTTPS connection of the pool, busy with kc_req or idle. */
struct ks_conn {
	TAILQ_ENTRY(ks_conn)	 kc_entry;
	struct ks_kme		*kc_ks;
	struct evhttp_connection *kc_http;
	struct ks_req		*kc_req;	/* on the wire, NULL: idle */
	int			 kc_spent;	/* in ks_spent, never reused */
};

TAILQ_HEAD(ks_conns, ks_conn);

struct ks_req {
	TAILQ_ENTRY(ks_req)	 kr_entry;
	struct ks_kme		*kr_ks;
	struct ks_conn		*kr_conn;	/* while KS_SENT */
	enum ks_op		 kr_op;
	enum ks_state		 kr_state;
	char			 kr_sae[NAME_MAXLEN + 1];
	size_t			 kr_n;		/* keys asked for */
	char			**kr_want;	/* dec: the key_IDs, else NULL */
	keysrc_cb		 kr_cb;
	void			*kr_arg;
	struct evhttp_request	*kr_http;
	struct event		*kr_timer;
	int			 kr_httperr;	/* evhttp_request_error, -1: none */
	enum keysrc_result	 kr_result;
	struct keysrc_key	*kr_keys;	/* kr_n of them */
	char			 kr_why[256];
};

TAILQ_HEAD(ks_reqs, ks_req);

struct ks_kme {
	struct event_base	*ks_base;
	char			 ks_host[256];
	uint16_t		 ks_port;
	SSL_CTX			*ks_tls;
	int			 ks_timeout_ms;
	struct ks_conns		 ks_conns;	/* open, idle ones first */
	struct ks_conns		 ks_spent;	/* discarded, freed by the kick */
	int			 ks_nconns;	/* length of ks_conns */
	struct ks_reqs		 ks_queue;	/* waiting, oldest first */
	struct ks_reqs		 ks_sent;	/* on the wire */
	struct ks_reqs		 ks_done;	/* results to hand over */
	struct event		*ks_kick;
	int			 ks_delivering;
	int			 ks_dying;
};

static void	ks_destroy(struct ks_kme *);

static void
ks_ms_to_tv(int ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/* Run the kick from the event loop soon. */
static void
ks_schedule(struct ks_kme *ks)
{
	event_active(ks->ks_kick, EV_TIMEOUT, 1);
}

/* Retire kc from the pool; it is freed outside evhttp's callbacks. */
static void
ks_discard(struct ks_conn *kc)
{
	struct ks_kme	*ks = kc->kc_ks;

	if (kc->kc_spent)
		return;
	httpc_close_notify(kc->kc_http);
	evhttp_connection_set_closecb(kc->kc_http, NULL, NULL);
	TAILQ_REMOVE(&ks->ks_conns, kc, kc_entry);
	ks->ks_nconns--;
	kc->kc_spent = 1;
	TAILQ_INSERT_TAIL(&ks->ks_spent, kc, kc_entry);
	ks_schedule(ks);
}

/* Take kr off its connection; a connection still usable becomes idle. */
static void
ks_release(struct ks_req *kr)
{
	struct ks_kme	*ks = kr->kr_ks;
	struct ks_conn	*kc = kr->kr_conn;

	kr->kr_conn = NULL;
	kr->kr_http = NULL;
	if (kc == NULL)
		return;
	kc->kc_req = NULL;
	if (!kc->kc_spent) {
		TAILQ_REMOVE(&ks->ks_conns, kc, kc_entry);
		TAILQ_INSERT_HEAD(&ks->ks_conns, kc, kc_entry);
	}
}

/* Record the outcome of kr and queue it for delivery. */
static void
ks_finish(struct ks_req *kr, enum keysrc_result res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ks_finish(struct ks_req *kr, enum keysrc_result res, const char *fmt, ...)
{
	struct ks_kme	*ks = kr->kr_ks;
	va_list		 ap;

	if (kr->kr_state == KS_DONE)
		return;
	if (kr->kr_state == KS_SENT) {
		TAILQ_REMOVE(&ks->ks_sent, kr, kr_entry);
		ks_release(kr);
	} else
		TAILQ_REMOVE(&ks->ks_queue, kr, kr_entry);
	kr->kr_state = KS_DONE;
	kr->kr_result = res;
	kr->kr_why[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(kr->kr_why, sizeof(kr->kr_why), fmt, ap);
		va_end(ap);
	}
	if (res != KEYSRC_OK)
		crypto_wipe(kr->kr_keys, kr->kr_n * sizeof(*kr->kr_keys));
	evtimer_del(kr->kr_timer);
	TAILQ_INSERT_TAIL(&ks->ks_done, kr, kr_entry);
	ks_schedule(ks);
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
	struct ks_kme		*ks = kr->kr_ks;
	enum keysrc_result	 res;
	char			 why[256];
	int			 code = 0;

	if (kr->kr_state != KS_SENT)
		return;
	kr->kr_http = NULL;
	if (r != NULL)
		code = evhttp_request_get_response_code(r);
	if (code == 0) {
		httpc_failure_text(kr->kr_conn->kc_http, kr->kr_httperr, why,
		    sizeof(why));
		ks_discard(kr->kr_conn);
		ks_finish(kr, KEYSRC_ERROR, "KME %s:%u: %s", ks->ks_host,
		    ks->ks_port, why);
		return;
	}
	res = keysrc_json_answer(code, evhttp_request_get_input_buffer(r),
	    (const char *const *)kr->kr_want, kr->kr_n, kr->kr_keys, why,
	    sizeof(why));
	if (res == KEYSRC_OK)
		ks_finish(kr, res, NULL);
	else
		ks_finish(kr, res, "%s", why);
}

/*
 * evhttp is about to close kc's socket (the KME closed it, or it stayed idle
 * past the timeout): say goodbye in TLS and never send on it again.
 */
static void
ks_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct ks_conn	*kc = arg;

	(void)evcon;
	ks_discard(kc);
}

/*
 * A new idle HTTPS connection to the KME in the pool, or NULL; the TLS
 * handshake runs on first use.
 */
static struct ks_conn *
ks_connect(struct ks_kme *ks)
{
	struct ks_conn		*kc;
	struct timeval		 tv;

	if ((kc = calloc(1, sizeof(*kc))) == NULL)
		return NULL;
	kc->kc_http = httpc_connect(ks->ks_base, ks->ks_tls, ks->ks_host,
	    ks->ks_port);
	if (kc->kc_http == NULL) {
		free(kc);
		return NULL;
	}
	kc->kc_ks = ks;
	evhttp_connection_set_retries(kc->kc_http, 0);
	evhttp_connection_set_max_body_size(kc->kc_http, KEYSRC_JSON_BODY_MAX);
	evhttp_connection_set_max_headers_size(kc->kc_http, KS_HEADERS_MAX);
	ks_ms_to_tv(ks->ks_timeout_ms, &tv);
	evhttp_connection_set_timeout_tv(kc->kc_http, &tv);
	evhttp_connection_set_closecb(kc->kc_http, ks_conn_closed, kc);
	TAILQ_INSERT_HEAD(&ks->ks_conns, kc, kc_entry);
	ks->ks_nconns++;
	return kc;
}

/* Close kc at once: close_notify, then its evhttp requests go silently. */
static void
ks_conn_free(struct ks_conn *kc)
{
	if (!kc->kc_spent)
		httpc_close_notify(kc->kc_http);
	evhttp_connection_set_closecb(kc->kc_http, NULL, NULL);
	evhttp_connection_free(kc->kc_http);
	free(kc);
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

/* Put kr on the idle kc: POST .../{SAE}/enc_keys or .../{SAE}/dec_keys. */
static void
ks_send(struct ks_kme *ks, struct ks_conn *kc, struct ks_req *kr)
{
	struct evhttp_request	*r;
	struct evkeyvalq	*h;
	char			 uri[128], *body;

	snprintf(uri, sizeof(uri), "/api/v1/keys/%s/%s", kr->kr_sae,
	    kr->kr_op == KS_ENC ? "enc_keys" : "dec_keys");
	body = keysrc_json_request(kr->kr_n, (const char *const *)kr->kr_want);
	if (body == NULL ||
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
	TAILQ_REMOVE(&ks->ks_queue, kr, kr_entry);
	TAILQ_INSERT_TAIL(&ks->ks_sent, kr, kr_entry);
	kr->kr_state = KS_SENT;
	kr->kr_http = r;
	kr->kr_httperr = -1;
	kr->kr_conn = kc;
	kc->kc_req = kr;
	/* Busy connections go to the back, behind the idle ones. */
	TAILQ_REMOVE(&ks->ks_conns, kc, kc_entry);
	TAILQ_INSERT_TAIL(&ks->ks_conns, kc, kc_entry);
	log_debug("keysrc: POST %s (%zu key%s)", uri, kr->kr_n,
	    kr->kr_n == 1 ? "" : "s");
	/* On failure evhttp has released r. */
	if (evhttp_make_request(kc->kc_http, r, EVHTTP_REQ_POST, uri) == -1) {
		kr->kr_http = NULL;
		ks_discard(kc);
		ks_finish(kr, KEYSRC_ERROR, "cannot send a request to the KME");
		return;
	}
	ks_nodelay(kc->kc_http);
}

/*
 * Send waiting requests, oldest first, on idle connections, opening new ones
 * up to KS_CONNS_MAX; the rest wait until a connection is free again.
 */
static void
ks_dispatch(struct ks_kme *ks)
{
	struct ks_conn	*kc;
	struct ks_req	*kr;

	while ((kr = TAILQ_FIRST(&ks->ks_queue)) != NULL) {
		kc = TAILQ_FIRST(&ks->ks_conns);
		if (kc == NULL || kc->kc_req != NULL) {
			if (ks->ks_nconns >= KS_CONNS_MAX)
				return;
			if ((kc = ks_connect(ks)) == NULL) {
				ks_finish(kr, KEYSRC_ERROR, "cannot open a "
				    "connection to the KME");
				continue;
			}
		}
		ks_send(ks, kc, kr);
	}
}

/*
 * Free the discarded connections.  A request still on one gets its failure
 * here, since freeing the connection drops it without an evhttp callback.
 */
static void
ks_free_spent(struct ks_kme *ks)
{
	struct ks_conn	*kc;

	while ((kc = TAILQ_FIRST(&ks->ks_spent)) != NULL) {
		TAILQ_REMOVE(&ks->ks_spent, kc, kc_entry);
		if (kc->kc_req != NULL)
			ks_finish(kc->kc_req, KEYSRC_ERROR, "KME %s:%u: "
			    "connection closed", ks->ks_host, ks->ks_port);
		ks_conn_free(kc);
	}
}

/* Hand a result to its owner, then forget the request and its keys. */
static void
ks_deliver(struct ks_req *kr)
{
	const char	*op = kr->kr_op == KS_ENC ? "enc_keys" : "dec_keys";
	size_t		 i;

	if (kr->kr_result == KEYSRC_OK) {
		for (i = 0; i < kr->kr_n; i++)
			log_debug("keysrc: %s for %s: key_ID %s", op, kr->kr_sae,
			    kr->kr_keys[i].kk_id);
		kr->kr_cb(kr->kr_arg, KEYSRC_OK, kr->kr_keys, kr->kr_n, NULL);
	} else {
		log_debug("keysrc: %s for %s failed: %s", op, kr->kr_sae,
		    kr->kr_why);
		kr->kr_cb(kr->kr_arg, kr->kr_result, NULL, 0, kr->kr_why);
	}
}

/* Free a request, wiping whatever keys it held. */
static void
ks_req_free(struct ks_req *kr)
{
	size_t	i;

	if (kr->kr_timer != NULL)
		event_free(kr->kr_timer);
	if (kr->kr_keys != NULL) {
		crypto_wipe(kr->kr_keys, kr->kr_n * sizeof(*kr->kr_keys));
		free(kr->kr_keys);
	}
	for (i = 0; kr->kr_want != NULL && i < kr->kr_n; i++)
		free(kr->kr_want[i]);
	free(kr->kr_want);
	crypto_wipe(kr, sizeof(*kr));
	free(kr);
}

/* Free spent connections, hand results over, send waiting requests. */
static void
ks_kick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ks_kme	*ks = arg;
	struct ks_req	*kr;

	(void)fd;
	(void)ev;
	ks_free_spent(ks);
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
	ks_dispatch(ks);
}

/* The deadline of a request passed, queued or on the wire. */
static void
ks_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ks_req		*kr = arg;
	struct ks_kme		*ks = kr->kr_ks;
	struct evhttp_request	*r = kr->kr_http;

	(void)fd;
	(void)ev;
	if (kr->kr_state == KS_SENT)
		ks_discard(kr->kr_conn);
	/* No longer on the wire: a late evhttp callback ignores it. */
	ks_finish(kr, KEYSRC_ERROR, "no answer from the KME %s:%u within %d ms",
	    ks->ks_host, ks->ks_port, ks->ks_timeout_ms);
	/* Frees r and resets the spent connection; no request callback. */
	if (r != NULL)
		evhttp_cancel_request(r);
}

/* A client of the KME at host:port; tls is a client context (mTLS). */
static void *
ks_open(struct event_base *base, const char *host, uint16_t port,
    SSL_CTX *tls, int timeout_ms)
{
	struct ks_kme	*ks;

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
	TAILQ_INIT(&ks->ks_conns);
	TAILQ_INIT(&ks->ks_spent);
	TAILQ_INIT(&ks->ks_queue);
	TAILQ_INIT(&ks->ks_sent);
	TAILQ_INIT(&ks->ks_done);
	if ((ks->ks_kick = event_new(base, -1, 0, ks_kick_cb, ks)) == NULL) {
		free(ks);
		return NULL;
	}
	return ks;
}

/* Free everything now; pending requests are dropped without callbacks. */
static void
ks_destroy(struct ks_kme *ks)
{
	struct ks_reqs	*lists[] = { &ks->ks_queue, &ks->ks_sent, &ks->ks_done };
	struct ks_conn	*kc;
	struct ks_req	*kr;
	size_t		 i;

	/* Frees the evhttp requests still on them, without callbacks. */
	while ((kc = TAILQ_FIRST(&ks->ks_conns)) != NULL) {
		TAILQ_REMOVE(&ks->ks_conns, kc, kc_entry);
		ks_conn_free(kc);
	}
	while ((kc = TAILQ_FIRST(&ks->ks_spent)) != NULL) {
		TAILQ_REMOVE(&ks->ks_spent, kc, kc_entry);
		ks_conn_free(kc);
	}
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		while ((kr = TAILQ_FIRST(lists[i])) != NULL) {
			TAILQ_REMOVE(lists[i], kr, kr_entry);
			ks_req_free(kr);
		}
	}
	event_free(ks->ks_kick);
	free(ks);
}

/*
 * Requests not answered yet are dropped and their callbacks never run.  A
 * callback may free its key source; the rest is freed once it returns.
 */
static void
ks_close(void *ctx)
{
	struct ks_kme	*ks = ctx;

	if (ks->ks_delivering) {
		ks->ks_dying = 1;
		return;
	}
	ks_destroy(ks);
}

/* A copy of the n key_IDs want (NULL: none wanted) for kr; 0 or -1. */
static int
ks_copy_want(struct ks_req *kr, const char *const *want, size_t n)
{
	size_t	i;

	if (want == NULL)
		return 0;
	if ((kr->kr_want = calloc(n, sizeof(*kr->kr_want))) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if ((kr->kr_want[i] = strdup(want[i])) == NULL)
			return -1;
	return 0;
}

/* Queue one request; its callback runs later from the event loop. */
static int
ks_queue(struct ks_kme *ks, enum ks_op op, const char *sae,
    const char *const *want, size_t n, keysrc_cb cb, void *arg)
{
	struct ks_req	*kr;
	struct timeval	 tv;

	if (ks->ks_dying)
		return -1;
	if ((kr = calloc(1, sizeof(*kr))) == NULL)
		return -1;
	kr->kr_ks = ks;
	kr->kr_op = op;
	kr->kr_state = KS_QUEUED;
	snprintf(kr->kr_sae, sizeof(kr->kr_sae), "%s", sae);
	kr->kr_n = n;
	kr->kr_cb = cb;
	kr->kr_arg = arg;
	kr->kr_httperr = -1;
	if ((kr->kr_keys = calloc(n, sizeof(*kr->kr_keys))) == NULL ||
	    ks_copy_want(kr, want, n) == -1 ||
	    (kr->kr_timer = evtimer_new(ks->ks_base, ks_timeout_cb, kr)) == NULL) {
		ks_req_free(kr);
		return -1;
	}
	ks_ms_to_tv(ks->ks_timeout_ms, &tv);
	evtimer_add(kr->kr_timer, &tv);
	TAILQ_INSERT_TAIL(&ks->ks_queue, kr, kr_entry);
	ks_schedule(ks);
	return 0;
}

/* Master side: POST /api/v1/keys/{slave}/enc_keys for number keys. */
static int
ks_get_keys(void *ctx, const char *slave_sae, size_t number, keysrc_cb cb,
    void *arg)
{
	return ks_queue(ctx, KS_ENC, slave_sae, NULL, number, cb, arg);
}

/* Slave side: POST /api/v1/keys/{master}/dec_keys for the key_IDs. */
static int
ks_get_keys_by_id(void *ctx, const char *master_sae,
    const char *const *key_ids, size_t n, keysrc_cb cb, void *arg)
{
	return ks_queue(ctx, KS_DEC, master_sae, key_ids, n, cb, arg);
}

/*
 * Drop one request wherever it is.  One on the wire takes its connection
 * with it, since the answer can no longer be told from the next one's.
 */
static void
ks_drop(struct ks_req *kr)
{
	struct ks_kme		*ks = kr->kr_ks;
	struct evhttp_request	*r = kr->kr_http;

	switch (kr->kr_state) {
	case KS_QUEUED:
		TAILQ_REMOVE(&ks->ks_queue, kr, kr_entry);
		break;
	case KS_SENT:
		ks_discard(kr->kr_conn);
		TAILQ_REMOVE(&ks->ks_sent, kr, kr_entry);
		ks_release(kr);
		/* Frees r and resets the spent connection; no callback. */
		if (r != NULL)
			evhttp_cancel_request(r);
		break;
	case KS_DONE:
		TAILQ_REMOVE(&ks->ks_done, kr, kr_entry);
		break;
	}
	ks_req_free(kr);
}

/* Forget the requests of (cb, arg): their callbacks never run. */
static void
ks_cancel(void *ctx, keysrc_cb cb, void *arg)
{
	struct ks_kme	*ks = ctx;
	struct ks_reqs	*lists[] = { &ks->ks_queue, &ks->ks_sent, &ks->ks_done };
	struct ks_req	*kr, *next;
	size_t		 i;

	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		for (kr = TAILQ_FIRST(lists[i]); kr != NULL; kr = next) {
			next = TAILQ_NEXT(kr, kr_entry);
			if (kr->kr_cb == cb && kr->kr_arg == arg)
				ks_drop(kr);
		}
	}
}

const struct keysrc_backend keysrc_etsi014 = {
	.kb_name = "etsi014",
	.kb_desc = "ETSI GS QKD 014 KME",
	.kb_open = ks_open,
	.kb_get_keys = ks_get_keys,
	.kb_get_keys_by_id = ks_get_keys_by_id,
	.kb_cancel = ks_cancel,
	.kb_close = ks_close,
};
