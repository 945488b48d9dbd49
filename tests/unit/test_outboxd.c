/*
 * Unit tests of the outbox service with a test protocol in the same
 * process: its state is filled in once the store is open, allowed roles
 * reach the request handler, other roles and other message types are
 * refused, and /status counts the protocol's rows and the outbox backlog.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "conf.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "outboxd.h"
#include "store.h"
#include "topo.h"

#include "testutil.h"

#define WAIT_MS		5000

/* A daemon configuration: the common directives first, as daemon.h has it. */
struct test_conf {
	struct cfg_common	tc_common;
	int			tc_answer;	/* code of the replies */
};

/* The test protocol's state, which outboxd allocates. */
struct test_proto {
	const struct test_conf	*tp_conf;
	sqlite3			*tp_db;
	struct outbox		*tp_ob;
	sqlite3_stmt		*tp_insert;
};

static const char *const test_schema[] = {
	"CREATE TABLE requests (id INTEGER PRIMARY KEY, peer TEXT NOT NULL);",
	outbox_schema,
};

static char	tmpdir[64];
static int	dbseq;

static const struct tu_cert pki[] = {
	{ "ca",		"test CA",	"ca",		NULL },
	{ "svc",	"filler",	"filler",	"ca" },
	{ "factory",	"factory-1",	"factory",	"ca" },
	{ "vehicle",	"LVTEST00000000001", "vehicle",	"ca" },
	{ NULL,		NULL,		NULL,		NULL },
};

static void
test_open(void *arg, const void *conf, const struct topo *topo, sqlite3 *db,
    struct outbox *ob)
{
	struct test_proto	*tp = arg;

	(void)topo;
	tp->tp_conf = conf;
	tp->tp_db = db;
	tp->tp_ob = ob;
	tp->tp_insert = store_prepare(db,
	    "INSERT INTO requests (peer) VALUES (?)");
}

/* Store a row and queue the payload for every TSP, then answer. */
static void
test_request(void *arg, struct conn *c, const struct frame *f)
{
	struct test_proto	*tp = arg;

	assert_int_equal(store_begin(tp->tp_db), 0);
	sqlite3_bind_text(tp->tp_insert, 1, conn_peer_cn(c), -1,
	    SQLITE_STATIC);
	assert_int_equal(store_step_done(tp->tp_insert, NULL), 0);
	assert_int_equal(outbox_enqueue_all(tp->tp_ob,
	    QROAM__MSG_TYPE__MT_FILL_RECORD, (const uint8_t *)"record", 6), 0);
	assert_int_equal(store_commit(tp->tp_db), 0);
	conn_send_status(c, f->f_request_id, tp->tp_conf->tc_answer, NULL);
}

static const struct outboxd_proto test_protocol = {
	.op_role = "filler",
	.op_schema = test_schema,
	.op_nschema = sizeof(test_schema) / sizeof(test_schema[0]),
	.op_roles = { "factory", "operator" },
	.op_refused = "not a factory",
	.op_refused_detail = "certificate role may not fill chips",
	.op_type = QROAM__MSG_TYPE__MT_FILL_REQUEST,
	.op_backlog = "fill records",
	.op_count = "requests",
	.op_count_sql = "SELECT count(*) FROM requests",
	.op_state_size = sizeof(struct test_proto),
	.op_open = test_open,
	.op_request = test_request,
};

/* Everything one test needs: a service listening on fx_ep. */
struct fixture {
	struct event_base	*fx_base;
	struct test_conf	 fx_conf;
	struct topo		 fx_topo;
	struct endpoint		 fx_ep;
	struct outboxd		*fx_svc;
};

static char *
pki_path(const char *name, const char *ext)
{
	char	path[128];

	snprintf(path, sizeof(path), "%s/%s.%s", tmpdir, name, ext);
	return xstrdup(path);
}

static int
group_setup(void **state)
{
	(void)state;
	return tu_pki_setup("test_outboxd", tmpdir, sizeof(tmpdir), pki);
}

static int
group_teardown(void **state)
{
	(void)state;
	return tu_tmpdir_free(tmpdir);
}

/*
 * A configuration on the test PKI and a store of its own, and a topology
 * of one TSP that never answers, so what is queued stays queued.
 */
static int
setup(void **state)
{
	struct fixture		*fx;
	struct cfg_common	*cc;
	struct topo_tsp		*tsp;
	char			 store[128];

	fx = xcalloc(1, sizeof(*fx));
	assert_non_null(fx->fx_base = event_base_new());
	cc = &fx->fx_conf.tc_common;
	cfg_common_init(cc);
	snprintf(cc->cc_id, sizeof(cc->cc_id), "filler");
	snprintf(store, sizeof(store), "%s/svc-%d.db", tmpdir, dbseq++);
	cc->cc_store = xstrdup(store);
	cc->cc_ca = pki_path("ca", "pem");
	cc->cc_cert = pki_path("svc", "pem");
	cc->cc_key = pki_path("svc", "key");
	fx->fx_conf.tc_answer = QROAM__STATUS_CODE__OK;
	tsp = &fx->fx_topo.t_tsps[0];
	snprintf(tsp->tt_id, sizeof(tsp->tt_id), "tsp-a");
	snprintf(tsp->tt_provision.ep_host, sizeof(tsp->tt_provision.ep_host),
	    "127.0.0.1");
	tsp->tt_provision.ep_port = tu_free_port();
	fx->fx_topo.t_ntsps = 1;
	snprintf(fx->fx_ep.ep_host, sizeof(fx->fx_ep.ep_host), "127.0.0.1");
	fx->fx_ep.ep_port = tu_free_port();
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	outboxd_free(fx->fx_svc);
	tu_run_for(fx->fx_base, 20);
	event_base_free(fx->fx_base);
	cfg_common_free(&fx->fx_conf.tc_common);
	free(fx);
	return 0;
}

static void
fx_start(struct fixture *fx)
{
	fx->fx_svc = outboxd_new(fx->fx_base, &test_protocol, &fx->fx_conf,
	    &fx->fx_topo, &fx->fx_ep);
	assert_non_null(fx->fx_svc);
}

/* A client of the service with the certificate of name. */
static struct conn *
fx_client(struct fixture *fx, const char *name, SSL_CTX **ctx)
{
	struct conn_opts	 o;
	struct conn		*c;
	char			 err[256];

	memset(&o, 0, sizeof(o));
	o.co_tls = *ctx = tu_tls_ctx(tmpdir, name, 0);
	err[0] = '\0';
	c = conn_open_sync(fx->fx_base, fx->fx_ep.ep_host, fx->fx_ep.ep_port,
	    &o, WAIT_MS, err, sizeof(err));
	if (c == NULL)
		fail_msg("conn_open_sync: %s", err);
	return c;
}

/* Send an empty message of type on c; the Status code that answers it. */
static int
fx_ask(struct conn *c, uint32_t type, uint64_t rid, char *detail,
    size_t len)
{
	Qroam__FillRequest	 req = QROAM__FILL_REQUEST__INIT;
	Qroam__Status		*st;
	struct frame		 f;
	int			 code;

	assert_int_equal(conn_send(c, type, rid, &req.base), 0);
	assert_int_equal(conn_recv_sync(c, &f, WAIT_MS), 0);
	assert_int_equal(f.f_type, QROAM__MSG_TYPE__MT_STATUS);
	assert_true(f.f_request_id == rid);
	st = (Qroam__Status *)frame_unpack(&f, &qroam__status__descriptor);
	assert_non_null(st);
	code = st->code;
	snprintf(detail, len, "%s", st->detail != NULL ? st->detail : "");
	qroam__status__free_unpacked(st, NULL);
	frame_release(&f);
	return code;
}

/* A field of the /status summary. */
static json_int_t
fx_status(struct fixture *fx, const char *field)
{
	json_t		*obj;
	json_int_t	 n;

	obj = outboxd_status(fx->fx_svc, NULL, json_object());
	assert_true(json_is_integer(json_object_get(obj, field)));
	n = json_integer_value(json_object_get(obj, field));
	json_decref(obj);
	return n;
}

/* A fresh store: nothing counted, nothing queued, no other view. */
static void
test_open_before_serving(void **state)
{
	struct fixture	*fx = *state;

	fx_start(fx);
	assert_int_equal(fx_status(fx, "requests"), 0);
	assert_int_equal(fx_status(fx, "outbox"), 0);
	assert_null(outboxd_status(fx->fx_svc, "sessions", NULL));
}

static void
test_allowed_role_reaches_the_handler(void **state)
{
	struct fixture	*fx = *state;
	struct conn	*c;
	SSL_CTX		*ctx;
	json_t		*obj, *dest;
	char		 detail[128];

	fx_start(fx);
	c = fx_client(fx, "factory", &ctx);
	assert_int_equal(fx_ask(c, QROAM__MSG_TYPE__MT_FILL_REQUEST, 7, detail,
	    sizeof(detail)), QROAM__STATUS_CODE__OK);
	assert_int_equal(fx_ask(c, QROAM__MSG_TYPE__MT_FILL_REQUEST, 8, detail,
	    sizeof(detail)), QROAM__STATUS_CODE__OK);
	conn_free_sync(c);
	SSL_CTX_free(ctx);
	assert_int_equal(fx_status(fx, "requests"), 2);
	assert_int_equal(fx_status(fx, "outbox"), 2);
	obj = outboxd_status(fx->fx_svc, "outbox", NULL);
	assert_true(json_is_array(obj) && json_array_size(obj) == 1);
	dest = json_array_get(obj, 0);
	assert_string_equal(json_string_value(json_object_get(dest, "dest")),
	    "tsp-a");
	assert_int_equal(json_integer_value(json_object_get(dest, "pending")),
	    2);
	json_decref(obj);
}

static void
test_other_role_is_refused(void **state)
{
	struct fixture	*fx = *state;
	struct conn	*c;
	SSL_CTX		*ctx;
	struct frame	 f;
	char		 detail[128];

	fx_start(fx);
	c = fx_client(fx, "vehicle", &ctx);
	assert_int_equal(fx_ask(c, QROAM__MSG_TYPE__MT_FILL_REQUEST, 3, detail,
	    sizeof(detail)), QROAM__STATUS_CODE__AUTH_FAILED);
	assert_string_equal(detail, "certificate role may not fill chips");
	/* The service closes the connection after the refusal. */
	assert_int_equal(conn_recv_sync(c, &f, WAIT_MS), -1);
	conn_free_sync(c);
	SSL_CTX_free(ctx);
	assert_int_equal(fx_status(fx, "requests"), 0);
}

static void
test_other_type_is_refused(void **state)
{
	struct fixture	*fx = *state;
	struct conn	*c;
	SSL_CTX		*ctx;
	char		 detail[128];

	fx_start(fx);
	c = fx_client(fx, "factory", &ctx);
	assert_int_equal(fx_ask(c, QROAM__MSG_TYPE__MT_REGISTER, 4, detail,
	    sizeof(detail)), QROAM__STATUS_CODE__BAD_REQUEST);
	assert_string_equal(detail, "unexpected message type");
	/* The connection stays open for the request that is expected. */
	assert_int_equal(fx_ask(c, QROAM__MSG_TYPE__MT_FILL_REQUEST, 5, detail,
	    sizeof(detail)), QROAM__STATUS_CODE__OK);
	conn_free_sync(c);
	SSL_CTX_free(ctx);
	assert_int_equal(fx_status(fx, "requests"), 1);
}

static void
test_no_endpoint(void **state)
{
	struct fixture	*fx = *state;

	fx->fx_ep.ep_port = 0;
	tu_capture_begin();
	fx->fx_svc = outboxd_new(fx->fx_base, &test_protocol, &fx->fx_conf,
	    &fx->fx_topo, &fx->fx_ep);
	assert_non_null(strstr(tu_capture_end(),
	    "topology has no filler address"));
	assert_null(fx->fx_svc);
}

static void
test_no_store(void **state)
{
	struct fixture		*fx = *state;
	struct cfg_common	*cc = &fx->fx_conf.tc_common;

	free(cc->cc_store);
	cc->cc_store = xstrdup("/nonexistent/dir/svc.db");
	tu_capture_begin();
	fx->fx_svc = outboxd_new(fx->fx_base, &test_protocol, &fx->fx_conf,
	    &fx->fx_topo, &fx->fx_ep);
	tu_capture_end();
	assert_null(fx->fx_svc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_before_serving,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_allowed_role_reaches_the_handler, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_role_is_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_type_is_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_endpoint, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_store, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
