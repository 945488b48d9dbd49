/*
 * Unit tests of seed 003's synchronised key stream: the key vector (keys
 * computed with Python's hashlib), the window of two steps, refusals of a
 * wrong K0, name, byte or a replay, the replay window's bound, checkpoints
 * and resumption, a clock going backwards and the erasure of old keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "crypto.h"
#include "keystream.h"
#include "log.h"

#define T0	1700000000000LL		/* ms */
#define DT	1000LL			/* ms */
#define TSP	"tsp-a"
#define A	"a1"
#define B	"b2"

/* SHA-256^N(00 01 .. 1f), from python3 hashlib. */
static const char *const vec_k0 =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char *const vec_k1 =
    "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd";
static const char *const vec_k2 =
    "2f287b4d3d4910f6cada9e1bd1b4648099e8c52c81aa4a6aebfa6fc86f19834e";
static const char *const vec_k999 =
    "b7b81dbeec01f0eee02e43da4988dafb5ecc56a90080555aff89bcbc92ba59c8";
static const char *const vec_k1000 =
    "45cd0d40a72c806c4b78bbeca7a52d9fa6f25751fea57cf1564e7b70b9519db4";
static const char *const vec_k100000 =
    "3db12a659927f4c146394bfdc432a5d49458cae5448495ecb88d78656f094981";

static const uint8_t pt_hello[] = "handover of V1 to tsp-b";

static void
k0_vec(uint8_t k0[KS_KEYLEN])
{
	int	 i;

	for (i = 0; i < KS_KEYLEN; i++)
		k0[i] = (uint8_t)i;
}

/* A time inside step n (not at its start, so rounding shows). */
static int64_t
at(int64_t n)
{
	return T0 + n * DT + DT / 3;
}

static struct keystream *
ks_vec(void)
{
	uint8_t			 k0[KS_KEYLEN];
	struct keystream	*ks;

	k0_vec(k0);
	ks = keystream_new(k0, T0, DT, TSP);
	assert_non_null(ks);
	return ks;
}

/* The stream's checkpoint is step n with key hex. */
static void
assert_at(const struct keystream *ks, int64_t n, const char *hex)
{
	uint8_t	 kn[KS_KEYLEN];
	char	 h[2 * KS_KEYLEN + 1];
	int64_t	 cn = -1;

	assert_int_equal(keystream_checkpoint(ks, &cn, kn), 0);
	assert_int_equal(cn, n);
	crypto_hex(kn, sizeof(kn), h);
	assert_string_equal(h, hex);
}

/* Seal pt_hello from A to B at now; returns the message length. */
static size_t
seal(struct keystream *ks, int64_t now, uint8_t *out, size_t outsize)
{
	size_t	 len = 0;

	assert_int_equal(keystream_seal(ks, now, A, B, pt_hello,
	    sizeof(pt_hello), out, outsize, &len), 0);
	assert_int_equal(len, sizeof(pt_hello) + KS_OVERHEAD);
	return len;
}

/* in opens at ks (from A to B) to pt_hello. */
static void
assert_opens(struct keystream *ks, int64_t now, const uint8_t *in,
    size_t len)
{
	uint8_t		 pt[256];
	size_t		 ptlen = 0;
	const char	*why = "unset";

	assert_int_equal(keystream_open(ks, now, A, B, in, len, pt,
	    sizeof(pt), &ptlen, &why), 0);
	assert_null(why);
	assert_int_equal(ptlen, sizeof(pt_hello));
	assert_memory_equal(pt, pt_hello, sizeof(pt_hello));
}

/* in is refused at ks (from -> to) with the reason want. */
static void
assert_refused_as(struct keystream *ks, int64_t now, const char *from,
    const char *to, const uint8_t *in, size_t len, const char *want)
{
	uint8_t		 pt[256];
	size_t		 ptlen = 12345;
	const char	*why = NULL;

	memset(pt, 0xee, sizeof(pt));
	assert_int_equal(keystream_open(ks, now, from, to, in, len, pt,
	    sizeof(pt), &ptlen, &why), -1);
	assert_non_null(why);
	assert_string_equal(why, want);
	assert_int_equal(ptlen, 12345);
	/* Nothing of the plaintext is left behind. */
	assert_null(memmem(pt, sizeof(pt), "handover", 8));
}

static void
assert_refused(struct keystream *ks, int64_t now, const uint8_t *in,
    size_t len, const char *want)
{
	assert_refused_as(ks, now, A, B, in, len, want);
}

static void
test_vector(void **state)
{
	struct keystream	*ks;

	(void)state;
	ks = ks_vec();
	/* Before the first step there is no checkpoint. */
	assert_int_equal(keystream_checkpoint(ks, &(int64_t){0},
	    (uint8_t[KS_KEYLEN]){0}), -1);
	assert_int_equal(keystream_step(ks, T0), 0);
	assert_at(ks, 0, vec_k0);
	assert_int_equal(keystream_step(ks, T0 + DT - 1), 0);
	assert_int_equal(keystream_step(ks, T0 + DT), 1);
	assert_at(ks, 1, vec_k1);
	assert_int_equal(keystream_step(ks, at(2)), 2);
	assert_at(ks, 2, vec_k2);
	assert_int_equal(keystream_step(ks, at(1000)), 1000);
	assert_at(ks, 1000, vec_k1000);
	keystream_free(ks);

	/* Straight to a step from K0, and step by step: the same keys. */
	ks = ks_vec();
	assert_int_equal(keystream_step(ks, at(1000)), 1000);
	assert_at(ks, 1000, vec_k1000);
	keystream_free(ks);
	ks = ks_vec();
	assert_int_equal(keystream_step(ks, at(998)), 998);
	assert_int_equal(keystream_step(ks, at(999)), 999);
	assert_at(ks, 999, vec_k999);
	assert_int_equal(keystream_step(ks, at(1000)), 1000);
	assert_at(ks, 1000, vec_k1000);
	assert_int_equal(keystream_step(ks, at(100000)), 100000);
	assert_at(ks, 100000, vec_k100000);
	keystream_free(ks);
}

static void
test_bad_args(void **state)
{
	uint8_t			 k0[KS_KEYLEN], out[256];
	struct keystream	*ks;
	size_t			 len;

	(void)state;
	k0_vec(k0);
	assert_null(keystream_new(k0, T0, 0, TSP));
	assert_null(keystream_new(k0, T0, -DT, TSP));
	assert_null(keystream_new(k0, T0, DT, ""));
	assert_null(keystream_new(k0, T0, DT, NULL));
	assert_null(keystream_new(k0, T0, DT,
	    "a-name-of-thirty-three-characters"));
	assert_null(keystream_new(k0, T0, DT, "tsp|a"));
	assert_null(keystream_new(NULL, T0, DT, TSP));
	assert_null(keystream_resume(k0, T0, DT, TSP, -1, k0));
	assert_null(keystream_resume(k0, T0, DT, TSP, 5, NULL));
	assert_null(keystream_resume(k0, T0, 0, TSP, 5, k0));
	assert_null(keystream_resume(k0, T0, DT, "", 5, k0));
	/* At step 0 the key is K0: a checkpoint saying otherwise is wrong. */
	out[0] = 1;
	memcpy(out + 1, k0 + 1, KS_KEYLEN - 1);
	assert_null(keystream_resume(k0, T0, DT, TSP, 0, out));
	keystream_free(keystream_resume(k0, T0, DT, TSP, 0, k0));
	keystream_free(NULL);

	ks = ks_vec();
	/* Bad names and a short output buffer. */
	assert_int_equal(keystream_seal(ks, at(3), "", B, pt_hello,
	    sizeof(pt_hello), out, sizeof(out), &len), -1);
	assert_int_equal(keystream_seal(ks, at(3), A, "b|c", pt_hello,
	    sizeof(pt_hello), out, sizeof(out), &len), -1);
	assert_int_equal(keystream_seal(ks, at(3), A, B, pt_hello,
	    sizeof(pt_hello), out, sizeof(pt_hello) + KS_OVERHEAD - 1, &len),
	    -1);
	len = seal(ks, at(3), out, sizeof(out));
	assert_refused_as(ks, at(3), A, "", out, len, "bad name");
	assert_refused(ks, at(3), out, KS_OVERHEAD - 1, "short");
	{
		uint8_t		 pt[sizeof(pt_hello) - 1];
		size_t		 ptlen;
		const char	*why = NULL;

		assert_int_equal(keystream_open(ks, at(3), A, B, out, len, pt,
		    sizeof(pt), &ptlen, &why), -1);
		assert_string_equal(why, "buffer too small");
	}
	/* Still opens: the refusals above remembered nothing. */
	assert_opens(ks, at(3), out, len);
	keystream_free(ks);

	/* "*" (every instance) is a to, bound by the AAD like a name. */
	ks = ks_vec();
	assert_int_equal(keystream_seal(ks, at(3), A, KS_TO_ALL, pt_hello,
	    sizeof(pt_hello), out, sizeof(out), &len), 0);
	assert_refused_as(ks, at(3), A, B, out, len, "does not open");
	{
		uint8_t		 pt[256];
		size_t		 ptlen = 0;
		const char	*why = "unset";

		assert_int_equal(keystream_open(ks, at(3), A, KS_TO_ALL, out,
		    len, pt, sizeof(pt), &ptlen, &why), 0);
		assert_memory_equal(pt, pt_hello, sizeof(pt_hello));
	}
	assert_int_equal(keystream_seal(ks, at(3), KS_TO_ALL, B, pt_hello,
	    sizeof(pt_hello), out, sizeof(out), &len), -1);
	keystream_free(ks);
}

/* An empty message is sealed and opened too. */
static void
test_empty(void **state)
{
	struct keystream	*s, *r;
	uint8_t			 out[KS_OVERHEAD];
	size_t			 len = 0, ptlen = 99;
	const char		*why = "unset";

	(void)state;
	s = ks_vec();
	r = ks_vec();
	assert_int_equal(keystream_seal(s, at(7), A, B, NULL, 0, out,
	    sizeof(out), &len), 0);
	assert_int_equal(len, KS_OVERHEAD);
	assert_int_equal(keystream_open(r, at(7), A, B, out, len, NULL, 0,
	    &ptlen, &why), 0);
	assert_null(why);
	assert_int_equal(ptlen, 0);
	keystream_free(s);
	keystream_free(r);
}

/* The message layout: Tc big-endian, then the nonce, ciphertext and tag. */
static void
test_layout(void **state)
{
	struct keystream	*ks;
	uint8_t			 a[256], b[256];
	size_t			 len;

	(void)state;
	ks = ks_vec();
	len = seal(ks, at(0x01020304), a, sizeof(a));
	assert_memory_equal(a, "\0\0\0\0\1\2\3\4", 8);
	assert_int_equal(seal(ks, at(0x01020304), b, sizeof(b)), len);
	/* A fresh nonce for each message. */
	assert_memory_not_equal(a + 8, b + 8, 12);
	keystream_free(ks);
}

/* Sealed at step N: opens at N and N+1, refused at N+2 and at N-1. */
static void
test_window(void **state)
{
	struct keystream	*s, *r;
	uint8_t			 m[256];
	size_t			 len;
	const int64_t		 n = 50;

	(void)state;
	s = ks_vec();
	len = seal(s, at(n), m, sizeof(m));

	r = ks_vec();
	assert_opens(r, at(n), m, len);
	keystream_free(r);

	r = ks_vec();
	assert_opens(r, at(n + 1), m, len);
	keystream_free(r);
	/* Sealed at the very end of step N, opened at the start of N+1. */
	r = ks_vec();
	len = seal(s, T0 + (n + 1) * DT - 1, m, sizeof(m));
	assert_opens(r, T0 + (n + 1) * DT, m, len);
	keystream_free(r);

	r = ks_vec();
	assert_refused(r, at(n + 2), m, len, "stale step");
	keystream_free(r);

	/* A receiver whose clock is behind. */
	r = ks_vec();
	assert_refused(r, at(n - 1), m, len, "future step");
	keystream_free(r);
	keystream_free(s);
}

static void
test_wrong_k0(void **state)
{
	struct keystream	*s, *r;
	uint8_t			 k0[KS_KEYLEN], m[256];
	size_t			 len;

	(void)state;
	s = ks_vec();
	len = seal(s, at(9), m, sizeof(m));
	k0_vec(k0);
	k0[31] ^= 1;
	r = keystream_new(k0, T0, DT, TSP);
	assert_non_null(r);
	assert_refused(r, at(9), m, len, "does not open");
	keystream_free(r);
	keystream_free(s);
}

static void
test_wrong_names(void **state)
{
	struct keystream	*s, *r;
	uint8_t			 k0[KS_KEYLEN], m[256];
	size_t			 len;

	(void)state;
	s = ks_vec();
	len = seal(s, at(9), m, sizeof(m));
	k0_vec(k0);
	r = keystream_new(k0, T0, DT, "tsp-b");
	assert_non_null(r);
	assert_refused(r, at(9), m, len, "does not open");
	keystream_free(r);

	r = ks_vec();
	assert_refused_as(r, at(9), "a3", B, m, len, "does not open");
	assert_refused_as(r, at(9), A, "b3", m, len, "does not open");
	/* Reflected: the same message read as B -> A. */
	assert_refused_as(r, at(9), B, A, m, len, "does not open");
	assert_opens(r, at(9), m, len);
	keystream_free(r);
	keystream_free(s);
}

static void
test_tampered(void **state)
{
	struct keystream	*s, *r;
	uint8_t			 m[256];
	size_t			 len, i;

	(void)state;
	s = ks_vec();
	r = ks_vec();
	len = seal(s, at(20), m, sizeof(m));
	/* Every byte of the nonce, ciphertext and tag, one at a time. */
	for (i = 8; i < len; i++) {
		m[i] ^= 0x40;
		assert_refused(r, at(20), m, len, "does not open");
		m[i] ^= 0x40;
	}
	/* Tc: to the step before (Kp exists, the AAD and key differ). */
	m[7] = 19;
	assert_refused(r, at(20), m, len, "does not open");
	m[7] = 21;
	assert_refused(r, at(20), m, len, "future step");
	m[7] = 20;
	m[0] ^= 0x80;
	assert_refused(r, at(20), m, len, "future step");
	m[0] ^= 0x80;
	/* Truncated. */
	assert_refused(r, at(20), m, len - 1, "does not open");
	assert_opens(r, at(20), m, len);
	keystream_free(r);
	keystream_free(s);
}

static void
test_replay(void **state)
{
	struct keystream	*s, *r;
	uint8_t			 m[256], m2[256];
	size_t			 len, len2;

	(void)state;
	s = ks_vec();
	r = ks_vec();
	len = seal(s, at(30), m, sizeof(m));
	assert_opens(r, at(30), m, len);
	assert_refused(r, at(30), m, len, "replayed");
	/* A second message of the same step opens. */
	len2 = seal(s, at(30), m2, sizeof(m2));
	assert_opens(r, at(30), m2, len2);
	/* At the next step both are under Kp and still remembered. */
	assert_refused(r, at(31), m, len, "replayed");
	assert_refused(r, at(31), m2, len2, "replayed");
	keystream_free(r);
	keystream_free(s);
}

/* A full replay set refuses new messages of its step, forgets none. */
static void
test_replay_full(void **state)
{
	struct keystream	*s, *r;
	uint8_t			 m[5][256], x[256];
	size_t			 len[5], xlen;
	int			 i;

	(void)state;
	s = ks_vec();
	r = ks_vec();
	assert_int_equal(keystream_set_replay_max(r, 0), -1);
	assert_int_equal(keystream_set_replay_max(r, 4), 0);
	for (i = 0; i < 5; i++)
		len[i] = seal(s, at(40), m[i], sizeof(m[i]));
	for (i = 0; i < 4; i++)
		assert_opens(r, at(40), m[i], len[i]);
	assert_int_equal(keystream_set_replay_max(r, 100), -1);
	assert_refused(r, at(40), m[4], len[4], "replay window full");
	assert_refused(r, at(40), m[0], len[0], "replayed");
	/* The next step's set is empty; the old step's stays full. */
	xlen = seal(s, at(41), x, sizeof(x));
	assert_opens(r, at(41), x, xlen);
	assert_refused(r, at(41), m[4], len[4], "replay window full");
	for (i = 0; i < 4; i++)
		assert_refused(r, at(41), m[i], len[i], "replayed");
	keystream_free(r);
	keystream_free(s);
}

/* A resumed stream is the same stream: same keys, messages both ways. */
static void
test_checkpoint_resume(void **state)
{
	struct keystream	*a, *b, *c;
	uint8_t			 k0[KS_KEYLEN], kn[KS_KEYLEN], m[256];
	int64_t			 n;
	size_t			 len;

	(void)state;
	k0_vec(k0);
	a = ks_vec();
	assert_int_equal(keystream_step(a, at(999)), 999);
	assert_int_equal(keystream_checkpoint(a, &n, kn), 0);
	assert_int_equal(n, 999);
	keystream_free(a);

	b = keystream_resume(k0, T0, DT, TSP, n, kn);
	assert_non_null(b);
	assert_int_equal(keystream_checkpoint(b, &n, kn), -1);
	assert_int_equal(keystream_step(b, at(1000)), 1000);
	assert_at(b, 1000, vec_k1000);
	c = ks_vec();
	len = seal(b, at(1000), m, sizeof(m));
	assert_opens(c, at(1000), m, len);
	len = seal(c, at(1000), m, sizeof(m));
	assert_opens(b, at(1000), m, len);
	/* b has Kp (step 999) too: a message of step 999 opens at b. */
	keystream_free(c);
	c = ks_vec();
	len = seal(c, at(999), m, sizeof(m));
	assert_opens(b, at(1000), m, len);
	/* Both go on together. */
	len = seal(b, at(1003), m, sizeof(m));
	assert_opens(c, at(1004), m, len);
	keystream_free(b);
	keystream_free(c);
}

/* Resumed at exactly its checkpoint's step: no Kp until it advances. */
static void
test_resume_same_step(void **state)
{
	struct keystream	*b, *c;
	uint8_t			 k0[KS_KEYLEN], kn[KS_KEYLEN], m[256];
	size_t			 len;

	(void)state;
	k0_vec(k0);
	assert_int_equal(crypto_unhex(vec_k1000, kn, sizeof(kn)), 0);
	b = keystream_resume(k0, T0, DT, TSP, 1000, kn);
	assert_non_null(b);
	assert_int_equal(keystream_step(b, at(1000)), 1000);
	assert_at(b, 1000, vec_k1000);
	c = ks_vec();
	len = seal(c, at(999), m, sizeof(m));
	assert_refused(b, at(1000), m, len, "stale step");
	len = seal(c, at(1000), m, sizeof(m));
	assert_opens(b, at(1000), m, len);
	len = seal(c, at(1000), m, sizeof(m));
	assert_opens(b, at(1001), m, len);
	keystream_free(b);
	keystream_free(c);
}

/* A checkpoint ahead of the clock is dropped for the clock's step from K0. */
static void
test_resume_ahead(void **state)
{
	struct keystream	*b;
	uint8_t			 k0[KS_KEYLEN], kn[KS_KEYLEN];

	(void)state;
	k0_vec(k0);
	assert_int_equal(crypto_unhex(vec_k1000, kn, sizeof(kn)), 0);
	b = keystream_resume(k0, T0, DT, TSP, 1000, kn);
	assert_non_null(b);
	assert_int_equal(keystream_step(b, at(999)), 999);
	assert_at(b, 999, vec_k999);
	assert_int_equal(keystream_step(b, at(1000)), 1000);
	assert_at(b, 1000, vec_k1000);
	keystream_free(b);
	/* A resumed stream before t0 waits, checkpoint kept. */
	b = keystream_resume(k0, T0, DT, TSP, 1000, kn);
	assert_int_equal(keystream_step(b, T0 - 1), -1);
	assert_int_equal(keystream_step(b, at(1002)), 1002);
	keystream_free(b);
}

static void
test_clock_backwards(void **state)
{
	struct keystream	*s, *r;
	uint8_t			 m[256];
	size_t			 len;

	(void)state;
	s = ks_vec();
	r = ks_vec();
	assert_int_equal(keystream_step(s, T0 - 1), -1);
	assert_int_equal(keystream_seal(s, T0 - 1, A, B, pt_hello,
	    sizeof(pt_hello), m, sizeof(m), &len), -1);
	assert_int_equal(keystream_checkpoint(s, &(int64_t){0}, m), -1);
	assert_int_equal(keystream_step(s, at(10)), 10);
	assert_int_equal(keystream_step(s, at(5)), 10);
	assert_at(s, 10, "ecb807a1906b5e5268b738f97d957a38"
	    "2e6e318fe30d404a46492494473761a0");
	/* Sealed while the clock reads step 5: still Tc = 10. */
	len = seal(s, at(5), m, sizeof(m));
	assert_int_equal(m[7], 10);
	assert_opens(r, at(10), m, len);
	/* Before t0 nothing is sealed or opened; the stream is kept. */
	assert_int_equal(keystream_step(s, T0 - DT), -1);
	assert_int_equal(keystream_seal(s, T0 - DT, A, B, pt_hello,
	    sizeof(pt_hello), m, sizeof(m), &len), -1);
	assert_refused(r, T0 - DT, m, len, "before epoch");
	assert_at(s, 10, "ecb807a1906b5e5268b738f97d957a38"
	    "2e6e318fe30d404a46492494473761a0");
	assert_int_equal(keystream_step(s, at(11)), 11);
	keystream_free(r);
	keystream_free(s);
}

/* Two steps on, a message of the old step no longer opens: its key is gone. */
static void
test_old_keys_erased(void **state)
{
	struct keystream	*s, *r;
	uint8_t			 m1[256], m2[256];
	size_t			 len1, len2;

	(void)state;
	s = ks_vec();
	r = ks_vec();
	len1 = seal(s, at(60), m1, sizeof(m1));
	len2 = seal(s, at(60), m2, sizeof(m2));
	assert_opens(r, at(60), m1, len1);
	assert_int_equal(keystream_step(r, at(61)), 61);
	assert_int_equal(keystream_step(r, at(62)), 62);
	/* Even with the clock back at step 60 the stream stays at 62. */
	assert_refused(r, at(60), m2, len2, "stale step");
	assert_refused(r, at(62), m2, len2, "stale step");
	/* A jump of many steps leaves no Kp of the old step either. */
	len1 = seal(s, at(62), m1, sizeof(m1));
	assert_int_equal(keystream_step(r, at(70)), 70);
	assert_refused(r, at(70), m1, len1, "stale step");
	keystream_free(r);
	keystream_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_wrong_k0),
		cmocka_unit_test(test_wrong_names),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_replay_full),
		cmocka_unit_test(test_checkpoint_resume),
		cmocka_unit_test(test_resume_same_step),
		cmocka_unit_test(test_resume_ahead),
		cmocka_unit_test(test_clock_backwards),
		cmocka_unit_test(test_old_keys_erased),
	};

	log_init("test_keystream", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
