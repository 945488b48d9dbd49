/*
 * Unit tests of the durable outbox against fake TSPs in the same process:
 * mutual-TLS listeners that answer each message with a Status echoing its
 * request id.  Checks ordered delivery to every TSP, transactional
 * enqueueing, and retries when a TSP refuses, is down or is an impostor.
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
#include <openssl/ssl.h>

#include "conn.h"
#include "frame.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "topo.h"

#include "testutil.h"

#define WAIT_MS		5000
#define FT_MAXMSG	32

enum ft_mode {
	FT_OK,			/* store and answer OK */
	FT_REFUSE,		/* answer UNAVAILABLE */
	FT_REFUSE_ONCE,		/* refuse the message ft_refuse_this once */
	FT_SILENT,		/* never answer */
};

/* A fake TSP provisioning endpoint and what it received. */
struct fake_tsp {
	const char		*ft_id;
	uint16_t		 ft_port;
	SSL_CTX			*ft_ctx;
	struct listener		*ft_l;
	enum ft_mode		 ft_mode;
	const char		*ft_refuse_this;
	int			 ft_frames;	/* every frame seen */
	int			 ft_refused;
	int			 ft_nmsg;	/* accepted messages */
	uint32_t		 ft_type[FT_MAXMSG];
	char			 ft_msg[FT_MAXMSG][32];
	uint64_t		 ft_rid[FT_MAXMSG];
	char			 ft_cn[65];
	char			 ft_role[33];
};

/* Everything one test needs. */
struct fixture {
	struct event_base	*fx_base;
	struct fake_tsp		 fx_tsp[2];
	struct topo		 fx_topo;
	sqlite3			*fx_db;
	SSL_CTX			*fx_client;
	struct outbox		*fx_ob;
};

static char	tmpdir[64];
static int	dbseq;

/* A CA, both TSPs, the filler, and tsp-b's name under the wrong role. */
static const struct tu_cert pki[] = {
	{ "ca",			"test CA",	"ca",		NULL },
	{ "tsp-a",		"tsp-a",	"tsp",		"ca" },
	{ "tsp-b",		"tsp-b",	"tsp",		"ca" },
	{ "filler",		"filler",	"filler",	"ca" },
	{ "tsp-b-registrar",	"tsp-b",	"registrar",	"ca" },
	{ NULL,			NULL,		NULL,		NULL },
};

static int
group_setup(void **state)
{
	(void)state;
	return tu_pki_setup("test_outbox", tmpdir, sizeof(tmpdir), pki);
}

static int
group_teardown(void **state)
{
	(void)state;
	return tu_tmpdir_free(tmpdir);
}

static void
ft_on_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct fake_tsp	*ft = arg;
	char		 msg[32];
	size_t		 n;

	ft->ft_frames++;
	snprintf(ft->ft_cn, sizeof(ft->ft_cn), "%s", conn_peer_cn(c));
	snprintf(ft->ft_role, sizeof(ft->ft_role), "%s", conn_peer_role(c));
	n = f->f_payload_len < sizeof(msg) - 1 ? f->f_payload_len : sizeof(msg) - 1;
	if (n > 0)
		memcpy(msg, f->f_payload, n);
	msg[n] = '\0';
	if (ft->ft_mode == FT_SILENT)
		return;
	if (ft->ft_mode == FT_REFUSE || (ft->ft_mode == FT_REFUSE_ONCE &&
	    ft->ft_refuse_this != NULL && strcmp(msg, ft->ft_refuse_this) == 0)) {
		ft->ft_refused++;
		if (ft->ft_mode == FT_REFUSE_ONCE)
			ft->ft_refuse_this = NULL;
		assert_int_equal(conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__UNAVAILABLE, "busy"), 0);
		return;
	}
	assert_true(ft->ft_nmsg < FT_MAXMSG);
	ft->ft_type[ft->ft_nmsg] = f->f_type;
	ft->ft_rid[ft->ft_nmsg] = f->f_request_id;
	memcpy(ft->ft_msg[ft->ft_nmsg], msg, n + 1);
	ft->ft_nmsg++;
	assert_int_equal(conn_send_status(c, f->f_request_id,
	    QROAM__STATUS_CODE__OK, NULL), 0);
}

static void
ft_on_close(struct conn *c, const char *reason, void *arg)
{
	(void)c;
	(void)reason;
	(void)arg;
}

static const struct conn_cb ft_cb = {
	.on_frame = ft_on_frame,
	.on_close = ft_on_close,
};

/* Listen for ft with the certificate of cert_name. */
static void
ft_start(struct fixture *fx, struct fake_tsp *ft, const char *cert_name)
{
	struct conn_opts	o;

	memset(&o, 0, sizeof(o));
	ft->ft_ctx = tu_tls_ctx(tmpdir, cert_name, 1);
	o.co_tls = ft->ft_ctx;
	ft->ft_l = listener_new(fx->fx_base, "127.0.0.1", ft->ft_port, &o, &ft_cb,
	    ft);
	assert_non_null(ft->ft_l);
}

/* Listen for both TSPs, each with its own certificate. */
static void
ft_start_both(struct fixture *fx)
{
	ft_start(fx, &fx->fx_tsp[0], "tsp-a");
	ft_start(fx, &fx->fx_tsp[1], "tsp-b");
}

static void
ft_stop(struct fake_tsp *ft)
{
	listener_free(ft->ft_l);
	ft->ft_l = NULL;
	SSL_CTX_free(ft->ft_ctx);
	ft->ft_ctx = NULL;
}

/* Topology of two TSPs, a store with the outbox schema, and the outbox. */
static void
fixture_init(struct fixture *fx)
{
	const char *const migrations[] = { outbox_schema };
	char		 text[256], path[192];

	memset(fx, 0, sizeof(*fx));
	fx->fx_base = event_base_new();
	assert_non_null(fx->fx_base);
	fx->fx_tsp[0].ft_id = "tsp-a";
	fx->fx_tsp[1].ft_id = "tsp-b";
	fx->fx_tsp[0].ft_port = tu_free_port();
	fx->fx_tsp[1].ft_port = tu_free_port();
	snprintf(text, sizeof(text),
	    "tsp tsp-a vehicle 127.0.0.1:1 provision 127.0.0.1:%u\n"
	    "tsp tsp-b vehicle 127.0.0.1:2 provision 127.0.0.1:%u\n"
	    "region tsp-a 0,0 0,1 1,1\n"
	    "region tsp-b 0,1 0,2 1,2\n",
	    fx->fx_tsp[0].ft_port, fx->fx_tsp[1].ft_port);
	assert_int_equal(topo_load(tu_write_file(tmpdir, "topology", text),
	    &fx->fx_topo), 0);
	snprintf(path, sizeof(path), "%s/store%d.db", tmpdir, ++dbseq);
	fx->fx_db = store_open(path, migrations, 1, 0);
	assert_non_null(fx->fx_db);
	fx->fx_client = tu_tls_ctx(tmpdir, "filler", 0);
	fx->fx_ob = outbox_new(fx->fx_base, fx->fx_db, &fx->fx_topo,
	    fx->fx_client, 0, NULL);
	assert_non_null(fx->fx_ob);
}

static int
is_drained(void *arg)
{
	struct fixture	*fx = arg;

	return outbox_depth(fx->fx_ob) == 0;
}

static int
fixture_setup(void **state)
{
	struct fixture	*fx;

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	fixture_init(fx);
	*state = fx;
	return 0;
}

/* Free whatever the test left, also after a failed assertion. */
static int
fixture_teardown(void **state)
{
	struct fixture	*fx = *state;
	size_t		 i;

	outbox_free(fx->fx_ob);
	for (i = 0; i < 2; i++)
		if (fx->fx_tsp[i].ft_l != NULL)
			ft_stop(&fx->fx_tsp[i]);
	/* Let deferred connection frees run before the base goes. */
	tu_run_for(fx->fx_base, 30);
	store_close(fx->fx_db);
	topo_free(&fx->fx_topo);
	SSL_CTX_free(fx->fx_client);
	event_base_free(fx->fx_base);
	free(fx);
	return 0;
}

/* Queue "NAME-first".."NAME-(n)" for every TSP in one transaction. */
static void
enqueue(struct fixture *fx, const char *name, int from, int n)
{
	char	msg[32];
	int	i;

	assert_int_equal(store_begin(fx->fx_db), 0);
	for (i = from; i < from + n; i++) {
		snprintf(msg, sizeof(msg), "%s-%d", name, i);
		assert_int_equal(outbox_enqueue_all(fx->fx_ob,
		    QROAM__MSG_TYPE__MT_FILL_RECORD, (const uint8_t *)msg,
		    strlen(msg)), 0);
	}
	assert_int_equal(store_commit(fx->fx_db), 0);
}

/* ft accepted exactly NAME-1..NAME-n, in order, each once. */
static void
expect_received(const struct fake_tsp *ft, const char *name, int n)
{
	char	want[32];
	int	i;

	assert_int_equal(ft->ft_nmsg, n);
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "%s-%d", name, i + 1);
		assert_string_equal(ft->ft_msg[i], want);
		assert_int_equal(ft->ft_type[i], QROAM__MSG_TYPE__MT_FILL_RECORD);
		assert_true(ft->ft_rid[i] != 0);
		if (i > 0)
			assert_true(ft->ft_rid[i] > ft->ft_rid[i - 1]);
	}
}

static void
test_delivers_in_order_to_every_tsp(void **state)
{
	struct fixture	*fx = *state;
	int		i;

	ft_start_both(fx);
	enqueue(fx, "rec", 1, 3);
	assert_int_equal(outbox_depth(fx->fx_ob), 6);
	assert_int_equal(tu_query_int(fx->fx_db,
	    "SELECT count(*) FROM outbox WHERE dest = 'tsp-a'"), 3);
	assert_int_equal(tu_query_int(fx->fx_db,
	    "SELECT count(*) FROM outbox WHERE dest = 'tsp-b'"), 3);
	/* Nothing moves before the kick. */
	tu_run_for(fx->fx_base, 50);
	assert_int_equal(fx->fx_tsp[0].ft_frames + fx->fx_tsp[1].ft_frames, 0);

	outbox_kick(fx->fx_ob);
	tu_wait(fx->fx_base, is_drained, fx, WAIT_MS);
	assert_int_equal(tu_query_int(fx->fx_db,
	    "SELECT count(*) FROM outbox"), 0);
	for (i = 0; i < 2; i++) {
		expect_received(&fx->fx_tsp[i], "rec", 3);
		assert_int_equal(fx->fx_tsp[i].ft_refused, 0);
		/* The outbox presents its own certificate. */
		assert_string_equal(fx->fx_tsp[i].ft_cn, "filler");
		assert_string_equal(fx->fx_tsp[i].ft_role, "filler");
	}

	/* After draining, later messages go out on a new kick. */
	tu_run_for(fx->fx_base, 50);
	enqueue(fx, "rec", 4, 1);
	outbox_kick(fx->fx_ob);
	tu_wait(fx->fx_base, is_drained, fx, WAIT_MS);
	for (i = 0; i < 2; i++) {
		expect_received(&fx->fx_tsp[i], "rec", 4);
	}
}

static void
test_rolled_back_enqueue_sends_nothing(void **state)
{
	struct fixture	*fx = *state;

	ft_start_both(fx);
	assert_int_equal(store_begin(fx->fx_db), 0);
	assert_int_equal(outbox_enqueue_all(fx->fx_ob,
	    QROAM__MSG_TYPE__MT_M2, (const uint8_t *)"lost", 4), 0);
	store_rollback(fx->fx_db);
	assert_int_equal(outbox_depth(fx->fx_ob), 0);
	outbox_kick(fx->fx_ob);
	tu_run_for(fx->fx_base, 200);
	assert_int_equal(fx->fx_tsp[0].ft_frames + fx->fx_tsp[1].ft_frames, 0);
}

static int
b_refused_twice(void *arg)
{
	struct fixture	*fx = arg;

	return fx->fx_tsp[0].ft_nmsg == 3 && fx->fx_tsp[1].ft_refused >= 2;
}

static void
test_refusing_tsp_is_retried(void **state)
{
	struct fixture	*fx = *state;

	ft_start_both(fx);
	fx->fx_tsp[1].ft_mode = FT_REFUSE;
	enqueue(fx, "rec", 1, 3);
	outbox_kick(fx->fx_ob);
	/* tsp-a drains; tsp-b refuses the head and is tried again later. */
	tu_wait(fx->fx_base, b_refused_twice, fx, WAIT_MS);
	expect_received(&fx->fx_tsp[0], "rec", 3);
	assert_int_equal(fx->fx_tsp[1].ft_nmsg, 0);
	assert_int_equal(outbox_depth(fx->fx_ob), 3);
	assert_int_equal(tu_query_int(fx->fx_db,
	    "SELECT count(*) FROM outbox WHERE dest = 'tsp-b'"), 3);
	/* Refusals are counted on the head message only. */
	assert_true(tu_query_int(fx->fx_db, "SELECT attempts FROM outbox"
	    " WHERE dest = 'tsp-b' ORDER BY id LIMIT 1") >= 1);
	assert_int_equal(tu_query_int(fx->fx_db, "SELECT sum(attempts) FROM"
	    " (SELECT attempts FROM outbox WHERE dest = 'tsp-b'"
	    " ORDER BY id LIMIT -1 OFFSET 1)"), 0);

	/* tsp-b recovers: everything arrives, in order. */
	fx->fx_tsp[1].ft_mode = FT_OK;
	tu_wait(fx->fx_base, is_drained, fx, WAIT_MS);
	expect_received(&fx->fx_tsp[1], "rec", 3);
	expect_received(&fx->fx_tsp[0], "rec", 3);
}

static void
test_refusal_mid_queue_keeps_order(void **state)
{
	struct fixture	*fx = *state;

	ft_start_both(fx);
	fx->fx_tsp[0].ft_mode = FT_REFUSE_ONCE;
	fx->fx_tsp[0].ft_refuse_this = "rec-2";
	enqueue(fx, "rec", 1, 3);
	outbox_kick(fx->fx_ob);
	tu_wait(fx->fx_base, is_drained, fx, WAIT_MS);
	/* rec-1 is not sent again; rec-3 never overtakes rec-2. */
	expect_received(&fx->fx_tsp[0], "rec", 3);
	assert_int_equal(fx->fx_tsp[0].ft_refused, 1);
	assert_int_equal(fx->fx_tsp[0].ft_frames, 4);
	expect_received(&fx->fx_tsp[1], "rec", 3);
	assert_int_equal(fx->fx_tsp[1].ft_frames, 3);
}

/* Each TSP saw the second batch's message at least once. */
static int
both_seen(void *arg)
{
	struct fixture	*fx = arg;

	return fx->fx_tsp[0].ft_frames >= 2 && fx->fx_tsp[1].ft_frames >= 2;
}

/*
 * tsp-a listens as itself, tsp-b as cert_b (NULL: nothing listens): n
 * queued messages reach tsp-a, and tsp-b gets none of them, also after
 * at least one retry, so they stay queued for it.
 */
static void
expect_only_a(struct fixture *fx, const char *cert_b, int n)
{
	ft_start(fx, &fx->fx_tsp[0], "tsp-a");
	if (cert_b != NULL)
		ft_start(fx, &fx->fx_tsp[1], cert_b);
	enqueue(fx, "rec", 1, n);
	outbox_kick(fx->fx_ob);
	tu_wait_count(fx->fx_base, &fx->fx_tsp[0].ft_nmsg, n, WAIT_MS);
	tu_run_for(fx->fx_base, 300);
	expect_received(&fx->fx_tsp[0], "rec", n);
	assert_int_equal(fx->fx_tsp[1].ft_frames, 0);
	assert_int_equal(outbox_depth(fx->fx_ob), n);
	assert_int_equal(tu_query_int(fx->fx_db,
	    "SELECT count(*) FROM outbox WHERE dest = 'tsp-b'"), n);
}

static void
test_down_tsp_converges(void **state)
{
	struct fixture	*fx = *state;

	/* tsp-b is down: nothing listens on its port. */
	expect_only_a(fx, NULL, 2);
	/* It comes up and gets everything without another kick. */
	ft_start(fx, &fx->fx_tsp[1], "tsp-b");
	tu_wait(fx->fx_base, is_drained, fx, WAIT_MS);
	expect_received(&fx->fx_tsp[1], "rec", 2);
	expect_received(&fx->fx_tsp[0], "rec", 2);
}

static void
test_impostor_tsp_gets_nothing(void **state)
{
	struct fixture	*fx = *state;

	/* tsp-b's address answers with tsp-a's certificate. */
	expect_only_a(fx, "tsp-a", 2);
	/* The real tsp-b takes over the address: it gets everything. */
	ft_stop(&fx->fx_tsp[1]);
	ft_start(fx, &fx->fx_tsp[1], "tsp-b");
	tu_wait(fx->fx_base, is_drained, fx, WAIT_MS);
	expect_received(&fx->fx_tsp[1], "rec", 2);
}

static void
test_wrong_role_gets_nothing(void **state)
{
	struct fixture	*fx = *state;

	/* CN tsp-b, but OU registrar. */
	expect_only_a(fx, "tsp-b-registrar", 1);
}

/* The outbox can be freed in any state: drained, waiting, mid-delivery. */
static void
test_free_in_any_state(void **state)
{
	struct fixture	*fx = *state;

	ft_start_both(fx);
	enqueue(fx, "rec", 1, 1);
	outbox_kick(fx->fx_ob);
	tu_wait(fx->fx_base, is_drained, fx, WAIT_MS);
	outbox_free(fx->fx_ob);
	/* The loop keeps running for the rest of the daemon. */
	tu_run_for(fx->fx_base, 50);

	/* tsp-a never answers (in flight), tsp-b refuses (backoff timer). */
	fx->fx_ob = outbox_new(fx->fx_base, fx->fx_db, &fx->fx_topo,
	    fx->fx_client, 0, NULL);
	fx->fx_tsp[0].ft_mode = FT_SILENT;
	fx->fx_tsp[1].ft_mode = FT_REFUSE;
	enqueue(fx, "rec", 2, 1);
	outbox_kick(fx->fx_ob);
	tu_wait(fx->fx_base, both_seen, fx, WAIT_MS);
	tu_run_for(fx->fx_base, 20);
	outbox_free(fx->fx_ob);
	fx->fx_ob = NULL;
	tu_run_for(fx->fx_base, 300);
	/* Nothing was acknowledged, so nothing was lost. */
	assert_int_equal(tu_query_int(fx->fx_db,
	    "SELECT count(*) FROM outbox"), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delivers_in_order_to_every_tsp,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_rolled_back_enqueue_sends_nothing,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_refusing_tsp_is_retried,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_refusal_mid_queue_keeps_order,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_down_tsp_converges,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_impostor_tsp_gets_nothing,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_wrong_role_gets_nothing,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_free_in_any_state,
		    fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
