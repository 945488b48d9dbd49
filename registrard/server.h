/* registrard's registration listener, store and sync to the TSPs. */
#ifndef REGISTRARD_SERVER_H
#define REGISTRARD_SERVER_H

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "topo.h"

struct registrar;

struct registrar *registrar_new(struct event_base *, const struct registrard_conf *,
	    const struct topo *, SSL_CTX *server_tls, SSL_CTX *client_tls);
void	registrar_free(struct registrar *);

#endif
