/*
 * Unit tests of the BB84 simulation of qkdd: binary entropy, the QBER
 * bound and the secret fraction 1 - f_EC h(Q) - h(Q), the QBER without
 * and with an intercept-resend eavesdropper, the 11 % abort on the bound,
 * blocks gathered over several runs, privacy amplification output, and
 * single qubits traced through scripted random draws.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "rand.h"

#include "../../qkdd/bb84.h"

#include "testutil.h"

#define NQUBITS		200000

/* Layout of one qubit's random draw (see bb84.c): flags, Eve, noise, sample. */
#define DRAW_LEN	13
#define F_ALICE_BIT	0x01
#define F_ALICE_BASIS	0x02
#define F_BOB_BASIS	0x04
#define F_EVE_BASIS	0x08
#define F_EVE_GUESS	0x10
#define F_BOB_GUESS	0x20

/* A deterministic source: xorshift64* from a seed. */
static int
xorshift_source(void *ctx, uint8_t *buf, size_t len)
{
	uint64_t	*s = ctx, x;
	size_t		 i;

	for (i = 0; i < len; i++) {
		x = *s;
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		*s = x;
		buf[i] = (uint8_t)((x * 0x2545F4914F6CDD1DULL) >> 56);
	}
	return 0;
}

/* A scripted source handing out fixed bytes, then failing. */
struct script {
	const uint8_t	*s_bytes;
	size_t		 s_len;
	size_t		 s_off;
};

static int
script_source(void *ctx, uint8_t *buf, size_t len)
{
	struct script	*s = ctx;

	if (s->s_off + len > s->s_len)
		return -1;
	memcpy(buf, s->s_bytes + s->s_off, len);
	s->s_off += len;
	return 0;
}

/* One qubit's draw: flags and the Eve, noise and sample uniforms. */
static void
draw(uint8_t d[DRAW_LEN], uint8_t flags, uint32_t eve, uint32_t noise,
    uint32_t sample)
{
	int	i;

	d[0] = flags;
	for (i = 0; i < 4; i++) {
		d[1 + i] = (uint8_t)(eve >> (24 - 8 * i));
		d[5 + i] = (uint8_t)(noise >> (24 - 8 * i));
		d[9 + i] = (uint8_t)(sample >> (24 - 8 * i));
	}
}

/* Error rate over every sifted bit, sampled or kept. */
static double
true_qber(const struct bb84_block *b)
{
	return (double)(b->bb_sample_errors + b->bb_kept_errors) /
	    (double)b->bb_sifted;
}

static void
run(double qber, double eve, size_t n, struct bb84_block *b)
{
	struct bb84_params	p = { qber, eve, 0.1 };

	memset(b, 0, sizeof(*b));
	assert_int_equal(bb84_run(&p, n, b), 0);
	bb84_decide(b, 1.0);
	assert_int_equal(b->bb_qubits, n);
	assert_int_equal(b->bb_sifted, b->bb_sampled + b->bb_kept);
}

static void
test_entropy(void **state)
{
	(void)state;
	assert_true(bb84_entropy(0.0) == 0.0);
	assert_true(bb84_entropy(1.0) == 0.0);
	assert_float_equal(bb84_entropy(0.5), 1.0, 1e-12);
	assert_float_equal(bb84_entropy(0.11), 0.49992, 1e-4);
	assert_float_equal(bb84_entropy(0.01), 0.080793, 1e-5);
	assert_float_equal(bb84_entropy(0.2), bb84_entropy(0.8), 1e-12);
}

static void
test_secret_fraction(void **state)
{
	(void)state;
	assert_float_equal(bb84_secret_fraction(0.0, 1.0), 1.0, 1e-12);
	assert_float_equal(bb84_secret_fraction(0.01, 1.0), 0.838414, 1e-5);
	assert_float_equal(bb84_secret_fraction(0.05, 1.0), 0.427206, 1e-5);
	assert_float_equal(bb84_secret_fraction(0.10, 1.0), 0.062009, 1e-5);
	/* At 11 % it just touches zero; above, nothing is secret. */
	assert_true(bb84_secret_fraction(0.11, 1.0) >= 0.0);
	assert_true(bb84_secret_fraction(0.11, 1.0) < 0.001);
	assert_true(bb84_secret_fraction(0.111, 1.0) == 0.0);
	assert_true(bb84_secret_fraction(0.25, 1.0) == 0.0);
	assert_true(bb84_secret_fraction(0.5, 1.0) == 0.0);
	assert_true(bb84_secret_fraction(-0.01, 1.0) == 0.0);
	/* f_EC 1.16: 1 - 2.16 h(Q), zero from about 9.8 %. */
	assert_float_equal(bb84_secret_fraction(0.01, 1.16), 0.825487, 1e-5);
	assert_true(bb84_secret_fraction(0.099, 1.16) == 0.0);
	assert_true(bb84_secret_fraction(0.097, 1.16) > 0.0);
}

static void
test_qber_bound(void **state)
{
	size_t	n;

	(void)state;
	assert_true(bb84_qber_bound(0, 0, BB84_EPS) == 1.0);
	/* Above the estimate, closer to it the larger the sample. */
	assert_true(bb84_qber_bound(80, 1000, BB84_EPS) > 0.08);
	for (n = 1000; n <= 1000000; n *= 10)
		assert_true(bb84_qber_bound(8 * n / 100, n, BB84_EPS) >
		    bb84_qber_bound(8 * n / 10, n * 10, BB84_EPS));
	/* The numbers qkdd(8) gives for 25,000 bits. */
	assert_float_equal(bb84_expected_bound(0.01, 25000), 0.0149, 1e-4);
	assert_float_equal(bb84_expected_bound(0.08, 25000), 0.0922, 1e-4);
	/* n D(p || Q_U) = ln(1/eps) at the bound. */
	assert_float_equal(bb84_qber_bound(0, 25000, BB84_EPS),
	    1.0 - exp(-log(1e10) / 25000.0), 1e-9);
	/* Looser with a smaller failure probability. */
	assert_true(bb84_qber_bound(50, 1000, 1e-20) >
	    bb84_qber_bound(50, 1000, 1e-10));
}

/* A block gathered over runs is one block: counts add, bits append. */
static void
test_gathered_block(void **state)
{
	struct bb84_params	p = { 0.02, 0.0, 0.1 };
	struct bb84_block	b;
	size_t			i;

	(void)state;
	memset(&b, 0, sizeof(b));
	for (i = 0; i < 20; i++)
		assert_int_equal(bb84_run(&p, 25000, &b), 0);
	assert_int_equal(b.bb_qubits, 500000);
	assert_int_equal(b.bb_sifted, b.bb_sampled + b.bb_kept);
	assert_int_equal(b.bb_bitslen, (b.bb_kept + 7) / 8);
	assert_true(b.bb_bitcap >= b.bb_bitslen);
	assert_true(b.bb_sampled > 24000);
	bb84_decide(&b, 1.16);
	assert_false(b.bb_aborted);
	assert_true(b.bb_bound > b.bb_qber && b.bb_bound < 0.03);
	assert_float_equal(b.bb_fraction,
	    bb84_secret_fraction(b.bb_bound, 1.16), 1e-12);
	assert_true(bb84_secret_bits(&b) < (size_t)((1.0 - 2.16 *
	    bb84_entropy(b.bb_qber)) * (double)b.bb_kept));
	bb84_block_free(&b);
	assert_null(b.bb_bits);
	assert_int_equal(b.bb_kept, 0);
}

static void
test_no_eavesdropper(void **state)
{
	struct bb84_block	b;

	(void)state;
	run(0.01, 0.0, NQUBITS, &b);
	/* About half the qubits sift, a tenth of those is disclosed. */
	assert_in_range(b.bb_sifted, NQUBITS / 2 - 2000, NQUBITS / 2 + 2000);
	assert_in_range(b.bb_sampled, b.bb_sifted / 10 - 1000,
	    b.bb_sifted / 10 + 1000);
	assert_false(b.bb_aborted);
	assert_true(b.bb_qber >= 0.0 && b.bb_qber <= 0.02);
	assert_true(true_qber(&b) > 0.007 && true_qber(&b) < 0.013);
	assert_true(b.bb_bound > b.bb_qber);
	assert_float_equal(b.bb_fraction, bb84_secret_fraction(b.bb_bound, 1.0),
	    1e-12);
	assert_int_equal(bb84_secret_bits(&b),
	    (size_t)(b.bb_fraction * (double)b.bb_kept));
	/* 1 - 2h(Q_U), Q_U about 1.8 % for 10,000 sampled bits. */
	assert_true(bb84_secret_bits(&b) > b.bb_kept * 7 / 10);
	bb84_block_free(&b);

	run(0.0, 0.0, NQUBITS, &b);
	assert_int_equal(b.bb_sample_errors, 0);
	assert_int_equal(b.bb_kept_errors, 0);
	assert_true(b.bb_qber == 0.0);
	/* Even without errors the bound leaves a margin. */
	assert_true(b.bb_bound > 0.0 && b.bb_bound < 0.003);
	assert_true(b.bb_fraction < 1.0 && b.bb_fraction > 0.95);
	bb84_block_free(&b);
}

static void
test_eavesdropper(void **state)
{
	struct bb84_block	b;

	(void)state;
	/* Intercept-resend on 40 % of the qubits: 25 % x 0.4 = 10 %. */
	run(0.0, 0.4, NQUBITS, &b);
	assert_true(b.bb_qber > 0.08 && b.bb_qber < 0.12);
	assert_true(true_qber(&b) > 0.09 && true_qber(&b) < 0.11);
	bb84_block_free(&b);

	/* On every qubit: 25 %, far above the threshold. */
	run(0.0, 1.0, NQUBITS, &b);
	assert_true(b.bb_qber > 0.23 && b.bb_qber < 0.27);
	assert_true(true_qber(&b) > 0.24 && true_qber(&b) < 0.26);
	assert_true(b.bb_aborted);
	assert_true(b.bb_fraction == 0.0);
	assert_int_equal(bb84_secret_bits(&b), 0);
	bb84_block_free(&b);

	/* With channel noise the two add up (minus the overlap). */
	run(0.02, 0.2, NQUBITS, &b);
	assert_true(true_qber(&b) > 0.06 && true_qber(&b) < 0.08);
	bb84_block_free(&b);
}

static void
test_abort(void **state)
{
	struct bb84_block	b;
	uint8_t			out[32];

	(void)state;
	run(0.15, 0.0, NQUBITS, &b);
	assert_true(b.bb_aborted);
	assert_true(b.bb_fraction == 0.0);
	assert_int_equal(bb84_secret_bits(&b), 0);
	assert_int_equal(bb84_amplify(&b, out, sizeof(out)), -1);
	bb84_block_free(&b);

	/* Too few qubits to disclose a sample: no estimate, no key. */
	run(0.0, 0.0, 0, &b);
	assert_true(b.bb_aborted);
	assert_int_equal(bb84_secret_bits(&b), 0);
	bb84_block_free(&b);
}

static void
test_amplify(void **state)
{
	struct bb84_block	b;
	uint8_t			short_out[32], long_out[100], again[100];

	(void)state;
	run(0.01, 0.0, 20000, &b);
	assert_false(b.bb_aborted);
	assert_int_equal(b.bb_bitslen, (b.bb_kept + 7) / 8);
	assert_int_equal(bb84_amplify(&b, long_out, sizeof(long_out)), 0);
	assert_int_equal(bb84_amplify(&b, again, sizeof(again)), 0);
	assert_memory_equal(long_out, again, sizeof(long_out));
	assert_int_equal(bb84_amplify(&b, short_out, sizeof(short_out)), 0);
	assert_memory_equal(short_out, long_out, sizeof(short_out));
	/* Each 32-byte output is a different hash. */
	assert_memory_not_equal(long_out, long_out + 32, 32);
	assert_false(tu_all_zero(long_out + 96, 4));
	assert_int_equal(bb84_amplify(&b, long_out, 0), 0);
	bb84_block_free(&b);
	assert_null(b.bb_bits);
}

static void
test_deterministic(void **state)
{
	struct bb84_block	a, b;
	uint64_t		seed;
	uint8_t			ka[64], kb[64];

	(void)state;
	seed = 0x9e3779b97f4a7c15ULL;
	qrand_set_source(xorshift_source, &seed);
	run(0.03, 0.1, 50000, &a);
	seed = 0x9e3779b97f4a7c15ULL;
	run(0.03, 0.1, 50000, &b);
	assert_int_equal(a.bb_sifted, b.bb_sifted);
	assert_int_equal(a.bb_sample_errors, b.bb_sample_errors);
	assert_int_equal(a.bb_kept, b.bb_kept);
	assert_memory_equal(a.bb_bits, b.bb_bits, a.bb_bitslen);
	assert_int_equal(bb84_amplify(&a, ka, sizeof(ka)), 0);
	assert_int_equal(bb84_amplify(&b, kb, sizeof(kb)), 0);
	assert_memory_equal(ka, kb, sizeof(ka));
	bb84_block_free(&a);
	bb84_block_free(&b);
}

static void
test_scripted_qubits(void **state)
{
	struct bb84_params	 p = { 0.5, 0.5, 0.5 };
	struct bb84_block	 b;
	struct script		 s;
	uint8_t			 d[4][DRAW_LEN];

	(void)state;
	/* Bases match, no Eve, no noise, kept: Alice's 1 reaches the block. */
	draw(d[0], F_ALICE_BIT, 0xffffffff, 0xffffffff, 0xffffffff);
	/* Bases differ: not sifted, whatever else happens. */
	draw(d[1], F_ALICE_BIT | F_BOB_BASIS, 0, 0, 0);
	/*
	 * Eve measures in the other basis, guesses 0 and resends it in her
	 * basis; Bob in Alice's basis reads a random 0: an error, sampled.
	 */
	draw(d[2], F_ALICE_BIT | F_EVE_BASIS, 0, 0xffffffff, 0);
	/* Eve in Alice's basis learns the bit unnoticed; noise flips Bob's. */
	draw(d[3], F_ALICE_BASIS | F_BOB_BASIS, 0, 0, 0xffffffff);
	s.s_bytes = &d[0][0];
	s.s_len = sizeof(d);
	s.s_off = 0;
	qrand_set_source(script_source, &s);
	memset(&b, 0, sizeof(b));
	assert_int_equal(bb84_run(&p, 4, &b), 0);
	bb84_decide(&b, 1.0);
	assert_int_equal(s.s_off, sizeof(d));
	assert_int_equal(b.bb_sifted, 3);
	assert_int_equal(b.bb_sampled, 1);
	assert_int_equal(b.bb_sample_errors, 1);
	assert_int_equal(b.bb_kept, 2);
	assert_int_equal(b.bb_kept_errors, 1);
	assert_int_equal(b.bb_bitslen, 1);
	assert_int_equal(b.bb_bits[0], 0x80);	/* kept bits 1, 0 */
	assert_true(b.bb_qber == 1.0);
	assert_true(b.bb_aborted);
	bb84_block_free(&b);
}

static void
test_bad_params(void **state)
{
	struct bb84_block	b;
	struct bb84_params	p[] = {
		{ -0.1, 0.0, 0.1 }, { 0.6, 0.0, 0.1 }, { 0.0, 1.5, 0.1 },
		{ 0.0, -1.0, 0.1 }, { 0.0, 0.0, 2.0 },
	};
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		memset(&b, 0, sizeof(b));
		assert_int_equal(bb84_run(&p[i], 100, &b), -1);
		assert_null(b.bb_bits);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entropy),
		cmocka_unit_test(test_secret_fraction),
		cmocka_unit_test(test_qber_bound),
		cmocka_unit_test(test_gathered_block),
		cmocka_unit_test(test_no_eavesdropper),
		cmocka_unit_test(test_eavesdropper),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_amplify),
		cmocka_unit_test_teardown(test_deterministic, tu_rand_restore),
		cmocka_unit_test_teardown(test_scripted_qubits,
		    tu_rand_restore),
		cmocka_unit_test(test_bad_params),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
