/*
 * A reserve of quantum keys held ahead of need for one slave SAE, on top
 * of a key source (keysrc.h): PROTOCOL section 7 lets a master SAE ask
 * for several keys in one enc_keys call and hold them for later
 * handovers.  schedd keeps one per TSP, so that CK1 and CK2 are in hand
 * when A1 or A3 arrives instead of one KME round trip away.
 *
 * The reserve keeps up to size keys in memory, oldest first.  Below its
 * low mark (half the size, rounded up) it asks the source for as many as
 * it lacks in one call, in the background; an answer serves the requests
 * waiting for a key first, in order, and the rest fills the reserve.  A
 * key handed out leaves the reserve and is wiped there; a key held longer
 * than the lifetime is wiped unused.  Nothing is ever written to disk.
 *
 * A request finds a key at once or waits for the next answer of the
 * source; one that finds the reserve empty always starts a call of its
 * own when the calls under way do not cover it, so that a reserve of
 * size 0 behaves as one call per key.  A call the KME refuses for a
 * batch (503: fewer keys stored than asked; 400: more than it serves at
 * once) is tried again at once with half as many keys; the batch grows
 * back after each success.  When even one key cannot be had the requests
 * it was meant for fail with the source's reason, and the background
 * refill backs off (KEYSRC_RESERVE_BACKOFF_MIN_MS doubling up to
 * KEYSRC_RESERVE_BACKOFF_MAX_MS) while requests still ask for their own
 * keys.
 */
#ifndef QROAM_KEYSRC_RESERVE_H
#define QROAM_KEYSRC_RESERVE_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "keysrc.h"

#define KEYSRC_RESERVE_MAX		1024	/* keys one reserve holds at most */
#define KEYSRC_RESERVE_INFLIGHT		4	/* calls of one reserve at once */
#define KEYSRC_RESERVE_BACKOFF_MIN_MS	500
#define KEYSRC_RESERVE_BACKOFF_MAX_MS	5000

struct keysrc_reserve;
struct keysrc_wait;

/* What a reserve did, for status pages and metrics. */
struct keysrc_reserve_stats {
	size_t		rs_size;	/* keys it aims to hold */
	size_t		rs_keys;	/* keys held now */
	size_t		rs_waiting;	/* requests waiting for a key */
	size_t		rs_asked;	/* keys asked for in calls under way */
	int		rs_backoff;	/* refill paused after a failure */
	uint64_t	rs_refills;	/* calls answered with keys */
	uint64_t	rs_fetched;	/* keys those calls brought */
	uint64_t	rs_failures;	/* calls that failed */
	uint64_t	rs_served;	/* keys handed out */
	uint64_t	rs_misses;	/* requests that found no key held */
	uint64_t	rs_expired;	/* keys wiped unused (lifetime, size) */
	char		rs_last_error[256];	/* why the last call failed */
};

/*
 * A reserve of size keys (0..KEYSRC_RESERVE_MAX) shared with slave_sae,
 * from ks, each held at most lifetime_ms; it starts filling at once.
 * NULL for a bad argument or when out of memory.  ks must outlive it.
 */
struct keysrc_reserve *keysrc_reserve_new(struct keysrc *ks,
	    struct event_base *, const char *slave_sae, size_t size,
	    uint64_t lifetime_ms);
/* Wipe every key; waiting requests are dropped without their callbacks. */
void	keysrc_reserve_free(struct keysrc_reserve *);
/* Aim for size keys from now on; keys beyond it are wiped.  0 or -1. */
int	keysrc_reserve_resize(struct keysrc_reserve *, size_t size);

/*
 * One key: cb runs once from the event loop with one key (n = 1) or the
 * reason there is none, unless the wait is cancelled first.  The callback
 * may get and cancel keys, but must not free the reserve.  NULL when
 * nothing could be queued (no memory).
 */
struct keysrc_wait *keysrc_reserve_get(struct keysrc_reserve *, keysrc_cb,
	    void *);
/*
 * Give up a wait whose callback has not run: a key already set aside for
 * it goes back to the reserve.
 */
void	keysrc_reserve_cancel(struct keysrc_reserve *, struct keysrc_wait *);

void	keysrc_reserve_stats(const struct keysrc_reserve *,
	    struct keysrc_reserve_stats *);
const char *keysrc_reserve_slave(const struct keysrc_reserve *);

#endif
