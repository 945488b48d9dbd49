/*
 * Unit tests of the text of a cloud bus note (tspd/cloudnote.c): a round
 * trip, "*" as the receiver, the largest note that fits NOTIFY's limit
 * and one byte more, and text that is not a note.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../tspd/cloudnote.h"

static void
test_round_trip(void **state)
{
	static const uint8_t	 sealed[] = { 0x00, 0x01, 0xab, 0xff };
	char			 text[64];
	struct cloudnote	 n;
	const char		*why;

	(void)state;
	assert_int_equal(cloudnote_format("a1", CLOUDNOTE_ALL, sealed,
	    sizeof(sealed), text, sizeof(text)), 0);
	assert_string_equal(text, "a1 * 0001abff");
	assert_int_equal(cloudnote_parse(text, &n, &why), 0);
	assert_null(why);
	assert_string_equal(n.cn_from, "a1");
	assert_string_equal(n.cn_to, "*");
	assert_int_equal(n.cn_len, sizeof(sealed));
	assert_memory_equal(n.cn_sealed, sealed, sizeof(sealed));
	cloudnote_clear(&n);
	assert_int_equal(cloudnote_format("a1", "b2.x-3", sealed,
	    sizeof(sealed), text, sizeof(text)), 0);
	assert_int_equal(cloudnote_parse(text, &n, &why), 0);
	assert_string_equal(n.cn_to, "b2.x-3");
	cloudnote_clear(&n);
	/* Upper-case hex is hex. */
	assert_int_equal(cloudnote_parse("a1 * 0001ABFF", &n, &why), 0);
	assert_memory_equal(n.cn_sealed, sealed, sizeof(sealed));
	cloudnote_clear(&n);
	/* Too small an output buffer, bad names, nothing sealed. */
	assert_int_equal(cloudnote_format("a1", "*", sealed, sizeof(sealed),
	    text, 12), -1);
	assert_int_equal(cloudnote_format("*", "b2", sealed, sizeof(sealed),
	    text, sizeof(text)), -1);
	assert_int_equal(cloudnote_format("a1", "b 2", sealed, sizeof(sealed),
	    text, sizeof(text)), -1);
	assert_int_equal(cloudnote_format("a1", "b2", sealed, 0, text,
	    sizeof(text)), -1);
}

/* The largest sealed note fits NOTIFY's limit with the longest names. */
static void
test_limits(void **state)
{
	char			 name[NAME_MAXLEN + 1], *text;
	uint8_t			*sealed;
	struct cloudnote	 n;
	const char		*why;

	(void)state;
	memset(name, 'a', NAME_MAXLEN);
	name[NAME_MAXLEN] = '\0';
	sealed = calloc(1, CLOUDNOTE_SEALED_MAX + 1);
	text = malloc(2 * CLOUDNOTE_TEXT_MAX);
	assert_non_null(sealed);
	assert_non_null(text);
	assert_int_equal(cloudnote_format(name, name, sealed,
	    CLOUDNOTE_SEALED_MAX, text, CLOUDNOTE_TEXT_MAX + 1), 0);
	assert_true(strlen(text) <= CLOUDNOTE_TEXT_MAX);
	assert_int_equal(cloudnote_parse(text, &n, &why), 0);
	assert_int_equal(n.cn_len, CLOUDNOTE_SEALED_MAX);
	cloudnote_clear(&n);
	assert_int_equal(cloudnote_format(name, name, sealed,
	    CLOUDNOTE_SEALED_MAX + 1, text, 2 * CLOUDNOTE_TEXT_MAX), -1);
	/* Text longer than NOTIFY allows is not a note. */
	memset(text, 'a', CLOUDNOTE_TEXT_MAX + 1);
	text[1] = text[3] = ' ';
	text[CLOUDNOTE_TEXT_MAX + 1] = '\0';
	assert_int_equal(cloudnote_parse(text, &n, &why), -1);
	assert_string_equal(why, "too long");
	free(sealed);
	free(text);
}

static void
assert_not_a_note(const char *text, const char *want)
{
	struct cloudnote	 n;
	const char		*why = NULL;

	assert_int_equal(cloudnote_parse(text, &n, &why), -1);
	assert_non_null(why);
	assert_string_equal(why, want);
	assert_null(n.cn_sealed);
}

static void
test_not_notes(void **state)
{
	(void)state;
	assert_not_a_note("", "malformed");
	assert_not_a_note("hello", "malformed");
	assert_not_a_note("a1 *", "malformed");
	assert_not_a_note("a1 * ", "malformed");
	assert_not_a_note("a1 * 0", "malformed");
	assert_not_a_note("a1 * zz", "malformed");
	assert_not_a_note("a1 * 00 11", "malformed");
	assert_not_a_note(" a1 * 00", "malformed");
	assert_not_a_note("a1  * 00", "malformed");
	assert_not_a_note("A1 * 00", "bad name");
	assert_not_a_note("* a1 00", "bad name");
	assert_not_a_note("a1 ** 00", "bad name");
	assert_not_a_note("a1 b|c 00", "bad name");
	assert_not_a_note("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa * 00", "malformed");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_not_notes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
