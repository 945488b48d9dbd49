/*
 * Unit tests of the F1 fill algorithm: the PROTOCOL section 10 test vector,
 * collision resolution driven by scripted and forcing random sources (codes
 * unique, first n-1 characters kept, keys bound to their codes, ascending
 * order), impossible parameters, parameter checks and a 65536-key fill.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "../../fillerd/fill.h"
#include "keyseq.h"
#include "rand.h"

#include "testutil.h"

/*
 * Test random source: first the script bytes, then s_zeros zero bytes
 * (every redrawn digit is '0', so redrawn codes keep colliding), then a
 * splitmix64 stream.  It counts what it hands out.
 */
struct src {
	const uint8_t	*s_script;
	size_t		 s_scriptlen;
	size_t		 s_zeros;
	uint64_t	 s_state;
	size_t		 s_bytes;
	int		 s_calls;
};

static uint8_t
src_next(struct src *s)
{
	uint64_t	 z;

	if (s->s_bytes < s->s_scriptlen)
		return s->s_script[s->s_bytes];
	if (s->s_bytes < s->s_scriptlen + s->s_zeros)
		return 0;
	z = (s->s_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (uint8_t)(z ^ (z >> 31));
}

static int
src_fn(void *ctx, uint8_t *buf, size_t len)
{
	struct src	*s = ctx;
	size_t		 i;

	s->s_calls++;
	for (i = 0; i < len; i++, s->s_bytes++)
		buf[i] = src_next(s);
	return 0;
}

/* Collect count keys SHA-256("key" + i), i >= *from, codes starting prefix. */
static void
find_keys(const char *prefix, unsigned *from, size_t count,
    uint8_t (*keys)[KEYSEQ_KEYLEN])
{
	char	 code[KEYSEQ_MAXK + 1];
	size_t	 found = 0, plen = strlen(prefix);

	for (; found < count; (*from)++) {
		assert_true(*from < 1000000);
		tu_vec_key(*from, keys[found]);
		keyseq_code(keys[found], (unsigned)plen, code);
		if (strcmp(code, prefix) == 0)
			found++;
	}
}

/* Index of key in keys[0..m), or -1. */
static int
key_index(const uint8_t (*keys)[KEYSEQ_KEYLEN], unsigned m,
    const uint8_t *key)
{
	unsigned	 i;

	for (i = 0; i < m; i++)
		if (memcmp(keys[i], key, KEYSEQ_KEYLEN) == 0)
			return (int)i;
	return -1;
}

/*
 * The record holds exactly the given keys, once each, codes strictly
 * ascending, each code's first n-1 characters those of its key's hash, and
 * a chip_id over the sequence; it passes keyseq_validate.
 */
static void
assert_record_of(const Qroam__FillRecord *fr,
    const uint8_t (*keys)[KEYSEQ_KEYLEN], unsigned m, unsigned k, unsigned n)
{
	char		 code[KEYSEQ_MAXK + 1], id[65];
	uint8_t		(*seq)[KEYSEQ_KEYLEN];
	int		*seen, j;
	const char	*why = NULL;
	unsigned	 i;

	assert_non_null(fr);
	assert_int_equal(fr->m, m);
	assert_int_equal(fr->k, k);
	assert_int_equal(fr->n, n);
	assert_int_equal(fr->n_keys, m);
	seen = calloc(m, sizeof(*seen));
	seq = calloc(m, sizeof(*seq));
	assert_non_null(seen);
	assert_non_null(seq);
	for (i = 0; i < m; i++) {
		assert_int_equal(fr->keys[i]->key.len, KEYSEQ_KEYLEN);
		assert_int_equal(strlen(fr->keys[i]->code), k);
		j = key_index(keys, m, fr->keys[i]->key.data);
		assert_true(j >= 0);
		assert_int_equal(seen[j], 0);
		seen[j] = 1;
		keyseq_code(fr->keys[i]->key.data, k, code);
		assert_memory_equal(code, fr->keys[i]->code, n - 1);
		if (i > 0)
			assert_true(strcmp(fr->keys[i - 1]->code,
			    fr->keys[i]->code) < 0);
		memcpy(seq[i], fr->keys[i]->key.data, KEYSEQ_KEYLEN);
	}
	keyseq_chip_id((const uint8_t (*)[KEYSEQ_KEYLEN])seq, m, id);
	assert_string_equal(fr->chip_id, id);
	assert_int_equal(keyseq_validate(fr, &why), 0);
	free(seen);
	free(seq);
}

/* Code of the record's entry holding key, or NULL. */
static const char *
code_of(const Qroam__FillRecord *fr, const uint8_t *key)
{
	size_t	 i;

	for (i = 0; i < fr->n_keys; i++)
		if (memcmp(fr->keys[i]->key.data, key, KEYSEQ_KEYLEN) == 0)
			return fr->keys[i]->code;
	return NULL;
}

static uint64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* PROTOCOL section 10, exactly; no collision, so no randomness drawn. */
static void
test_vector(void **state)
{
	struct src		 s = { 0 };
	uint8_t			 keys[TU_VEC_M][KEYSEQ_KEYLEN];
	uint8_t			 want[KEYSEQ_KEYLEN];
	Qroam__FillRecord	*fr = NULL;
	const char		*why = NULL;
	uint64_t		 before = now_ms();
	unsigned		 i;

	(void)state;
	for (i = 0; i < TU_VEC_M; i++)
		tu_vec_key(i, keys[i]);
	qrand_set_source(src_fn, &s);
	assert_int_equal(fill_from_keys((const uint8_t (*)[KEYSEQ_KEYLEN])keys,
	    TU_VEC_M, 10, 6, &fr, &why), 0);
	assert_int_equal(s.s_calls, 0);
	assert_string_equal(fr->chip_id, TU_VEC_CHIP_ID);
	assert_int_equal(fr->m, TU_VEC_M);
	assert_int_equal(fr->k, 10);
	assert_int_equal(fr->n, 6);
	assert_int_equal(fr->n_keys, TU_VEC_M);
	for (i = 0; i < TU_VEC_M; i++) {
		tu_vec_key(tu_vec_order[i], want);
		assert_memory_equal(fr->keys[i]->key.data, want, KEYSEQ_KEYLEN);
		assert_string_equal(fr->keys[i]->code,
		    tu_vec_codes[tu_vec_order[i]]);
	}
	assert_true(fr->created_ms >= before && fr->created_ms <= now_ms());
	assert_record_of(fr, (const uint8_t (*)[KEYSEQ_KEYLEN])keys, TU_VEC_M,
	    10, 6);
	fill_record_free(fr);
}

/*
 * Two keys share their 3-char code; the scripted source makes the first
 * redraw collide again ("f12" twice), the second separates them.  The third
 * key, alone with its code, keeps it.  Each digit is the low nibble of one
 * byte.
 */
static void
test_scripted_collision(void **state)
{
	static const uint8_t	 script[] = {
		0x01, 0x02, 0xf1, 0x32,		/* round 1: "f12", "f12" */
		0x03, 0x04, 0x05, 0x76,		/* round 2: "f34", "f56" */
	};
	struct src		 s = { script, sizeof(script), 0, 1, 0, 0 };
	uint8_t			 keys[3][KEYSEQ_KEYLEN];
	char			 c0[4], c1[4], c2[4];
	Qroam__FillRecord	*fr = NULL;
	const char		*why = NULL, *a, *b;
	unsigned		 from = 0;

	(void)state;
	/* key0 and key719 share the code "fc8". */
	tu_vec_key(0, keys[0]);
	tu_vec_key(719, keys[1]);
	keyseq_code(keys[0], 3, c0);
	keyseq_code(keys[1], 3, c1);
	assert_string_equal(c0, "fc8");
	assert_string_equal(c1, "fc8");
	/* A third key starting with 'f', clear of every scripted code. */
	do {
		find_keys("f", &from, 1, &keys[2]);
		keyseq_code(keys[2], 3, c2);
	} while (strcmp(c2, "fc8") == 0 || strcmp(c2, "f12") == 0 ||
	    strcmp(c2, "f34") == 0 || strcmp(c2, "f56") == 0);

	qrand_set_source(src_fn, &s);
	assert_int_equal(fill_from_keys((const uint8_t (*)[KEYSEQ_KEYLEN])keys,
	    3, 3, 2, &fr, &why), 0);
	/* Two rounds of two codes of two digits: all of the script, no more. */
	assert_int_equal(s.s_bytes, sizeof(script));
	assert_record_of(fr, (const uint8_t (*)[KEYSEQ_KEYLEN])keys, 3, 3, 2);
	a = code_of(fr, keys[0]);
	b = code_of(fr, keys[1]);
	assert_true((strcmp(a, "f34") == 0 && strcmp(b, "f56") == 0) ||
	    (strcmp(a, "f56") == 0 && strcmp(b, "f34") == 0));
	assert_string_equal(code_of(fr, keys[2]), c2);
	fill_record_free(fr);
}

/*
 * k = 2, n = 2: sixteen keys whose codes start with '0' fill all sixteen
 * codes "00".."0f"; three more start with 'e'.  The source first forces
 * every redrawn digit to '0' for 4096 digits, so collisions repeat
 * round after round, then turns random.
 */
static void
test_forced_collisions_full(void **state)
{
	struct src		 s = { NULL, 0, 4096, 42, 0, 0 };
	uint8_t			 keys[19][KEYSEQ_KEYLEN];
	char			 want[3];
	Qroam__FillRecord	*fr = NULL;
	const char		*why = NULL;
	unsigned		 from = 0, i;

	(void)state;
	find_keys("0", &from, 16, keys);
	from = 0;
	find_keys("e", &from, 3, keys + 16);
	qrand_set_source(src_fn, &s);
	assert_int_equal(fill_from_keys((const uint8_t (*)[KEYSEQ_KEYLEN])keys,
	    19, 2, 2, &fr, &why), 0);
	assert_true(s.s_bytes > s.s_zeros);
	assert_record_of(fr, (const uint8_t (*)[KEYSEQ_KEYLEN])keys, 19, 2, 2);
	/* The '0' group uses every code, in order. */
	for (i = 0; i < 16; i++) {
		snprintf(want, sizeof(want), "0%x", i);
		assert_string_equal(fr->keys[i]->code, want);
	}
	for (i = 16; i < 19; i++)
		assert_int_equal(fr->keys[i]->code[0], 'e');
	fill_record_free(fr);
}

/* Larger fixed-prefix groups with several replaced characters. */
static void
test_forced_collisions_wide(void **state)
{
	struct src		 s = { NULL, 0, 1024, 7, 0, 0 };
	uint8_t			 keys[128][KEYSEQ_KEYLEN];
	Qroam__FillRecord	*fr = NULL;
	const char		*why = NULL;
	unsigned		 from = 0;

	(void)state;
	/* k = 3, n = 2: forty keys with first char 'a' share 256 codes. */
	find_keys("a", &from, 40, keys);
	qrand_set_source(src_fn, &s);
	assert_int_equal(fill_from_keys((const uint8_t (*)[KEYSEQ_KEYLEN])keys,
	    40, 3, 2, &fr, &why), 0);
	assert_true(s.s_bytes > s.s_zeros);
	assert_record_of(fr, (const uint8_t (*)[KEYSEQ_KEYLEN])keys, 40, 3, 2);
	fill_record_free(fr);

	/* n = 1: nothing fixed; 128 keys in the 256 codes of k = 2. */
	s.s_bytes = 0;
	from = 0;
	find_keys("", &from, 128, keys);
	assert_int_equal(fill_from_keys((const uint8_t (*)[KEYSEQ_KEYLEN])keys,
	    128, 2, 1, &fr, &why), 0);
	assert_true(s.s_bytes > s.s_zeros);
	assert_record_of(fr, (const uint8_t (*)[KEYSEQ_KEYLEN])keys, 128, 2, 1);
	fill_record_free(fr);
}

/* More keys share a prefix than there are codes for them: refused at once. */
static void
test_impossible(void **state)
{
	struct src		 s = { 0 };
	uint8_t			 keys[257][KEYSEQ_KEYLEN];
	Qroam__FillRecord	*fr = (Qroam__FillRecord *)&s;
	const char		*why = NULL;
	unsigned		 from = 0;

	(void)state;
	qrand_set_source(src_fn, &s);
	find_keys("0", &from, 17, keys);
	assert_int_equal(fill_from_keys((const uint8_t (*)[KEYSEQ_KEYLEN])keys,
	    17, 2, 2, &fr, &why), -1);
	assert_null(fr);
	assert_non_null(why);
	assert_non_null(strstr(why, "too few codes"));
	/* Sixteen fit. */
	assert_int_equal(fill_from_keys((const uint8_t (*)[KEYSEQ_KEYLEN])keys,
	    16, 2, 2, &fr, &why), 0);
	fill_record_free(fr);

	s.s_calls = 0;
	from = 0;
	find_keys("", &from, 257, keys);
	why = NULL;
	assert_int_equal(fill_from_keys((const uint8_t (*)[KEYSEQ_KEYLEN])keys,
	    257, 2, 1, &fr, &why), -1);
	assert_non_null(strstr(why, "too few codes"));
	/* Refused before any digit was drawn. */
	assert_int_equal(s.s_calls, 0);
}

/* The same key twice cannot be a chip sequence, whatever its codes. */
static void
test_duplicate_key(void **state)
{
	uint8_t			 keys[3][KEYSEQ_KEYLEN];
	Qroam__FillRecord	*fr = NULL;
	const char		*why = NULL;

	(void)state;
	tu_vec_key(1, keys[0]);
	tu_vec_key(2, keys[1]);
	tu_vec_key(1, keys[2]);
	assert_int_equal(fill_from_keys((const uint8_t (*)[KEYSEQ_KEYLEN])keys,
	    3, 10, 6, &fr, &why), -1);
	assert_null(fr);
	assert_string_equal(why, "duplicate key");
}

/* fill_from_keys refuses with why (and *out NULL) for these parameters. */
static void
assert_bad_params(unsigned m, unsigned k, unsigned n, const char *want)
{
	uint8_t			 keys[3][KEYSEQ_KEYLEN] = {
	    { 1 }, { 2 }, { 3 } };
	Qroam__FillRecord	*fr = (Qroam__FillRecord *)keys;
	const char		*why = NULL;

	assert_int_equal(fill_from_keys((const uint8_t (*)[KEYSEQ_KEYLEN])keys,
	    m, k, n, &fr, &why), -1);
	assert_null(fr);
	assert_string_equal(why, want);
	fr = (Qroam__FillRecord *)keys;
	why = NULL;
	assert_int_equal(fill_generate(m, k, n, &fr, &why), -1);
	assert_null(fr);
	assert_string_equal(why, want);
}

static void
test_params(void **state)
{
	Qroam__FillRecord	*fr = NULL;
	const char		*why = NULL;

	(void)state;
	assert_bad_params(0, 10, 6, "m must be between 2 and 65536");
	assert_bad_params(1, 10, 6, "m must be between 2 and 65536");
	assert_bad_params(65537, 10, 6, "m must be between 2 and 65536");
	assert_bad_params(3, 1, 1, "k must be between 2 and 64");
	assert_bad_params(3, 65, 6, "k must be between 2 and 64");
	assert_bad_params(3, 10, 0, "n must be between 1 and k");
	assert_bad_params(3, 10, 11, "n must be between 1 and k");
	assert_int_equal(fill_generate(3, 10, 6, NULL, &why), -1);
	assert_int_equal(fill_from_keys(NULL, 3, 10, 6, &fr, &why), -1);

	/* The edges themselves are fine. */
	assert_int_equal(fill_generate(2, 2, 1, &fr, NULL), 0);
	assert_int_equal(keyseq_validate(fr, NULL), 0);
	fill_record_free(fr);
	assert_int_equal(fill_generate(3, 64, 64, &fr, &why), 0);
	assert_int_equal(strlen(fr->keys[0]->code), 64);
	assert_int_equal(keyseq_validate(fr, NULL), 0);
	fill_record_free(fr);
	fill_record_free(NULL);
}

/* Keys come from the random source; one source stream gives one chip. */
static void
test_generate_from_source(void **state)
{
	struct src		 s = { NULL, 0, 0, 1234, 0, 0 };
	struct src		 s2 = { NULL, 0, 0, 1234, 0, 0 };
	uint8_t			 keys[64][KEYSEQ_KEYLEN];
	Qroam__FillRecord	*fr = NULL, *fr2 = NULL;
	const char		*why = NULL;
	unsigned		 i;

	(void)state;
	qrand_set_source(src_fn, &s);
	assert_int_equal(fill_generate(64, 10, 6, &fr, &why), 0);
	/* The keys are the source's first 64 x 32 bytes, in code order. */
	assert_int_equal(s.s_bytes, 64 * KEYSEQ_KEYLEN);
	s2.s_bytes = 0;
	for (i = 0; i < 64; i++)
		src_fn(&s2, keys[i], KEYSEQ_KEYLEN);
	assert_record_of(fr, (const uint8_t (*)[KEYSEQ_KEYLEN])keys, 64, 10, 6);

	s.s_state = 1234;
	s.s_bytes = 0;
	assert_int_equal(fill_generate(64, 10, 6, &fr2, &why), 0);
	assert_string_equal(fr->chip_id, fr2->chip_id);
	fill_record_free(fr2);
	s.s_state = 1235;
	assert_int_equal(fill_generate(64, 10, 6, &fr2, &why), 0);
	assert_string_not_equal(fr->chip_id, fr2->chip_id);
	fill_record_free(fr2);
	fill_record_free(fr);

	/* The default source gives a different chip each time. */
	qrand_set_source(NULL, NULL);
	assert_int_equal(fill_generate(256, 10, 6, &fr, &why), 0);
	assert_int_equal(fill_generate(256, 10, 6, &fr2, &why), 0);
	assert_int_equal(keyseq_validate(fr, NULL), 0);
	assert_string_not_equal(fr->chip_id, fr2->chip_id);
	fill_record_free(fr);
	fill_record_free(fr2);
}

/* The largest chip, with the default and with short codes. */
static void
test_large(void **state)
{
	Qroam__FillRecord	*fr = NULL;
	const char		*why = NULL;
	size_t			 i;

	(void)state;
	assert_int_equal(fill_generate(KEYSEQ_MAXM, 10, 6, &fr, &why), 0);
	assert_int_equal(fr->n_keys, KEYSEQ_MAXM);
	assert_int_equal(keyseq_validate(fr, &why), 0);
	fill_record_free(fr);

	/* k = 6, n = 2: about 128 colliding pairs, 16^5 codes per prefix. */
	assert_int_equal(fill_generate(KEYSEQ_MAXM, 6, 2, &fr, &why), 0);
	for (i = 1; i < fr->n_keys; i++)
		assert_true(strcmp(fr->keys[i - 1]->code,
		    fr->keys[i]->code) < 0);
	assert_int_equal(keyseq_validate(fr, &why), 0);
	fill_record_free(fr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_vector, tu_rand_restore),
		cmocka_unit_test_teardown(test_scripted_collision,
		    tu_rand_restore),
		cmocka_unit_test_teardown(test_forced_collisions_full,
		    tu_rand_restore),
		cmocka_unit_test_teardown(test_forced_collisions_wide,
		    tu_rand_restore),
		cmocka_unit_test_teardown(test_impossible, tu_rand_restore),
		cmocka_unit_test_teardown(test_duplicate_key, tu_rand_restore),
		cmocka_unit_test_teardown(test_params, tu_rand_restore),
		cmocka_unit_test_teardown(test_generate_from_source,
		    tu_rand_restore),
		cmocka_unit_test_teardown(test_large, tu_rand_restore),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
