/*
 * Unit tests of the configuration parser: tokenizing, file:line error
 * reports, value parsers and the directives every daemon shares.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf.h"
#include "frame.h"

#include "testutil.h"

static char	tmpdir[64];

static int
setup(void **state)
{
	(void)state;
	return tu_tmpdir_new(tmpdir, sizeof(tmpdir), "test_conf");
}

static int
teardown(void **state)
{
	(void)state;
	return tu_tmpdir_free(tmpdir);
}

#define REC_MAX	16

struct recorder {
	int	 r_n;
	int	 r_line[REC_MAX];
	int	 r_argc[REC_MAX];
	char	 r_words[REC_MAX][256];	/* argv joined with '|' */
	int	 r_fail_on;		/* line number to reject, 0 none */
};

/* Callback that records each directive and rejects one chosen line. */
static int
record_cb(void *arg, const struct conf_line *cl)
{
	struct recorder	*r = arg;
	int		 i;

	assert_true(r->r_n < REC_MAX);
	assert_true(cl->cl_argc > 0);
	r->r_line[r->r_n] = cl->cl_line;
	r->r_argc[r->r_n] = cl->cl_argc;
	r->r_words[r->r_n][0] = '\0';
	for (i = 0; i < cl->cl_argc; i++) {
		if (i > 0)
			strcat(r->r_words[r->r_n], "|");
		strcat(r->r_words[r->r_n], cl->cl_argv[i]);
	}
	r->r_n++;
	if (cl->cl_line == r->r_fail_on) {
		conf_error(cl, "rejected %s", cl->cl_argv[0]);
		return -1;
	}
	return 0;
}

/* Parsing path with record_cb reports one error: "path:line: msg". */
static void
expect_one_error(const char *path, struct recorder *r, int line,
    const char *msg)
{
	const char	*err;
	char		 want[512];

	tu_capture_begin();
	assert_int_equal(conf_parse_file(path, record_cb, r), 1);
	err = tu_capture_end();
	snprintf(want, sizeof(want), "%s:%d: %s\n", path, line, msg);
	assert_string_equal(err, want);
}

static void
test_tokenizer(void **state)
{
	struct recorder	 r;
	const char	*path;

	(void)state;
	memset(&r, 0, sizeof(r));
	path = tu_write_file(tmpdir, "tok.conf",
	    "# a comment line\n"
	    "\n"
	    "   \t  \n"
	    "id tsp-a\n"
	    "\tstore\t\t/var/db/x.db   # trailing comment\n"
	    "   # indented comment\n"
	    "route 1,2 3,4\t5,6\r\n"
	    "word#glued comment\n"
	    "last line without newline");
	assert_int_equal(conf_parse_file(path, record_cb, &r), 0);
	assert_int_equal(r.r_n, 5);
	assert_int_equal(r.r_line[0], 4);
	assert_string_equal(r.r_words[0], "id|tsp-a");
	assert_int_equal(r.r_line[1], 5);
	assert_int_equal(r.r_argc[1], 2);
	assert_string_equal(r.r_words[1], "store|/var/db/x.db");
	assert_int_equal(r.r_line[2], 7);
	assert_int_equal(r.r_argc[2], 4);
	assert_string_equal(r.r_words[2], "route|1,2|3,4|5,6");
	assert_int_equal(r.r_line[3], 8);
	assert_string_equal(r.r_words[3], "word");
	assert_int_equal(r.r_line[4], 9);
	assert_string_equal(r.r_words[4], "last|line|without|newline");
}

static void
test_errors_file_line(void **state)
{
	struct recorder	 r;
	const char	*path;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.r_fail_on = 3;
	path = tu_write_file(tmpdir, "err.conf", "a 1\n\nb 2\nc 3\n");
	expect_one_error(path, &r, 3, "rejected b");
	/* Every line is still seen after an error. */
	assert_int_equal(r.r_n, 3);
	assert_int_equal(r.r_line[2], 4);
}

static void
test_too_many_words(void **state)
{
	struct recorder	 r;
	const char	*path;
	char		 text[1024];
	int		 i;

	(void)state;
	memset(&r, 0, sizeof(r));
	strcpy(text, "ok 1\nmany");	/* CONF_MAXARGS + 1 words */
	for (i = 0; i < CONF_MAXARGS; i++)
		strcat(text, " w");
	strcat(text, "\nmax");	/* exactly CONF_MAXARGS words: fine */
	for (i = 1; i < CONF_MAXARGS; i++)
		strcat(text, " w");
	strcat(text, "\nafter 2\n");
	path = tu_write_file(tmpdir, "words.conf", text);
	expect_one_error(path, &r, 2, "too many words");
	assert_int_equal(r.r_n, 3);
	assert_int_equal(r.r_line[1], 3);
	assert_int_equal(r.r_argc[1], CONF_MAXARGS);
	assert_int_equal(r.r_line[2], 4);
}

static void
test_line_too_long(void **state)
{
	struct recorder	 r;
	const char	*path;
	char		*text;
	size_t		 n = 10000;

	(void)state;
	memset(&r, 0, sizeof(r));
	text = malloc(n + 64);
	assert_non_null(text);
	strcpy(text, "first 1\nlong ");
	memset(text + strlen(text), 'x', n);
	strcpy(text + 13 + n, "\nnext 2\n");
	path = tu_write_file(tmpdir, "long.conf", text);
	free(text);
	expect_one_error(path, &r, 2, "line too long");
	/* The rest of the long line is skipped, numbering stays right. */
	assert_int_equal(r.r_n, 2);
	assert_string_equal(r.r_words[1], "next|2");
	assert_int_equal(r.r_line[1], 3);
}

/* A NUL right after an overlong line's first chunk must not be misread. */
static void
test_nul_after_long_line(void **state)
{
	struct recorder	 r;
	char		 path[192];
	FILE		*fp;
	int		 i;

	(void)state;
	memset(&r, 0, sizeof(r));
	snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	for (i = 0; i < 4095; i++)
		fputc('a', fp);
	fputc('\0', fp);
	fputs("xyz\nok 1\n", fp);
	assert_int_equal(fclose(fp), 0);
	expect_one_error(path, &r, 1, "line too long");
	assert_int_equal(r.r_n, 1);
	assert_string_equal(r.r_words[0], "ok|1");
	assert_int_equal(r.r_line[0], 2);
}

static void
test_missing_file(void **state)
{
	struct recorder	 r;
	const char	*err;
	char		 path[192];

	(void)state;
	memset(&r, 0, sizeof(r));
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
	tu_capture_begin();
	assert_int_equal(conf_parse_file(path, record_cb, &r), 1);
	err = tu_capture_end();
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(r.r_n, 0);
}

static void
test_uint(void **state)
{
	uint64_t	v;
	const char	*bad[] = { "", "-1", "+1", " 1", "1 ", "1x", "0x10",
			    "18446744073709551616", "99999999999999999999999", "1.0" };
	size_t		i;

	(void)state;
	assert_int_equal(conf_uint("0", 0, 10, &v), 0);
	assert_true(v == 0);
	assert_int_equal(conf_uint("10", 0, 10, &v), 0);
	assert_true(v == 10);
	assert_int_equal(conf_uint("007", 0, 10, &v), 0);
	assert_true(v == 7);
	assert_int_equal(conf_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	v = 42;
	assert_int_equal(conf_uint("11", 0, 10, &v), -1);
	assert_int_equal(conf_uint("4", 5, 10, &v), -1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(conf_uint(bad[i], 0, UINT64_MAX, &v), -1);
	/* Nothing written on failure. */
	assert_true(v == 42);
}

static void
test_double(void **state)
{
	double		v;
	const char	*bad[] = { "", "abc", "1.5x", "nan", "inf", "-inf",
			    "1e400", "91", "-90.0001", "1,5" };
	size_t		i;

	(void)state;
	assert_int_equal(conf_double("30.05", -90, 90, &v), 0);
	assert_true(v == 30.05);
	assert_int_equal(conf_double("-90", -90, 90, &v), 0);
	assert_true(v == -90.0);
	assert_int_equal(conf_double("90", -90, 90, &v), 0);
	assert_int_equal(conf_double("1e1", -90, 90, &v), 0);
	assert_true(v == 10.0);
	v = 7.0;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(conf_double(bad[i], -90, 90, &v), -1);
	assert_true(v == 7.0);
}

static void
test_duration(void **state)
{
	uint64_t	v;
	const char	*bad[] = { "", "s", "ms", "-1s", "1.5s", "10x", "10 s",
			    "10sec", "1d", "1hh", "99999999999999999999",
			    "18446744073709551615", "5124095576030432h" };
	size_t		i;

	(void)state;
	assert_int_equal(conf_duration_ms("250ms", &v), 0);
	assert_true(v == 250);
	assert_int_equal(conf_duration_ms("30s", &v), 0);
	assert_true(v == 30000);
	assert_int_equal(conf_duration_ms("2m", &v), 0);
	assert_true(v == 120000);
	assert_int_equal(conf_duration_ms("1h", &v), 0);
	assert_true(v == 3600000);
	assert_int_equal(conf_duration_ms("42", &v), 0);
	assert_true(v == 42);
	assert_int_equal(conf_duration_ms("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(conf_duration_ms("0s", &v), 0);
	assert_true(v == 0);
	v = 1;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(conf_duration_ms(bad[i], &v), -1);
	assert_true(v == 1);
}

static void
test_hostport(void **state)
{
	char		host[256], small[4];
	uint16_t	port;
	const char	*bad[] = { "", "host", ":80", "host:", "host:0",
			    "host:65536", "host:-1", "host:80x", "[::1]", "[::1]80",
			    "[]:80", "[::1]:", "[::1]:0", "::1]:80x" };
	size_t		i;

	(void)state;
	assert_int_equal(conf_hostport("127.0.0.1:7001", host, sizeof(host),
	    &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 7001);
	assert_int_equal(conf_hostport("[::1]:80", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 80);
	assert_int_equal(conf_hostport("[fe80::1%eth0]:65535", host, sizeof(host),
	    &port), 0);
	assert_string_equal(host, "fe80::1%eth0");
	assert_int_equal(port, 65535);
	assert_int_equal(conf_hostport("localhost:1", host, sizeof(host), &port), 0);
	assert_string_equal(host, "localhost");
	assert_int_equal(port, 1);
	strcpy(host, "unchanged");
	port = 9;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(conf_hostport(bad[i], host, sizeof(host), &port), -1);
	assert_string_equal(host, "unchanged");
	assert_int_equal(port, 9);
	/* The host must fit with its NUL. */
	assert_int_equal(conf_hostport("abcd:80", small, sizeof(small), &port), -1);
	assert_int_equal(conf_hostport("abc:80", small, sizeof(small), &port), 0);
	assert_string_equal(small, "abc");
}

static void
test_bool(void **state)
{
	const char	*yes[] = { "yes", "true", "on", "1" };
	const char	*no[] = { "no", "false", "off", "0" };
	const char	*bad[] = { "", "YES", "y", "2", "onn", " yes" };
	size_t		 i;
	int		 v;

	(void)state;
	for (i = 0; i < 4; i++) {
		v = -1;
		assert_int_equal(conf_bool(yes[i], &v), 0);
		assert_int_equal(v, 1);
		assert_int_equal(conf_bool(no[i], &v), 0);
		assert_int_equal(v, 0);
	}
	v = 5;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(conf_bool(bad[i], &v), -1);
	assert_int_equal(v, 5);
}

/* conf_cb feeding cfg_common_line, counting unhandled directives. */
struct common_ctx {
	struct cfg_common	cx_cc;
	int			cx_other;
};

static int
common_cb(void *arg, const struct conf_line *cl)
{
	struct common_ctx	*cx = arg;

	switch (cfg_common_line(&cx->cx_cc, cl)) {
	case 1:
		return 0;
	case 0:
		cx->cx_other++;
		return 0;
	default:
		return -1;
	}
}

static void
test_common_directives(void **state)
{
	struct common_ctx	 cx;
	const char		*path;

	(void)state;
	cfg_common_init(&cx.cx_cc);
	cx.cx_other = 0;
	assert_int_equal(cx.cx_cc.cc_max_frame, FRAME_MAX_DEFAULT);
	path = tu_write_file(tmpdir, "common.conf",
	    "id tsp-a\n"
	    "topology /etc/qroam/topology\n"
	    "store /var/db/old.db\n"
	    "store /var/db/tsp.db\n"	/* a repeat replaces the value */
	    "ca ca.pem\n"
	    "cert tsp.pem\n"
	    "key tsp.key\n"
	    "max_frame 1024\n"
	    "verbose 3\n"
	    "auth_skew 30s\n");
	assert_int_equal(conf_parse_file(path, common_cb, &cx), 0);
	assert_int_equal(cx.cx_other, 1);
	assert_string_equal(cx.cx_cc.cc_id, "tsp-a");
	assert_string_equal(cx.cx_cc.cc_topology, "/etc/qroam/topology");
	assert_string_equal(cx.cx_cc.cc_store, "/var/db/tsp.db");
	assert_string_equal(cx.cx_cc.cc_ca, "ca.pem");
	assert_string_equal(cx.cx_cc.cc_cert, "tsp.pem");
	assert_string_equal(cx.cx_cc.cc_key, "tsp.key");
	assert_int_equal(cx.cx_cc.cc_max_frame, 1024);
	assert_int_equal(cx.cx_cc.cc_verbose, 3);
	assert_int_equal(cfg_common_check(&cx.cx_cc, path, 1), 0);
	cfg_common_free(&cx.cx_cc);
	assert_null(cx.cx_cc.cc_store);
}

static void
test_common_errors(void **state)
{
	struct common_ctx	 cx;
	const char		*path, *err;
	char			 want[2048];

	(void)state;
	cfg_common_init(&cx.cx_cc);
	cx.cx_other = 0;
	path = tu_write_file(tmpdir, "bad.conf",
	    "id TSP-A\n"
	    "id a-name-that-is-much-longer-than-32-chars\n"
	    "store\n"
	    "store a b\n"
	    "max_frame 1023\n"
	    "max_frame 16777217\n"
	    "max_frame 16777216\n"
	    "verbose 10\n"
	    "verbose -1\n"
	    "topology t\n");
	tu_capture_begin();
	assert_int_equal(conf_parse_file(path, common_cb, &cx), 8);
	err = tu_capture_end();
	snprintf(want, sizeof(want),
	    "%1$s:1: invalid id \"TSP-A\" (want [a-z0-9._-]{1,32})\n"
	    "%1$s:2: invalid id \"a-name-that-is-much-longer-than-32-chars\""
	    " (want [a-z0-9._-]{1,32})\n"
	    "%1$s:3: store takes one argument\n"
	    "%1$s:4: store takes one argument\n"
	    "%1$s:5: max_frame must be 1024..16777216\n"
	    "%1$s:6: max_frame must be 1024..16777216\n"
	    "%1$s:8: verbose must be 0..9\n"
	    "%1$s:9: verbose must be 0..9\n", path);
	assert_string_equal(err, want);
	assert_string_equal(cx.cx_cc.cc_id, "");
	assert_int_equal(cx.cx_cc.cc_max_frame, 16777216);
	assert_int_equal(cx.cx_cc.cc_verbose, 0);
	assert_null(cx.cx_cc.cc_store);

	/* store missing; topology present; TLS files only when asked for. */
	tu_capture_begin();
	assert_int_equal(cfg_common_check(&cx.cx_cc, "bad.conf", 0), -1);
	err = tu_capture_end();
	assert_string_equal(err, "bad.conf: missing \"store\"\n");
	tu_capture_begin();
	assert_int_equal(cfg_common_check(&cx.cx_cc, "bad.conf", 1), -1);
	err = tu_capture_end();
	assert_string_equal(err, "bad.conf: missing \"store\"\n"
	    "bad.conf: missing \"ca\", \"cert\" or \"key\"\n");
	cfg_common_free(&cx.cx_cc);

	cfg_common_init(&cx.cx_cc);
	tu_capture_begin();
	assert_int_equal(cfg_common_check(&cx.cx_cc, "empty.conf", 0), -1);
	err = tu_capture_end();
	assert_string_equal(err, "empty.conf: missing \"store\"\n"
	    "empty.conf: missing \"topology\"\n");
	cfg_common_free(&cx.cx_cc);
}

static void
test_common_check_tls(void **state)
{
	struct cfg_common	 cc;
	struct conf_line	 cl;
	const char		*err;

	(void)state;
	cfg_common_init(&cc);
	memset(&cl, 0, sizeof(cl));
	cl.cl_file = "direct.conf";
	cl.cl_line = 1;
	cl.cl_argc = 2;
	cl.cl_argv[0] = "store";
	cl.cl_argv[1] = "s.db";
	assert_int_equal(cfg_common_line(&cc, &cl), 1);
	cl.cl_argv[0] = "topology";
	cl.cl_argv[1] = "topo";
	assert_int_equal(cfg_common_line(&cc, &cl), 1);
	assert_int_equal(cfg_common_check(&cc, "direct.conf", 0), 0);
	cl.cl_argv[0] = "ca";
	cl.cl_argv[1] = "ca.pem";
	assert_int_equal(cfg_common_line(&cc, &cl), 1);
	cl.cl_argv[0] = "cert";
	cl.cl_argv[1] = "c.pem";
	assert_int_equal(cfg_common_line(&cc, &cl), 1);
	/* key still missing */
	tu_capture_begin();
	assert_int_equal(cfg_common_check(&cc, "direct.conf", 1), -1);
	err = tu_capture_end();
	assert_string_equal(err, "direct.conf: missing \"ca\", \"cert\" or \"key\"\n");
	cl.cl_argv[0] = "key";
	cl.cl_argv[1] = "k.pem";
	assert_int_equal(cfg_common_line(&cc, &cl), 1);
	assert_int_equal(cfg_common_check(&cc, "direct.conf", 1), 0);
	/* Not a common directive: untouched, not an error. */
	cl.cl_argv[0] = "route";
	assert_int_equal(cfg_common_line(&cc, &cl), 0);
	cfg_common_free(&cc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokenizer),
		cmocka_unit_test(test_errors_file_line),
		cmocka_unit_test(test_too_many_words),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_nul_after_long_line),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_double),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_common_directives),
		cmocka_unit_test(test_common_errors),
		cmocka_unit_test(test_common_check_tls),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
