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

#define VEC_M		5
#define VEC_CHIP_ID	\
    "ce055a97e79cbc8df07f12c729f2f8433cf27fe8310ecbfae1f974715c63d92d"

static const char *const vec_codes[VEC_M] = {
	"fc8b584c8d", "3f46cde218", "3cfe019e5e", "7f60039f1e", "bcf5e735f2",
};
static const int vec_order[VEC_M] = { 2, 1, 3, 4, 0 };

/* A fill record with its own storage, so tests may break it freely. */
struct vec {
	Qroam__FillRecord	 v_fr;
	Qroam__ChipKey		 v_ck[VEC_M];
	Qroam__ChipKey		*v_ckp[VEC_M];
	uint8_t			 v_key[VEC_M][KEYSEQ_KEYLEN];
	char			 v_code[VEC_M][KEYSEQ_MAXK + 1];
	char			 v_chip_id[65];
};

/* key_i = SHA-256("key" + i). */
static void
vec_key(int i, uint8_t key[KEYSEQ_KEYLEN])
{
	char	 s[16];

	snprintf(s, sizeof(s), "key%d", i);
	crypto_sha256(s, strlen(s), key);
}

/* The test vector's record: k = 10, n = 6, keys in sequence order. */
static void
vec_init(struct vec *v)
{
	int	 i;

	memset(v, 0, sizeof(*v));
	qroam__fill_record__init(&v->v_fr);
	for (i = 0; i < VEC_M; i++) {
		vec_key(vec_order[i], v->v_key[i]);
		strcpy(v->v_code[i], vec_codes[vec_order[i]]);
		qroam__chip_key__init(&v->v_ck[i]);
		v->v_ck[i].key.data = v->v_key[i];
		v->v_ck[i].key.len = KEYSEQ_KEYLEN;
		v->v_ck[i].code = v->v_code[i];
		v->v_ckp[i] = &v->v_ck[i];
	}
	strcpy(v->v_chip_id, VEC_CHIP_ID);
	v->v_fr.chip_id = v->v_chip_id;
	v->v_fr.m = VEC_M;
	v->v_fr.k = 10;
	v->v_fr.n = 6;
	v->v_fr.n_keys = VEC_M;
	v->v_fr.keys = v->v_ckp;
	v->v_fr.created_ms = 1;
}

/* keyseq_validate refuses v with exactly the reason want. */
static void
assert_refused(const struct vec *v, const char *want)
{
	const char	*why = NULL;

	assert_int_equal(keyseq_validate(&v->v_fr, &why), -1);
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
	for (i = 0; i < VEC_M; i++) {
		vec_key(i, key);
		keyseq_code(key, 10, code);
		assert_string_equal(code, vec_codes[i]);
	}
	vec_key(0, key);
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
	uint8_t	 keys[VEC_M][KEYSEQ_KEYLEN];
	char	 id[65];
	int	 i;

	(void)state;
	for (i = 0; i < VEC_M; i++)
		vec_key(vec_order[i], keys[i]);
	keyseq_chip_id((const uint8_t (*)[KEYSEQ_KEYLEN])keys, VEC_M, id);
	assert_string_equal(id, VEC_CHIP_ID);
	/* The order of the keys matters. */
	for (i = 0; i < VEC_M; i++)
		vec_key(i, keys[i]);
	keyseq_chip_id((const uint8_t (*)[KEYSEQ_KEYLEN])keys, VEC_M, id);
	assert_string_not_equal(id, VEC_CHIP_ID);
}

/* chip_id hashes hex(key_1) "-" hex(key_2): check against a direct hash. */
static void
test_chip_id_text(void **state)
{
	uint8_t	 keys[2][KEYSEQ_KEYLEN], h[32];
	char	 text[2 * 64 + 2], id[65], want[65];

	(void)state;
	vec_key(7, keys[0]);
	vec_key(8, keys[1]);
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
	struct vec	 v;
	const char	*why = NULL;

	(void)state;
	vec_init(&v);
	assert_int_equal(keyseq_validate(&v.v_fr, &why), 0);
	/* Characters n..k are free: the last one may differ from the hash. */
	v.v_code[0][9] = v.v_code[0][9] == '0' ? '1' : '0';
	assert_int_equal(keyseq_validate(&v.v_fr, &why), 0);
	v.v_code[0][5] = v.v_code[0][5] == '0' ? '1' : '0';
	assert_int_equal(keyseq_validate(&v.v_fr, NULL), 0);
	/* n = 1 fixes nothing; n = k fixes all but the last character. */
	vec_init(&v);
	v.v_fr.n = 1;
	assert_int_equal(keyseq_validate(&v.v_fr, &why), 0);
	v.v_fr.n = 10;
	assert_int_equal(keyseq_validate(&v.v_fr, &why), 0);
}

static void
test_validate_params(void **state)
{
	struct vec	 v;

	(void)state;
	assert_int_equal(keyseq_validate(NULL, NULL), -1);
	vec_init(&v);
	v.v_fr.m = 1;
	assert_refused(&v, "m out of range");
	v.v_fr.m = KEYSEQ_MAXM + 1;
	assert_refused(&v, "m out of range");
	vec_init(&v);
	v.v_fr.k = 1;
	assert_refused(&v, "k out of range");
	v.v_fr.k = 65;
	assert_refused(&v, "k out of range");
	vec_init(&v);
	v.v_fr.n = 0;
	assert_refused(&v, "n out of range");
	v.v_fr.n = 11;
	assert_refused(&v, "n out of range");
	vec_init(&v);
	v.v_fr.n_keys = VEC_M - 1;
	assert_refused(&v, "number of keys differs from m");
	vec_init(&v);
	v.v_fr.m = VEC_M + 1;
	assert_refused(&v, "number of keys differs from m");
	/* A k that the codes do not have. */
	vec_init(&v);
	v.v_fr.k = 11;
	assert_refused(&v, "code is not k lowercase hex characters");
}

static void
test_validate_chip_id(void **state)
{
	struct vec	 v;
	size_t		 i;

	(void)state;
	vec_init(&v);
	v.v_fr.chip_id = NULL;
	assert_refused(&v, "chip_id is not 64 lowercase hex characters");
	vec_init(&v);
	for (i = 0; i < 64; i++)
		if (v.v_chip_id[i] >= 'a')
			v.v_chip_id[i] -= 'a' - 'A';
	assert_refused(&v, "chip_id is not 64 lowercase hex characters");
	vec_init(&v);
	v.v_chip_id[63] = '\0';
	assert_refused(&v, "chip_id is not 64 lowercase hex characters");
	vec_init(&v);
	v.v_chip_id[10] = v.v_chip_id[10] == '0' ? '1' : '0';
	assert_refused(&v, "chip_id does not match the keys");
}

static void
test_validate_keys(void **state)
{
	struct vec	 v;

	(void)state;
	vec_init(&v);
	v.v_ck[2].key.len = 31;
	assert_refused(&v, "key is not 32 bytes");
	vec_init(&v);
	v.v_ck[2].key.len = 33;
	assert_refused(&v, "key is not 32 bytes");
	vec_init(&v);
	v.v_ckp[4] = NULL;
	assert_refused(&v, "key is not 32 bytes");
	/* A changed key no longer matches its code. */
	vec_init(&v);
	v.v_key[3][0] ^= 1;
	assert_refused(&v, "code does not match the key's hash");
}

static void
test_validate_codes(void **state)
{
	struct vec	 v;

	(void)state;
	vec_init(&v);
	v.v_code[1][9] = '\0';
	assert_refused(&v, "code is not k lowercase hex characters");
	vec_init(&v);
	strcat(v.v_code[1], "0");
	assert_refused(&v, "code is not k lowercase hex characters");
	vec_init(&v);
	v.v_code[1][3] = 'C';
	assert_refused(&v, "code is not k lowercase hex characters");
	vec_init(&v);
	v.v_code[1][7] = 'g';
	assert_refused(&v, "code is not k lowercase hex characters");
	vec_init(&v);
	v.v_ck[1].code = NULL;
	assert_refused(&v, "code is not k lowercase hex characters");
	/* Characters 1..n-1 must be the hash's. */
	vec_init(&v);
	v.v_code[0][4] = v.v_code[0][4] == '0' ? '1' : '0';
	assert_refused(&v, "code does not match the key's hash");
	vec_init(&v);
	v.v_code[4][0] = 'e';
	assert_refused(&v, "code does not match the key's hash");
}

static void
test_validate_order(void **state)
{
	struct vec	 v;
	Qroam__ChipKey	*t;

	(void)state;
	/* Keys swapped with their codes: codes descend there. */
	vec_init(&v);
	t = v.v_ckp[1];
	v.v_ckp[1] = v.v_ckp[2];
	v.v_ckp[2] = t;
	assert_refused(&v, "codes do not strictly ascend");
	/* Equal codes: with n = 1 no prefix is fixed; only the order check. */
	vec_init(&v);
	v.v_fr.n = 1;
	strcpy(v.v_code[1], v.v_code[0]);
	assert_refused(&v, "codes do not strictly ascend");
}

/* The same key twice, under two codes that are otherwise fine. */
static void
test_validate_duplicate_key(void **state)
{
	struct vec	 v;
	uint8_t		 keys[2][KEYSEQ_KEYLEN];

	(void)state;
	vec_init(&v);
	v.v_fr.m = v.v_fr.n_keys = 2;
	memcpy(v.v_key[1], v.v_key[0], KEYSEQ_KEYLEN);
	strcpy(v.v_code[1], v.v_code[0]);
	v.v_code[0][9] = '0';
	v.v_code[1][9] = '1';
	memcpy(keys, v.v_key, sizeof(keys));
	keyseq_chip_id((const uint8_t (*)[KEYSEQ_KEYLEN])keys, 2, v.v_chip_id);
	assert_refused(&v, "duplicate key");
	/* The same record with a second, different key is fine. */
	vec_init(&v);
	v.v_fr.m = v.v_fr.n_keys = 2;
	memcpy(keys, v.v_key, sizeof(keys));
	keyseq_chip_id((const uint8_t (*)[KEYSEQ_KEYLEN])keys, 2, v.v_chip_id);
	assert_int_equal(keyseq_validate(&v.v_fr, NULL), 0);
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
