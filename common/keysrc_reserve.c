/*
 * Keys held ahead of need for one slave SAE (keysrc_reserve.h).  Three
 * lists: the keys held (oldest first, each with the time it came), the
 * requests waiting for a key, and those whose result is set and is
 * handed over from a deferred event, so that a callback never runs
 * inside keysrc_reserve_get.  Every call to the source is a struct
 * kr_call, the callback argument by which keysrc_reserve_free cancels it.
 * Every copy of a key is wiped before its memory is released.
 */
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "ids.h"
#include "keysrc_reserve.h"
#include "log.h"

struct kr_key {
	TAILQ_ENTRY(kr_key)	 k_entry;
	struct keysrc_key	 k_key;
	uint64_t		 k_ms;		/* when it came, monotonic */
};
TAILQ_HEAD(kr_keys, kr_key);

struct keysrc_wait {
	TAILQ_ENTRY(keysrc_wait) w_entry;
	keysrc_cb		 w_cb;
	void			*w_arg;
	int			 w_ready;	/* on r_ready, result set */
	enum keysrc_result	 w_res;
	struct keysrc_key	 w_key;
	uint64_t		 w_key_ms;
	char			 w_why[256];
};
TAILQ_HEAD(kr_waits, keysrc_wait);

/* One call to the source under way, for c_n keys. */
struct kr_call {
	TAILQ_ENTRY(kr_call)	 c_entry;
	struct keysrc_reserve	*c_r;
	size_t			 c_n;
};
TAILQ_HEAD(kr_calls, kr_call);

struct keysrc_reserve {
	struct keysrc		*r_ks;
	char			 r_slave[NAME_MAXLEN + 1];
	uint64_t		 r_lifetime_ms;
	struct kr_keys		 r_keys;
	struct kr_waits		 r_waiting;	/* no key yet, oldest first */
	struct kr_waits		 r_ready;
	struct kr_calls		 r_calls;
	size_t			 r_ncalls;
	size_t			 r_batch;	/* most keys the next call asks */
	uint64_t		 r_backoff_ms;	/* the last backoff, 0: none */
	int			 r_failing;	/* the last call failed */
	int			 r_dry_logged;	/* "empty" logged in this run */
	int			 r_filling;	/* went below the low mark, not full */
	struct event		*r_deliver;
	struct event		*r_retry;	/* the end of a backoff */
	struct event		*r_expiry;	/* the oldest key's lifetime */
	struct keysrc_reserve_stats r_st;	/* counts kept up to date */
};

static void	kr_refill(struct keysrc_reserve *);

static uint64_t
kr_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
kr_ms_to_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000 * 1000);
}

/* The first batch of a reserve of size keys. */
static size_t
kr_first_batch(size_t size)
{
	if (size < 1)
		return 1;
	return size < KEYSRC_BATCH_MAX ? size : KEYSRC_BATCH_MAX;
}

/* Forget the held key k. */
static void
kr_key_drop(struct keysrc_reserve *r, struct kr_key *k)
{
	TAILQ_REMOVE(&r->r_keys, k, k_entry);
	r->r_st.rs_keys--;
	crypto_wipe(k, sizeof(*k));
	free(k);
}

/* Wake up when the oldest key's lifetime ends. */
static void
kr_arm_expiry(struct keysrc_reserve *r)
{
	struct kr_key	*k = TAILQ_FIRST(&r->r_keys);
	struct timeval	 tv;
	uint64_t	 now = kr_now_ms(), end;

	evtimer_del(r->r_expiry);
	if (k == NULL)
		return;
	end = k->k_ms + r->r_lifetime_ms;
	kr_ms_to_tv(end > now ? end - now : 0, &tv);
	evtimer_add(r->r_expiry, &tv);
}

/* Wipe the keys past their lifetime and those beyond the size. */
static void
kr_trim(struct keysrc_reserve *r)
{
	struct kr_key	*k;
	uint64_t	 now = kr_now_ms();

	while ((k = TAILQ_FIRST(&r->r_keys)) != NULL &&
	    (k->k_ms + r->r_lifetime_ms <= now ||
	    r->r_st.rs_keys > r->r_st.rs_size)) {
		kr_key_drop(r, k);
		r->r_st.rs_expired++;
	}
	kr_arm_expiry(r);
}

/* Set w's result and queue it for its callback. */
static void
kr_ready(struct keysrc_reserve *r, struct keysrc_wait *w,
    enum keysrc_result res, const char *why)
{
	TAILQ_REMOVE(&r->r_waiting, w, w_entry);
	r->r_st.rs_waiting--;
	w->w_ready = 1;
	w->w_res = res;
	if (why != NULL)
		snprintf(w->w_why, sizeof(w->w_why), "%s", why);
	TAILQ_INSERT_TAIL(&r->r_ready, w, w_entry);
	event_active(r->r_deliver, EV_TIMEOUT, 1);
}

/* Hand the held keys to the waiting requests, oldest to oldest. */
static void
kr_serve(struct keysrc_reserve *r)
{
	struct keysrc_wait	*w;
	struct kr_key		*k;

	while ((w = TAILQ_FIRST(&r->r_waiting)) != NULL &&
	    (k = TAILQ_FIRST(&r->r_keys)) != NULL) {
		w->w_key = k->k_key;
		w->w_key_ms = k->k_ms;
		kr_key_drop(r, k);
		r->r_st.rs_served++;
		kr_ready(r, w, KEYSRC_OK, NULL);
	}
	kr_arm_expiry(r);
	if (r->r_st.rs_keys == 0 && r->r_failing && !r->r_dry_logged &&
	    r->r_st.rs_size > 0) {
		log_warnx("key reserve for %s: empty while the KME fails: "
		    "each key is asked for on its own", r->r_slave);
		r->r_dry_logged = 1;
	}
}

/* Fail the waiting requests that the calls under way do not cover. */
static void
kr_fail_uncovered(struct keysrc_reserve *r, enum keysrc_result res,
    const char *why)
{
	struct keysrc_wait	*w;

	while ((w = TAILQ_FIRST(&r->r_waiting)) != NULL &&
	    r->r_st.rs_waiting > r->r_st.rs_keys + r->r_st.rs_asked)
		kr_ready(r, w, res, why);
}

/* Hand results over: from the event loop, never inside a get. */
static void
kr_deliver_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct keysrc_reserve	*r = arg;
	struct keysrc_wait	*w;

	(void)fd;
	(void)ev;
	while ((w = TAILQ_FIRST(&r->r_ready)) != NULL) {
		TAILQ_REMOVE(&r->r_ready, w, w_entry);
		if (w->w_res == KEYSRC_OK)
			w->w_cb(w->w_arg, KEYSRC_OK, &w->w_key, 1, NULL);
		else
			w->w_cb(w->w_arg, w->w_res, NULL, 0, w->w_why);
		crypto_wipe(w, sizeof(*w));
		free(w);
	}
}

/*
 * Keys to ask for now: those the waiting requests lack; and when no call
 * is under way and the refill is not backing off, from the moment the
 * reserve went below the low mark until it is full again, all it lacks
 * after serving them.  The refill thus runs as one call at a time (each
 * of at most r_batch keys), while waiting requests may add calls of their
 * own.
 */
static size_t
kr_want(struct keysrc_reserve *r)
{
	const struct keysrc_reserve_stats *st = &r->r_st;
	size_t	stock = st->rs_keys + st->rs_asked;
	size_t	low = (st->rs_size + 1) / 2;
	size_t	want = st->rs_waiting > stock ? st->rs_waiting - stock : 0;

	if (r->r_ncalls > 0 || st->rs_backoff)
		return want;
	if (stock < st->rs_waiting + low)
		r->r_filling = 1;
	if (!r->r_filling || stock >= st->rs_size + st->rs_waiting) {
		r->r_filling = 0;
		return want;
	}
	return st->rs_size + st->rs_waiting - stock;
}

/* Pause the background refill after a call that brought nothing. */
static void
kr_back_off(struct keysrc_reserve *r)
{
	struct timeval	tv;

	r->r_backoff_ms = r->r_backoff_ms == 0 ? KEYSRC_RESERVE_BACKOFF_MIN_MS :
	    r->r_backoff_ms * 2 > KEYSRC_RESERVE_BACKOFF_MAX_MS ?
	    KEYSRC_RESERVE_BACKOFF_MAX_MS : r->r_backoff_ms * 2;
	r->r_st.rs_backoff = 1;
	kr_ms_to_tv(r->r_backoff_ms, &tv);
	evtimer_add(r->r_retry, &tv);
}

/* Keys came: the waiting requests first, then the reserve. */
static void
kr_call_ok(struct keysrc_reserve *r, const struct keysrc_key *keys, size_t n)
{
	struct kr_key	*k;
	uint64_t	 now = kr_now_ms();
	size_t		 i;

	r->r_st.rs_refills++;
	r->r_st.rs_fetched += n;
	if (r->r_failing)
		log_info("key reserve for %s: the KME serves keys again after "
		    "%s", r->r_slave, r->r_st.rs_last_error);
	r->r_failing = 0;
	r->r_dry_logged = 0;
	r->r_backoff_ms = 0;
	r->r_st.rs_backoff = 0;
	evtimer_del(r->r_retry);
	r->r_batch = r->r_batch * 2 > KEYSRC_BATCH_MAX ? KEYSRC_BATCH_MAX :
	    r->r_batch * 2;
	for (i = 0; i < n; i++) {
		if ((k = calloc(1, sizeof(*k))) == NULL) {
			r->r_st.rs_expired++;
			continue;
		}
		k->k_key = keys[i];
		k->k_ms = now;
		TAILQ_INSERT_TAIL(&r->r_keys, k, k_entry);
		r->r_st.rs_keys++;
	}
	kr_serve(r);
	kr_trim(r);
}

/*
 * A call failed.  A batch the KME could not or would not serve is asked
 * again at half the size; otherwise the requests it was for fail too and
 * the refill backs off.
 */
static void
kr_call_failed(struct keysrc_reserve *r, size_t n, enum keysrc_result res,
    const char *why)
{
	r->r_st.rs_failures++;
	snprintf(r->r_st.rs_last_error, sizeof(r->r_st.rs_last_error), "%s",
	    why);
	if (!r->r_failing)
		log_warnx("key reserve for %s: %zu key%s not served: %s; %zu "
		    "held", r->r_slave, n, n == 1 ? "" : "s", why,
		    r->r_st.rs_keys);
	else
		log_debug("key reserve for %s: %zu key%s not served: %s",
		    r->r_slave, n, n == 1 ? "" : "s", why);
	r->r_failing = 1;
	if (n > 1 && (res == KEYSRC_UNAVAILABLE || res == KEYSRC_REFUSED)) {
		r->r_batch = n / 2;
		return;
	}
	kr_fail_uncovered(r, res, why);
	if (!r->r_st.rs_backoff)
		kr_back_off(r);
	kr_serve(r);
}

/* The source answered a call. */
static void
kr_call_cb(void *arg, enum keysrc_result res, const struct keysrc_key *keys,
    size_t n, const char *why)
{
	struct kr_call		*c = arg;
	struct keysrc_reserve	*r = c->c_r;
	size_t			 asked = c->c_n;

	TAILQ_REMOVE(&r->r_calls, c, c_entry);
	r->r_ncalls--;
	r->r_st.rs_asked -= asked;
	free(c);
	if (res == KEYSRC_OK && n == asked)
		kr_call_ok(r, keys, n);
	else
		kr_call_failed(r, asked, res == KEYSRC_OK ? KEYSRC_ERROR : res,
		    why != NULL ? why : "no reason given");
	kr_refill(r);
}

/* Ask the source for what kr_want says, as far as calls may go out. */
static void
kr_refill(struct keysrc_reserve *r)
{
	struct kr_call	*c;
	size_t		 want, n;

	while (r->r_ncalls < KEYSRC_RESERVE_INFLIGHT &&
	    (want = kr_want(r)) > 0) {
		n = want < r->r_batch ? want : r->r_batch;
		if ((c = calloc(1, sizeof(*c))) == NULL ||
		    keysrc_get_keys(r->r_ks, r->r_slave, n, kr_call_cb,
		    c) == -1) {
			free(c);
			kr_fail_uncovered(r, KEYSRC_ERROR,
			    "cannot ask the key source");
			return;
		}
		c->c_r = r;
		c->c_n = n;
		TAILQ_INSERT_TAIL(&r->r_calls, c, c_entry);
		r->r_ncalls++;
		r->r_st.rs_asked += n;
	}
}

static void
kr_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct keysrc_reserve	*r = arg;

	(void)fd;
	(void)ev;
	r->r_st.rs_backoff = 0;
	kr_refill(r);
}

static void
kr_expiry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct keysrc_reserve	*r = arg;

	(void)fd;
	(void)ev;
	kr_trim(r);
	kr_refill(r);
}

struct keysrc_reserve *
keysrc_reserve_new(struct keysrc *ks, struct event_base *base,
    const char *slave_sae, size_t size, uint64_t lifetime_ms)
{
	struct keysrc_reserve	*r;

	if (ks == NULL || !id_valid_name(slave_sae) ||
	    size > KEYSRC_RESERVE_MAX || lifetime_ms == 0 ||
	    (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->r_ks = ks;
	snprintf(r->r_slave, sizeof(r->r_slave), "%s", slave_sae);
	r->r_lifetime_ms = lifetime_ms;
	TAILQ_INIT(&r->r_keys);
	TAILQ_INIT(&r->r_waiting);
	TAILQ_INIT(&r->r_ready);
	TAILQ_INIT(&r->r_calls);
	r->r_st.rs_size = size;
	r->r_batch = kr_first_batch(size);
	r->r_deliver = event_new(base, -1, 0, kr_deliver_cb, r);
	r->r_retry = evtimer_new(base, kr_retry_cb, r);
	r->r_expiry = evtimer_new(base, kr_expiry_cb, r);
	if (r->r_deliver == NULL || r->r_retry == NULL || r->r_expiry == NULL) {
		keysrc_reserve_free(r);
		return NULL;
	}
	kr_refill(r);
	return r;
}

/* Drop a list of waits, wiping the keys set aside for them. */
static void
kr_free_waits(struct kr_waits *list)
{
	struct keysrc_wait	*w;

	while ((w = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, w, w_entry);
		crypto_wipe(w, sizeof(*w));
		free(w);
	}
}

void
keysrc_reserve_free(struct keysrc_reserve *r)
{
	struct kr_call	*c;
	struct kr_key	*k;

	if (r == NULL)
		return;
	while ((c = TAILQ_FIRST(&r->r_calls)) != NULL) {
		TAILQ_REMOVE(&r->r_calls, c, c_entry);
		keysrc_cancel(r->r_ks, kr_call_cb, c);
		free(c);
	}
	while ((k = TAILQ_FIRST(&r->r_keys)) != NULL)
		kr_key_drop(r, k);
	kr_free_waits(&r->r_waiting);
	kr_free_waits(&r->r_ready);
	if (r->r_deliver != NULL)
		event_free(r->r_deliver);
	if (r->r_retry != NULL)
		event_free(r->r_retry);
	if (r->r_expiry != NULL)
		event_free(r->r_expiry);
	crypto_wipe(r, sizeof(*r));
	free(r);
}

int
keysrc_reserve_resize(struct keysrc_reserve *r, size_t size)
{
	if (size > KEYSRC_RESERVE_MAX)
		return -1;
	r->r_st.rs_size = size;
	kr_trim(r);
	kr_refill(r);
	return 0;
}

struct keysrc_wait *
keysrc_reserve_get(struct keysrc_reserve *r, keysrc_cb cb, void *arg)
{
	struct keysrc_wait	*w;

	if (cb == NULL || (w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->w_cb = cb;
	w->w_arg = arg;
	kr_trim(r);
	if (r->r_st.rs_keys == 0)
		r->r_st.rs_misses++;
	TAILQ_INSERT_TAIL(&r->r_waiting, w, w_entry);
	r->r_st.rs_waiting++;
	kr_serve(r);
	kr_refill(r);
	return w;
}

void
keysrc_reserve_cancel(struct keysrc_reserve *r, struct keysrc_wait *w)
{
	struct kr_key	*k;

	if (!w->w_ready) {
		TAILQ_REMOVE(&r->r_waiting, w, w_entry);
		r->r_st.rs_waiting--;
	} else {
		TAILQ_REMOVE(&r->r_ready, w, w_entry);
		/* Its key was never handed out: back to the front. */
		if (w->w_res == KEYSRC_OK &&
		    (k = calloc(1, sizeof(*k))) != NULL) {
			k->k_key = w->w_key;
			k->k_ms = w->w_key_ms;
			TAILQ_INSERT_HEAD(&r->r_keys, k, k_entry);
			r->r_st.rs_keys++;
			r->r_st.rs_served--;
			kr_serve(r);
			kr_trim(r);
		} else if (w->w_res == KEYSRC_OK)
			r->r_st.rs_expired++;
	}
	crypto_wipe(w, sizeof(*w));
	free(w);
}

void
keysrc_reserve_stats(const struct keysrc_reserve *r,
    struct keysrc_reserve_stats *st)
{
	*st = r->r_st;
}

const char *
keysrc_reserve_slave(const struct keysrc_reserve *r)
{
	return r->r_slave;
}
