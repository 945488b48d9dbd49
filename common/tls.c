/*
 * TLS 1.3 contexts with mutual authentication against the deployment's
 * CA, and the peer identity (CN, OU) the daemons authorise on.
 */
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "log.h"
#include "tls.h"

/* Log the OpenSSL error queue under what. */
static void
tls_log_errors(const char *what, const char *path)
{
	unsigned long	e;
	char		buf[256];

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_warnx("%s %s: %s", what, path, buf);
	}
}

/* The parts both sides share: TLS 1.3 (or min), our CA, our certificate. */
static SSL_CTX *
tls_ctx(const SSL_METHOD *method, const char *ca, const char *cert,
    const char *key, int min)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(method)) == NULL) {
		tls_log_errors("SSL_CTX_new", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, min);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	    SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		tls_log_errors("cannot load CA", ca);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_log_errors("cannot load certificate", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_log_errors("cannot load private key", key);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
	    NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	return ctx;
 fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_server_ctx(const char *ca, const char *cert, const char *key)
{
	SSL_CTX	*ctx;

	if ((ctx = tls_ctx(TLS_server_method(), ca, cert, key,
	    TLS1_3_VERSION)) == NULL)
		return NULL;
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

SSL_CTX *
tls_client_ctx(const char *ca, const char *cert, const char *key)
{
	return tls_ctx(TLS_client_method(), ca, cert, key, TLS1_3_VERSION);
}

SSL_CTX *
tls_client_ctx_min(const char *ca, const char *cert, const char *key,
    int minor)
{
	if (minor != 2 && minor != 3)
		return NULL;
	return tls_ctx(TLS_client_method(), ca, cert, key,
	    minor == 2 ? TLS1_2_VERSION : TLS1_3_VERSION);
}

/* Copy the first entry nid of name into buf; "" if absent. */
static void
tls_name_entry(X509_NAME *name, int nid, char *buf, size_t len)
{
	int	n;

	buf[0] = '\0';
	n = X509_NAME_get_text_by_NID(name, nid, buf, (int)len);
	if (n < 0 || (size_t)n >= len || memchr(buf, '\0', n) != NULL)
		buf[0] = '\0';
}

int
tls_peer_identity(SSL *ssl, char *cn, size_t cnlen, char *role, size_t rolelen)
{
	X509		*peer;
	X509_NAME	*name;

	if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return -1;
	if ((peer = SSL_get1_peer_certificate(ssl)) == NULL)
		return -1;
	name = X509_get_subject_name(peer);
	tls_name_entry(name, NID_commonName, cn, cnlen);
	tls_name_entry(name, NID_organizationalUnitName, role, rolelen);
	X509_free(peer);
	return 0;
}
