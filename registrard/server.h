/* registrard's registration listener, store and sync to the TSPs. */
#ifndef REGISTRARD_SERVER_H
#define REGISTRARD_SERVER_H

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "config.h"
#include "topo.h"

struct registrar;

/*
 * Open the store, listen on the topology's registrar address, resume the
 * outbox.  conf and topo must outlive the registrar: a reload changes
 * rsa_bits in conf in place.  NULL on failure (logged).
 */
struct registrar *registrar_new(struct event_base *, const struct registrard_conf *,
	    const struct topo *, SSL_CTX *server_tls, SSL_CTX *client_tls);
void	registrar_free(struct registrar *);

/*
 * The admin endpoint's /status callback (admin_status_cb): vehicles
 * registered and outbox backlog; /status/outbox:
 * per TSP [{dest, pending, attempts, oldest_ms}] (outbox_json).
 */
json_t	*registrar_status(void *arg, const char *what, json_t *obj);

#endif
