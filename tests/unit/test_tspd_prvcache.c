/*
 * Unit tests of tspd's cache of decoded private keys: lookups by epoch,
 * a newer epoch kept over an older one, least-recently-used eviction at
 * the capacity, a capacity of 0, and a fleet large enough to make the
 * hash table grow several times with every key still found.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "../../tspd/tspd.h"

#include "testutil.h"

/* The VIN of vehicle i. */
static const char *
vid(unsigned i)
{
	static char	 buf[32];

	snprintf(buf, sizeof(buf), "LPRVCACHE0%07u", i);
	return buf;
}

/* Look up vehicle i of epoch; 1 if the cache handed out want. */
static int
holds(struct tspd *env, unsigned i, uint64_t epoch, EVP_PKEY *want)
{
	EVP_PKEY	*k = tspd_prv_lookup(env, vid(i), epoch);

	if (k == NULL)
		return 0;
	EVP_PKEY_free(k);
	return k == want;
}

static void
test_epochs(void **state)
{
	struct tspd	 env;
	EVP_PKEY	*a, *b, *c;

	(void)state;
	memset(&env, 0, sizeof(env));
	tspd_prv_init(&env, 8);
	assert_non_null(a = EVP_PKEY_new());
	assert_non_null(b = EVP_PKEY_new());
	assert_non_null(c = EVP_PKEY_new());
	assert_null(tspd_prv_lookup(&env, vid(1), 1));
	tspd_prv_put(&env, vid(1), 2, a);
	assert_true(holds(&env, 1, 2, a));
	/* An older epoch does not replace it, the same one keeps the first. */
	tspd_prv_put(&env, vid(1), 1, b);
	tspd_prv_put(&env, vid(1), 2, b);
	assert_true(holds(&env, 1, 2, a));
	tspd_prv_put(&env, vid(1), 3, c);
	assert_true(holds(&env, 1, 3, c));
	assert_int_equal(tspd_prv_count(&env), 1);
	/* A lookup of another epoch drops the entry. */
	assert_null(tspd_prv_lookup(&env, vid(1), 4));
	assert_int_equal(tspd_prv_count(&env), 0);
	tspd_prv_put(&env, vid(1), 4, a);
	tspd_prv_forget(&env, vid(1));
	assert_null(tspd_prv_lookup(&env, vid(1), 4));
	tspd_prv_free(&env);
	assert_null(env.t_prv);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	EVP_PKEY_free(c);
}

static void
test_lru_eviction(void **state)
{
	struct tspd	 env;
	EVP_PKEY	*k[4];
	unsigned	 i;

	(void)state;
	memset(&env, 0, sizeof(env));
	tspd_prv_init(&env, 3);
	for (i = 0; i < 4; i++)
		assert_non_null(k[i] = EVP_PKEY_new());
	for (i = 0; i < 3; i++)
		tspd_prv_put(&env, vid(i), 1, k[i]);
	assert_true(holds(&env, 0, 1, k[0]));	/* 1 is now the oldest */
	tspd_prv_put(&env, vid(3), 1, k[3]);
	assert_int_equal(tspd_prv_count(&env), 3);
	assert_false(holds(&env, 1, 1, k[1]));
	assert_true(holds(&env, 0, 1, k[0]));
	assert_true(holds(&env, 2, 1, k[2]));
	assert_true(holds(&env, 3, 1, k[3]));
	tspd_prv_free(&env);
	for (i = 0; i < 4; i++)
		EVP_PKEY_free(k[i]);
}

static void
test_capacity_zero(void **state)
{
	struct tspd	 env;
	EVP_PKEY	*k;

	(void)state;
	memset(&env, 0, sizeof(env));
	tspd_prv_init(&env, 0);
	assert_non_null(k = EVP_PKEY_new());
	tspd_prv_put(&env, vid(0), 1, k);
	assert_int_equal(tspd_prv_count(&env), 0);
	assert_null(tspd_prv_lookup(&env, vid(0), 1));
	tspd_prv_free(&env);
	EVP_PKEY_free(k);
}

/* 20,000 vehicles: the table doubles several times, all stay found. */
static void
test_large_fleet(void **state)
{
	struct tspd	 env;
	EVP_PKEY	**k;
	unsigned	 i, n = 20000, found = 0;

	(void)state;
	memset(&env, 0, sizeof(env));
	tspd_prv_init(&env, n);
	assert_non_null(k = calloc(n, sizeof(*k)));
	for (i = 0; i < n; i++) {
		assert_non_null(k[i] = EVP_PKEY_new());
		tspd_prv_put(&env, vid(i), 7, k[i]);
	}
	assert_int_equal(tspd_prv_count(&env), n);
	for (i = 0; i < n; i++)
		found += holds(&env, i, 7, k[i]);
	assert_int_equal(found, n);
	/* One more evicts exactly the least recently used: vehicle 0. */
	tspd_prv_put(&env, vid(n), 7, k[0]);
	assert_int_equal(tspd_prv_count(&env), n);
	assert_false(holds(&env, 0, 7, k[0]));
	assert_true(holds(&env, 1, 7, k[1]));
	tspd_prv_free(&env);
	for (i = 0; i < n; i++)
		EVP_PKEY_free(k[i]);
	free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_epochs),
		cmocka_unit_test(test_lru_eviction),
		cmocka_unit_test(test_capacity_zero),
		cmocka_unit_test(test_large_fleet),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
