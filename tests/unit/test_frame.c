/*
 * Unit tests of the frame codec: round trips, every truncation, the size
 * of a frame from its header, frames around payloads packed already, size
 * limits, malformed envelopes, payload unpacking and pinned golden bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "frame.h"

/* Status{OK} in an Envelope with request_id 7, length header included. */
static const uint8_t golden_status_ok_7[] = {
	0x00, 0x00, 0x00, 0x0a,		/* length 10 */
	0x08, 0x01,			/* version = 1 */
	0x10, 0x0a,			/* type = MT_STATUS (10) */
	0x1a, 0x02, 0x08, 0x00,		/* payload = Status{code = OK} */
	0x20, 0x07,			/* request_id = 7 */
};

/* Encode a Status with detail into a frame; the buffer is malloc'd. */
static uint8_t *
encode_status(int code, const char *detail, uint64_t rid, size_t *len)
{
	Qroam__Status	 st = QROAM__STATUS__INIT;
	uint8_t		*buf = NULL;

	st.code = code;
	st.detail = (char *)detail;
	assert_int_equal(frame_encode(QROAM__MSG_TYPE__MT_STATUS, rid, &st.base,
	    FRAME_MAX_DEFAULT, &buf, len), 0);
	assert_non_null(buf);
	return buf;
}

/* Wrap an envelope body (no header) into a frame with a length header. */
static uint8_t *
wrap_body(const uint8_t *body, size_t n, size_t *len)
{
	uint8_t	*buf;

	buf = malloc(FRAME_HDRLEN + n);
	assert_non_null(buf);
	buf[0] = n >> 24;
	buf[1] = n >> 16;
	buf[2] = n >> 8;
	buf[3] = n;
	if (n > 0)
		memcpy(buf + FRAME_HDRLEN, body, n);
	*len = FRAME_HDRLEN + n;
	return buf;
}

/* Pack env by hand (bypassing frame_encode's checks) into a frame. */
static uint8_t *
pack_envelope(const Qroam__Envelope *env, size_t *len)
{
	uint8_t	body[1024];
	size_t	n;

	n = qroam__envelope__get_packed_size(env);
	assert_true(n <= sizeof(body));
	qroam__envelope__pack(env, body);
	return wrap_body(body, n, len);
}

static void
test_round_trip(void **state)
{
	struct frame	 f;
	Qroam__Status	*st;
	uint8_t		*buf;
	size_t		 len, consumed = 0;

	(void)state;
	buf = encode_status(QROAM__STATUS_CODE__KEY_REUSED, "index 3",
	    0x1122334455667788ULL, &len);
	assert_int_equal(frame_decode(buf, len, FRAME_MAX_DEFAULT, &f, &consumed),
	    FRAME_OK);
	assert_int_equal(consumed, len);
	assert_int_equal(f.f_type, QROAM__MSG_TYPE__MT_STATUS);
	assert_true(f.f_request_id == 0x1122334455667788ULL);
	assert_non_null(f.f_payload);
	assert_true(f.f_payload_len > 0);
	st = (Qroam__Status *)frame_unpack(&f, &qroam__status__descriptor);
	assert_non_null(st);
	assert_int_equal(st->code, QROAM__STATUS_CODE__KEY_REUSED);
	assert_string_equal(st->detail, "index 3");
	qroam__status__free_unpacked(st, NULL);
	frame_release(&f);
	assert_null(f.f_env);
	assert_null(f.f_payload);
	free(buf);
}

static void
test_empty_payload_no_request_id(void **state)
{
	struct frame	 f;
	uint8_t		*buf = NULL;
	size_t		 len, consumed = 0;

	(void)state;
	assert_int_equal(frame_encode(QROAM__MSG_TYPE__MT_M4, 0, NULL,
	    FRAME_MAX_DEFAULT, &buf, &len), 0);
	/* version and type only: 08 01 10 28 */
	assert_int_equal(len, FRAME_HDRLEN + 4);
	assert_int_equal(frame_decode(buf, len, FRAME_MAX_DEFAULT, &f, &consumed),
	    FRAME_OK);
	assert_int_equal(consumed, len);
	assert_int_equal(f.f_type, QROAM__MSG_TYPE__MT_M4);
	assert_true(f.f_request_id == 0);
	assert_null(f.f_payload);
	assert_int_equal(f.f_payload_len, 0);
	frame_release(&f);
	free(buf);
}

static void
test_golden_status_ok(void **state)
{
	Qroam__Status	 st = QROAM__STATUS__INIT;
	struct frame	 f;
	uint8_t		*buf = NULL;
	size_t		 len, consumed;
	int		 i;

	(void)state;
	st.code = QROAM__STATUS_CODE__OK;
	/* Encoding is deterministic: the same bytes every time. */
	for (i = 0; i < 3; i++) {
		assert_int_equal(frame_encode(QROAM__MSG_TYPE__MT_STATUS, 7,
		    &st.base, FRAME_MAX_DEFAULT, &buf, &len), 0);
		assert_int_equal(len, sizeof(golden_status_ok_7));
		assert_memory_equal(buf, golden_status_ok_7, len);
		free(buf);
	}
	assert_int_equal(frame_decode(golden_status_ok_7,
	    sizeof(golden_status_ok_7), FRAME_MAX_DEFAULT, &f, &consumed), FRAME_OK);
	assert_int_equal(f.f_type, QROAM__MSG_TYPE__MT_STATUS);
	assert_true(f.f_request_id == 7);
	assert_int_equal(f.f_payload_len, 2);
	frame_release(&f);
}

static void
test_need_more_every_prefix(void **state)
{
	struct frame	 f;
	uint8_t		*buf, *copy;
	size_t		 len, i, consumed;

	(void)state;
	buf = encode_status(QROAM__STATUS_CODE__OK, "a detail of some length",
	    99, &len);
	for (i = 0; i < len; i++) {
		/* An exact-size copy so ASan catches any read past i. */
		copy = malloc(i ? i : 1);
		assert_non_null(copy);
		memcpy(copy, buf, i);
		consumed = 12345;
		assert_int_equal(frame_decode(copy, i, FRAME_MAX_DEFAULT, &f,
		    &consumed), FRAME_NEED_MORE);
		assert_int_equal(consumed, 12345);
		assert_null(f.f_env);
		free(copy);
	}
	assert_int_equal(frame_decode(buf, len, FRAME_MAX_DEFAULT, &f, &consumed),
	    FRAME_OK);
	frame_release(&f);
	free(buf);
}

static void
test_two_frames_in_one_buffer(void **state)
{
	struct frame	 f;
	uint8_t		*a, *b, *both;
	size_t		 alen, blen, consumed;

	(void)state;
	a = encode_status(QROAM__STATUS_CODE__OK, "first", 1, &alen);
	b = encode_status(QROAM__STATUS_CODE__STALE, "second", 2, &blen);
	both = malloc(alen + blen);
	assert_non_null(both);
	memcpy(both, a, alen);
	memcpy(both + alen, b, blen);
	assert_int_equal(frame_decode(both, alen + blen, FRAME_MAX_DEFAULT, &f,
	    &consumed), FRAME_OK);
	assert_int_equal(consumed, alen);
	assert_true(f.f_request_id == 1);
	frame_release(&f);
	assert_int_equal(frame_decode(both + consumed, alen + blen - consumed,
	    FRAME_MAX_DEFAULT, &f, &consumed), FRAME_OK);
	assert_int_equal(consumed, blen);
	assert_true(f.f_request_id == 2);
	frame_release(&f);
	free(a);
	free(b);
	free(both);
}

static void
test_too_big(void **state)
{
	struct frame	 f;
	uint8_t		 hdr[FRAME_HDRLEN] = { 0x00, 0x01, 0x00, 0x01 };
	uint8_t		 huge[FRAME_HDRLEN] = { 0xff, 0xff, 0xff, 0xff };
	uint8_t		*buf;
	size_t		 len, consumed;

	(void)state;
	/* 65537 > 65536: refused from the header alone. */
	assert_int_equal(frame_decode(hdr, sizeof(hdr), FRAME_MAX_DEFAULT, &f,
	    &consumed), FRAME_TOO_BIG);
	assert_int_equal(frame_decode(huge, sizeof(huge), FRAME_MAX_DEFAULT, &f,
	    &consumed), FRAME_TOO_BIG);
	/* Exactly the maximum is not too big, only incomplete. */
	hdr[3] = 0x00;
	assert_int_equal(frame_decode(hdr, sizeof(hdr), FRAME_MAX_DEFAULT, &f,
	    &consumed), FRAME_NEED_MORE);
	/* A valid frame is too big for a smaller limit. */
	buf = encode_status(QROAM__STATUS_CODE__OK, "0123456789", 5, &len);
	assert_int_equal(frame_decode(buf, len, len - FRAME_HDRLEN - 1, &f,
	    &consumed), FRAME_TOO_BIG);
	assert_int_equal(frame_decode(buf, len, len - FRAME_HDRLEN, &f,
	    &consumed), FRAME_OK);
	frame_release(&f);
	free(buf);
}

static void
test_encode_refuses_too_big(void **state)
{
	Qroam__Status	 st = QROAM__STATUS__INIT;
	char		 detail[200];
	uint8_t		*buf = NULL;
	size_t		 len = 0;

	(void)state;
	memset(detail, 'x', sizeof(detail) - 1);
	detail[sizeof(detail) - 1] = '\0';
	st.code = QROAM__STATUS_CODE__OK;
	st.detail = detail;
	assert_int_equal(frame_encode(QROAM__MSG_TYPE__MT_STATUS, 1, &st.base,
	    100, &buf, &len), -1);
	assert_null(buf);
	/* The payload fits but the envelope around it does not. */
	assert_int_equal(frame_encode(QROAM__MSG_TYPE__MT_STATUS, 1, &st.base,
	    protobuf_c_message_get_packed_size(&st.base), &buf, &len), -1);
	assert_null(buf);
	assert_int_equal(frame_encode(QROAM__MSG_TYPE__MT_STATUS, 1, &st.base,
	    1024, &buf, &len), 0);
	assert_non_null(buf);
	free(buf);
}

/* The size of the next frame is known from its header alone. */
static void
test_size_from_header(void **state)
{
	uint8_t	hdr[FRAME_HDRLEN] = { 0x00, 0x00, 0x01, 0x02 };
	size_t	size = 0, i;

	(void)state;
	for (i = 0; i < FRAME_HDRLEN; i++)
		assert_int_equal(frame_size(hdr, i, FRAME_MAX_DEFAULT, &size),
		    FRAME_NEED_MORE);
	assert_int_equal(frame_size(hdr, sizeof(hdr), FRAME_MAX_DEFAULT,
	    &size), FRAME_OK);
	assert_int_equal(size, FRAME_HDRLEN + 0x102);
	assert_int_equal(frame_size(hdr, sizeof(hdr), 0x102, &size), FRAME_OK);
	assert_int_equal(frame_size(hdr, sizeof(hdr), 0x101, &size),
	    FRAME_TOO_BIG);
	memset(hdr, 0xff, sizeof(hdr));
	assert_int_equal(frame_size(hdr, sizeof(hdr), FRAME_MAX_DEFAULT,
	    &size), FRAME_TOO_BIG);
	memset(hdr, 0, sizeof(hdr));
	assert_int_equal(frame_size(hdr, sizeof(hdr), FRAME_MAX_DEFAULT,
	    &size), FRAME_MALFORMED);
	assert_int_equal(frame_size(golden_status_ok_7,
	    sizeof(golden_status_ok_7), FRAME_MAX_DEFAULT, &size), FRAME_OK);
	assert_int_equal(size, sizeof(golden_status_ok_7));
	assert_int_equal(frame_size_max(FRAME_MAX_DEFAULT),
	    FRAME_HDRLEN + FRAME_MAX_DEFAULT);
}

/* A payload packed already frames to the same bytes as its message. */
static void
test_encode_payload(void **state)
{
	static const uint8_t	 status_ok[] = { 0x08, 0x00 };
	struct frame		 f;
	uint8_t			*buf = NULL;
	size_t			 len = 0, consumed;

	(void)state;
	assert_int_equal(frame_encode_payload(QROAM__MSG_TYPE__MT_STATUS, 7,
	    status_ok, sizeof(status_ok), FRAME_MAX_DEFAULT, &buf, &len), 0);
	assert_int_equal(len, sizeof(golden_status_ok_7));
	assert_memory_equal(buf, golden_status_ok_7, len);
	free(buf);
	/* An empty payload is present; no payload is absent. */
	assert_int_equal(frame_encode_payload(QROAM__MSG_TYPE__MT_M4, 0,
	    (const uint8_t *)"", 0, FRAME_MAX_DEFAULT, &buf, &len), 0);
	assert_int_equal(len, FRAME_HDRLEN + 6);
	assert_int_equal(frame_decode(buf, len, FRAME_MAX_DEFAULT, &f,
	    &consumed), FRAME_OK);
	assert_true(f.f_env->has_payload);
	assert_int_equal(f.f_payload_len, 0);
	frame_release(&f);
	free(buf);
	assert_int_equal(frame_encode_payload(QROAM__MSG_TYPE__MT_M4, 0, NULL,
	    0, FRAME_MAX_DEFAULT, &buf, &len), 0);
	assert_int_equal(len, FRAME_HDRLEN + 4);
	free(buf);
	buf = NULL;
	assert_int_equal(frame_encode_payload(QROAM__MSG_TYPE__MT_STATUS, 7,
	    status_ok, sizeof(status_ok), sizeof(golden_status_ok_7) -
	    FRAME_HDRLEN - 1, &buf, &len), -1);
	assert_null(buf);
}

static void
test_zero_length_malformed(void **state)
{
	struct frame	f;
	uint8_t		zero[8] = { 0 };
	size_t		consumed;

	(void)state;
	assert_int_equal(frame_decode(zero, FRAME_HDRLEN, FRAME_MAX_DEFAULT, &f,
	    &consumed), FRAME_MALFORMED);
	assert_int_equal(frame_decode(zero, sizeof(zero), FRAME_MAX_DEFAULT, &f,
	    &consumed), FRAME_MALFORMED);
	assert_null(f.f_env);
}

static void
test_wrong_version(void **state)
{
	Qroam__Envelope	 env = QROAM__ENVELOPE__INIT;
	struct frame	 f;
	uint8_t		*buf;
	size_t		 len, consumed;
	uint32_t	 versions[] = { 0, 2, 255 };
	size_t		 i;

	(void)state;
	env.type = QROAM__MSG_TYPE__MT_STATUS;
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		env.version = versions[i];
		buf = pack_envelope(&env, &len);
		assert_int_equal(frame_decode(buf, len, FRAME_MAX_DEFAULT, &f,
		    &consumed), FRAME_MALFORMED);
		assert_null(f.f_env);
		free(buf);
	}
	env.version = FRAME_VERSION;
	buf = pack_envelope(&env, &len);
	assert_int_equal(frame_decode(buf, len, FRAME_MAX_DEFAULT, &f, &consumed),
	    FRAME_OK);
	frame_release(&f);
	free(buf);
}

static void
test_unknown_and_missing_envelope_fields(void **state)
{
	/* version 1, type 10, then field 15 (varint 1): unknown. */
	static const uint8_t unknown[] = { 0x08, 0x01, 0x10, 0x0a, 0x78, 0x01 };
	/* version only: type is required. */
	static const uint8_t notype[] = { 0x08, 0x01 };
	/* type only: version is required. */
	static const uint8_t noversion[] = { 0x10, 0x0a };
	/* payload length runs past the body. */
	static const uint8_t shortpl[] = { 0x08, 0x01, 0x10, 0x0a, 0x1a, 0x05, 0x00 };
	/* request_id with the wrong wire type (length-delimited). */
	static const uint8_t wiretype[] = { 0x08, 0x01, 0x10, 0x0a, 0x22, 0x00 };
	const uint8_t	*bodies[] = { unknown, notype, noversion, shortpl, wiretype };
	size_t		 lens[] = { sizeof(unknown), sizeof(notype),
			    sizeof(noversion), sizeof(shortpl), sizeof(wiretype) };
	struct frame	 f;
	uint8_t		*buf;
	size_t		 i, len, consumed;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		buf = wrap_body(bodies[i], lens[i], &len);
		assert_int_equal(frame_decode(buf, len, FRAME_MAX_DEFAULT, &f,
		    &consumed), FRAME_MALFORMED);
		assert_null(f.f_env);
		free(buf);
	}
}

/* Small deterministic generator so the fuzz loops are reproducible. */
static uint32_t
xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
test_fuzz_random_bodies(void **state)
{
	struct frame	 f;
	uint8_t		 body[256], *buf;
	uint32_t	 seed = 0x9e3779b9;
	size_t		 i, j, n, len, consumed;
	enum frame_result r;
	int		 ok = 0;

	(void)state;
	for (i = 0; i < 20000; i++) {
		n = 1 + xorshift(&seed) % sizeof(body);
		for (j = 0; j < n; j++)
			body[j] = (uint8_t)xorshift(&seed);
		buf = wrap_body(body, n, &len);
		r = frame_decode(buf, len, FRAME_MAX_DEFAULT, &f, &consumed);
		assert_true(r == FRAME_OK || r == FRAME_MALFORMED);
		if (r == FRAME_OK) {
			ok++;
			assert_int_equal(consumed, len);
			assert_true(f.f_payload_len <= n);
			frame_release(&f);
		}
		free(buf);
	}
	/* Random bytes almost never make a version-1 envelope. */
	assert_true(ok < 100);
}

static void
test_fuzz_mutated_frames(void **state)
{
	struct frame	 f;
	Qroam__Status	*st;
	uint8_t		*orig, *buf;
	uint32_t	 seed = 12345;
	size_t		 i, k, len, consumed;
	enum frame_result r;

	(void)state;
	orig = encode_status(QROAM__STATUS_CODE__DECRYPT_FAILED,
	    "mutation base", 424242, &len);
	buf = malloc(len);
	assert_non_null(buf);
	for (i = 0; i < 20000; i++) {
		memcpy(buf, orig, len);
		/* Flip one to four bytes of the body, never the header. */
		for (k = 0; k <= xorshift(&seed) % 4; k++)
			buf[FRAME_HDRLEN + xorshift(&seed) % (len - FRAME_HDRLEN)] =
			    (uint8_t)xorshift(&seed);
		r = frame_decode(buf, len, FRAME_MAX_DEFAULT, &f, &consumed);
		assert_true(r == FRAME_OK || r == FRAME_MALFORMED);
		if (r != FRAME_OK)
			continue;
		assert_int_equal(consumed, len);
		/* Whatever decoded must also unpack safely, or be refused. */
		st = (Qroam__Status *)frame_unpack(&f, &qroam__status__descriptor);
		if (st != NULL)
			qroam__status__free_unpacked(st, NULL);
		frame_release(&f);
	}
	free(buf);
	free(orig);
}

/* A frame whose payload is the given raw bytes. */
static void
decode_with_payload(const uint8_t *pl, size_t n, struct frame *f, uint8_t **buf)
{
	Qroam__Envelope	env = QROAM__ENVELOPE__INIT;
	size_t		len, consumed;

	env.version = FRAME_VERSION;
	env.type = QROAM__MSG_TYPE__MT_STATUS;
	env.has_payload = 1;
	env.payload.data = (uint8_t *)pl;
	env.payload.len = n;
	*buf = pack_envelope(&env, &len);
	assert_int_equal(frame_decode(*buf, len, FRAME_MAX_DEFAULT, f, &consumed),
	    FRAME_OK);
}

static void
test_unpack(void **state)
{
	/* Status{code OK}. */
	static const uint8_t good[] = { 0x08, 0x00 };
	/* Status{detail "x"}: code is required. */
	static const uint8_t nocode[] = { 0x12, 0x01, 'x' };
	/* Status{code OK, field 9 = 1}: unknown field. */
	static const uint8_t unknown[] = { 0x08, 0x00, 0x48, 0x01 };
	/* Truncated length-delimited field. */
	static const uint8_t garbage[] = { 0x12, 0x7f, 'x' };
	const uint8_t	*bad[] = { nocode, unknown, garbage };
	size_t		 badlen[] = { sizeof(nocode), sizeof(unknown),
			    sizeof(garbage) };
	ProtobufCMessage *m;
	struct frame	 f;
	uint8_t		*buf;
	size_t		 i;

	(void)state;
	decode_with_payload(good, sizeof(good), &f, &buf);
	m = frame_unpack(&f, &qroam__status__descriptor);
	assert_non_null(m);
	assert_int_equal(((Qroam__Status *)m)->code, QROAM__STATUS_CODE__OK);
	protobuf_c_message_free_unpacked(m, NULL);
	frame_release(&f);
	free(buf);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		decode_with_payload(bad[i], badlen[i], &f, &buf);
		assert_null(frame_unpack(&f, &qroam__status__descriptor));
		frame_release(&f);
		free(buf);
	}
}

static void
test_unpack_empty_payload(void **state)
{
	ProtobufCMessage *m;
	struct frame	 f;
	uint8_t		*buf = NULL;
	size_t		 len, consumed;

	(void)state;
	assert_int_equal(frame_encode(QROAM__MSG_TYPE__MT_STATUS, 3, NULL,
	    FRAME_MAX_DEFAULT, &buf, &len), 0);
	assert_int_equal(frame_decode(buf, len, FRAME_MAX_DEFAULT, &f, &consumed),
	    FRAME_OK);
	/* No payload: a Status (code required) does not unpack... */
	assert_null(frame_unpack(&f, &qroam__status__descriptor));
	/* ...a message without required fields does. */
	m = frame_unpack(&f, &qroam__bye__descriptor);
	assert_non_null(m);
	protobuf_c_message_free_unpacked(m, NULL);
	frame_release(&f);
	free(buf);
}

static void
test_type_name(void **state)
{
	(void)state;
	assert_string_equal(frame_type_name(QROAM__MSG_TYPE__MT_M3), "MT_M3");
	assert_string_equal(frame_type_name(QROAM__MSG_TYPE__MT_STATUS),
	    "MT_STATUS");
	assert_string_equal(frame_type_name(9999), "?");
	assert_string_equal(frame_type_name(0x80000000u), "?");
	assert_string_equal(frame_type_name(UINT32_MAX), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty_payload_no_request_id),
		cmocka_unit_test(test_golden_status_ok),
		cmocka_unit_test(test_need_more_every_prefix),
		cmocka_unit_test(test_two_frames_in_one_buffer),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_size_from_header),
		cmocka_unit_test(test_encode_refuses_too_big),
		cmocka_unit_test(test_encode_payload),
		cmocka_unit_test(test_zero_length_malformed),
		cmocka_unit_test(test_wrong_version),
		cmocka_unit_test(test_unknown_and_missing_envelope_fields),
		cmocka_unit_test(test_fuzz_random_bodies),
		cmocka_unit_test(test_fuzz_mutated_frames),
		cmocka_unit_test(test_unpack),
		cmocka_unit_test(test_unpack_empty_payload),
		cmocka_unit_test(test_type_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
