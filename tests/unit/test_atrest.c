/* Secrets at rest: sealing under the store key, the row in the AAD, rotation. */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "atrest.h"
#include "log.h"
#include "testutil.h"

#define HEX1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
#define HEX2 "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static void
test_seal_open_rotate(void **state)
{
	struct atrest	*a, *b, *c;
	const char	 secret[] = "a private key, say";
	uint8_t		*s1, *p;
	size_t		 s1len, plen;
	char		 dir[64], k1[128], k2[128];

	(void)state;
	assert_int_equal(tu_tmpdir_new(dir, sizeof(dir), "atrest"), 0);
	snprintf(k1, sizeof(k1), "%s", tu_write_file(dir, "k1", HEX1));
	snprintf(k2, sizeof(k2), "%s", tu_write_file(dir, "k2", HEX2));
	assert_int_equal(atrest_load(k1, NULL, &a), 0);
	assert_non_null(a);
	assert_int_equal(atrest_seal(a, "t|row1", secret, sizeof(secret),
	    &s1, &s1len), 0);
	assert_int_equal(s1len, sizeof(secret) + ATREST_OVERHEAD);
	assert_true(atrest_is_sealed(s1, s1len));
	assert_null(memmem(s1, s1len, secret, 8));

	assert_int_equal(atrest_open(a, "t|row1", s1, s1len, &p, &plen), 0);
	assert_int_equal(plen, sizeof(secret));
	assert_memory_equal(p, secret, plen);
	free(p);
	/* Another row's identity, or one changed byte: it does not open. */
	assert_int_equal(atrest_open(a, "t|row2", s1, s1len, &p, &plen), -1);
	s1[s1len - 1] ^= 1;
	assert_int_equal(atrest_open(a, "t|row1", s1, s1len, &p, &plen), -1);
	s1[s1len - 1] ^= 1;

	/* Rotation: k2 current, k1 previous: opens, and says seal again. */
	assert_int_equal(atrest_load(k2, NULL, &b), 0);
	assert_int_equal(atrest_open(b, "t|row1", s1, s1len, &p, &plen), -1);
	atrest_free(b);
	assert_int_equal(atrest_load(k2, k1, &c), 0);
	assert_int_equal(atrest_open(c, "t|row1", s1, s1len, &p, &plen), 1);
	assert_memory_equal(p, secret, plen);
	free(p);

	/* Bad key files are refused. */
	tu_capture_begin();
	assert_int_equal(atrest_load(tu_write_file(dir, "short", "abc\n"),
	    NULL, &b), -1);
	assert_int_equal(atrest_load("/nonexistent/k", NULL, &b), -1);
	tu_capture_end();
	free(s1);
	atrest_free(a);
	atrest_free(c);
	assert_int_equal(tu_tmpdir_free(dir), 0);
}

/* No path and no credential: nothing is sealed; the credential is used. */
static void
test_credential(void **state)
{
	struct atrest	*a;
	char		 dir[64];

	(void)state;
	assert_int_equal(tu_tmpdir_new(dir, sizeof(dir), "atrest_cred"), 0);
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(atrest_load(NULL, NULL, &a), 0);
	assert_null(a);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	assert_int_equal(atrest_load(NULL, NULL, &a), 0);
	assert_null(a);
	tu_write_file(dir, ATREST_CREDENTIAL, HEX2);
	assert_int_equal(atrest_load(NULL, NULL, &a), 0);
	assert_non_null(a);
	atrest_free(a);
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(tu_tmpdir_free(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_open_rotate),
		cmocka_unit_test(test_credential),
	};

	log_init("test_atrest", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
