/*
 * Unit tests of key sequences: codes and chip_id on the PROTOCOL section 10
 * test vector, and keyseq_validate accepting that record while refusing
 * each kind of broken one with its own reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "crypto.h"
#include "keyseq.h"

#include "testutil.h"

/* keyseq_validate refuses v with exactly the reason want. */
static void
assert_refused(const struct tu_fill *v, const char *want)
{
	const char	*why = NULL;

	assert_int_equal(keyseq_validate(&v->tf_rec, &why), -1);
	assert_non_null(why);
	assert_string_equal(why, want);
}

static void
test_code_vector(void **state)
{
	uint8_t	 key[KEYSEQ_KEYLEN], h[32];
	char	 code[KEYSEQ_MAXK + 1], hex[65];
	int	 i;

	(void)state;
	for (i = 0; i < TU_VEC_M; i++) {
		tu_vec_key(i, key);
		keyseq_code(key, 10, code);
		assert_string_equal(code, tu_vec_codes[i]);
	}
	tu_vec_key(0, key);
	crypto_hex(key, sizeof(key), hex);
	assert_string_equal(hex,
	    "a819408ce5010ca2e09ef59ac3d89f5ff8595d02b524e61bf8afa894a95d594f");
	keyseq_code(key, 2, code);
	assert_string_equal(code, "fc");
	keyseq_code(key, 64, code);
	crypto_sha256(key, sizeof(key), h);
	crypto_hex(h, sizeof(h), hex);
	assert_string_equal(code, hex);
	assert_int_equal(strncmp(hex, "fc8b584c8d", 10), 0);
}

static void
test_chip_id_vector(void **state)
{
	uint8_t	 keys[TU_VEC_M][KEYSEQ_KEYLEN];
	char	 id[65];
	int	 i;

	(void)state;
	for (i = 0; i < TU_VEC_M; i++)
		tu_vec_key(tu_vec_order[i], keys[i]);
	keyseq_chip_id((const uint8_t (*)[KEYSEQ_KEYLEN])keys, TU_VEC_M, id);
	assert_string_equal(id, TU_VEC_CHIP_ID);
	/* The order of the keys matters. */
	for (i = 0; i < TU_VEC_M; i++)
		tu_vec_key(i, keys[i]);
	keyseq_chip_id((const uint8_t (*)[KEYSEQ_KEYLEN])keys, TU_VEC_M, id);
	assert_string_not_equal(id, TU_VEC_CHIP_ID);
}

/* chip_id hashes hex(key_1) "-" hex(key_2): check against a direct hash. */
static void
test_chip_id_text(void **state)
{
	uint8_t	 keys[2][KEYSEQ_KEYLEN], h[32];
	char	 text[2 * 64 + 2], id[65], want[65];

	(void)state;
	tu_vec_key(7, keys[0]);
	tu_vec_key(8, keys[1]);
	crypto_hex(keys[0], KEYSEQ_KEYLEN, text);
	text[64] = '-';
	crypto_hex(keys[1], KEYSEQ_KEYLEN, text + 65);
	crypto_sha256(text, strlen(text), h);
	crypto_hex(h, sizeof(h), want);
	keyseq_chip_id((const uint8_t (*)[KEYSEQ_KEYLEN])keys, 2, id);
	assert_string_equal(id, want);
}

static void
test_validate_good(void **state)
{
	struct tu_fill	 v;
	const char	*why = NULL;

	(void)state;
	tu_fill_vector(&v);
	assert_int_equal(keyseq_validate(&v.tf_rec, &why), 0);
	/* Characters n..k are free: the last one may differ from the hash. */
	v.tf_code[0][9] = v.tf_code[0][9] == '0' ? '1' : '0';
	assert_int_equal(keyseq_validate(&v.tf_rec, &why), 0);
	v.tf_code[0][5] = v.tf_code[0][5] == '0' ? '1' : '0';
	assert_int_equal(keyseq_validate(&v.tf_rec, NULL), 0);
	/* n = 1 fixes nothing; n = k fixes all but the last character. */
	tu_fill_vector(&v);
	v.tf_rec.n = 1;
	assert_int_equal(keyseq_validate(&v.tf_rec, &why), 0);
	v.tf_rec.n = 10;
	assert_int_equal(keyseq_validate(&v.tf_rec, &why), 0);
}

static void
test_validate_params(void **state)
{
	struct tu_fill	 v;

	(void)state;
	assert_int_equal(keyseq_validate(NULL, NULL), -1);
	tu_fill_vector(&v);
	v.tf_rec.m = 1;
	assert_refused(&v, "m out of range");
	v.tf_rec.m = KEYSEQ_MAXM + 1;
	assert_refused(&v, "m out of range");
	tu_fill_vector(&v);
	v.tf_rec.k = 1;
	assert_refused(&v, "k out of range");
	v.tf_rec.k = 65;
	assert_refused(&v, "k out of range");
	tu_fill_vector(&v);
	v.tf_rec.n = 0;
	assert_refused(&v, "n out of range");
	v.tf_rec.n = 11;
	assert_refused(&v, "n out of range");
	tu_fill_vector(&v);
	v.tf_rec.n_keys = TU_VEC_M - 1;
	assert_refused(&v, "number of keys differs from m");
	tu_fill_vector(&v);
	v.tf_rec.m = TU_VEC_M + 1;
	assert_refused(&v, "number of keys differs from m");
	/* A k that the codes do not have. */
	tu_fill_vector(&v);
	v.tf_rec.k = 11;
	assert_refused(&v, "code is not k lowercase hex characters");
}

static void
test_validate_chip_id(void **state)
{
	struct tu_fill	 v;
	size_t		 i;

	(void)state;
	tu_fill_vector(&v);
	v.tf_rec.chip_id = NULL;
	assert_refused(&v, "chip_id is not 64 lowercase hex characters");
	tu_fill_vector(&v);
	for (i = 0; i < 64; i++)
		if (v.tf_chip_id[i] >= 'a')
			v.tf_chip_id[i] -= 'a' - 'A';
	assert_refused(&v, "chip_id is not 64 lowercase hex characters");
	tu_fill_vector(&v);
	v.tf_chip_id[63] = '\0';
	assert_refused(&v, "chip_id is not 64 lowercase hex characters");
	tu_fill_vector(&v);
	v.tf_chip_id[10] = v.tf_chip_id[10] == '0' ? '1' : '0';
	assert_refused(&v, "chip_id does not match the keys");
}

static void
test_validate_keys(void **state)
{
	struct tu_fill	 v;

	(void)state;
	tu_fill_vector(&v);
	v.tf_ck[2].key.len = 31;
	assert_refused(&v, "key is not 32 bytes");
	tu_fill_vector(&v);
	v.tf_ck[2].key.len = 33;
	assert_refused(&v, "key is not 32 bytes");
	tu_fill_vector(&v);
	v.tf_ckp[4] = NULL;
	assert_refused(&v, "key is not 32 bytes");
	/* A changed key no longer matches its code. */
	tu_fill_vector(&v);
	v.tf_key[3][0] ^= 1;
	assert_refused(&v, "code does not match the key's hash");
}

static void
test_validate_codes(void **state)
{
	struct tu_fill	 v;

	(void)state;
	tu_fill_vector(&v);
	v.tf_code[1][9] = '\0';
	assert_refused(&v, "code is not k lowercase hex characters");
	tu_fill_vector(&v);
	strcat(v.tf_code[1], "0");
	assert_refused(&v, "code is not k lowercase hex characters");
	tu_fill_vector(&v);
	v.tf_code[1][3] = 'C';
	assert_refused(&v, "code is not k lowercase hex characters");
	tu_fill_vector(&v);
	v.tf_code[1][7] = 'g';
	assert_refused(&v, "code is not k lowercase hex characters");
	tu_fill_vector(&v);
	v.tf_ck[1].code = NULL;
	assert_refused(&v, "code is not k lowercase hex characters");
	/* Characters 1..n-1 must be the hash's. */
	tu_fill_vector(&v);
	v.tf_code[0][4] = v.tf_code[0][4] == '0' ? '1' : '0';
	assert_refused(&v, "code does not match the key's hash");
	tu_fill_vector(&v);
	v.tf_code[4][0] = 'e';
	assert_refused(&v, "code does not match the key's hash");
}

static void
test_validate_order(void **state)
{
	struct tu_fill	 v;
	Qroam__ChipKey	*t;

	(void)state;
	/* Keys swapped with their codes: codes descend there. */
	tu_fill_vector(&v);
	t = v.tf_ckp[1];
	v.tf_ckp[1] = v.tf_ckp[2];
	v.tf_ckp[2] = t;
	assert_refused(&v, "codes do not strictly ascend");
	/* Equal codes: with n = 1 no prefix is fixed; only the order check. */
	tu_fill_vector(&v);
	v.tf_rec.n = 1;
	strcpy(v.tf_code[1], v.tf_code[0]);
	assert_refused(&v, "codes do not strictly ascend");
}

/* The same key twice, under two codes that are otherwise fine. */
static void
test_validate_duplicate_key(void **state)
{
	struct tu_fill	 v;
	uint8_t		 keys[2][KEYSEQ_KEYLEN];

	(void)state;
	tu_fill_vector(&v);
	v.tf_rec.m = v.tf_rec.n_keys = 2;
	memcpy(v.tf_key[1], v.tf_key[0], KEYSEQ_KEYLEN);
	strcpy(v.tf_code[1], v.tf_code[0]);
	v.tf_code[0][9] = '0';
	v.tf_code[1][9] = '1';
	memcpy(keys, v.tf_key, sizeof(keys));
	keyseq_chip_id((const uint8_t (*)[KEYSEQ_KEYLEN])keys, 2, v.tf_chip_id);
	assert_refused(&v, "duplicate key");
	/* The same record with a second, different key is fine. */
	tu_fill_vector(&v);
	v.tf_rec.m = v.tf_rec.n_keys = 2;
	memcpy(keys, v.tf_key, sizeof(keys));
	keyseq_chip_id((const uint8_t (*)[KEYSEQ_KEYLEN])keys, 2, v.tf_chip_id);
	assert_int_equal(keyseq_validate(&v.tf_rec, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_code_vector),
		cmocka_unit_test(test_chip_id_vector),
		cmocka_unit_test(test_chip_id_text),
		cmocka_unit_test(test_validate_good),
		cmocka_unit_test(test_validate_params),
		cmocka_unit_test(test_validate_chip_id),
		cmocka_unit_test(test_validate_keys),
		cmocka_unit_test(test_validate_codes),
		cmocka_unit_test(test_validate_order),
		cmocka_unit_test(test_validate_duplicate_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
