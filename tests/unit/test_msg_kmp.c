/*
 * Unit tests of the KMP codecs (PROTOCOL 11.1): KmpApply and KmpKey
 * round trips, their ciphertexts opened again with crypto_aead_open and
 * the literal AADs of doc/protocol.md, and refusals of a wrong initial
 * key, names inside the seal that differ from the clear ones, tampered
 * ciphertexts and an answer to another application.  Also the random key
 * source, which answers from the event loop with fresh keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto.h"
#include "keysrc.h"
#include "msg.h"

#define ID	"chip-0001"
#define SID	"s-0001"

static const uint8_t ik[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
static const uint8_t other[32] = { 9, 8, 7 };
static const uint8_t nonce[MSG_KMP_NONCELEN] = { 0xaa, 0xbb, 0xcc };

static void
in_free_check(Qroam__KmpApplyInner *in)
{
	assert_non_null(in);
	qroam__kmp_apply_inner__free_unpacked(in, NULL);
}

static void
test_apply_roundtrip(void **state)
{
	Qroam__KmpApply		 a = QROAM__KMP_APPLY__INIT;
	Qroam__KmpApplyInner	*in;
	uint8_t			 pt[256];

	(void)state;
	assert_int_equal(msg_kmp_apply_seal(ik, ID, SID, nonce, 1234, &a), 0);
	assert_string_equal(a.identity, ID);
	assert_int_equal(a.iv.len, CRYPTO_NONCELEN);
	/* The AAD is the literal one of the protocol. */
	assert_int_equal(crypto_aead_open(ik, a.iv.data,
	    "qroam/1|KMP-APPLY|" ID "|" SID, a.ct.data, a.ct.len, pt), 0);
	in = msg_kmp_apply_open(ik, &a);
	assert_non_null(in);
	assert_string_equal(in->identity, ID);
	assert_string_equal(in->session_id, SID);
	assert_memory_equal(in->nonce.data, nonce, MSG_KMP_NONCELEN);
	assert_int_equal(in->time_ms, 1234);
	qroam__kmp_apply_inner__free_unpacked(in, NULL);
	/* Another key, another session in the clear, a flipped bit. */
	assert_null(msg_kmp_apply_open(other, &a));
	a.session_id = "s-0002";
	assert_null(msg_kmp_apply_open(ik, &a));
	a.session_id = SID;
	a.ct.data[0] ^= 1;
	assert_null(msg_kmp_apply_open(ik, &a));
	msg_kmp_clear(&a.iv, &a.ct);
	assert_null(a.ct.data);
}

/* A seal whose inner names differ from the clear ones is refused. */
static void
test_apply_inner_mismatch(void **state)
{
	Qroam__KmpApply		a = QROAM__KMP_APPLY__INIT;
	Qroam__KmpApplyInner	in = QROAM__KMP_APPLY_INNER__INIT;
	uint8_t			pt[128], ct[160], iv[CRYPTO_NONCELEN] = { 7 };
	size_t			len;

	(void)state;
	in.identity = "chip-0002";
	in.session_id = SID;
	in.nonce.data = (uint8_t *)nonce;
	in.nonce.len = MSG_KMP_NONCELEN;
	in.time_ms = 1;
	len = qroam__kmp_apply_inner__pack(&in, pt);
	assert_int_equal(crypto_aead_seal(ik, iv, "qroam/1|KMP-APPLY|" ID "|"
	    SID, pt, len, ct), 0);
	a.identity = ID;
	a.session_id = SID;
	a.iv.data = iv;
	a.iv.len = sizeof(iv);
	a.ct.data = ct;
	a.ct.len = len + CRYPTO_TAGLEN;
	assert_null(msg_kmp_apply_open(ik, &a));
	/* The same with the right names opens. */
	in.identity = ID;
	len = qroam__kmp_apply_inner__pack(&in, pt);
	assert_int_equal(crypto_aead_seal(ik, iv, "qroam/1|KMP-APPLY|" ID "|"
	    SID, pt, len, ct), 0);
	a.ct.len = len + CRYPTO_TAGLEN;
	in_free_check(msg_kmp_apply_open(ik, &a));
	assert_int_equal(msg_kmp_apply_seal(NULL, ID, SID, nonce, 1, &a), -1);
	assert_null(msg_kmp_apply_open(NULL, &a));
}

static void
test_key_roundtrip(void **state)
{
	Qroam__KmpKey	k = QROAM__KMP_KEY__INIT;
	uint8_t		key[32], got[32], pt[256], wrong[MSG_KMP_NONCELEN];

	(void)state;
	memset(key, 0x5a, sizeof(key));
	assert_int_equal(msg_kmp_key_seal(ik, ID, SID, key, nonce, &k), 0);
	assert_int_equal(crypto_aead_open(ik, k.iv.data,
	    "qroam/1|KMP-KEY|" ID "|" SID, k.ct.data, k.ct.len, pt), 0);
	assert_int_equal(msg_kmp_key_open(ik, &k, nonce, got), 0);
	assert_memory_equal(got, key, 32);
	/* The answer to another application, under another key. */
	memcpy(wrong, nonce, sizeof(wrong));
	wrong[0] ^= 1;
	assert_int_equal(msg_kmp_key_open(ik, &k, wrong, got), -1);
	assert_int_equal(msg_kmp_key_open(other, &k, nonce, got), -1);
	k.identity = "chip-0002";
	assert_int_equal(msg_kmp_key_open(ik, &k, nonce, got), -1);
	msg_kmp_clear(&k.iv, &k.ct);
}

struct got {
	int			calls;
	enum keysrc_result	res;
	uint8_t			key[2][32];
	char			id[2][KEYSRC_IDMAX + 1];
	size_t			n;
};

static void
got_keys(void *arg, enum keysrc_result res, const struct keysrc_key *keys,
    size_t n, const char *why)
{
	struct got	*g = arg;
	size_t		 i;

	(void)why;
	g->calls++;
	g->res = res;
	g->n = n;
	for (i = 0; i < n && i < 2; i++) {
		memcpy(g->key[i], keys[i].kk_key, 32);
		memcpy(g->id[i], keys[i].kk_id, sizeof(g->id[i]));
	}
}

static void
test_random_source(void **state)
{
	struct event_base	*base = event_base_new();
	struct keysrc		*ks;
	struct got		 g, h;
	const char		*ids[] = { "rand-1" };

	(void)state;
	memset(&g, 0, sizeof(g));
	memset(&h, 0, sizeof(h));
	ks = keysrc_new("random", base, NULL, 0, NULL, 0);
	assert_non_null(ks);
	assert_string_equal(keysrc_name(ks), "random source");
	assert_int_equal(keysrc_get_keys(ks, "kmp-peer", 2, got_keys, &g), 0);
	assert_int_equal(g.calls, 0);	/* never from inside the call */
	assert_int_equal(keysrc_get_keys_by_id(ks, "kmp", ids, 1, got_keys,
	    &h), 0);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.res, KEYSRC_OK);
	assert_int_equal(g.n, 2);
	assert_memory_not_equal(g.key[0], g.key[1], 32);
	assert_string_not_equal(g.id[0], g.id[1]);
	assert_int_equal(h.calls, 1);
	assert_int_equal(h.res, KEYSRC_REFUSED);
	/* A cancelled request never answers. */
	memset(&g, 0, sizeof(g));
	assert_int_equal(keysrc_get_keys(ks, "kmp-peer", 1, got_keys, &g), 0);
	keysrc_cancel(ks, got_keys, &g);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(g.calls, 0);
	keysrc_free(ks);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply_roundtrip),
		cmocka_unit_test(test_apply_inner_mismatch),
		cmocka_unit_test(test_key_roundtrip),
		cmocka_unit_test(test_random_source),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
