/* fillerd's factory listener, fill store and sync to the TSPs. */
#ifndef FILLERD_SERVER_H
#define FILLERD_SERVER_H

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "config.h"
#include "topo.h"

struct filler;

/*
 * Open the store, listen on the topology's filler address, resume the
 * outbox.  conf and topo must outlive the filler: a reload changes the
 * fill parameters in conf in place.  NULL on failure (logged).
 */
struct filler *filler_new(struct event_base *, const struct fillerd_conf *,
	    const struct topo *, SSL_CTX *server_tls, SSL_CTX *client_tls);
void	filler_free(struct filler *);

/*
 * The admin endpoint's /status callback (admin_status_cb): fills stored
 * and outbox backlog; /status/outbox: per TSP
 * [{dest, pending, attempts, oldest_ms}] (outbox_json).
 */
json_t	*filler_status(void *arg, const char *what, json_t *obj);

#endif
