/*
 * Durable outbox: messages to every TSP of the topology, stored in the
 * daemon's SQLite store in the same transaction as the state they describe,
 * delivered at least once over the mutual-TLS provisioning channel in
 * order per TSP, removed only after the TSP answered Status OK.  Failed
 * deliveries are retried with exponential backoff.
 */
#ifndef QROAM_OUTBOX_H
#define QROAM_OUTBOX_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "topo.h"

/* Schema for the daemon's migration list. */
extern const char outbox_schema[];

struct outbox;
struct atrest;

/*
 * With barrier (conn.h), a message leaves for a TSP only once the commit
 * that queued it is durable.
 */
struct outbox *outbox_new(struct event_base *, sqlite3 *, const struct topo *,
	    SSL_CTX *client_tls, size_t max_frame, struct conn_barrier *barrier);
void	outbox_free(struct outbox *);
/*
 * Seal the payloads queued from now on under ar's store key (atrest.h),
 * bound to their row (destination, type, time); sealed rows are opened
 * to be sent.  ar must outlive the outbox.
 */
void	outbox_set_atrest(struct outbox *, const struct atrest *ar);
/* Queue payload for every TSP; run inside the caller's transaction. */
int	outbox_enqueue_all(struct outbox *, uint32_t type, const uint8_t *payload,
	    size_t len);
/*
 * One more destination beside the TSPs, such as the key management
 * platform: id names it in the store and the metrics, ep is its mutual-TLS
 * address and its certificate must have role.  Messages reach it only
 * through outbox_enqueue.  0, or -1 (a second one, or id taken).
 */
int	outbox_add_dest(struct outbox *, const char *id,
	    const struct endpoint *ep, const char *role);
/* Queue payload for dest alone; run inside the caller's transaction. */
int	outbox_enqueue(struct outbox *, const char *dest, uint32_t type,
	    const uint8_t *payload, size_t len);
/* Start delivery of what was queued (call after the commit). */
void	outbox_kick(struct outbox *);
/* Messages not yet acknowledged, all TSPs together. */
uint64_t outbox_depth(struct outbox *);
/*
 * Per TSP, in topology order: [{dest, pending, attempts (most tries of one
 * message), oldest_ms (creation time of the oldest, or null)}]; NULL if out
 * of memory.  The depth is also the gauge qroam_outbox_depth{dest}, the
 * age of the oldest qroam_outbox_oldest_seconds{dest}.
 */
json_t	*outbox_json(struct outbox *);

#endif
