/* fillerd's factory listener, fill store and sync to the TSPs. */
#ifndef FILLERD_SERVER_H
#define FILLERD_SERVER_H

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "topo.h"

struct filler;

/* Open the store, listen on the topology's filler address, resume the
 * outbox.  NULL on failure (logged). */
struct filler *filler_new(struct event_base *, const struct fillerd_conf *,
	    const struct topo *, SSL_CTX *server_tls, SSL_CTX *client_tls);
void	filler_free(struct filler *);

#endif
