/*
 * Unit tests of registrard's key pair generation: a pool of ready pairs
 * that serves at once and refills, waiting registrations served in
 * arrival order with a cancelled one skipped, a new key size that wipes
 * the old pairs while a waiter still gets the size it asked for, the
 * generation on the loop thread without workers, and a stop with
 * generations running and queued (ASan checks that nothing leaks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "metrics.h"

#include "../../registrard/keygen.h"

#include "testutil.h"

#define WAIT_MS	60000

/* A registration waiting for its pair. */
struct waiter {
	struct keygen_wait	 wt_wait;
	struct keypair		*wt_kp;
	int			 wt_calls;
	int			 wt_order;	/* when it was served, from 1 */
};

static int	 served;

static void
waiter_ready(void *arg, struct keypair *kp)
{
	struct waiter	*w = arg;

	w->wt_kp = kp;
	w->wt_calls++;
	w->wt_order = ++served;
}

static void
waiter_init(struct waiter *w)
{
	memset(w, 0, sizeof(*w));
	w->wt_wait.kw_ready = waiter_ready;
	w->wt_wait.kw_arg = w;
}

/* The halves of kp are a matching RSA pair of bits. */
static void
assert_pair(const struct keypair *kp, int bits)
{
	EVP_PKEY	*pub, *prv;

	assert_non_null(kp);
	assert_int_equal(kp->kp_bits, bits);
	assert_non_null(pub = crypto_pub_from_der(kp->kp_pub, kp->kp_publen));
	assert_non_null(prv = crypto_priv_from_der(kp->kp_priv,
	    kp->kp_privlen));
	assert_int_equal(EVP_PKEY_get_bits(pub), bits);
	assert_int_equal(EVP_PKEY_eq(pub, prv), 1);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(prv);
}

struct ready_want {
	struct keygen	*rw_kg;
	size_t		 rw_n;
};

static int
ready_reached(void *arg)
{
	struct ready_want	*rw = arg;

	return keygen_ready(rw->rw_kg) == rw->rw_n;
}

/* Run base until kg keeps n pairs ready. */
static void
wait_ready(struct event_base *base, struct keygen *kg, size_t n)
{
	struct ready_want	 rw = { kg, n };

	tu_wait(base, ready_reached, &rw, WAIT_MS);
}

static double
keys_from(const char *source)
{
	return metric_value(metric_counter("qroam_registration_keys_total",
	    NULL, "source"), source);
}

static int
setup(void **state)
{
	(void)state;
	metrics_reset();
	served = 0;
	return 0;
}

static void
test_pool_serves_and_refills(void **state)
{
	struct event_base	*base;
	struct keygen		*kg;
	struct keypair		*a, *b, *c;
	struct waiter		 w;

	(void)state;
	waiter_init(&w);
	assert_non_null(base = event_base_new());
	assert_non_null(kg = keygen_new(base, 2, 2048, 2));
	assert_int_equal(keygen_nthreads(kg), 2);
	wait_ready(base, kg, 2);

	/* Two pairs at once, distinct; the third registration waits. */
	assert_int_equal(keygen_get(kg, &w.wt_wait, &a), 1);
	assert_int_equal(keygen_get(kg, &w.wt_wait, &b), 1);
	assert_pair(a, 2048);
	assert_pair(b, 2048);
	assert_true(a->kp_publen != b->kp_publen ||
	    memcmp(a->kp_pub, b->kp_pub, a->kp_publen) != 0);
	assert_int_equal(keygen_get(kg, &w.wt_wait, &c), 0);
	assert_null(c);
	assert_int_equal(keygen_waiting(kg), 1);
	assert_int_equal(w.wt_calls, 0);
	tu_wait_count(base, &w.wt_calls, 1, WAIT_MS);
	assert_pair(w.wt_kp, 2048);
	assert_int_equal(keygen_waiting(kg), 0);
	assert_true(keys_from("pool") == 2);
	assert_true(keys_from("generated") == 1);

	/* The pool fills up again. */
	wait_ready(base, kg, 2);
	keypair_free(a);
	keypair_free(b);
	keypair_free(w.wt_kp);
	keygen_free(kg);
	event_base_free(base);
}

static void
test_waiters_in_order(void **state)
{
	struct event_base	*base;
	struct keygen		*kg;
	struct keypair		*kp;
	struct waiter		 w[4];
	int			 i;

	(void)state;
	assert_non_null(base = event_base_new());
	assert_non_null(kg = keygen_new(base, 1, 2048, 0));
	for (i = 0; i < 4; i++) {
		waiter_init(&w[i]);
		assert_int_equal(keygen_get(kg, &w[i].wt_wait, &kp), 0);
		assert_null(kp);
	}
	assert_int_equal(keygen_waiting(kg), 4);
	/* The second leaves; its generation serves the third. */
	keygen_cancel(kg, &w[1].wt_wait);
	assert_int_equal(keygen_waiting(kg), 3);
	tu_wait_count(base, &served, 3, WAIT_MS);
	assert_int_equal(w[0].wt_order, 1);
	assert_int_equal(w[1].wt_calls, 0);
	assert_int_equal(w[2].wt_order, 2);
	assert_int_equal(w[3].wt_order, 3);
	for (i = 0; i < 4; i++) {
		if (i != 1) {
			assert_int_equal(w[i].wt_calls, 1);
			assert_pair(w[i].wt_kp, 2048);
		}
		keypair_free(w[i].wt_kp);
	}
	/* Nothing is kept without a pool; the spare generation is dropped. */
	assert_int_equal(keygen_waiting(kg), 0);
	keygen_free(kg);
	event_base_free(base);
}

static void
test_new_key_size(void **state)
{
	struct event_base	*base;
	struct keygen		*kg;
	struct keypair		*kp;
	struct waiter		 w;

	(void)state;
	assert_non_null(base = event_base_new());
	assert_non_null(kg = keygen_new(base, 2, 2048, 1));
	wait_ready(base, kg, 1);
	assert_int_equal(keygen_get(kg, &w.wt_wait, &kp), 1);
	assert_pair(kp, 2048);
	keypair_free(kp);
	waiter_init(&w);
	assert_int_equal(keygen_get(kg, &w.wt_wait, &kp), 0);

	/* RSA-3072 from now on; the waiter still gets what it asked for. */
	keygen_configure(kg, 3072, 1);
	tu_wait_count(base, &w.wt_calls, 1, WAIT_MS);
	assert_pair(w.wt_kp, 2048);
	keypair_free(w.wt_kp);
	wait_ready(base, kg, 1);
	assert_int_equal(keygen_get(kg, &w.wt_wait, &kp), 1);
	assert_pair(kp, 3072);
	keypair_free(kp);
	wait_ready(base, kg, 1);

	/* A smaller pool lets pairs go at once, a new size all of them. */
	keygen_configure(kg, 3072, 0);
	assert_int_equal(keygen_ready(kg), 0);
	keygen_configure(kg, 2048, 1);
	wait_ready(base, kg, 1);
	keygen_configure(kg, 3072, 1);
	assert_int_equal(keygen_ready(kg), 0);
	keygen_free(kg);
	event_base_free(base);
}

static void
test_no_workers(void **state)
{
	struct event_base	*base;
	struct keygen		*kg;
	struct keypair		*kp;
	struct waiter		 w;

	(void)state;
	assert_non_null(base = event_base_new());
	assert_non_null(kg = keygen_new(base, 0, 2048, 1));
	assert_int_equal(keygen_nthreads(kg), 0);
	/* Made on this thread, handed over from the loop. */
	assert_int_equal(keygen_ready(kg), 0);
	wait_ready(base, kg, 1);
	assert_int_equal(keygen_get(kg, &w.wt_wait, &kp), 1);
	assert_pair(kp, 2048);
	keypair_free(kp);
	/* The refill is done first and serves the waiter; its own fills up. */
	waiter_init(&w);
	assert_int_equal(keygen_get(kg, &w.wt_wait, &kp), 0);
	assert_int_equal(w.wt_calls, 0);
	tu_wait_count(base, &w.wt_calls, 1, WAIT_MS);
	assert_pair(w.wt_kp, 2048);
	keypair_free(w.wt_kp);
	wait_ready(base, kg, 1);
	keygen_free(kg);
	event_base_free(base);
}

static void
test_stop_while_generating(void **state)
{
	struct event_base	*base;
	struct keygen		*kg;

	(void)state;
	assert_non_null(base = event_base_new());
	assert_non_null(kg = keygen_new(base, 2, 3072, 8));
	/* Two running, six queued: the running ones finish, all go. */
	keygen_free(kg);
	assert_non_null(kg = keygen_new(base, 2, 2048, 3));
	wait_ready(base, kg, 3);
	keygen_free(kg);
	event_base_free(base);
}

/* rsa_primes 3: pairs with three prime factors, usable as any other. */
static void
test_three_primes(void **state)
{
	struct event_base	*base;
	struct keygen		*kg;
	struct keypair		*kp = NULL;
	struct waiter		 w;
	EVP_PKEY		*pub, *prv;
	BIGNUM			*r = NULL;
	uint8_t			 pt[32], *ct = NULL, *out = NULL;
	size_t			 ctlen = 0, outlen = 0;

	(void)state;
	waiter_init(&w);
	assert_non_null(base = event_base_new());
	assert_non_null(kg = keygen_new(base, 1, 2048, 0));
	keygen_set_primes(kg, 3);
	assert_int_equal(keygen_get(kg, &w.wt_wait, &kp), 0);
	tu_wait_count(base, &w.wt_calls, 1, WAIT_MS);
	assert_pair(w.wt_kp, 2048);
	assert_non_null(pub = crypto_pub_from_der(w.wt_kp->kp_pub,
	    w.wt_kp->kp_publen));
	assert_non_null(prv = crypto_priv_from_der(w.wt_kp->kp_priv,
	    w.wt_kp->kp_privlen));
	assert_int_equal(EVP_PKEY_get_bn_param(prv, OSSL_PKEY_PARAM_RSA_FACTOR3,
	    &r), 1);
	BN_free(r);
	/* The public half encrypts, the private half decrypts, as usual. */
	memset(pt, 7, sizeof(pt));
	assert_int_equal(crypto_oaep_encrypt(pub, pt, sizeof(pt), &ct, &ctlen),
	    0);
	assert_int_equal(crypto_oaep_decrypt(prv, ct, ctlen, &out, &outlen), 0);
	assert_int_equal(outlen, sizeof(pt));
	assert_memory_equal(out, pt, sizeof(pt));
	free(ct);
	free(out);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(prv);
	keypair_free(w.wt_kp);
	keygen_free(kg);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_pool_serves_and_refills, setup),
		cmocka_unit_test_setup(test_waiters_in_order, setup),
		cmocka_unit_test_setup(test_new_key_size, setup),
		cmocka_unit_test_setup(test_no_workers, setup),
		cmocka_unit_test_setup(test_stop_while_generating, setup),
		cmocka_unit_test_setup(test_three_primes, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
