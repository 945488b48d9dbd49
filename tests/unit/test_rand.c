/*
 * Unit tests of the random source: the default OpenSSL source, pluggable
 * sources, unbiased bounded integers and the fatal end of a failing source.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "rand.h"

#include "testutil.h"

/* A scripted source: hands out script bytes in order, counting calls. */
struct script {
	const uint8_t	*s_bytes;
	size_t		 s_len;
	size_t		 s_off;
	int		 s_calls;
};

static int
script_source(void *ctx, uint8_t *buf, size_t len)
{
	struct script	*s = ctx;

	s->s_calls++;
	if (s->s_off + len > s->s_len)
		return -1;
	memcpy(buf, s->s_bytes + s->s_off, len);
	s->s_off += len;
	return 0;
}

static int
failing_source(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return -1;
}

static void
test_default_source(void **state)
{
	uint8_t	 a[64], b[64], zero[64] = { 0 };

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	qrand_bytes(a, sizeof(a));
	qrand_bytes(b, sizeof(b));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
	qrand_bytes(NULL, 0);
}

static void
test_plugged_source(void **state)
{
	const uint8_t	 bytes[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct script	 s = { bytes, sizeof(bytes), 0, 0 };
	uint8_t		 out[5], more[3];

	(void)state;
	qrand_set_source(script_source, &s);
	qrand_bytes(out, sizeof(out));
	qrand_bytes(more, sizeof(more));
	assert_memory_equal(out, bytes, 5);
	assert_memory_equal(more, bytes + 5, 3);
	assert_int_equal(s.s_calls, 2);
	/* Zero-length draws do not reach the source. */
	qrand_bytes(out, 0);
	assert_int_equal(s.s_calls, 2);

	/* Restoring the default leaves the plugged source alone. */
	qrand_set_source(NULL, &s);
	qrand_bytes(out, sizeof(out));
	assert_int_equal(s.s_calls, 2);
}

/* Draws are big-endian 32-bit; values that would bias are redrawn. */
static void
test_uniform_scripted(void **state)
{
	const uint8_t	 bytes[] = {
		0x12, 0x34, 0x56, 0x78,		/* % 16 = 8 */
		0x00, 0x00, 0x00, 0x00,		/* below 2^32 % 3: redrawn */
		0x00, 0x00, 0x00, 0x05,		/* 5 % 3 = 2 */
		0x00, 0x00, 0x00, 0x00,		/* below 0x7fffffff: redrawn */
		0x7f, 0xff, 0xff, 0xfe,		/* below 0x7fffffff: redrawn */
		0x7f, 0xff, 0xff, 0xff,		/* accepted */
		0xff, 0xff, 0xff, 0xff,		/* 2^32-1 % 10 = 5 */
	};
	struct script	 s = { bytes, sizeof(bytes), 0, 0 };

	(void)state;
	qrand_set_source(script_source, &s);
	assert_int_equal(qrand_uniform(16), 8);
	assert_int_equal(s.s_off, 4);
	assert_int_equal(qrand_uniform(3), 2);
	assert_int_equal(s.s_off, 12);
	assert_int_equal(qrand_uniform(0x80000001u), 0x7fffffffu);
	assert_int_equal(s.s_off, 24);
	/* A bound of 1 needs no randomness. */
	assert_int_equal(qrand_uniform(1), 0);
	assert_int_equal(s.s_off, 24);
	assert_int_equal(qrand_uniform(10), 5);
	assert_int_equal(s.s_off, sizeof(bytes));
}

static void
test_uniform_spread(void **state)
{
	unsigned	 count[16] = { 0 };
	uint32_t	 v;
	int		 i;

	(void)state;
	for (i = 0; i < 16000; i++) {
		v = qrand_uniform(16);
		assert_true(v < 16);
		count[v]++;
	}
	/* Each bucket expects 1000 with a deviation of about 31. */
	for (i = 0; i < 16; i++)
		assert_in_range(count[i], 700, 1300);
	for (i = 0; i < 1000; i++)
		assert_true(qrand_uniform(7) < 7);
}

/* Run fn in a child with stderr silenced; return its wait status. */
static int
in_child(void (*fn)(void))
{
	pid_t	 pid;
	int	 status, fd;

	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		if ((fd = open("/dev/null", O_WRONLY)) != -1)
			dup2(fd, STDERR_FILENO);
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void
draw_from_failing_source(void)
{
	uint8_t	 buf[8];

	qrand_set_source(failing_source, NULL);
	qrand_bytes(buf, sizeof(buf));
}

static void
draw_bound_zero(void)
{
	qrand_uniform(0);
}

/* Without randomness no key may be made: the process ends. */
static void
test_failure_is_fatal(void **state)
{
	int	 status;

	(void)state;
	status = in_child(draw_from_failing_source);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 0);
	status = in_child(draw_bound_zero);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_default_source, tu_rand_restore),
		cmocka_unit_test_teardown(test_plugged_source, tu_rand_restore),
		cmocka_unit_test_teardown(test_uniform_scripted,
		    tu_rand_restore),
		cmocka_unit_test_teardown(test_uniform_spread, tu_rand_restore),
		cmocka_unit_test_teardown(test_failure_is_fatal,
		    tu_rand_restore),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
