/*
 * Unit tests of mutual TLS in the connection layer, against the echo
 * server of echo.c with certificates made at start-up: the names and roles
 * both sides see, and refusals of a client without a certificate, of
 * certificates from another CA, of unexpected peer names and of plain TCP.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "frame.h"
#include "log.h"

#include "echo.h"
#include "testutil.h"

static char	pkidir[64];

/* Our CA and a rogue one, each vouching for a TSP and a filler-like peer. */
static const struct tu_cert pki[] = {
	{ "ca",		"ca",		"ca",		NULL },
	{ "rogue",	"rogue",	"ca",		NULL },
	{ "tsp-a",	"tsp-a",	"tsp",		"ca" },
	{ "filler",	"filler",	"filler",	"ca" },
	{ "intruder",	"intruder",	"filler",	"rogue" },
	{ "fake-tsp",	"fake-tsp",	"tsp",		"rogue" },
	{ NULL,		NULL,		NULL,		NULL },
};

static int
group_setup(void **state)
{
	(void)state;
	return tu_pki_setup("test_conn_tls", pkidir, sizeof(pkidir), pki);
}

static int
group_teardown(void **state)
{
	(void)state;
	return tu_tmpdir_free(pkidir);
}

/* Options of a TLS client presenting the certificate of name. */
static void
tls_client_opts(struct conn_opts *o, const char *name)
{
	memset(o, 0, sizeof(*o));
	o->co_tls = tu_tls_ctx(pkidir, name, 0);
}

static void
test_tls_mutual(void **state)
{
	struct echo_server	 sv;
	struct conn_opts	 o;
	struct conn		*c;
	int			 i;

	(void)state;
	echo_start(&sv, tu_tls_ctx(pkidir, "tsp-a", 1), 0, 0);
	tls_client_opts(&o, "filler");
	o.co_peer_cn = "tsp-a";
	o.co_peer_role = "tsp";
	c = echo_client(&sv, &o);
	assert_string_equal(conn_peer_cn(c), "tsp-a");
	assert_string_equal(conn_peer_role(c), "tsp");
	echo_roundtrip(c, 77, "over tls");
	assert_string_equal(sv.es_cn, "filler");
	assert_string_equal(sv.es_role, "filler");
	/* Many frames in one TLS write still arrive in order. */
	for (i = 0; i < 50; i++)
		assert_int_equal(echo_send(c, 1000 + i, "burst"), 0);
	for (i = 0; i < 50; i++)
		echo_expect(c, 1000 + i, "burst");
	conn_free_sync(c);
	echo_wait_closes(&sv, 1);
	echo_stop(&sv);
	SSL_CTX_free(o.co_tls);
}

/* The client gets no frame through; the server never sees one. */
static void
expect_tls_refused(struct echo_server *sv, const struct conn_opts *o,
    const char *errpart)
{
	struct conn	*c;
	struct frame	 f;
	char		 err[256];
	int		 closes = sv->es_closes;

	err[0] = '\0';
	c = conn_open_sync(sv->es_base, "127.0.0.1", sv->es_port, o,
	    ECHO_WAIT_MS, err, sizeof(err));
	if (c != NULL) {
		/* TLS 1.3: the client may finish before the server refuses. */
		assert_null(errpart);
		(void)echo_send(c, 5, "should not arrive");
		assert_int_equal(conn_recv_sync(c, &f, ECHO_WAIT_MS), -1);
		assert_false(conn_is_open(c));
		conn_free_sync(c);
	} else if (errpart != NULL)
		assert_non_null(strstr(err, errpart));
	echo_wait_closes(sv, closes + 1);
	echo_expect_closes(sv, closes + 1);
	assert_int_equal(sv->es_frames, 0);
	assert_int_equal(listener_nconns(sv->es_l), 0);
}

/* A server as server_cert refuses (or is refused by) a client on cctx. */
static void
tls_refusal(const char *server_cert, SSL_CTX *cctx, const char *errpart)
{
	struct echo_server	sv;
	struct conn_opts	o;

	echo_start(&sv, tu_tls_ctx(pkidir, server_cert, 1), 0, 0);
	memset(&o, 0, sizeof(o));
	o.co_tls = cctx;
	expect_tls_refused(&sv, &o, errpart);
	echo_stop(&sv);
	SSL_CTX_free(cctx);
}

static void
test_tls_client_without_cert(void **state)
{
	SSL_CTX	*cctx;
	char	 ca[128];

	(void)state;
	snprintf(ca, sizeof(ca), "%s/ca.pem", pkidir);
	cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(cctx);
	SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
	assert_int_equal(SSL_CTX_load_verify_locations(cctx, ca, NULL), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	tls_refusal("tsp-a", cctx, NULL);
}

static void
test_tls_client_from_other_ca(void **state)
{
	(void)state;
	/* Trusts our CA for the server, but its own cert is the rogue CA's. */
	tls_refusal("tsp-a", tu_tls_ctx(pkidir, "intruder", 0), NULL);
}

static void
test_tls_server_from_other_ca(void **state)
{
	(void)state;
	/* The server trusts our CA but presents a rogue certificate. */
	tls_refusal("fake-tsp", tu_tls_ctx(pkidir, "filler", 0),
	    "certificate verify failed");
}

static void
test_tls_peer_mismatch(void **state)
{
	struct echo_server	 sv;
	struct conn_opts	 o;
	struct conn		*c;

	(void)state;
	echo_start(&sv, tu_tls_ctx(pkidir, "tsp-a", 1), 0, 0);
	tls_client_opts(&o, "filler");
	o.co_peer_cn = "tsp-b";
	expect_tls_refused(&sv, &o, "unexpected peer certificate CN");
	o.co_peer_cn = "tsp-a";
	o.co_peer_role = "registrar";
	expect_tls_refused(&sv, &o, "unexpected peer certificate role");
	/* The right names still work on the same server. */
	o.co_peer_role = "tsp";
	c = echo_client(&sv, &o);
	echo_roundtrip(c, 8, "right one");
	conn_free_sync(c);
	echo_stop(&sv);
	SSL_CTX_free(o.co_tls);
}

static void
test_tls_plain_client(void **state)
{
	struct echo_server	 sv;
	struct conn		*c;
	struct frame		 f;

	(void)state;
	echo_start(&sv, tu_tls_ctx(pkidir, "tsp-a", 1), 0, 0);
	/* Plain TCP to a TLS listener: the handshake fails, nothing arrives. */
	c = echo_client(&sv, NULL);
	assert_int_equal(echo_send(c, 1, "cleartext"), 0);
	assert_int_equal(conn_recv_sync(c, &f, ECHO_WAIT_MS), -1);
	conn_free_sync(c);
	echo_wait_closes(&sv, 1);
	assert_int_equal(sv.es_frames, 0);
	echo_stop(&sv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_mutual),
		cmocka_unit_test(test_tls_client_without_cert),
		cmocka_unit_test(test_tls_client_from_other_ca),
		cmocka_unit_test(test_tls_server_from_other_ca),
		cmocka_unit_test(test_tls_peer_mismatch),
		cmocka_unit_test(test_tls_plain_client),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
