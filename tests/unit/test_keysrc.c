/*
 * Unit tests of the key source interface and its ETSI GS QKD 014 backend
 * against a fake KME in the same process: an evhttp HTTPS server with
 * mutual TLS that answers canned JSON.  Checks the choice of backend by
 * name, the requests (path, method, body, the caller's certificate), key
 * delivery, batches of keys both ways (number, several key_IDs, answers
 * in another order, short or repeated answers), the mapping of 503/400/401
 * and of malformed answers, a KME that is down or silent, cancelled
 * requests, connection reuse and reconnection, requests in parallel on a
 * pool of connections and queued beyond it, a TLS close_notify on every
 * connection the source closes, and that key bytes never reach the log.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "crypto.h"
#include "keysrc.h"
#include "log.h"
#include "tls.h"

#include "testutil.h"

#define WAIT_MS		5000
#define TIMEOUT_MS	400
#define KEY_ID		"550e8400-e29b-41d4-a716-446655440000"
#define MAXGOT		8
#define POOL		4	/* KS_CONNS_MAX in keysrc.c */
#define DELAY_MS	200	/* a slow KME */

/* A fake KME and what it was asked. */
struct fake_kme {
	struct event_base	*fk_base;
	struct evhttp		*fk_http;
	SSL_CTX			*fk_tls;
	uint16_t		 fk_port;
	int			 fk_status;	/* HTTP status of the answers */
	const char		*fk_body;	/* NULL: a container with fk_key */
	int			 fk_silent;	/* never answer */
	int			 fk_close;	/* answer with Connection: close */
	int			 fk_delay_ms;	/* answer after this long */
	int			 fk_drop_nth;	/* drop the connection of request n */
	int			 fk_echo;	/* dec_keys: the key_IDs asked for */
	int			 fk_requests;
	int			 fk_conns;
	int			 fk_held;	/* delayed requests not answered yet */
	int			 fk_max_held;	/* most held at one time */
	int			 fk_delayed;	/* requests delayed so far */
	int			 fk_released;	/* of those, answered or dropped */
	int			 fk_alerts;	/* fatal TLS alerts sent */
	int			 fk_closed;	/* connections that ended */
	int			 fk_method;
	char			 fk_path[128];
	char			 fk_reqbody[8192];
	char			 fk_cn[65];
	char			 fk_role[33];
	uint8_t			 fk_key[KEYSRC_KEYLEN];
};

/* Results handed to the key source's callback. */
struct got {
	int			 g_n;
	enum keysrc_result	 g_res[MAXGOT];
	char			 g_id[MAXGOT][KEYSRC_IDMAX + 1];
	uint8_t			 g_key[MAXGOT][KEYSRC_KEYLEN];
	int			 g_nokey[MAXGOT];
	size_t			 g_nkeys[MAXGOT];
	struct keysrc_key	 g_batch[KEYSRC_BATCH_MAX];	/* of the last */
	char			 g_why[MAXGOT][256];
	struct keysrc		*g_free_in_cb;
};

static char		 pkidir[64];
static struct event_base *base;
static struct fake_kme	 kme;
static SSL_CTX		*client_tls;

/* Our CA with the KME, the scheduler and a TSP, and a KME from elsewhere. */
static const struct tu_cert pki[] = {
	{ "ca",		"test CA",	"ca",		NULL },
	{ "rogue",	"rogue CA",	"ca",		NULL },
	{ "qkd",	"qkd",		"qkd",		"ca" },
	{ "sched",	"sched",	"sched",	"ca" },
	{ "fake-qkd",	"qkd",		"qkd",		"rogue" },
	{ NULL,		NULL,		NULL,		NULL },
};

/* Count the fatal alerts the KME sends, such as decode_error on a bare EOF. */
static void
kme_tls_info(const SSL *ssl, int where, int ret)
{
	(void)ssl;
	if ((where & SSL_CB_ALERT) != 0 && (where & SSL_CB_WRITE) != 0 &&
	    (ret >> 8) == SSL3_AL_FATAL)
		kme.fk_alerts++;
}

/* The TLS side of every connection the fake KME accepts. */
static struct bufferevent *
kme_bevcb(struct event_base *b, void *arg)
{
	struct fake_kme	*fk = arg;
	SSL		*ssl = SSL_new(fk->fk_tls);

	fk->fk_conns++;
	SSL_set_info_callback(ssl, kme_tls_info);
	return bufferevent_openssl_socket_new(b, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

/* The key i of a batch: fk_key with byte 1 set to i (0: fk_key). */
static void
kme_batch_key(const struct fake_kme *fk, size_t i, uint8_t key[KEYSRC_KEYLEN])
{
	memcpy(key, fk->fk_key, KEYSRC_KEYLEN);
	if (i > 0)
		key[1] = (uint8_t)i;
}

/* The key_ID i of a batch: KEY_ID with its last three digits set to i. */
static void
kme_batch_id(size_t i, char id[KEYSRC_IDMAX + 1])
{
	snprintf(id, KEYSRC_IDMAX + 1, "%s", KEY_ID);
	if (i > 0)
		snprintf(id + strlen(KEY_ID) - 3, 4, "%03u", (unsigned)(i % 1000));
}

/*
 * The key container a KME sends: as many keys as the request's number
 * (one without it), key i under kme_batch_id(i); with fk_echo, the key_IDs
 * of a dec_keys request, last first, key i for the i-th asked.
 */
static void
kme_container(const struct fake_kme *fk, struct evbuffer *out)
{
	json_t		*j = json_loads(fk->fk_reqbody, 0, NULL), *ids;
	char		 b64[64], id[KEYSRC_IDMAX + 1];
	uint8_t		 key[KEYSRC_KEYLEN];
	size_t		 n = 1, i, k;

	ids = json_object_get(j, "key_IDs");
	if (json_integer_value(json_object_get(j, "number")) > 1)
		n = (size_t)json_integer_value(json_object_get(j, "number"));
	else if (fk->fk_echo && json_is_array(ids))
		n = json_array_size(ids);
	evbuffer_add_printf(out, "{\"keys\":[");
	for (i = 0; i < n; i++) {
		k = fk->fk_echo && json_is_array(ids) ? n - 1 - i : i;
		if (fk->fk_echo && json_is_array(ids))
			snprintf(id, sizeof(id), "%s", json_string_value(
			    json_object_get(json_array_get(ids, k), "key_ID")));
		else
			kme_batch_id(k, id);
		kme_batch_key(fk, k, key);
		EVP_EncodeBlock((unsigned char *)b64, key, KEYSRC_KEYLEN);
		evbuffer_add_printf(out, "%s{\"key_ID\":\"%s\",\"key\":\"%s\"}",
		    i > 0 ? "," : "", id, b64);
	}
	evbuffer_add_printf(out, "]}");
	json_decref(j);
}

/* Answer req as configured: fk_body or a key container, fk_status. */
static void
kme_reply(struct fake_kme *fk, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct evbuffer		*out;
	int			 one = 1;

	/* The caller went away: evhttp frees req on this reply. */
	if (evcon == NULL) {
		evhttp_send_reply(req, fk->fk_status, "answer", NULL);
		return;
	}
	/* Headers and body are separate TLS records: do not wait for ACKs. */
	(void)setsockopt(bufferevent_getfd(evhttp_connection_get_bufferevent(evcon)),
	    IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	out = evbuffer_new();
	assert_non_null(out);
	if (fk->fk_body != NULL)
		evbuffer_add(out, fk->fk_body, strlen(fk->fk_body));
	else
		kme_container(fk, out);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	if (fk->fk_close)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
	evhttp_send_reply(req, fk->fk_status, "answer", out);
	evbuffer_free(out);
}

/* A delayed request of the fake KME. */
struct held {
	struct fake_kme		*h_fk;
	struct evhttp_request	*h_req;
	int			 h_drop;	/* close without answering */
};

/* The delay of a held request is over: answer it, or drop its connection. */
static void
kme_release(evutil_socket_t fd, short ev, void *arg)
{
	struct held		*h = arg;
	struct fake_kme		*fk = h->h_fk;
	struct evhttp_connection *evcon = evhttp_request_get_connection(h->h_req);

	(void)fd;
	(void)ev;
	fk->fk_held--;
	fk->fk_released++;
	if (h->h_drop && evcon != NULL)
		evhttp_connection_free(evcon);
	else
		kme_reply(fk, h->h_req);
	free(h);
}

/* Hold req for fk_delay_ms, counting how many are held at once. */
static void
kme_hold(struct fake_kme *fk, struct evhttp_request *req)
{
	struct timeval	 tv = { 0, fk->fk_delay_ms * 1000 };
	struct held	*h;

	h = calloc(1, sizeof(*h));
	assert_non_null(h);
	h->h_fk = fk;
	h->h_req = req;
	h->h_drop = fk->fk_requests == fk->fk_drop_nth;
	assert_int_equal(event_base_once(fk->fk_base, -1, EV_TIMEOUT,
	    kme_release, h, &tv), 0);
	fk->fk_delayed++;
	if (++fk->fk_held > fk->fk_max_held)
		fk->fk_max_held = fk->fk_held;
}

/* A connection of the fake KME ended. */
static void
kme_closed(struct evhttp_connection *evcon, void *arg)
{
	struct fake_kme	*fk = arg;

	(void)evcon;
	fk->fk_closed++;
}

/* Record the request and who made it, then answer as configured. */
static void
kme_gencb(struct evhttp_request *req, void *arg)
{
	struct fake_kme		*fk = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct evbuffer		*in = evhttp_request_get_input_buffer(req);
	SSL			*ssl;
	size_t			 n;

	fk->fk_requests++;
	fk->fk_method = evhttp_request_get_command(req);
	snprintf(fk->fk_path, sizeof(fk->fk_path), "%s", evhttp_request_get_uri(req));
	n = evbuffer_copyout(in, fk->fk_reqbody, sizeof(fk->fk_reqbody) - 1);
	fk->fk_reqbody[n] = '\0';
	ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon));
	assert_int_equal(tls_peer_identity(ssl, fk->fk_cn, sizeof(fk->fk_cn),
	    fk->fk_role, sizeof(fk->fk_role)), 0);
	evhttp_connection_set_closecb(evcon, kme_closed, fk);
	if (fk->fk_silent)
		return;
	if (fk->fk_delay_ms > 0)
		kme_hold(fk, req);
	else
		kme_reply(fk, req);
}

/* Start the fake KME on a free loopback port with certificate cert. */
static void
kme_start(struct fake_kme *fk, const char *cert)
{
	struct evhttp_bound_socket	*bs;

	memset(fk, 0, sizeof(*fk));
	fk->fk_base = base;
	fk->fk_tls = tu_tls_ctx(pkidir, cert, 1);
	fk->fk_status = 200;
	fk->fk_http = evhttp_new(base);
	assert_non_null(fk->fk_http);
	evhttp_set_bevcb(fk->fk_http, kme_bevcb, fk);
	evhttp_set_gencb(fk->fk_http, kme_gencb, fk);
	evhttp_set_allowed_methods(fk->fk_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	fk->fk_port = tu_free_port();
	bs = evhttp_bind_socket_with_handle(fk->fk_http, "127.0.0.1", fk->fk_port);
	assert_non_null(bs);
	memset(fk->fk_key, 0xa5, sizeof(fk->fk_key));
	fk->fk_key[0] = 0x3c;
}

static void
kme_stop(struct fake_kme *fk)
{
	evhttp_free(fk->fk_http);
	SSL_CTX_free(fk->fk_tls);
	fk->fk_http = NULL;
}

/*
 * The key source's callback: record the result (the first key, and every
 * key of the last batch), free the source if asked.
 */
static void
got_cb(void *arg, enum keysrc_result res, const struct keysrc_key *keys,
    size_t n, const char *why)
{
	struct got	*g = arg;
	int		 i = g->g_n;

	assert_true(i < MAXGOT);
	g->g_res[i] = res;
	g->g_nkeys[i] = n;
	g->g_nokey[i] = keys == NULL;
	if (keys != NULL) {
		assert_true(n >= 1 && n <= KEYSRC_BATCH_MAX);
		snprintf(g->g_id[i], sizeof(g->g_id[i]), "%s", keys[0].kk_id);
		memcpy(g->g_key[i], keys[0].kk_key, KEYSRC_KEYLEN);
		memcpy(g->g_batch, keys, n * sizeof(*keys));
	}
	if (res == KEYSRC_OK)
		assert_null(why);
	else {
		assert_non_null(why);
		assert_int_equal(n, 0);
		snprintf(g->g_why[i], sizeof(g->g_why[i]), "%s", why);
	}
	g->g_n++;
	if (g->g_free_in_cb != NULL) {
		keysrc_free(g->g_free_in_cb);
		g->g_free_in_cb = NULL;
	}
}

static int
group_setup(void **state)
{
	(void)state;
	return tu_pki_setup("test_keysrc", pkidir, sizeof(pkidir), pki);
}

static int
group_teardown(void **state)
{
	(void)state;
	return tu_tmpdir_free(pkidir);
}

static int
setup(void **state)
{
	(void)state;
	base = event_base_new();
	assert_non_null(base);
	client_tls = tu_tls_ctx(pkidir, "sched", 0);
	kme_start(&kme, "qkd");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	/* Held requests are answered before the KME goes. */
	tu_wait_count(base, &kme.fk_released, kme.fk_delayed, WAIT_MS);
	if (kme.fk_http != NULL)
		kme_stop(&kme);
	tu_run_for(base, 20);
	SSL_CTX_free(client_tls);
	event_base_free(base);
	return 0;
}

/* An ETSI GS QKD 014 key source for a KME on port of loopback. */
static struct keysrc *
source_at(uint16_t port, int timeout_ms)
{
	return keysrc_new("etsi014", base, "127.0.0.1", port, client_tls,
	    timeout_ms);
}

/* A key source for the fake KME with a short timeout. */
static struct keysrc *
new_source(void)
{
	struct keysrc	*ks;

	ks = source_at(kme.fk_port, TIMEOUT_MS);
	assert_non_null(ks);
	return ks;
}

/* A key source whose deadline leaves room for slow and queued requests. */
static struct keysrc *
patient_source(void)
{
	struct keysrc	*ks;

	ks = source_at(kme.fk_port, WAIT_MS);
	assert_non_null(ks);
	return ks;
}

/* n enc_keys requests at once. */
static void
enc_many(struct keysrc *ks, struct got *g, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		assert_int_equal(keysrc_get_keys(ks, "tsp-a", 1, got_cb, g), 0);
}

/* How many of the first n results are res. */
static int
count_results(const struct got *g, int n, enum keysrc_result res)
{
	int	i, c = 0;

	for (i = 0; i < n; i++)
		c += g->g_res[i] == res;
	return c;
}

/* One enc_keys request for tsp-a; waits for its result. */
static void
enc_one(struct keysrc *ks, struct got *g)
{
	int	n = g->g_n;

	assert_int_equal(keysrc_get_keys(ks, "tsp-a", 1, got_cb, g), 0);
	tu_wait_count(base, &g->g_n, n + 1, WAIT_MS);
}

/* One dec_keys request for key_id from sched; waits for its result. */
static void
dec_one(struct keysrc *ks, const char *key_id, struct got *g)
{
	int	n = g->g_n;

	assert_int_equal(keysrc_get_keys_by_id(ks, "sched", &key_id, 1, got_cb,
	    g), 0);
	tu_wait_count(base, &g->g_n, n + 1, WAIT_MS);
}

/* The request body as JSON; the caller frees it. */
static json_t *
request_json(void)
{
	json_t	*j = json_loads(kme.fk_reqbody, 0, NULL);

	assert_non_null(j);
	return j;
}

static void
test_enc_key(void **state)
{
	struct keysrc	*ks = new_source();
	struct got	 g;
	json_t		*j;

	(void)state;
	memset(&g, 0, sizeof(g));
	enc_one(ks, &g);
	assert_int_equal(g.g_res[0], KEYSRC_OK);
	assert_string_equal(g.g_id[0], KEY_ID);
	assert_memory_equal(g.g_key[0], kme.fk_key, KEYSRC_KEYLEN);
	assert_int_equal(kme.fk_method, EVHTTP_REQ_POST);
	assert_string_equal(kme.fk_path, "/api/v1/keys/tsp-a/enc_keys");
	assert_string_equal(kme.fk_cn, "sched");
	j = request_json();
	assert_int_equal(json_integer_value(json_object_get(j, "number")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "size")), 256);
	json_decref(j);
	keysrc_free(ks);
}

static void
test_dec_key(void **state)
{
	struct keysrc	*ks = new_source();
	struct got	 g;
	json_t		*j, *ids;

	(void)state;
	memset(&g, 0, sizeof(g));
	dec_one(ks, KEY_ID, &g);
	assert_int_equal(g.g_res[0], KEYSRC_OK);
	assert_string_equal(g.g_id[0], KEY_ID);
	assert_memory_equal(g.g_key[0], kme.fk_key, KEYSRC_KEYLEN);
	assert_string_equal(kme.fk_path, "/api/v1/keys/sched/dec_keys");
	j = request_json();
	ids = json_object_get(j, "key_IDs");
	assert_int_equal(json_array_size(ids), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(ids, 0), "key_ID")), KEY_ID);
	json_decref(j);
	keysrc_free(ks);
}

/* Requests one after another share one connection; a closed one is replaced. */
static void
test_reuse_and_reconnect(void **state)
{
	struct keysrc	*ks = new_source();
	struct timeval	 idle = { 0, 150000 };
	struct got	 g;
	int		 i;

	(void)state;
	memset(&g, 0, sizeof(g));
	for (i = 0; i < 3; i++) {
		enc_one(ks, &g);
		assert_int_equal(g.g_res[i], KEYSRC_OK);
	}
	assert_int_equal(kme.fk_requests, 3);
	assert_int_equal(kme.fk_conns, 1);
	kme.fk_close = 1;
	enc_one(ks, &g);
	assert_int_equal(g.g_res[3], KEYSRC_OK);
	kme.fk_close = 0;
	enc_one(ks, &g);
	assert_int_equal(g.g_res[4], KEYSRC_OK);
	assert_int_equal(kme.fk_conns, 2);
	/* The KME drops the idle connection; the next request reconnects. */
	evhttp_set_timeout_tv(kme.fk_http, &idle);
	enc_one(ks, &g);
	tu_run_for(base, 400);
	enc_one(ks, &g);
	assert_int_equal(g.g_res[5], KEYSRC_OK);
	assert_int_equal(g.g_res[6], KEYSRC_OK);
	assert_int_equal(kme.fk_conns, 3);
	keysrc_free(ks);
}

/* One request against a canned answer; returns its result, why in g. */
static enum keysrc_result
answer_with(int status, const char *body, struct got *g)
{
	struct keysrc	*ks = new_source();

	memset(g, 0, sizeof(*g));
	kme.fk_status = status;
	kme.fk_body = body;
	enc_one(ks, g);
	assert_true(g->g_nokey[0] || g->g_res[0] == KEYSRC_OK);
	keysrc_free(ks);
	return g->g_res[0];
}

static void
test_unavailable(void **state)
{
	struct got	g;

	(void)state;
	assert_int_equal(answer_with(503, "{\"message\":\"no key available: "
	    "QBER 0.21 above threshold\"}", &g), KEYSRC_UNAVAILABLE);
	assert_non_null(strstr(g.g_why[0], "503"));
	assert_non_null(strstr(g.g_why[0], "QBER 0.21 above threshold"));
	assert_int_equal(answer_with(503, "", &g), KEYSRC_UNAVAILABLE);
}

static void
test_refused(void **state)
{
	struct got	g;

	(void)state;
	assert_int_equal(answer_with(401, "{\"message\":\"unauthorized\"}", &g),
	    KEYSRC_REFUSED);
	assert_non_null(strstr(g.g_why[0], "unauthorized"));
	assert_int_equal(answer_with(400, "{\"message\":\"size shall be a "
	    "multiple of 8\"}", &g), KEYSRC_REFUSED);
	assert_non_null(strstr(g.g_why[0], "size shall be a multiple of 8"));
	assert_int_equal(answer_with(500, "{\"message\":\"boom\"}", &g),
	    KEYSRC_ERROR);
	assert_int_equal(answer_with(404, "not found", &g), KEYSRC_ERROR);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"not json",
		"{\"keys\":[]}",
		"{\"keys\":{}}",
		"{\"nokeys\":1}",
		"[1,2]",
		/* 16 bytes, 33 bytes, not base64, a number */
		"{\"keys\":[{\"key_ID\":\"a\",\"key\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}]}",
		"{\"keys\":[{\"key_ID\":\"a\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
		"{\"keys\":[{\"key_ID\":\"a\",\"key\":"
		    "\"!!!!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}",
		"{\"keys\":[{\"key_ID\":\"a\",\"key\":12}]}",
		/* no key_ID, an empty one, one with a blank */
		"{\"keys\":[{\"key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}",
		"{\"keys\":[{\"key_ID\":\"\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}",
		"{\"keys\":[{\"key_ID\":\"a b\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}",
		/* two keys for one asked */
		"{\"keys\":[{\"key_ID\":\"a\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"},"
		    "{\"key_ID\":\"b\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}",
		NULL,
	};
	struct got	g;
	size_t		i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++) {
		if (answer_with(200, bad[i], &g) != KEYSRC_ERROR)
			fail_msg("answer %zu accepted: %s", i, bad[i]);
		assert_true(g.g_nokey[0]);
	}
	/* The same container shape with 32 bytes is fine. */
	assert_int_equal(answer_with(200, "{\"keys\":[{\"key_ID\":\"a\",\"key\":"
	    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}", &g), KEYSRC_OK);
	assert_string_equal(g.g_id[0], "a");
	assert_true(tu_all_zero(g.g_key[0], KEYSRC_KEYLEN));
}

/* dec_keys must return the key asked for, not another one. */
static void
test_dec_other_key(void **state)
{
	struct keysrc	*ks = new_source();
	struct got	 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	dec_one(ks, "another-key-id", &g);
	assert_int_equal(g.g_res[0], KEYSRC_ERROR);
	assert_non_null(strstr(g.g_why[0], "another-key-id"));
	keysrc_free(ks);
}

static void
test_kme_down(void **state)
{
	struct keysrc	*ks;
	struct got	 g;

	(void)state;
	kme_stop(&kme);
	ks = source_at(tu_free_port(), 2000);
	assert_non_null(ks);
	memset(&g, 0, sizeof(g));
	enc_one(ks, &g);
	assert_int_equal(g.g_res[0], KEYSRC_ERROR);
	assert_true(g.g_nokey[0]);
	assert_true(g.g_why[0][0] != '\0');
	keysrc_free(ks);
}

/* A silent KME times out; the next request goes on a new connection. */
static void
test_timeout(void **state)
{
	struct keysrc	*ks = new_source();
	struct got	 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	kme.fk_silent = 1;
	enc_one(ks, &g);
	assert_int_equal(g.g_res[0], KEYSRC_ERROR);
	assert_non_null(strstr(g.g_why[0], "within"));
	kme.fk_silent = 0;
	enc_one(ks, &g);
	assert_int_equal(g.g_res[1], KEYSRC_OK);
	assert_int_equal(kme.fk_conns, 2);
	keysrc_free(ks);
}

/* A KME whose certificate our CA did not issue gets no request. */
static void
test_untrusted_kme(void **state)
{
	struct keysrc	*ks;
	struct got	 g;

	(void)state;
	kme_stop(&kme);
	kme_start(&kme, "fake-qkd");
	ks = new_source();
	memset(&g, 0, sizeof(g));
	enc_one(ks, &g);
	assert_int_equal(g.g_res[0], KEYSRC_ERROR);
	assert_int_equal(kme.fk_requests, 0);
	keysrc_free(ks);
}

static void
test_bad_arguments(void **state)
{
	struct keysrc	*ks = new_source();
	struct got	 g;

	(void)state;
	const char	*empty[] = { "" }, *blank[] = { "a b" }, *none[] = { NULL };
	const char	*key[] = { KEY_ID }, *twice[] = { KEY_ID, "x", KEY_ID };
	const char	*many[KEYSRC_BATCH_MAX + 1];
	size_t		 i;

	(void)state;
	memset(&g, 0, sizeof(g));
	for (i = 0; i < KEYSRC_BATCH_MAX + 1; i++)
		many[i] = KEY_ID;
	assert_int_equal(keysrc_get_keys(ks, "TSP-A", 1, got_cb, &g), -1);
	assert_int_equal(keysrc_get_keys(ks, "../keys", 1, got_cb, &g), -1);
	assert_int_equal(keysrc_get_keys(ks, "tsp a", 1, got_cb, &g), -1);
	assert_int_equal(keysrc_get_keys(ks, "", 1, got_cb, &g), -1);
	assert_int_equal(keysrc_get_keys(ks,
	    "a23456789012345678901234567890123", 1, got_cb, &g), -1);
	assert_int_equal(keysrc_get_keys(ks, NULL, 1, got_cb, &g), -1);
	assert_int_equal(keysrc_get_keys(ks, "tsp-a", 0, got_cb, &g), -1);
	assert_int_equal(keysrc_get_keys(ks, "tsp-a", KEYSRC_BATCH_MAX + 1,
	    got_cb, &g), -1);
	assert_int_equal(keysrc_get_keys_by_id(ks, "sched", empty, 1, got_cb,
	    &g), -1);
	assert_int_equal(keysrc_get_keys_by_id(ks, "sched", blank, 1, got_cb,
	    &g), -1);
	assert_int_equal(keysrc_get_keys_by_id(ks, "sched", none, 1, got_cb,
	    &g), -1);
	assert_int_equal(keysrc_get_keys_by_id(ks, "sched", NULL, 1, got_cb,
	    &g), -1);
	assert_int_equal(keysrc_get_keys_by_id(ks, "sched", key, 0, got_cb,
	    &g), -1);
	assert_int_equal(keysrc_get_keys_by_id(ks, "sched", twice, 3, got_cb,
	    &g), -1);
	assert_int_equal(keysrc_get_keys_by_id(ks, "sched", many,
	    KEYSRC_BATCH_MAX + 1, got_cb, &g), -1);
	assert_int_equal(keysrc_get_keys_by_id(ks, "sched?x=1", key, 1,
	    got_cb, &g), -1);
	tu_run_for(base, 50);
	assert_int_equal(g.g_n, 0);
	assert_int_equal(kme.fk_requests, 0);
	assert_null(source_at(0, 100));
	assert_null(keysrc_new("etsi014", base, "127.0.0.1", 1, NULL, 100));
	assert_int_equal(keysrc_get_keys(ks, "tsp-a", 1, NULL, &g), -1);
	assert_int_equal(keysrc_get_keys_by_id(ks, "sched", key, 1, NULL, &g),
	    -1);
	keysrc_free(ks);
}

/* The backend is chosen by name; the interface checks key_IDs for all. */
static void
test_backends(void **state)
{
	struct keysrc	*ks;
	char		 id[KEYSRC_IDMAX + 2];

	(void)state;
	ks = keysrc_new(KEYSRC_DEFAULT, base, "127.0.0.1", kme.fk_port,
	    client_tls, TIMEOUT_MS);
	assert_non_null(ks);
	assert_string_equal(keysrc_name(ks), "ETSI GS QKD 014 KME");
	keysrc_free(ks);
	assert_null(keysrc_new("etsi004", base, "127.0.0.1", kme.fk_port,
	    client_tls, 100));
	assert_null(keysrc_new("", base, "127.0.0.1", kme.fk_port,
	    client_tls, 100));
	assert_null(keysrc_new(NULL, base, "127.0.0.1", kme.fk_port,
	    client_tls, 100));
	keysrc_free(NULL);
	assert_true(keysrc_valid_key_id(KEY_ID));
	assert_true(keysrc_valid_key_id("x"));
	memset(id, 'k', sizeof(id));
	id[KEYSRC_IDMAX] = '\0';
	assert_true(keysrc_valid_key_id(id));
	id[KEYSRC_IDMAX] = 'k';
	id[KEYSRC_IDMAX + 1] = '\0';
	assert_false(keysrc_valid_key_id(id));
	assert_false(keysrc_valid_key_id(""));
	assert_false(keysrc_valid_key_id("a b"));
	assert_false(keysrc_valid_key_id("a\x7f"));
	assert_false(keysrc_valid_key_id("\xc3\xa9"));
	tu_run_for(base, 20);
	assert_int_equal(kme.fk_requests, 0);
}

/* Freeing drops pending requests; a callback may free its source. */
static void
test_free_source(void **state)
{
	struct keysrc	*ks = new_source();
	struct got	 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	kme.fk_silent = 1;
	assert_int_equal(keysrc_get_keys(ks, "tsp-a", 1, got_cb, &g), 0);
	assert_int_equal(keysrc_get_keys(ks, "tsp-b", 1, got_cb, &g), 0);
	tu_wait_count(base, &kme.fk_requests, 1, WAIT_MS);
	keysrc_free(ks);
	tu_run_for(base, TIMEOUT_MS + 100);
	assert_int_equal(g.g_n, 0);
	kme.fk_silent = 0;
	ks = new_source();
	g.g_free_in_cb = ks;
	assert_int_equal(keysrc_get_keys(ks, "tsp-a", 1, got_cb, &g), 0);
	assert_int_equal(keysrc_get_keys(ks, "tsp-b", 1, got_cb, &g), 0);
	tu_wait_count(base, &g.g_n, 1, WAIT_MS);
	tu_run_for(base, 100);
	assert_int_equal(g.g_n, 1);
	assert_null(g.g_free_in_cb);
}

/*
 * POOL slow requests go out on POOL connections at once: all are at the KME
 * before the first answer, so together they take one delay, not POOL.  The
 * next round reuses the idle connections.
 */
static void
test_parallel(void **state)
{
	struct keysrc	*ks = patient_source();
	struct got	 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	kme.fk_delay_ms = DELAY_MS;
	enc_many(ks, &g, POOL);
	tu_wait_count(base, &g.g_n, POOL, WAIT_MS);
	assert_int_equal(count_results(&g, POOL, KEYSRC_OK), POOL);
	assert_int_equal(kme.fk_max_held, POOL);
	assert_int_equal(kme.fk_conns, POOL);
	enc_many(ks, &g, POOL);
	tu_wait_count(base, &g.g_n, 2 * POOL, WAIT_MS);
	assert_int_equal(count_results(&g, 2 * POOL, KEYSRC_OK), 2 * POOL);
	assert_int_equal(kme.fk_requests, 2 * POOL);
	assert_int_equal(kme.fk_conns, POOL);
	keysrc_free(ks);
}

/* Beyond POOL requests wait for a free connection; none is opened for them. */
static void
test_queue_beyond_pool(void **state)
{
	struct keysrc	*ks = patient_source();
	struct got	 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	kme.fk_delay_ms = DELAY_MS;
	enc_many(ks, &g, POOL + 2);
	tu_wait_count(base, &kme.fk_held, POOL, WAIT_MS);
	assert_int_equal(kme.fk_requests, POOL);
	assert_int_equal(g.g_n, 0);
	tu_wait_count(base, &g.g_n, POOL + 2, WAIT_MS);
	assert_int_equal(count_results(&g, POOL + 2, KEYSRC_OK), POOL + 2);
	assert_int_equal(kme.fk_requests, POOL + 2);
	assert_int_equal(kme.fk_max_held, POOL);
	assert_int_equal(kme.fk_conns, POOL);
	keysrc_free(ks);
}

/* The KME drops one of POOL busy connections: only its request fails. */
static void
test_one_connection_fails(void **state)
{
	struct keysrc	*ks = patient_source();
	struct got	 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	kme.fk_delay_ms = DELAY_MS;
	kme.fk_drop_nth = 2;
	enc_many(ks, &g, POOL);
	tu_wait_count(base, &g.g_n, POOL, WAIT_MS);
	assert_int_equal(kme.fk_max_held, POOL);
	assert_int_equal(count_results(&g, POOL, KEYSRC_OK), POOL - 1);
	assert_int_equal(count_results(&g, POOL, KEYSRC_ERROR), 1);
	/* The survivors stay in the pool and serve the next requests. */
	enc_many(ks, &g, POOL - 1);
	tu_wait_count(base, &g.g_n, 2 * POOL - 1, WAIT_MS);
	assert_int_equal(count_results(&g, 2 * POOL - 1, KEYSRC_OK),
	    2 * POOL - 2);
	assert_int_equal(kme.fk_conns, POOL);
	keysrc_free(ks);
}

/* Free with requests on every connection and one waiting; free in a callback. */
static void
test_free_in_flight(void **state)
{
	struct keysrc	*ks = patient_source();
	struct got	 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	kme.fk_delay_ms = DELAY_MS;
	enc_many(ks, &g, POOL + 1);
	tu_wait_count(base, &kme.fk_held, POOL, WAIT_MS);
	keysrc_free(ks);
	tu_wait_count(base, &kme.fk_released, POOL, WAIT_MS);
	tu_run_for(base, 50);
	assert_int_equal(g.g_n, 0);
	assert_int_equal(kme.fk_requests, POOL);
	ks = patient_source();
	g.g_free_in_cb = ks;
	enc_many(ks, &g, POOL + 1);
	tu_wait_count(base, &kme.fk_released, 2 * POOL, WAIT_MS);
	tu_run_for(base, 50);
	assert_int_equal(g.g_n, 1);
	assert_null(g.g_free_in_cb);
}

/*
 * Every connection the source closes, idle past its timeout or freed with
 * the source, ends with a close_notify: the KME sends no decode_error.
 */
static void
test_close_notify(void **state)
{
	struct keysrc	*ks = new_source();
	struct got	 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	enc_one(ks, &g);
	assert_int_equal(g.g_res[0], KEYSRC_OK);
	tu_wait_count(base, &kme.fk_closed, 1, WAIT_MS);
	enc_one(ks, &g);
	assert_int_equal(g.g_res[1], KEYSRC_OK);
	assert_int_equal(kme.fk_conns, 2);
	keysrc_free(ks);
	tu_wait_count(base, &kme.fk_closed, 2, WAIT_MS);
	tu_run_for(base, 50);
	assert_int_equal(kme.fk_alerts, 0);
}

/* With debug logging on, neither the key nor its base64 text is logged. */
static void
test_no_key_in_log(void **state)
{
	struct keysrc	*ks = new_source();
	struct got	 g;
	const char	*out;
	char		 hex[2 * KEYSRC_KEYLEN + 1], b64[64];

	(void)state;
	memset(&g, 0, sizeof(g));
	log_setverbose(2);
	tu_capture_begin();
	enc_one(ks, &g);
	dec_one(ks, KEY_ID, &g);
	kme.fk_status = 503;
	kme.fk_body = "{\"message\":\"empty\"}";
	enc_one(ks, &g);
	out = tu_capture_end();
	log_setverbose(0);
	assert_int_equal(g.g_res[0], KEYSRC_OK);
	assert_int_equal(g.g_res[2], KEYSRC_UNAVAILABLE);
	assert_non_null(strstr(out, KEY_ID));
	crypto_hex(kme.fk_key, KEYSRC_KEYLEN, hex);
	EVP_EncodeBlock((unsigned char *)b64, kme.fk_key, KEYSRC_KEYLEN);
	assert_null(strstr(out, hex));
	assert_null(strstr(out, b64));
	keysrc_free(ks);
}

/* enc_keys for five keys: number 5 in the body, five different keys. */
static void
test_enc_batch(void **state)
{
	struct keysrc	*ks = new_source();
	struct got	 g;
	char		 id[KEYSRC_IDMAX + 1];
	uint8_t		 key[KEYSRC_KEYLEN];
	json_t		*j;
	size_t		 i;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_int_equal(keysrc_get_keys(ks, "tsp-a", 5, got_cb, &g), 0);
	tu_wait_count(base, &g.g_n, 1, WAIT_MS);
	assert_int_equal(g.g_res[0], KEYSRC_OK);
	assert_int_equal(g.g_nkeys[0], 5);
	for (i = 0; i < 5; i++) {
		kme_batch_id(i, id);
		kme_batch_key(&kme, i, key);
		assert_string_equal(g.g_batch[i].kk_id, id);
		assert_memory_equal(g.g_batch[i].kk_key, key, KEYSRC_KEYLEN);
	}
	assert_int_equal(kme.fk_requests, 1);
	j = request_json();
	assert_int_equal(json_integer_value(json_object_get(j, "number")), 5);
	assert_int_equal(json_integer_value(json_object_get(j, "size")), 256);
	json_decref(j);
	keysrc_free(ks);
}

/*
 * dec_keys for three key_IDs in one request; the KME lists them last
 * first, the callback gets them in the order asked.
 */
static void
test_dec_batch(void **state)
{
	static const char *const want[] = { "k-one", "k-two", "k-three" };
	struct keysrc	*ks = new_source();
	struct got	 g;
	uint8_t		 key[KEYSRC_KEYLEN];
	json_t		*j, *ids;
	size_t		 i;

	(void)state;
	memset(&g, 0, sizeof(g));
	kme.fk_echo = 1;
	assert_int_equal(keysrc_get_keys_by_id(ks, "sched", want, 3, got_cb,
	    &g), 0);
	tu_wait_count(base, &g.g_n, 1, WAIT_MS);
	assert_int_equal(g.g_res[0], KEYSRC_OK);
	assert_int_equal(g.g_nkeys[0], 3);
	for (i = 0; i < 3; i++) {
		kme_batch_key(&kme, i, key);
		assert_string_equal(g.g_batch[i].kk_id, want[i]);
		assert_memory_equal(g.g_batch[i].kk_key, key, KEYSRC_KEYLEN);
	}
	j = request_json();
	ids = json_object_get(j, "key_IDs");
	assert_int_equal(json_array_size(ids), 3);
	for (i = 0; i < 3; i++)
		assert_string_equal(json_string_value(json_object_get(
		    json_array_get(ids, i), "key_ID")), want[i]);
	json_decref(j);
	keysrc_free(ks);
}

/* Containers that do not hold exactly the keys asked for are errors. */
static void
test_batch_answers(void **state)
{
	static const char *const two[] = { "a", "b" };
	static const char *const bad[] = {
		/* one key for two, three keys for two */
		"{\"keys\":[{\"key_ID\":\"a\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}",
		"{\"keys\":[{\"key_ID\":\"a\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"},"
		    "{\"key_ID\":\"b\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"},"
		    "{\"key_ID\":\"c\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}",
		/* the same key_ID twice */
		"{\"keys\":[{\"key_ID\":\"a\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"},"
		    "{\"key_ID\":\"a\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}",
		/* a key_ID not asked for (dec_keys only) */
		"{\"keys\":[{\"key_ID\":\"a\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"},"
		    "{\"key_ID\":\"z\",\"key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}",
		NULL,
	};
	struct keysrc	*ks = new_source();
	struct got	 g;
	size_t		 i;

	(void)state;
	memset(&g, 0, sizeof(g));
	kme.fk_status = 200;
	for (i = 0; bad[i] != NULL; i++) {
		kme.fk_body = bad[i];
		if (bad[i + 1] != NULL) {
			assert_int_equal(keysrc_get_keys(ks, "tsp-a", 2, got_cb,
			    &g), 0);
			tu_wait_count(base, &g.g_n, g.g_n + 1, WAIT_MS);
			if (g.g_res[g.g_n - 1] != KEYSRC_ERROR)
				fail_msg("enc_keys answer %zu accepted", i);
		}
		assert_int_equal(keysrc_get_keys_by_id(ks, "sched", two, 2,
		    got_cb, &g), 0);
		tu_wait_count(base, &g.g_n, g.g_n + 1, WAIT_MS);
		if (g.g_res[g.g_n - 1] != KEYSRC_ERROR)
			fail_msg("dec_keys answer %zu accepted", i);
		assert_true(g.g_nokey[g.g_n - 1]);
		g.g_n = 0;
	}
	keysrc_free(ks);
}

/*
 * Cancelled requests never call back: those waiting for a connection and
 * those on the wire (their connections go with them); another request of
 * the same source still does.
 */
static void
test_cancel(void **state)
{
	struct keysrc	*ks = patient_source();
	struct got	 g, other;

	(void)state;
	memset(&g, 0, sizeof(g));
	memset(&other, 0, sizeof(other));
	kme.fk_delay_ms = DELAY_MS;
	enc_many(ks, &g, POOL + 1);
	assert_int_equal(keysrc_get_keys(ks, "tsp-b", 1, got_cb, &other), 0);
	tu_wait_count(base, &kme.fk_held, POOL, WAIT_MS);
	keysrc_cancel(ks, got_cb, &g);
	tu_wait_count(base, &other.g_n, 1, WAIT_MS);
	tu_wait_count(base, &kme.fk_released, POOL + 1, WAIT_MS);
	tu_run_for(base, 50);
	assert_int_equal(g.g_n, 0);
	assert_int_equal(other.g_res[0], KEYSRC_OK);
	/* Nothing of theirs is left to cancel; the source goes on. */
	keysrc_cancel(ks, got_cb, &g);
	keysrc_cancel(ks, got_cb, NULL);
	kme.fk_delay_ms = 0;
	enc_one(ks, &g);
	assert_int_equal(g.g_res[0], KEYSRC_OK);
	keysrc_free(ks);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enc_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dec_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enc_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dec_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_answers, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reuse_and_reconnect, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dec_other_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kme_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_untrusted_kme, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_source, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_parallel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_beyond_pool, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_one_connection_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_in_flight, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_notify, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_key_in_log, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
