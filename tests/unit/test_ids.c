/*
 * Unit tests of the identifier syntax of PROTOCOL section 3: VINs, names
 * (tsp_id, sched_id, SAE ids) and fixed-length lowercase hex.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ids.h"

static void
test_vin_valid(void **state)
{
	(void)state;
	assert_true(id_valid_vin("1HGCM82633A004352"));
	assert_true(id_valid_vin("WVWZZZ1JZXW000001"));
	assert_true(id_valid_vin("00000000000000000"));
	assert_true(id_valid_vin("ABCDEFGHJKLMNPRST"));
	assert_true(id_valid_vin("UVWXYZ12345678900"));
}

static void
test_vin_invalid(void **state)
{
	(void)state;
	assert_false(id_valid_vin(NULL));
	assert_false(id_valid_vin(""));
	/* 16 and 18 characters. */
	assert_false(id_valid_vin("1HGCM82633A00435"));
	assert_false(id_valid_vin("1HGCM82633A0043521"));
	/* I, O and Q are not VIN characters. */
	assert_false(id_valid_vin("1HGCM82633A00435I"));
	assert_false(id_valid_vin("OHGCM82633A004352"));
	assert_false(id_valid_vin("1HGCM8263QA004352"));
	/* Lower case, blanks, punctuation, high bytes. */
	assert_false(id_valid_vin("1hgcm82633a004352"));
	assert_false(id_valid_vin("1HGCM82633A00435 "));
	assert_false(id_valid_vin("1HGCM-2633A004352"));
	assert_false(id_valid_vin("1HGCM82633A00435\xc3"));
	assert_false(id_valid_vin("1HGCM82633A0043\n2"));
}

static void
test_name(void **state)
{
	char	 buf[40];

	(void)state;
	assert_true(id_valid_name("tsp-a"));
	assert_true(id_valid_name("a"));
	assert_true(id_valid_name("sched.main_1-x"));
	assert_true(id_valid_name("0"));
	memset(buf, 'z', 32);
	buf[32] = '\0';
	assert_true(id_valid_name(buf));
	buf[32] = 'z';
	buf[33] = '\0';
	assert_false(id_valid_name(buf));

	assert_false(id_valid_name(NULL));
	assert_false(id_valid_name(""));
	assert_false(id_valid_name("TSP-A"));
	assert_false(id_valid_name("tsp a"));
	assert_false(id_valid_name("tsp/a"));
	assert_false(id_valid_name("tsp|a"));
	assert_false(id_valid_name("tsp:a"));
	assert_false(id_valid_name("ts\xc3\xa9"));
	assert_false(id_valid_name("tsp\n"));
}

static void
test_hex(void **state)
{
	(void)state;
	assert_true(id_valid_hex("0123456789abcdef", 16));
	assert_true(id_valid_hex("", 0));
	assert_true(id_valid_hex(
	    "ce055a97e79cbc8df07f12c729f2f8433cf27fe8310ecbfae1f974715c63d92d",
	    CHIP_ID_LEN));
	assert_false(id_valid_hex(
	    "CE055A97E79CBC8DF07F12C729F2F8433CF27FE8310ECBFAE1F974715C63D92D",
	    CHIP_ID_LEN));
	assert_false(id_valid_hex("0123456789abcdef", 15));
	assert_false(id_valid_hex("0123456789abcdef", 17));
	assert_false(id_valid_hex("0123456789abcdeg", 16));
	assert_false(id_valid_hex("0123456789abcdeF", 16));
	assert_false(id_valid_hex("a", 0));
	assert_false(id_valid_hex("", 1));
	assert_false(id_valid_hex(NULL, 0));
	assert_false(id_valid_hex("12 4", 4));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vin_valid),
		cmocka_unit_test(test_vin_invalid),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
