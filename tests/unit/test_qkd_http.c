/*
 * Unit tests of qkdd's HTTPS server over a key store with its committer:
 * the replies of enc_keys and dec_keys leave only once the commit holding
 * their changes is durable, while a refusal with nothing before it to
 * wait for and a status request leave at once; and the event loop never
 * syncs the disk.  The test holds the disk back: the program's own
 * fdatasync keeps the committer thread waiting until the test opens the
 * gate, and counts any sync made on the loop's thread.  Clients are
 * libevent HTTPS clients on the same loop.
 */
#include <sys/syscall.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "log.h"
#include "metrics.h"

#include "../../qkdd/http.h"
#include "../../qkdd/kme.h"
#include "../../qkdd/links.h"
#include "../../qkdd/ops.h"
#include "../../qkdd/pool.h"

#include "testutil.h"

#define KEYLEN		32	/* bytes: key_size 256 bits */
#define NKEYS		10	/* in the pool at the start */
#define WAIT_MS		5000
#define HELD_MS		300	/* no held reply comes this soon */
#define MAXBODY		8192

static char	pkidir[64];

static const struct tu_cert pki[] = {
	{ "ca",		"ca",		"ca",		NULL },
	{ "qkd",	"qkd",		"qkd",		"ca" },
	{ "sched",	"sched",	"sched",	"ca" },
	{ "tsp-a",	"tsp-a",	"tsp",		"ca" },
	{ NULL,		NULL,		NULL,		NULL },
};

/*
 * The disk gate.  While closed, an fdatasync from any thread but the
 * loop's waits; one from the loop's thread is counted once watching.
 */
static pthread_mutex_t	gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	gate_cond = PTHREAD_COND_INITIALIZER;
static int		gate_closed;
static int		gate_watching;
static pthread_t	gate_loop;
static int		gate_loop_syncs;
static int		gate_other_syncs;

int
fdatasync(int fd)
{
	pthread_mutex_lock(&gate_lock);
	if (pthread_equal(pthread_self(), gate_loop)) {
		if (gate_watching)
			gate_loop_syncs++;
	} else {
		while (gate_closed)
			pthread_cond_wait(&gate_cond, &gate_lock);
		gate_other_syncs++;
	}
	pthread_mutex_unlock(&gate_lock);
	return (int)syscall(SYS_fdatasync, fd);
}

static void
gate_set(int closed)
{
	pthread_mutex_lock(&gate_lock);
	gate_closed = closed;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

static int
gate_count(const int *n)
{
	int	v;

	pthread_mutex_lock(&gate_lock);
	v = *n;
	pthread_mutex_unlock(&gate_lock);
	return v;
}

struct fixture {
	char			 dir[64];
	char			 path[128];
	struct event_base	*base;
	struct event_base	*idle;	/* the links' timer: never run */
	struct qkdd_conf	 conf;
	struct kme		 kme;
	struct qkd_http		*http;
	SSL_CTX			*srv;
	SSL_CTX			*cli[2];	/* sched, tsp-a */
	uint16_t		 port;
	uint64_t		 durable;	/* last reported */
};

/* One request's answer as the client saw it. */
struct answer {
	int		 a_done;
	int		 a_status;
	char		 a_body[MAXBODY];
	uint64_t	 a_durable;	/* the store's, as it came */
	struct fixture	*a_fx;
	struct evhttp_connection *a_conn;
};

static void
on_durable(uint64_t n, void *arg)
{
	struct fixture	*fx = arg;

	assert_true(n > fx->durable);
	fx->durable = n;
	if (fx->http != NULL)
		qkd_http_durable(fx->http, n);
}

static int
group_setup(void **state)
{
	(void)state;
	gate_loop = pthread_self();
	return tu_pki_setup("test_qkd_http", pkidir, sizeof(pkidir), pki);
}

static int
group_teardown(void **state)
{
	(void)state;
	return tu_tmpdir_free(pkidir);
}

static int
all_durable(void *arg)
{
	struct fixture	*fx = arg;

	return qkd_pool_durable(fx->kme.k_pool) ==
	    qkd_pool_written(fx->kme.k_pool);
}

/*
 * A KME for the link sched/tsp-a with NKEYS keys stored and durable,
 * serving on a free loopback port.
 */
static int
setup(void **state)
{
	struct fixture		*fx;
	struct qkdd_link_conf	*lc;
	struct qkd_pool		*pool;
	uint8_t			 keys[NKEYS * KEYLEN];
	size_t			 i;

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	assert_int_equal(tu_tmpdir_new(fx->dir, sizeof(fx->dir),
	    "test_qkd_http"), 0);
	snprintf(fx->path, sizeof(fx->path), "%s/qkd.sqlite", fx->dir);
	assert_non_null(fx->base = event_base_new());
	assert_non_null(fx->idle = event_base_new());
	fx->conf.qc_key_size = 8 * KEYLEN;
	fx->conf.qc_max_per_request = 16;
	fx->conf.qc_nlinks = 1;
	lc = &fx->conf.qc_links[0];
	snprintf(lc->lc_a, sizeof(lc->lc_a), "sched");
	snprintf(lc->lc_b, sizeof(lc->lc_b), "tsp-a");
	lc->lc_pool = 100;
	pool = qkd_pool_open(fx->path, fx->base, on_durable, fx);
	assert_non_null(pool);
	for (i = 0; i < sizeof(keys); i++)
		keys[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(qkd_pool_begin(pool), 0);
	assert_int_equal(qkd_pool_add(pool, "sched", "tsp-a", keys, NKEYS,
	    KEYLEN), 0);
	assert_int_equal(qkd_pool_commit(pool), 0);
	fx->kme.k_conf = &fx->conf;
	fx->kme.k_pool = pool;
	/* No tick commits anything behind the test's back. */
	fx->kme.k_links = qkd_links_new(fx->idle, &fx->conf, pool);
	assert_non_null(fx->kme.k_links);
	/* qkd_http_new sets up the metrics its handlers count in. */
	fx->srv = tu_tls_ctx(pkidir, "qkd", 1);
	fx->cli[0] = tu_tls_ctx(pkidir, "sched", 0);
	fx->cli[1] = tu_tls_ctx(pkidir, "tsp-a", 0);
	fx->port = tu_free_port();
	fx->http = qkd_http_new(fx->base, fx->srv, "127.0.0.1", fx->port,
	    &fx->kme);
	assert_non_null(fx->http);
	tu_wait(fx->base, all_durable, fx, WAIT_MS);
	pthread_mutex_lock(&gate_lock);
	gate_watching = 1;
	gate_loop_syncs = gate_other_syncs = 0;
	pthread_mutex_unlock(&gate_lock);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	gate_set(0);
	pthread_mutex_lock(&gate_lock);
	gate_watching = 0;
	pthread_mutex_unlock(&gate_lock);
	qkd_http_free(fx->http);
	fx->http = NULL;
	qkd_links_free(fx->kme.k_links);
	qkd_pool_close(fx->kme.k_pool);
	SSL_CTX_free(fx->srv);
	SSL_CTX_free(fx->cli[0]);
	SSL_CTX_free(fx->cli[1]);
	event_base_free(fx->idle);
	event_base_free(fx->base);
	metrics_reset();
	tu_tmpdir_free(fx->dir);
	free(fx);
	return 0;
}

/* The client's reply callback: note the answer and the store's state. */
static void
answer_cb(struct evhttp_request *req, void *arg)
{
	struct answer	*a = arg;
	struct evbuffer	*in;
	size_t		 n;

	a->a_done = 1;
	a->a_durable = qkd_pool_durable(a->a_fx->kme.k_pool);
	if (req == NULL || evhttp_request_get_response_code(req) == 0) {
		a->a_status = -1;
		return;
	}
	a->a_status = evhttp_request_get_response_code(req);
	in = evhttp_request_get_input_buffer(req);
	n = evbuffer_get_length(in);
	assert_true(n < sizeof(a->a_body));
	evbuffer_remove(in, a->a_body, n);
	a->a_body[n] = '\0';
}

/* POST body to path as client cli (0 sched, 1 tsp-a); the answer in a. */
static void
request(struct fixture *fx, int cli, const char *path, const char *body,
    struct answer *a)
{
	struct bufferevent	*bev;
	struct evhttp_request	*req;
	SSL			*ssl;

	memset(a, 0, sizeof(*a));
	a->a_fx = fx;
	assert_non_null(ssl = SSL_new(fx->cli[cli]));
	bev = bufferevent_openssl_socket_new(fx->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(bev);
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	a->a_conn = evhttp_connection_base_bufferevent_new(fx->base, NULL, bev,
	    "127.0.0.1", fx->port);
	assert_non_null(a->a_conn);
	assert_non_null(req = evhttp_request_new(answer_cb, a));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	    "127.0.0.1");
	if (body != NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), body,
		    strlen(body));
	}
	assert_int_equal(evhttp_make_request(a->a_conn, req,
	    body != NULL ? EVHTTP_REQ_POST : EVHTTP_REQ_GET, path), 0);
}

static void
answer_free(struct answer *a)
{
	if (a->a_conn != NULL)
		evhttp_connection_free(a->a_conn);
	a->a_conn = NULL;
}

static int
answered(void *arg)
{
	return ((struct answer *)arg)->a_done;
}

/* Run the loop for ms, whatever happens. */
static void
run_for(struct event_base *base, int ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	assert_int_equal(event_base_loopexit(base, &tv), 0);
	assert_int_equal(event_base_dispatch(base), 0);
}

/* Rows of keys matching where, from a connection of the test's own. */
static int64_t
store_count(struct fixture *fx, const char *where)
{
	sqlite3	*db;
	char	 sql[512];
	int64_t	 n;

	assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM keys WHERE %s", where);
	n = tu_query_int(db, sql);
	sqlite3_close(db);
	return n;
}

/* The key_IDs of a key container, n of them, into ids. */
static void
key_ids(const struct answer *a, char ids[][QKD_KEYID_LEN + 1], size_t n)
{
	json_error_t	 err;
	json_t		*v, *keys;
	size_t		 i;

	assert_int_equal(a->a_status, 200);
	assert_non_null(v = json_loads(a->a_body, 0, &err));
	keys = json_object_get(v, "keys");
	assert_int_equal(json_array_size(keys), n);
	for (i = 0; i < n; i++)
		snprintf(ids[i], QKD_KEYID_LEN + 1, "%s", json_string_value(
		    json_object_get(json_array_get(keys, i), "key_ID")));
	json_decref(v);
}

/*
 * With the disk held back, enc_keys reserves its keys and commits, yet
 * its answer stays with the KME; it comes once the commit is durable,
 * holding the keys the store has reserved.  dec_keys alike: the keys are
 * gone from the store, their answer waits for the disk.  The loop never
 * synced; the committer did.
 */
static void
test_replies_wait_for_durable(void **state)
{
	struct fixture	*fx = *state;
	struct qkd_pool	*pool = fx->kme.k_pool;
	struct answer	 a;
	char		 ids[2][QKD_KEYID_LEN + 1], sql[256], body[256];
	uint64_t	 need;

	gate_set(1);
	request(fx, 0, "/api/v1/keys/tsp-a/enc_keys", "{\"number\":2}", &a);
	run_for(fx->base, HELD_MS);
	assert_int_equal(store_count(fx, "master_done = 1"), 2);
	need = qkd_pool_written(pool);
	assert_true(qkd_pool_durable(pool) < need);
	assert_false(a.a_done);
	gate_set(0);
	tu_wait(fx->base, answered, &a, WAIT_MS);
	assert_true(a.a_durable >= need);
	key_ids(&a, ids, 2);
	snprintf(sql, sizeof(sql), "master_done = 1 AND master = 'sched' AND "
	    "slave = 'tsp-a' AND key_id IN ('%s', '%s')", ids[0], ids[1]);
	assert_int_equal(store_count(fx, sql), 2);
	answer_free(&a);

	gate_set(1);
	snprintf(body, sizeof(body), "{\"key_IDs\":[{\"key_ID\":\"%s\"},"
	    "{\"key_ID\":\"%s\"}]}", ids[0], ids[1]);
	request(fx, 1, "/api/v1/keys/sched/dec_keys", body, &a);
	run_for(fx->base, HELD_MS);
	assert_int_equal(store_count(fx, "master_done = 1"), 0);
	need = qkd_pool_written(pool);
	assert_true(qkd_pool_durable(pool) < need);
	assert_false(a.a_done);
	gate_set(0);
	tu_wait(fx->base, answered, &a, WAIT_MS);
	assert_true(a.a_durable >= need);
	key_ids(&a, ids, 2);
	answer_free(&a);

	assert_int_equal(gate_count(&gate_loop_syncs), 0);
	assert_true(gate_count(&gate_other_syncs) >= 2);
}

/*
 * A refusal that changes nothing: with every commit durable it leaves at
 * once, the disk held back or not, as does status; behind a commit not
 * yet durable it waits for that commit, as the answers before it do.
 */
static void
test_refusals(void **state)
{
	struct fixture	*fx = *state;
	struct qkd_pool	*pool = fx->kme.k_pool;
	struct answer	 a, b, st;
	uint64_t	 need;

	gate_set(1);
	request(fx, 0, "/api/v1/keys/tsp-a/enc_keys", "{\"number\":11}", &a);
	request(fx, 0, "/api/v1/keys/tsp-a/status", NULL, &st);
	tu_wait(fx->base, answered, &a, WAIT_MS);
	tu_wait(fx->base, answered, &st, WAIT_MS);
	assert_int_equal(a.a_status, 503);
	assert_non_null(strstr(a.a_body, "(10 stored, 11 requested)"));
	assert_int_equal(st.a_status, 200);
	assert_non_null(strstr(st.a_body, "\"stored_key_count\":10"));
	answer_free(&a);
	answer_free(&st);
	assert_int_equal(store_count(fx, "master_done = 0"), NKEYS);

	/* Behind a reservation not yet durable. */
	request(fx, 0, "/api/v1/keys/tsp-a/enc_keys", "{\"number\":4}", &a);
	run_for(fx->base, HELD_MS);
	assert_int_equal(store_count(fx, "master_done = 1"), 4);
	need = qkd_pool_written(pool);
	request(fx, 0, "/api/v1/keys/tsp-a/enc_keys", "{\"number\":7}", &b);
	run_for(fx->base, HELD_MS);
	assert_false(a.a_done);
	assert_false(b.a_done);
	assert_true(qkd_pool_durable(pool) < need);
	gate_set(0);
	tu_wait(fx->base, answered, &a, WAIT_MS);
	tu_wait(fx->base, answered, &b, WAIT_MS);
	assert_int_equal(a.a_status, 200);
	assert_int_equal(b.a_status, 503);
	assert_non_null(strstr(b.a_body, "(6 stored, 7 requested)"));
	assert_true(a.a_durable >= need && b.a_durable >= need);
	answer_free(&a);
	answer_free(&b);
	assert_int_equal(gate_count(&gate_loop_syncs), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replies_wait_for_durable,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};

	log_init("test_qkd_http", 0);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
