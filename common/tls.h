/*
 * TLS contexts for the provisioning, cloud and QKD channels: mutual TLS 1.3
 * with certificates from the deployment's CA.  A certificate names its
 * holder in CN (tsp_id, SAE id, ...) and its role in OU
 * (filler, registrar, tsp, sched, qkd, factory, vehicle, operator).
 */
#ifndef QROAM_TLS_H
#define QROAM_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Server side: TLS 1.3 only, client certificate required and verified. */
SSL_CTX	*tls_server_ctx(const char *ca, const char *cert, const char *key);
/* Client side: TLS 1.3 only, presents cert/key, verifies the server. */
SSL_CTX	*tls_client_ctx(const char *ca, const char *cert, const char *key);
/*
 * Client side towards a KME (the key source): as tls_client_ctx, but
 * TLS 1.minor (2 or 3) at least.
 */
SSL_CTX	*tls_client_ctx_min(const char *ca, const char *cert, const char *key,
	    int minor);

/*
 * Identity of the verified peer of ssl: CN into cn, OU into role.  Returns
 * 0, or -1 if there is no verified peer certificate.
 */
int	tls_peer_identity(SSL *ssl, char *cn, size_t cnlen, char *role,
	    size_t rolelen);

#endif
