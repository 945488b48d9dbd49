/*
 * Unit tests of the key reserve (keysrc_reserve.c) on a key source whose
 * backend is the test itself: every enc_keys call waits in a list until
 * the test answers it with keys or a failure.  Checks the first fill and
 * the refill below the low mark, keys handed out oldest first and once,
 * requests that find the reserve empty, a reserve of size 0, the limit of
 * calls at once, batches halved after a 503 and grown back, the backoff
 * and the requests failed with the source's reason, cancelled waits (a
 * key set aside goes back), the lifetime of held keys, resizing, answers
 * with the wrong number of keys, a source that refuses to queue, and
 * freeing a reserve with calls and waits under way.
 */
#include <sys/queue.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>

#include "keysrc.h"
#include "keysrc_reserve.h"

#include "testutil.h"

#define MAXGOT		32
#define LIFETIME_MS	3600000

/* One enc_keys call the fake source holds. */
struct fake_call {
	TAILQ_ENTRY(fake_call)	 fc_entry;
	char			 fc_slave[64];
	size_t			 fc_n;
	keysrc_cb		 fc_cb;
	void			*fc_arg;
};

static struct {
	TAILQ_HEAD(fake_calls, fake_call) fs_calls;
	size_t			 fs_ncalls;
	int			 fs_refuse;	/* kb_get_keys fails */
	unsigned		 fs_seq;	/* keys made so far */
	unsigned		 fs_cancelled;
} fs;

/* What the reserve handed to a request's callback. */
struct got {
	int			 g_n;
	enum keysrc_result	 g_res[MAXGOT];
	char			 g_id[MAXGOT][KEYSRC_IDMAX + 1];
	uint8_t			 g_key[MAXGOT][KEYSRC_KEYLEN];
	char			 g_why[MAXGOT][256];
	struct keysrc_reserve	*g_again;	/* ask it once more in the callback */
};

static struct event_base	*base;
static struct keysrc		*ks;

static void *
fs_open(struct event_base *b, const char *host, uint16_t port, SSL_CTX *tls,
    int timeout_ms)
{
	(void)b;
	(void)host;
	(void)port;
	(void)tls;
	(void)timeout_ms;
	return &fs;
}

static int
fs_get_keys(void *ctx, const char *slave, size_t number, keysrc_cb cb,
    void *arg)
{
	struct fake_call	*fc;

	(void)ctx;
	if (fs.fs_refuse)
		return -1;
	fc = calloc(1, sizeof(*fc));
	assert_non_null(fc);
	snprintf(fc->fc_slave, sizeof(fc->fc_slave), "%s", slave);
	fc->fc_n = number;
	fc->fc_cb = cb;
	fc->fc_arg = arg;
	TAILQ_INSERT_TAIL(&fs.fs_calls, fc, fc_entry);
	fs.fs_ncalls++;
	return 0;
}

static int
fs_get_keys_by_id(void *ctx, const char *master, const char *const *ids,
    size_t n, keysrc_cb cb, void *arg)
{
	(void)ctx;
	(void)master;
	(void)ids;
	(void)n;
	(void)cb;
	(void)arg;
	fail_msg("a reserve never asks for keys by key_ID");
	return -1;
}

static void
fs_cancel(void *ctx, keysrc_cb cb, void *arg)
{
	struct fake_call	*fc, *next;

	(void)ctx;
	for (fc = TAILQ_FIRST(&fs.fs_calls); fc != NULL; fc = next) {
		next = TAILQ_NEXT(fc, fc_entry);
		if (fc->fc_cb != cb || fc->fc_arg != arg)
			continue;
		TAILQ_REMOVE(&fs.fs_calls, fc, fc_entry);
		fs.fs_ncalls--;
		fs.fs_cancelled++;
		free(fc);
	}
}

static void
fs_close(void *ctx)
{
	(void)ctx;
}

static const struct keysrc_backend fake_backend = {
	.kb_name = "fake",
	.kb_desc = "test key source",
	.kb_open = fs_open,
	.kb_get_keys = fs_get_keys,
	.kb_get_keys_by_id = fs_get_keys_by_id,
	.kb_cancel = fs_cancel,
	.kb_close = fs_close,
};

/* The oldest call's size; fails if there is none. */
static size_t
call_n(void)
{
	assert_non_null(TAILQ_FIRST(&fs.fs_calls));
	return TAILQ_FIRST(&fs.fs_calls)->fc_n;
}

/* Take the oldest call off the list. */
static struct fake_call *
take_call(void)
{
	struct fake_call	*fc = TAILQ_FIRST(&fs.fs_calls);

	assert_non_null(fc);
	TAILQ_REMOVE(&fs.fs_calls, fc, fc_entry);
	fs.fs_ncalls--;
	return fc;
}

/* Key number i: key_ID "k-i", every byte i. */
static void
make_key(unsigned i, struct keysrc_key *k)
{
	snprintf(k->kk_id, sizeof(k->kk_id), "k-%u", i);
	memset(k->kk_key, (int)(i & 0xff), sizeof(k->kk_key));
}

/* Answer the oldest call with n keys (0: as many as it asked for). */
static void
answer_n(size_t n)
{
	struct fake_call	*fc = take_call();
	struct keysrc_key	 keys[KEYSRC_BATCH_MAX];
	size_t			 i;

	if (n == 0)
		n = fc->fc_n;
	assert_true(n <= KEYSRC_BATCH_MAX);
	for (i = 0; i < n; i++)
		make_key(++fs.fs_seq, &keys[i]);
	fc->fc_cb(fc->fc_arg, KEYSRC_OK, keys, n, NULL);
	free(fc);
}

static void
answer(void)
{
	answer_n(0);
}

/* Fail the oldest call with res and why. */
static void
fail_call(enum keysrc_result res, const char *why)
{
	struct fake_call	*fc = take_call();

	fc->fc_cb(fc->fc_arg, res, NULL, 0, why);
	free(fc);
}

static void
got_cb(void *arg, enum keysrc_result res, const struct keysrc_key *keys,
    size_t n, const char *why)
{
	struct got	*g = arg;
	int		 i = g->g_n++;

	assert_true(i < MAXGOT);
	g->g_res[i] = res;
	if (res == KEYSRC_OK) {
		assert_int_equal(n, 1);
		assert_null(why);
		snprintf(g->g_id[i], sizeof(g->g_id[i]), "%s", keys[0].kk_id);
		memcpy(g->g_key[i], keys[0].kk_key, KEYSRC_KEYLEN);
	} else {
		assert_int_equal(n, 0);
		assert_null(keys);
		snprintf(g->g_why[i], sizeof(g->g_why[i]), "%s", why);
	}
	if (g->g_again != NULL) {
		assert_non_null(keysrc_reserve_get(g->g_again, got_cb, g));
		g->g_again = NULL;
	}
}

static struct keysrc_reserve_stats
stats(const struct keysrc_reserve *r)
{
	struct keysrc_reserve_stats	st;

	keysrc_reserve_stats(r, &st);
	return st;
}

/* Let the deferred deliveries run. */
static void
settle(void)
{
	tu_run_for(base, 10);
}

static struct keysrc_reserve *
reserve(size_t size, uint64_t lifetime_ms)
{
	struct keysrc_reserve	*r;

	r = keysrc_reserve_new(ks, base, "tsp-a", size, lifetime_ms);
	assert_non_null(r);
	return r;
}

static int
setup(void **state)
{
	(void)state;
	memset(&fs, 0, sizeof(fs));
	TAILQ_INIT(&fs.fs_calls);
	base = event_base_new();
	assert_non_null(base);
	ks = keysrc_open(&fake_backend, base, "kme", 1, NULL, 1000);
	assert_non_null(ks);
	return 0;
}

static int
teardown(void **state)
{
	struct fake_call	*fc;

	(void)state;
	while ((fc = TAILQ_FIRST(&fs.fs_calls)) != NULL) {
		TAILQ_REMOVE(&fs.fs_calls, fc, fc_entry);
		free(fc);
	}
	keysrc_free(ks);
	event_base_free(base);
	return 0;
}

/*
 * The first fill asks for the whole size in one call; keys go out oldest
 * first, each once; below the low mark one call asks for what is missing.
 */
static void
test_fill_and_refill(void **state)
{
	struct keysrc_reserve	*r = reserve(4, LIFETIME_MS);
	struct keysrc_wait	*w;
	struct got		 g;
	uint8_t			 want[KEYSRC_KEYLEN];
	int			 i;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_int_equal(fs.fs_ncalls, 1);
	assert_string_equal(TAILQ_FIRST(&fs.fs_calls)->fc_slave, "tsp-a");
	assert_int_equal(call_n(), 4);
	answer();
	assert_int_equal(stats(r).rs_keys, 4);
	assert_int_equal(stats(r).rs_refills, 1);
	assert_int_equal(stats(r).rs_fetched, 4);
	for (i = 0; i < 2; i++) {
		w = keysrc_reserve_get(r, got_cb, &g);
		assert_non_null(w);
	}
	/* Handed over from the event loop, not inside the call. */
	assert_int_equal(g.g_n, 0);
	settle();
	assert_int_equal(g.g_n, 2);
	for (i = 0; i < 2; i++) {
		assert_int_equal(g.g_res[i], KEYSRC_OK);
		memset(want, i + 1, sizeof(want));
		assert_memory_equal(g.g_key[i], want, KEYSRC_KEYLEN);
	}
	assert_string_equal(g.g_id[0], "k-1");
	assert_string_equal(g.g_id[1], "k-2");
	/* 2 held: at the low mark, nothing asked yet. */
	assert_int_equal(fs.fs_ncalls, 0);
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	assert_int_equal(fs.fs_ncalls, 1);
	assert_int_equal(call_n(), 3);
	assert_int_equal(stats(r).rs_asked, 3);
	settle();
	assert_string_equal(g.g_id[2], "k-3");
	answer();
	assert_int_equal(stats(r).rs_keys, 4);
	assert_int_equal(stats(r).rs_served, 3);
	assert_int_equal(stats(r).rs_misses, 0);
	assert_int_equal(stats(r).rs_refills, 2);
	assert_int_equal(stats(r).rs_failures, 0);
	keysrc_reserve_free(r);
}

/* Requests that find no key wait for the call under way, in order. */
static void
test_empty_reserve_waits(void **state)
{
	struct keysrc_reserve	*r = reserve(2, LIFETIME_MS);
	struct got		 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	/* The first fill of 2 covers both: no call of their own. */
	assert_int_equal(fs.fs_ncalls, 1);
	assert_int_equal(stats(r).rs_waiting, 2);
	assert_int_equal(stats(r).rs_misses, 2);
	settle();
	assert_int_equal(g.g_n, 0);
	answer();
	settle();
	assert_int_equal(g.g_n, 2);
	assert_string_equal(g.g_id[0], "k-1");
	assert_string_equal(g.g_id[1], "k-2");
	assert_int_equal(stats(r).rs_waiting, 0);
	/* Empty again: the refill for the whole size follows at once. */
	assert_int_equal(fs.fs_ncalls, 1);
	assert_int_equal(call_n(), 2);
	answer();
	assert_int_equal(stats(r).rs_keys, 2);
	keysrc_reserve_free(r);
}

/*
 * A reserve of size 0 holds nothing: every request asks for its own key,
 * at most KEYSRC_RESERVE_INFLIGHT at once; later ones wait for a free
 * call and are asked for together.
 */
static void
test_size_zero(void **state)
{
	struct keysrc_reserve	*r = reserve(0, LIFETIME_MS);
	struct got		 g;
	int			 i;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_int_equal(fs.fs_ncalls, 0);
	for (i = 0; i < KEYSRC_RESERVE_INFLIGHT + 2; i++)
		assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	assert_int_equal(fs.fs_ncalls, KEYSRC_RESERVE_INFLIGHT);
	assert_int_equal(stats(r).rs_asked, KEYSRC_RESERVE_INFLIGHT);
	answer();
	/* One call is free: it asks for both requests left uncovered. */
	assert_int_equal(fs.fs_ncalls, KEYSRC_RESERVE_INFLIGHT);
	assert_int_equal(TAILQ_LAST(&fs.fs_calls, fake_calls)->fc_n, 2);
	while (fs.fs_ncalls > 0)
		answer();
	settle();
	assert_int_equal(g.g_n, KEYSRC_RESERVE_INFLIGHT + 2);
	for (i = 0; i < g.g_n; i++)
		assert_int_equal(g.g_res[i], KEYSRC_OK);
	assert_int_equal(stats(r).rs_keys, 0);
	assert_int_equal(stats(r).rs_expired, 0);
	assert_int_equal(fs.fs_ncalls, 0);
	keysrc_reserve_free(r);
}

/*
 * A 503 for a batch is asked again at half the size down to one key;
 * when one key fails too, the refill backs off, a request asks for its
 * own key and fails with the source's reason; after the backoff the
 * refill starts again at one key, the batch doubles with each answer,
 * and the refill goes on until the reserve is full.
 */
static void
test_halving_and_backoff(void **state)
{
	struct keysrc_reserve	*r = reserve(8, LIFETIME_MS);
	struct got		 g;
	size_t			 n;

	(void)state;
	memset(&g, 0, sizeof(g));
	for (n = 8; n >= 1; n /= 2) {
		assert_int_equal(fs.fs_ncalls, 1);
		assert_int_equal(call_n(), n);
		fail_call(KEYSRC_UNAVAILABLE, "KME answered 503: not enough keys");
	}
	assert_int_equal(fs.fs_ncalls, 0);
	assert_int_equal(stats(r).rs_failures, 4);
	assert_true(stats(r).rs_backoff);
	assert_string_equal(stats(r).rs_last_error,
	    "KME answered 503: not enough keys");
	/* In the backoff a request still asks, for its own key only. */
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	assert_int_equal(fs.fs_ncalls, 1);
	assert_int_equal(call_n(), 1);
	fail_call(KEYSRC_UNAVAILABLE, "KME answered 503: empty");
	settle();
	assert_int_equal(g.g_n, 1);
	assert_int_equal(g.g_res[0], KEYSRC_UNAVAILABLE);
	assert_string_equal(g.g_why[0], "KME answered 503: empty");
	assert_int_equal(fs.fs_ncalls, 0);
	/* The backoff ends: one key, then 2, then 4. */
	tu_run_for(base, KEYSRC_RESERVE_BACKOFF_MIN_MS + 200);
	assert_int_equal(fs.fs_ncalls, 1);
	assert_int_equal(call_n(), 1);
	answer();
	assert_false(stats(r).rs_backoff);
	assert_int_equal(call_n(), 2);
	answer();
	assert_int_equal(call_n(), 4);
	answer();
	/* Above the low mark now, but the refill goes on until full. */
	assert_int_equal(stats(r).rs_keys, 7);
	assert_int_equal(call_n(), 1);
	answer();
	assert_int_equal(stats(r).rs_keys, 8);
	assert_int_equal(fs.fs_ncalls, 0);
	assert_int_equal(stats(r).rs_failures, 5);
	assert_int_equal(stats(r).rs_refills, 4);
	keysrc_reserve_free(r);
}

/*
 * A transport failure is not the batch's fault: the waiting requests fail
 * at once and the backoff doubles while calls keep failing.
 */
static void
test_error_backs_off(void **state)
{
	struct keysrc_reserve	*r = reserve(4, LIFETIME_MS);
	struct got		 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	fail_call(KEYSRC_ERROR, "KME 127.0.0.1:1: connection refused");
	settle();
	assert_int_equal(g.g_n, 1);
	assert_int_equal(g.g_res[0], KEYSRC_ERROR);
	assert_string_equal(g.g_why[0], "KME 127.0.0.1:1: connection refused");
	assert_true(stats(r).rs_backoff);
	assert_int_equal(fs.fs_ncalls, 0);
	/* The refill after the backoff asks for the whole batch again. */
	tu_run_for(base, KEYSRC_RESERVE_BACKOFF_MIN_MS + 200);
	assert_int_equal(call_n(), 4);
	fail_call(KEYSRC_ERROR, "again");
	/* Doubled: nothing within the first backoff's time. */
	tu_run_for(base, KEYSRC_RESERVE_BACKOFF_MIN_MS + 200);
	assert_int_equal(fs.fs_ncalls, 0);
	tu_run_for(base, KEYSRC_RESERVE_BACKOFF_MIN_MS);
	assert_int_equal(fs.fs_ncalls, 1);
	answer();
	assert_int_equal(stats(r).rs_keys, 4);
	assert_int_equal(fs.fs_ncalls, 0);
	assert_int_equal(stats(r).rs_failures, 2);
	keysrc_reserve_free(r);
}

/*
 * A wait cancelled before its key came asks nothing more of it; one
 * cancelled after a key was set aside gives the key back, to the front.
 */
static void
test_cancel(void **state)
{
	struct keysrc_reserve	*r = reserve(2, LIFETIME_MS);
	struct keysrc_wait	*w;
	struct got		 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	w = keysrc_reserve_get(r, got_cb, &g);
	assert_non_null(w);
	keysrc_reserve_cancel(r, w);
	assert_int_equal(stats(r).rs_waiting, 0);
	answer();
	assert_int_equal(stats(r).rs_keys, 2);
	w = keysrc_reserve_get(r, got_cb, &g);
	assert_int_equal(stats(r).rs_keys, 1);
	keysrc_reserve_cancel(r, w);
	assert_int_equal(stats(r).rs_keys, 2);
	assert_int_equal(stats(r).rs_served, 0);
	settle();
	assert_int_equal(g.g_n, 0);
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	settle();
	assert_int_equal(g.g_n, 1);
	assert_string_equal(g.g_id[0], "k-1");
	keysrc_reserve_free(r);
}

/* Keys held past their lifetime are wiped unused, and replaced. */
static void
test_lifetime(void **state)
{
	struct keysrc_reserve	*r = reserve(2, 100);
	struct got		 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	answer();
	assert_int_equal(stats(r).rs_keys, 2);
	tu_run_for(base, 250);
	assert_int_equal(stats(r).rs_keys, 0);
	assert_int_equal(stats(r).rs_expired, 2);
	assert_int_equal(fs.fs_ncalls, 1);
	assert_int_equal(call_n(), 2);
	answer();
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	settle();
	assert_string_equal(g.g_id[0], "k-3");
	keysrc_reserve_free(r);
}

/* A smaller size wipes the oldest keys beyond it; a larger one refills. */
static void
test_resize(void **state)
{
	struct keysrc_reserve	*r = reserve(4, LIFETIME_MS);
	struct got		 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	answer();
	assert_int_equal(keysrc_reserve_resize(r, 1), 0);
	assert_int_equal(stats(r).rs_keys, 1);
	assert_int_equal(stats(r).rs_expired, 3);
	assert_int_equal(stats(r).rs_size, 1);
	assert_int_equal(fs.fs_ncalls, 0);
	assert_int_equal(keysrc_reserve_resize(r, 3), 0);
	assert_int_equal(call_n(), 2);
	answer();
	assert_int_equal(keysrc_reserve_resize(r, KEYSRC_RESERVE_MAX + 1), -1);
	assert_int_equal(stats(r).rs_size, 3);
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	settle();
	assert_string_equal(g.g_id[0], "k-4");
	keysrc_reserve_free(r);
}

/*
 * An answer with the wrong number of keys counts as a failure and none of
 * its keys is kept; a request then asks for its own key.
 */
static void
test_wrong_count(void **state)
{
	struct keysrc_reserve	*r = reserve(1, LIFETIME_MS);
	struct got		 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	answer_n(2);
	assert_int_equal(stats(r).rs_keys, 0);
	assert_int_equal(stats(r).rs_failures, 1);
	assert_true(stats(r).rs_backoff);
	assert_int_equal(fs.fs_ncalls, 0);
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	assert_int_equal(call_n(), 1);
	answer();
	settle();
	assert_int_equal(g.g_n, 1);
	assert_int_equal(g.g_res[0], KEYSRC_OK);
	assert_string_equal(g.g_id[0], "k-3");
	keysrc_reserve_free(r);
}

/* A source that cannot queue: the request fails, from the event loop. */
static void
test_source_refuses(void **state)
{
	struct keysrc_reserve	*r;
	struct got		 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	fs.fs_refuse = 1;
	r = reserve(2, LIFETIME_MS);
	assert_int_equal(fs.fs_ncalls, 0);
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	assert_int_equal(g.g_n, 0);
	settle();
	assert_int_equal(g.g_n, 1);
	assert_int_equal(g.g_res[0], KEYSRC_ERROR);
	assert_string_equal(g.g_why[0], "cannot ask the key source");
	fs.fs_refuse = 0;
	keysrc_reserve_free(r);
}

/* A callback may ask again; it is served in turn. */
static void
test_get_in_callback(void **state)
{
	struct keysrc_reserve	*r = reserve(3, LIFETIME_MS);
	struct got		 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	answer();
	g.g_again = r;
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	settle();
	assert_int_equal(g.g_n, 2);
	assert_string_equal(g.g_id[0], "k-1");
	assert_string_equal(g.g_id[1], "k-2");
	keysrc_reserve_free(r);
}

/* Freeing cancels the calls under way; waiting callbacks never run. */
static void
test_free_busy(void **state)
{
	struct keysrc_reserve	*r = reserve(4, LIFETIME_MS);
	struct got		 g;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	assert_int_equal(fs.fs_ncalls, 1);
	keysrc_reserve_free(r);
	assert_int_equal(fs.fs_ncalls, 0);
	assert_int_equal(fs.fs_cancelled, 1);
	/* A key set aside and not yet handed over is wiped with it. */
	r = reserve(1, LIFETIME_MS);
	answer();
	assert_non_null(keysrc_reserve_get(r, got_cb, &g));
	keysrc_reserve_free(r);
	settle();
	assert_int_equal(g.g_n, 0);
}

static void
test_bad_arguments(void **state)
{
	(void)state;
	assert_null(keysrc_reserve_new(NULL, base, "tsp-a", 1, LIFETIME_MS));
	assert_null(keysrc_reserve_new(ks, base, "TSP A", 1, LIFETIME_MS));
	assert_null(keysrc_reserve_new(ks, base, "tsp-a",
	    KEYSRC_RESERVE_MAX + 1, LIFETIME_MS));
	assert_null(keysrc_reserve_new(ks, base, "tsp-a", 1, 0));
	assert_int_equal(fs.fs_ncalls, 0);
	keysrc_reserve_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fill_and_refill, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_empty_reserve_waits, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_size_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_halving_and_backoff, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_error_backs_off, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lifetime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_count, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_source_refuses, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_get_in_callback, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
